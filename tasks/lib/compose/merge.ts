// How Compose merges a service defined in several files (and a service with its `extends` base),
// following docker-compose's merge_service_dicts (compose/config/config.py, v1.29), which the
// compose-spec's merge rules describe too, so `docker-compose config` is the oracle in the tests:
//   - mappings (given as a mapping or a KEY=VALUE list) merge key by key: environment, labels,
//     extra_hosts, sysctls, ulimits, storage_opt, depends_on, build.args, build.labels;
//   - "unique resources" merge by their key: volumes and devices by container path, ports by
//     (target, published, ip, protocol), secrets and configs by source, networks by name;
//   - sets merge as a union: cap_add, cap_drop, expose, external_links, volumes_from,
//     device_cgroup_rules, profiles, build.cache_from;
//   - lists concatenate: dns, dns_search, env_file, tmpfs;
//   - healthcheck, logging (same driver), deploy and build merge one level down;
//   - everything else (image, command, entrypoint, …) is replaced by the later file.
// Top-level networks, volumes, secrets and configs merge per name, mappings key by key and the
// rest replaced, as Compose v2 does (v1 replaced a whole entry: an override's volume that only adds
// labels lost the base's driver); x-* entries are replaced per name.
import { FileError } from '../errors';

type Obj = Record<string, unknown>;

export function isMapping(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** `[A=1, B]` or `{A: 1, B: null}` as a mapping (a bare `B` maps to null: taken from the environment). */
export function listOrMapping(value: unknown, where: string, separator = '='): Obj {
  if (value === undefined || value === null) return {};
  if (isMapping(value)) return { ...value };
  if (Array.isArray(value)) {
    const out: Obj = {};
    for (const item of value) {
      const text = String(item);
      const at = text.indexOf(separator);
      if (at === 0) throw new FileError(`Compose ${where}: '${text}' has no name before '${separator}'.`);
      if (at < 0) out[text] = null;
      else out[text.slice(0, at)] = text.slice(at + 1);
    }
    return out;
  }
  throw new FileError(`Compose ${where} must be a mapping or a list of KEY${separator}VALUE.`);
}

/**
 * listOrMapping as text: a name without a value takes it from `env` (left out when it is not set
 * there, as Compose does for build args, labels and annotations); other values as text, mappings
 * and lists as JSON.
 */
export function stringMapping(value: unknown, where: string, env: Record<string, string | undefined> = process.env): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(listOrMapping(value, where))) {
    if (v === null || v === undefined) {
      if (env[k] !== undefined) out[k] = env[k] as string;
    } else out[k] = typeof v === 'object' ? JSON.stringify(v) : String(v);
  }
  return out;
}

function toList(value: unknown): unknown[] {
  if (value === undefined || value === null) return [];
  return Array.isArray(value) ? value : [value];
}

function mergeMapping(base: unknown, over: unknown, where: string, separator = '='): Obj {
  return { ...listOrMapping(base, where, separator), ...listOrMapping(over, where, separator) };
}

function union(base: unknown, over: unknown): string[] {
  return [...new Set([...toList(base), ...toList(over)].map(String))].sort();
}

/** Merges two lists by a key; a later entry with the same key replaces the earlier one in place. */
function mergeByKey(base: unknown, over: unknown, key: (item: unknown) => string): unknown[] {
  const out = new Map<string, unknown>();
  for (const item of [...toList(base), ...toList(over)]) {
    const k = key(item);
    if (out.has(k)) out.delete(k); // v1 orders the result by key; keep the later position
    out.set(k, item);
  }
  return [...out.values()];
}

/** The container path of a short (`host:container[:mode]`) or long (`{target: …}`) volume or device. */
export function mountTarget(item: unknown): string {
  if (isMapping(item)) return String(item.target ?? '');
  const text = String(item);
  const windowsDrive = /^[A-Za-z]:[\\/]/.test(text) ? text.slice(0, 2) : '';
  const rest = text.slice(windowsDrive.length);
  const parts = rest.split(':');
  if (parts.length === 1) return parts[0];
  return parts[1];
}

/** A port's identity: (target, published, ip, protocol), for short and long syntax. */
export function portKey(item: unknown): string {
  if (isMapping(item)) return [item.target, item.published ?? '', item.host_ip ?? '', item.protocol ?? 'tcp'].join('|');
  let text = String(item);
  let protocol = 'tcp';
  const slash = text.lastIndexOf('/');
  if (slash >= 0) {
    protocol = text.slice(slash + 1);
    text = text.slice(0, slash);
  }
  const parts = text.split(':');
  const target = parts.pop() ?? '';
  const published = parts.pop() ?? '';
  const ip = parts.join(':');
  return [target, published, ip, protocol].join('|');
}

function sourceKey(item: unknown): string {
  return isMapping(item) ? String(item.source ?? '') : String(item);
}

function networksMapping(value: unknown): Record<string, Obj> {
  const out: Record<string, Obj> = {};
  if (Array.isArray(value)) for (const n of value) out[String(n)] = {};
  else if (isMapping(value)) for (const [k, v] of Object.entries(value)) out[k] = isMapping(v) ? v : {};
  return out;
}

function mergeNetworks(base: unknown, over: unknown): Record<string, Obj> {
  const b = networksMapping(base);
  const o = networksMapping(over);
  const out: Record<string, Obj> = {};
  for (const name of new Set([...Object.keys(b), ...Object.keys(o)])) {
    const merged: Obj = { ...(b[name] ?? {}), ...(o[name] ?? {}) };
    for (const list of ['aliases', 'link_local_ips']) {
      if (b[name]?.[list] !== undefined || o[name]?.[list] !== undefined) merged[list] = union(b[name]?.[list], o[name]?.[list]);
    }
    out[name] = merged;
  }
  return out;
}

/** `depends_on` as a mapping: a list means `condition: service_started` for each. */
export function dependsOnMapping(value: unknown): Record<string, Obj> {
  const out: Record<string, Obj> = {};
  if (Array.isArray(value)) for (const n of value) out[String(n)] = { condition: 'service_started' };
  else if (isMapping(value)) for (const [k, v] of Object.entries(value)) out[k] = isMapping(v) ? v : { condition: 'service_started' };
  return out;
}

function mergeBuild(base: unknown, over: unknown, where: string): Obj {
  const asMap = (b: unknown): Obj => (typeof b === 'string' ? { context: b } : isMapping(b) ? b : {});
  const b = asMap(base);
  const o = asMap(over);
  const out: Obj = { ...b, ...o };
  for (const key of ['args', 'labels']) if (key in b || key in o) out[key] = mergeMapping(b[key], o[key], `${where} build.${key}`);
  if ('extra_hosts' in b || 'extra_hosts' in o) out.extra_hosts = mergeMapping(b.extra_hosts, o.extra_hosts, `${where} build.extra_hosts`, ':');
  if ('cache_from' in b || 'cache_from' in o) out.cache_from = union(b.cache_from, o.cache_from);
  return out;
}

function mergeLogging(base: unknown, over: unknown): Obj {
  const b = isMapping(base) ? base : {};
  const o = isMapping(over) ? over : {};
  const out: Obj = { ...b, ...o };
  if (b.driver === undefined || o.driver === undefined || o.driver === b.driver) {
    if (b.options !== undefined || o.options !== undefined) out.options = { ...(isMapping(b.options) ? b.options : {}), ...(isMapping(o.options) ? o.options : {}) };
  }
  return out;
}

function deepMerge(base: unknown, over: unknown): unknown {
  if (!isMapping(base) || !isMapping(over)) return over;
  const out: Obj = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = k in out ? deepMerge(out[k], v) : v;
  return out;
}

/** Merges an override service into a base service (a later file, or a service over its `extends` base). */
export function mergeService(base: Obj, over: Obj, where: string): Obj {
  const out: Obj = { ...base, ...over };
  const both = (key: string) => key in base && key in over;
  for (const key of ['environment', 'labels', 'sysctls', 'ulimits', 'storage_opt']) {
    if (both(key)) out[key] = mergeMapping(base[key], over[key], `${where} ${key}`);
  }
  if (both('extra_hosts')) out.extra_hosts = mergeMapping(base.extra_hosts, over.extra_hosts, `${where} extra_hosts`, ':');
  if (both('depends_on')) out.depends_on = { ...dependsOnMapping(base.depends_on), ...dependsOnMapping(over.depends_on) };
  if (both('networks')) out.networks = mergeNetworks(base.networks, over.networks);
  for (const key of ['volumes', 'devices']) if (both(key)) out[key] = mergeByKey(base[key], over[key], mountTarget);
  if (both('ports')) out.ports = mergeByKey(base.ports, over.ports, portKey);
  for (const key of ['secrets', 'configs']) if (both(key)) out[key] = mergeByKey(base[key], over[key], sourceKey);
  for (const key of ['links', 'security_opt']) if (both(key)) out[key] = mergeByKey(base[key], over[key], (i) => String(i).split(':')[0]);
  for (const key of ['cap_add', 'cap_drop', 'expose', 'external_links', 'volumes_from', 'device_cgroup_rules', 'profiles']) {
    if (both(key)) out[key] = union(base[key], over[key]);
  }
  for (const key of ['dns', 'dns_search', 'env_file', 'tmpfs']) if (both(key)) out[key] = [...toList(base[key]), ...toList(over[key])];
  if (both('logging')) out.logging = mergeLogging(base.logging, over.logging);
  if (both('healthcheck')) {
    const o = isMapping(over.healthcheck) ? over.healthcheck : {};
    out.healthcheck = o.disable === true || o.disabled === true ? o : { ...(isMapping(base.healthcheck) ? base.healthcheck : {}), ...o };
  }
  if (both('deploy') || both('blkio_config')) {
    for (const key of ['deploy', 'blkio_config']) if (both(key)) out[key] = deepMerge(base[key], over[key]);
  }
  if (both('build')) out.build = mergeBuild(base.build, over.build, where);
  return out;
}

/** Merges the top level of a later file into the merged model so far. */
export function mergeTopLevel(base: Obj, over: Obj, what: string): Obj {
  const out: Obj = { ...base };
  for (const [key, value] of Object.entries(over)) {
    if (key === 'services') {
      const merged: Obj = { ...(isMapping(base.services) ? base.services : {}) };
      for (const [name, service] of Object.entries(isMapping(value) ? value : {})) {
        const s = service ?? {};
        if (!isMapping(s)) throw new FileError(`${what}: service '${name}' must be a mapping.`);
        const previous = merged[name];
        if (isMapping(previous)) {
          const next = mergeService(previous, s, `service '${name}'`);
          // `extends` of the later file wins (merge_service_dicts_from_files)
          if ('extends' in s) next.extends = s.extends;
          merged[name] = next;
        } else merged[name] = s;
      }
      out.services = merged;
    } else if (['networks', 'volumes', 'secrets', 'configs'].includes(key) && isMapping(value) && isMapping(base[key])) {
      const entries: Obj = { ...(base[key] as Obj) };
      for (const [name, entry] of Object.entries(value)) entries[name] = deepMerge(entries[name], entry);
      out[key] = entries;
    } else {
      out[key] = value;
    }
  }
  return out;
}
