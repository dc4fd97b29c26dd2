// How Compose v2 merges compose files (compose-go v2's `override` package, which the compose-spec's
// merge rules describe), so `docker compose config` is the oracle the tests compare against:
//   - mappings merge key by key, deeply; a null in the later file keeps the earlier value;
//   - sequences append, leaving out items the earlier files already have;
//   - scalars are replaced; a mapping and a sequence at the same place cannot be merged;
//   - exceptions (MERGE_RULES): command, entrypoint and healthcheck.test are replaced;
//     environment, labels, annotations, sysctls, build args/labels/additional_contexts,
//     deploy.labels and network/volume labels merge as KEY=VALUE (a mapping here); extra_hosts
//     appends what is new (`host:ip` and `host=ip` are different texts, as in Compose); dns,
//     dns_opt, dns_search, env_file and tmpfs take a single value too; depends_on and networks
//     merge per service/network (a list means the defaults); logging keeps the earlier options
//     only for the same driver; a build given as a path is its context; ipam.config merges by subnet.
// After each merge (and within the first file) entries that Compose keys are made unique
// (UNIQUE_BY): the later entry replaces the earlier one where the earlier one was. Lists the
// compose-spec says hold unique items but that nothing keys (DISTINCT) must not repeat a value.
import { isDeepStrictEqual } from 'node:util';
import { FileError } from '../errors';
import { isObject } from '../util/object';
import { shortPorts } from './ports';

type Obj = Record<string, unknown>;
type Path = readonly string[];

/** `[A=1, B]` or `{A: 1, B: null}` as a mapping (a bare `B` maps to null: taken from the environment). */
export function listOrMapping(value: unknown, where: string, separator = '='): Obj {
  if (value === undefined || value === null) return {};
  if (isObject(value)) return { ...value };
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

/**
 * `depends_on` as a mapping: a list means `condition: service_started` for each. (Compose v2 also
 * adds `required: true`, its default; it is left out here because Compose v1 refuses the key in
 * the rendered file.)
 */
export function dependsOnMapping(value: unknown): Record<string, Obj> {
  const out: Record<string, Obj> = {};
  if (Array.isArray(value)) for (const n of value) out[String(n)] = { condition: 'service_started' };
  else if (isObject(value)) for (const [k, v] of Object.entries(value)) out[k] = isObject(v) ? v : { condition: 'service_started' };
  return out;
}

// ---------------------------------------------------------------------------------------------
// Merging

type Merger = (base: unknown, over: unknown, path: Path, where: string) => unknown;

const replace: Merger = (_base, over) => over;
const keyValues: Merger = (base, over, path, where) => ({ ...listOrMapping(base, `${where} ${dotted(path)}`), ...listOrMapping(over, `${where} ${dotted(path)}`) });
const appendValues: Merger = (base, over) => [...asSequence(base), ...asSequence(over)];
const extraHosts: Merger = (base, over) => {
  const out = asSequence(base);
  for (const item of asSequence(over)) if (!out.includes(item)) out.push(item);
  return out;
};
const dependsOn: Merger = (base, over, path, where) => mergeMappings(dependsOnMapping(base), dependsOnMapping(over), path, where);
const serviceNetworks: Merger = (base, over, path, where) => mergeMappings(networksMapping(base), networksMapping(over), path, where);
const logging: Merger = (base, over, path, where) => {
  if (!isObject(base) || !isObject(over)) return over ?? base;
  const sameDriver = base.driver === undefined || over.driver === undefined || base.driver === over.driver;
  return sameDriver ? mergeMappings(base, over, path, where) : over;
};
const build: Merger = (base, over, path, where) => {
  const asMap = (b: unknown) => (typeof b === 'string' ? { context: b } : b);
  return mergeValues(asMap(base), asMap(over), path, where, true);
};
const ulimit: Merger = (base, over, path, where) => (isObject(base) && isObject(over) ? mergeMappings(base, over, path, where) : (over ?? base));
const ipamConfig: Merger = (base, over, path, where) => {
  if (!Array.isArray(base) || !Array.isArray(over)) return over ?? base;
  const out = base.map((c) => (isObject(c) ? { ...c } : c));
  for (const entry of over) {
    const at = out.findIndex((c) => isObject(c) && isObject(entry) && c.subnet === entry.subnet);
    if (at >= 0) out[at] = mergeMappings(out[at] as Obj, entry as Obj, path, where);
    else out.push(entry);
  }
  return out;
};

const MERGE_RULES: [string, Merger][] = [
  ['services.*.command', replace],
  ['services.*.entrypoint', replace],
  ['services.*.healthcheck.test', replace],
  ...['environment', 'labels', 'annotations', 'sysctls', 'build.args', 'build.labels', 'build.additional_contexts', 'deploy.labels'].map((k): [string, Merger] => [`services.*.${k}`, keyValues]),
  ['networks.*.labels', keyValues],
  ['volumes.*.labels', keyValues],
  ['services.*.extra_hosts', extraHosts],
  ['services.*.build.extra_hosts', extraHosts],
  ...['dns', 'dns_opt', 'dns_search', 'env_file', 'tmpfs'].map((k): [string, Merger] => [`services.*.${k}`, appendValues]),
  ['services.*.depends_on', dependsOn],
  ['services.*.networks', serviceNetworks],
  ['services.*.logging', logging],
  ['services.*.build', build],
  ['services.*.ulimits.*', ulimit],
  ['networks.*.ipam.config', ipamConfig],
];

/**
 * Items of these lists are in Compose's long form by the time a later file is merged, so a
 * later file's short item never equals an earlier one (both are kept).
 */
const LONG_FORM_BEFORE_MERGE: [string, (item: unknown) => unknown][] = [['services.*.build.secrets', (i) => (typeof i === 'string' ? { source: i } : i)]];

const mergeRuleAt = patternTable(MERGE_RULES);
const longFormAt = patternTable(LONG_FORM_BEFORE_MERGE);

/** Merges a later layer (an override file, an extending service) into the model so far. */
export function mergeLayer(base: Obj, over: Obj, where: string): Obj {
  return mergeMappings(base, over, [], where);
}

/** Merges one entry of a top-level section (a service over its `extends` base, a service a file defines over the one it includes). */
export function mergeEntry(section: string, name: string, base: Obj, over: Obj, where: string): Obj {
  return mergeMappings(base, over, [section, name], where);
}

function mergeValues(base: unknown, over: unknown, path: Path, where: string, skipRules = false): unknown {
  if (!skipRules) {
    const rule = mergeRuleAt(path);
    if (rule) return rule(base, over, path, where);
  }
  if (over === null || over === undefined) return base;
  if (isObject(base)) {
    if (!isObject(over)) throw cannotMerge(path, where, 'a mapping', over);
    return mergeMappings(base, over, path, where);
  }
  if (Array.isArray(base)) {
    if (!Array.isArray(over)) throw cannotMerge(path, where, 'a list', over);
    const longForm = longFormAt(path) ?? ((i: unknown) => i);
    const out = base.map(longForm);
    for (const item of over) if (!out.some((o) => isDeepStrictEqual(o, item))) out.push(item);
    return out;
  }
  return over;
}

function mergeMappings(base: Obj, over: Obj, path: Path, where: string): Obj {
  const out: Obj = { ...base };
  for (const [key, value] of Object.entries(over)) {
    out[key] = key in out ? mergeValues(out[key], value, [...path, key], where) : value;
  }
  return out;
}

function cannotMerge(path: Path, where: string, earlier: string, later: unknown): FileError {
  const kind = Array.isArray(later) ? 'a list' : isObject(later) ? 'a mapping' : 'a single value';
  return new FileError(`${where}: '${dotted(path)}' is ${kind} here but ${earlier} in the files before; Compose cannot merge the two. Write it as ${earlier}, or tag it !override to replace it.`);
}

// ---------------------------------------------------------------------------------------------
// Unique entries

type Indexer = (item: unknown, path: Path, where: string) => string | string[];

const byKey: Indexer = (item) => String(item).split('=')[0];
const byValue: Indexer = (item) => String(item);
const byEnvFile: Indexer = (item) => (isObject(item) ? String(item.path) : String(item));
const byMountTarget: Indexer = (item, path, where) => {
  if (isObject(item) && typeof item.target !== 'string') throw new FileError(`${where}: an entry of '${dotted(path)}' has no 'target'. Give the container path it is mounted at.`);
  return mountTarget(item);
};
const byDeviceTarget: Indexer = (item) => {
  if (isObject(item)) return String(item.target ?? '');
  const parts = String(item).split(':');
  return parts.length === 1 ? parts[0] : parts[1];
};
const byFileTarget = (folder: string): Indexer => (item) => {
  if (isObject(item)) return typeof item.target === 'string' ? item.target : `${folder}/${String(item.source)}`;
  return `${folder}/${String(item)}`;
};
const byPort: Indexer = (item) => portKeys(item);

const UNIQUE_BY: [string, Indexer][] = [
  ...['networks.*.labels', 'volumes.*.labels'].map((p): [string, Indexer] => [p, byKey]),
  ...['annotations', 'build.args', 'build.additional_contexts', 'build.tags', 'build.labels', 'cap_add', 'cap_drop', 'deploy.labels', 'dns', 'dns_opt', 'dns_search', 'environment', 'labels', 'links', 'networks.*.aliases', 'networks.*.link_local_ips', 'profiles', 'sysctls', 'tmpfs'].map(
    (k): [string, Indexer] => [`services.*.${k}`, byKey],
  ),
  ['services.*.expose', byValue],
  ['services.*.env_file', byEnvFile],
  ['services.*.volumes', byMountTarget],
  ['services.*.devices', byDeviceTarget],
  ['services.*.secrets', byFileTarget('/run/secrets')],
  ['services.*.configs', byFileTarget('')],
  ['services.*.ports', byPort],
];

/** Lists whose items the compose-spec requires to be distinct and that Compose does not key: a repeated value is refused. */
const DISTINCT = ['external_links', 'security_opt', 'volumes_from', 'group_add', 'device_cgroup_rules', 'depends_on', 'networks', 'extra_hosts', 'build.extra_hosts'].map((k) => `services.*.${k}`);

const uniqueByAt = patternTable(UNIQUE_BY);
const distinctAt = patternTable(DISTINCT.map((p): [string, true] => [p, true]));

/**
 * The model with keyed entries made unique (a later entry replaces an earlier one with the same
 * key, in the earlier one's place), as Compose does after each file; refuses repeated values of
 * DISTINCT lists, naming `where`.
 */
export function uniqueEntries(model: Obj, where: string): Obj {
  return walkUnique(model, [], where) as Obj;
}

function walkUnique(value: unknown, path: Path, where: string): unknown {
  if (isObject(value)) {
    const out: Obj = {};
    for (const [k, v] of Object.entries(value)) out[k] = walkUnique(v, [...path, k], where);
    return out;
  }
  if (!Array.isArray(value)) return value;
  if (distinctAt(path)) {
    value.forEach((item, i) => {
      if (value.findIndex((o) => isDeepStrictEqual(o, item)) !== i) throw new FileError(`${where}: '${dotted(path)}' lists ${JSON.stringify(item)} twice; Compose refuses repeated entries there. Remove one.`);
    });
  }
  const indexer = uniqueByAt(path);
  return indexer ? uniqueBy(value, (item) => indexer(item, path, where)) : value;
}

/**
 * Keeps one entry per key, the later one in the earlier one's place. An entry with several keys
 * (a port range) is split into single ports only when one of its keys is taken by another entry.
 */
function uniqueBy(items: unknown[], keysOf: (item: unknown) => string | string[]): unknown[] {
  const keyed = items.flatMap((item) => {
    const keys = keysOf(item);
    return typeof keys === 'string' ? [{ item, key: keys }] : [{ item, key: keys.length === 1 ? keys[0] : keys }];
  });
  const count = new Map<string, number>();
  for (const { key } of keyed) for (const k of typeof key === 'string' ? [key] : key) count.set(k, (count.get(k) ?? 0) + 1);
  const single = keyed.flatMap(({ item, key }) =>
    typeof key !== 'string' && key.some((k) => (count.get(k) ?? 0) > 1) ? splitPortRange(String(item)).map((p) => ({ item: p, key: portKeys(p)[0] })) : [{ item, key: typeof key === 'string' ? key : key.join(',') }],
  );
  const out: unknown[] = [];
  const at = new Map<string, number>();
  for (const { item, key } of single) {
    const i = at.get(key);
    if (i === undefined) {
      at.set(key, out.length);
      out.push(item);
    } else out[i] = item;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Keys of entries

/** The container path of a short (`host:container[:mode]`) or long (`{target: …}`) volume or device. */
export function mountTarget(item: unknown): string {
  if (isObject(item)) return String(item.target ?? '');
  const text = String(item);
  const windowsDrive = /^[A-Za-z]:[\\/]/.test(text) ? text.slice(0, 2) : '';
  const rest = text.slice(windowsDrive.length);
  const parts = rest.split(':');
  if (parts.length === 1) return parts[0];
  return parts[1];
}

function splitPortRange(text: string): string[] {
  return shortPorts(text).map((p) => `${p.hostIp ? `${p.hostIp.includes(':') ? `[${p.hostIp}]` : p.hostIp}:` : ''}${p.published !== undefined ? `${p.published}:` : p.hostIp ? ':' : ''}${p.target}/${p.protocol}`);
}

/**
 * A port's identity as Compose keys it: (host ip, published, target, protocol), the ip 0.0.0.0
 * when not given. Compose compares a long-syntax `published` as written, so a number there never
 * equals the text of a short port (both are kept, as Compose keeps them).
 */
export function portKeys(item: unknown): string[] {
  if (isObject(item)) {
    const published = item.published === undefined || item.published === null ? '<none>' : typeof item.published === 'number' ? `int:${item.published}` : String(item.published);
    return [`${String(item.host_ip ?? '') || '0.0.0.0'}|${published}|${String(item.target)}|${String(item.protocol ?? 'tcp')}`];
  }
  return shortPorts(String(item)).map((p) => `${p.hostIp || '0.0.0.0'}|${p.published ?? '<none>'}|${p.target}|${p.protocol}`);
}

/** One key for a port entry (its first port when it is a range). */
export function portKey(item: unknown): string {
  return portKeys(item)[0];
}

// ---------------------------------------------------------------------------------------------
// Helpers

function networksMapping(value: unknown): Obj {
  if (Array.isArray(value)) return Object.fromEntries(value.map((n) => [String(n), null]));
  return isObject(value) ? value : {};
}

/** A list, a single value, or a mapping (as KEY=VALUE, sorted, a list value giving one entry per item) as a list. */
function asSequence(value: unknown): unknown[] {
  if (value === undefined || value === null) return [];
  if (Array.isArray(value)) return [...value];
  if (isObject(value)) {
    const out: string[] = [];
    for (const [k, v] of Object.entries(value)) {
      if (v === null || v === undefined) out.push(k);
      else if (Array.isArray(v)) for (const each of v) out.push(`${k}=${String(each)}`);
      else out.push(`${k}=${String(v)}`);
    }
    return out.sort();
  }
  return [value];
}

/** Whether a path matches a dotted pattern in which `*` stands for any one key. */
/**
 * The rule of the first pattern (`services.*.labels`; `*` is any one key) that matches a path.
 * Patterns are indexed by their length and last key, so a lookup tries one or two of them: the
 * lookups run for every value of a big model.
 */
function patternTable<T>(rules: [string, T][]): (path: Path) => T | undefined {
  const byShape = new Map<string, { parts: string[]; order: number; rule: T }[]>();
  rules.forEach(([pattern, rule], order) => {
    const parts = pattern.split('.');
    const shape = `${parts.length}:${parts[parts.length - 1]}`;
    byShape.set(shape, [...(byShape.get(shape) ?? []), { parts, order, rule }]);
  });
  return (path) => {
    let found: { order: number; rule: T } | undefined;
    for (const shape of [`${path.length}:${path[path.length - 1]}`, `${path.length}:*`]) {
      const match = byShape.get(shape)?.find((c) => c.parts.every((p, i) => p === '*' || p === path[i]));
      if (match && (!found || match.order < found.order)) found = match;
    }
    return found?.rule;
  };
}

function dotted(path: Path): string {
  return path.join('.');
}
