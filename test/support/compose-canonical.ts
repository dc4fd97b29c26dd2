// Our loaded compose model (loadCompose(...).model, which keeps the user's syntax) brought to the
// form `docker compose config --format json` prints, so the two can be compared whole. Two parts:
//   - SERVICE_FIELDS: for each service key we understand, its canonical form (short syntax made
//     long, lists of KEY=VALUE made mappings, relative paths absolute). A key not listed is
//     compared as it is, so an unsupported key fails the comparison instead of passing unseen;
//   - NORMALISATIONS: what Compose's `config` adds or drops besides, each named with its reason.
// The differential tests (test/unit/compose-v2-*.test.ts) compare the result with Compose's output.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseEnvFile, readServiceEnvFiles } from '../../tasks/lib/compose/dotenv';
import { isObject } from '../../tasks/lib/util/object';
import { listOrMapping, stringMapping } from '../../tasks/lib/compose/merge';
import { shortPorts } from '../../tasks/lib/compose/ports';
import { absoluteFrom, isRelativeHostPath } from '../../tasks/lib/compose/paths';
import { durationNanoseconds, sizeInBytes } from '../../tasks/lib/compose/units';
import { ReadablePaths } from '../../tasks/lib/readable-paths';

type Obj = Record<string, unknown>;

export interface CanonicalContext {
  /** The project directory (relative paths start there). */
  projectDir: string;
  /** The project name Compose derives (from the directory's name). */
  projectName: string;
  /** The environment the project was loaded with (bare `environment:` names come from it). */
  env: Record<string, string | undefined>;
}

type FieldCanon = (value: unknown, ctx: CanonicalContext, service: Obj) => unknown;

const text = (v: unknown) => (v === null || v === undefined ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v));
const keyValueMapping = (v: unknown): Obj => Object.fromEntries(Object.entries(listOrMapping(v, 'canonical')).map(([k, x]) => [k, text(x)]));
const asList = (v: unknown): unknown[] => (v === undefined || v === null ? [] : Array.isArray(v) ? v : [v]);

/** A command line as Compose splits a string (shell words: quotes group, a backslash escapes). */
export function shellWords(line: string): string[] {
  const words: string[] = [];
  let word: string | undefined;
  let quote: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote) {
      if (c === quote) quote = undefined;
      else if (c === '\\' && quote === '"' && i + 1 < line.length) word = (word ?? '') + line[++i];
      else word = (word ?? '') + c;
    } else if (c === '"' || c === "'") {
      quote = c;
      word ??= '';
    } else if (c === '\\' && i + 1 < line.length) word = (word ?? '') + line[++i];
    else if (/\s/.test(c)) {
      if (word !== undefined) words.push(word);
      word = undefined;
    } else word = (word ?? '') + c;
  }
  if (word !== undefined) words.push(word);
  return words;
}

const commandLine: FieldCanon = (v) => (typeof v === 'string' ? shellWords(v) : v);

/** `host:ip` and `host=ip` (a bracketed IPv6 unbracketed), and the mapping form, as Compose prints them: `host=ip`, sorted. */
const extraHosts: FieldCanon = (v) => {
  const entries = isObject(v) ? Object.entries(v).flatMap(([h, ip]) => asList(ip).map((i) => `${h}=${text(i)}`)) : asList(v).map(text);
  return entries
    .map((e) => {
      const eq = e.indexOf('=');
      const at = eq >= 0 ? eq : e.indexOf(':');
      return `${e.slice(0, at)}=${e.slice(at + 1).replace(/^\[(.*)\]$/, '$1')}`;
    })
    .sort();
};

const ports: FieldCanon = (v) =>
  asList(v).flatMap((p) => {
    if (isObject(p)) {
      const out: Obj = { mode: 'ingress', ...p, target: Number(p.target), protocol: p.protocol ?? 'tcp' };
      if (p.published !== undefined) out.published = text(p.published);
      return [out];
    }
    return shortPorts(text(p)).map((s) => ({ mode: 'ingress', ...(s.hostIp ? { host_ip: s.hostIp } : {}), target: Number(s.target), ...(s.published !== undefined ? { published: s.published } : {}), protocol: s.protocol }));
  });

const volumes: FieldCanon = (v, ctx) =>
  asList(v).map((entry) => {
    const abs = absoluteFrom(ctx.projectDir);
    if (isObject(entry)) {
      const out: Obj = { ...entry, target: path.posix.normalize(text(entry.target)).replace(/(.)\/$/, '$1') };
      if (out.type === 'bind' && typeof out.source === 'string') out.source = abs(out.source);
      // create_host_path: true is the default, which Compose leaves out
      if (isObject(out.bind) && out.bind.create_host_path === true) out.bind = Object.fromEntries(Object.entries(out.bind).filter(([k]) => k !== 'create_host_path'));
      if (isObject(out.tmpfs) && out.tmpfs.size !== undefined) out.tmpfs = { ...out.tmpfs, size: bytesText(out.tmpfs.size) };
      return out;
    }
    const parts = text(entry).split(':');
    parts[parts.length > 1 ? 1 : 0] = path.posix.normalize(parts[parts.length > 1 ? 1 : 0]).replace(/(.)\/$/, '$1');
    if (parts.length === 1) return { type: 'volume', target: parts[0], volume: {} };
    const [source, target, mode = ''] = parts;
    const flags = mode.split(',').filter(Boolean);
    const isPath = isRelativeHostPath(source) || source.startsWith('/') || source.startsWith('.');
    const out: Obj = { type: isPath ? 'bind' : 'volume', source: isPath ? abs(source) : source, target };
    if (flags.includes('ro')) out.read_only = true;
    if (isPath) out.bind = { ...(flags.includes('z') ? { selinux: 'z' } : flags.includes('Z') ? { selinux: 'Z' } : {}) };
    else out.volume = flags.includes('nocopy') ? { nocopy: true } : {};
    return out;
  });

// A file mode is printed in octal, as text.
const withOctalMode = (s: Obj): Obj => (typeof s.mode === 'number' ? { ...s, mode: `0${s.mode.toString(8)}` } : s);
const secrets: FieldCanon = (v) => asList(v).map((s) => (isObject(s) ? withOctalMode(s) : { source: text(s), target: `/run/secrets/${text(s)}` }));
const configs: FieldCanon = (v) => asList(v).map((s) => (isObject(s) ? withOctalMode(s) : { source: text(s) }));

const dependsOn: FieldCanon = (v) => {
  const out: Obj = {};
  if (Array.isArray(v)) for (const n of v) out[text(n)] = { condition: 'service_started', required: true };
  else if (isObject(v)) for (const [k, d] of Object.entries(v)) out[k] = { condition: 'service_started', required: true, ...(isObject(d) ? d : {}) };
  return out;
};

const serviceNetworks: FieldCanon = (v) => (Array.isArray(v) ? Object.fromEntries(v.map((n) => [text(n), null])) : v);

const build: FieldCanon = (v, ctx) => {
  const spec: Obj = typeof v === 'string' ? { context: v } : { ...(v as Obj) };
  const abs = absoluteFrom(ctx.projectDir);
  const local = (p: unknown) => (typeof p === 'string' && !p.includes('://') && !p.startsWith('service:') ? abs(p) : p);
  spec.context = local(spec.context ?? '.');
  if (spec.dockerfile_inline === undefined) spec.dockerfile ??= 'Dockerfile';
  if (spec.shm_size !== undefined) spec.shm_size = bytesText(spec.shm_size);
  if (spec.labels !== undefined) spec.labels = keyValueMapping(spec.labels);
  // A bare arg takes its value from the environment, and is left out when it is not set there.
  if (spec.args !== undefined) spec.args = stringMapping(spec.args, 'canonical', ctx.env);
  if (spec.additional_contexts !== undefined) spec.additional_contexts = Object.fromEntries(Object.entries(keyValueMapping(spec.additional_contexts)).map(([k, p]) => [k, local(p)]));
  if (spec.extra_hosts !== undefined) spec.extra_hosts = extraHosts(spec.extra_hosts, ctx, {});
  if (spec.secrets !== undefined) spec.secrets = asList(spec.secrets).map((x) => (isObject(x) ? x : { source: text(x) }));
  return spec;
};

/** A size in bytes, as text, as Compose prints sizes. */
const bytesText = (v: unknown): string => String(sizeInBytes(v) ?? text(v));

/** A duration as Go's time.Duration prints it (`1m30s`, `1.5s`, `24h0m0s`), which is how Compose prints durations. */
export function goDuration(v: unknown): string {
  const ns = durationNanoseconds(v);
  if (ns === undefined) return text(v);
  const fraction = (n: number, digits: number) => (n === 0 ? '' : `.${String(n).padStart(digits, '0').replace(/0+$/, '')}`);
  if (ns === 0) return '0s';
  if (ns < 1e3) return `${ns}ns`;
  if (ns < 1e6) return `${Math.floor(ns / 1e3)}${fraction(ns % 1e3, 3)}µs`;
  if (ns < 1e9) return `${Math.floor(ns / 1e6)}${fraction(ns % 1e6, 6)}ms`;
  const h = Math.floor(ns / 3600e9);
  const m = Math.floor((ns % 3600e9) / 60e9);
  const s = ns % 60e9;
  return `${h ? `${h}h` : ''}${h || m ? `${m}m` : ''}${Math.floor(s / 1e9)}${fraction(s % 1e9, 9)}s`;
}

/** The given keys of a mapping passed through `canon`, when present (and left out when `dropZero` and the result is a zero duration). */
function withCanonical(o: Obj, keys: string[], canon: (v: unknown) => unknown, dropZero = false): Obj {
  const out: Obj = { ...o };
  for (const k of keys) {
    if (out[k] === undefined) continue;
    out[k] = canon(out[k]);
    if (dropZero && out[k] === '0s') delete out[k];
  }
  return out;
}

const deploy: FieldCanon = (v) => {
  const d: Obj = { ...(v as Obj) };
  if (d.labels !== undefined) d.labels = keyValueMapping(d.labels);
  if (isObject(d.labels) && Object.keys(d.labels).length === 0) delete d.labels; // an empty mapping is left out (omitempty)
  if (isObject(d.resources)) {
    const resources: Obj = { ...d.resources };
    for (const kind of ['limits', 'reservations']) {
      if (!isObject(resources[kind])) continue;
      const r: Obj = { ...(resources[kind] as Obj) };
      if (r.cpus !== undefined) r.cpus = Number(r.cpus); // a number of CPUs, whichever way it was written
      if (r.memory !== undefined) r.memory = bytesText(r.memory);
      if (Array.isArray(r.devices)) r.devices = r.devices.map(deviceRequest);
      resources[kind] = r;
    }
    d.resources = resources;
  }
  // restart_policy's durations are printed even when zero; those of update_config and rollback_config are not.
  if (isObject(d.restart_policy)) d.restart_policy = withCanonical(d.restart_policy, ['delay', 'window'], goDuration);
  for (const k of ['update_config', 'rollback_config']) if (isObject(d[k])) d[k] = withCanonical(d[k] as Obj, ['delay', 'monitor'], goDuration, true);
  d.resources ??= {}; // Compose prints these two even when empty
  d.placement ??= {};
  return d;
};

const healthcheck: FieldCanon = (v) => {
  const h: Obj = withCanonical(v as Obj, ['interval', 'timeout', 'start_period', 'start_interval'], goDuration);
  if (typeof h.test === 'string') h.test = ['CMD-SHELL', h.test];
  return h;
};

/** A GPU or device request; `count: all` is -1. */
const deviceRequest = (r: unknown): unknown => (isObject(r) && r.count === 'all' ? { ...r, count: -1 } : r);

/** `/dev/a[:/dev/b[:rwm]]` as {source, target, permissions}. */
const devices: FieldCanon = (v) =>
  asList(v).map((d) => {
    if (isObject(d)) return d;
    const [source, target = source, permissions = 'rwm'] = text(d).split(':');
    return { source, target, permissions };
  });

/** blkio_config's device lists: Compose prints their fields capitalised (the Go struct has no JSON names), rates as text. */
const blkio: FieldCanon = (v) => {
  const b: Obj = { ...(v as Obj) };
  for (const k of ['weight_device', 'device_read_bps', 'device_write_bps', 'device_read_iops', 'device_write_iops']) {
    if (!Array.isArray(b[k])) continue;
    b[k] = (b[k] as Obj[]).map((d) => (k === 'weight_device' ? { Path: d.path, Weight: d.weight } : { Path: d.path, Rate: k.endsWith('bps') ? bytesText(d.rate) : text(d.rate) }));
  }
  return b;
};

/** The canonical form of each service key we understand (the coverage of the comparison). */
export const SERVICE_FIELDS: Record<string, FieldCanon> = {
  command: commandLine,
  entrypoint: commandLine,
  environment: (v) => v, // completed by the `env_file resolved` normalisation
  labels: keyValueMapping,
  annotations: keyValueMapping,
  sysctls: keyValueMapping,
  dns: asList,
  dns_opt: asList,
  dns_search: asList,
  tmpfs: asList,
  extra_hosts: extraHosts,
  expose: (v) => asList(v).map(text),
  ports,
  volumes,
  secrets,
  configs,
  depends_on: dependsOn,
  networks: serviceNetworks,
  build,
  deploy,
  healthcheck,
  // Empty options are left out (omitempty).
  logging: (v) => (isObject(v) && isObject(v.options) && Object.keys(v.options).length === 0 ? Object.fromEntries(Object.entries(v).filter(([k]) => k !== 'options')) : v),
  devices,
  blkio_config: blkio,
  gpus: (v) => (v === 'all' ? [{ count: -1 }] : asList(v).map(deviceRequest)),
  cpus: (v) => Number(v),
  ...Object.fromEntries(['mem_limit', 'mem_reservation', 'memswap_limit', 'mem_swappiness', 'shm_size'].map((k) => [k, bytesText])),
  stop_grace_period: goDuration,
  pull_policy: (v) => (v === 'if_not_present' ? 'missing' : v), // the older name of the same policy
  // A single limit of 0 is printed as {} (Compose leaves out its zero value).
  ulimits: (v) => (isObject(v) ? Object.fromEntries(Object.entries(v).map(([k, l]) => [k, l === 0 ? {} : l])) : v),
};

interface Normalisation {
  name: string;
  apply(model: Obj, ctx: CanonicalContext): void;
}

const isEmpty = (v: unknown) => v === false || v === 0 || v === '' || (Array.isArray(v) && v.length === 0) || (isObject(v) && Object.keys(v).length === 0);

const services = (model: Obj) => Object.entries(model.services as Record<string, Obj>);

/** What Compose's `config` adds or drops, besides the canonical form of each field. */
export const NORMALISATIONS: Normalisation[] = [
  {
    // Compose reads env_file into environment (env_file then disappears), and takes a bare name's value from the environment (null when unset).
    name: 'env_file resolved into environment',
    apply(model, ctx) {
      for (const [, s] of services(model)) {
        const files = asList(s.env_file)
          .map((f): Obj => (isObject(f) ? f : { path: f }))
          .map((spec): Obj & { file: string } => ({ ...spec, file: absoluteFrom(ctx.projectDir)(text(spec.path)) }))
          .filter((spec) => fs.existsSync(spec.file) || spec.required !== false);
        const env: Obj = readServiceEnvFiles(files, s.environment, ctx.env, 'canonical', new ReadablePaths(ctx.projectDir, ['/']));
        for (const [k, v] of Object.entries(listOrMapping(s.environment, 'canonical'))) env[k] = v === null || v === undefined ? (ctx.env[k] ?? null) : text(v);
        delete s.env_file;
        if (Object.keys(env).length > 0) s.environment = env;
        else delete s.environment;
      }
    },
  },
  {
    // Compose reads label_file into labels (the labels key winning; a file's `${…}` sees only the
    // labels read before it) and prints the files' absolute paths.
    name: 'label_file read into labels',
    apply(model, ctx) {
      for (const [, s] of services(model)) {
        if (s.label_file === undefined) continue;
        s.label_file = asList(s.label_file).map((f) => absoluteFrom(ctx.projectDir)(text(f)));
        let labels: Record<string, string> = {};
        for (const file of s.label_file as string[]) labels = parseEnvFile(fs.readFileSync(file, 'utf8'), { file, env: {}, earlier: labels });
        s.labels = { ...labels, ...((s.labels ?? {}) as Obj) };
      }
    },
  },
  {
    // links, volumes_from and network_mode/ipc/pid/uts/cgroup: service:x make Compose start x first: it
    // adds them to depends_on (with restart: true for links and shared namespaces, which break when x is recreated).
    name: 'implicit dependencies',
    apply(model) {
      for (const [, s] of services(model)) {
        const restart = { condition: 'service_started', restart: true, required: true };
        const implied: [string, Obj][] = [
          ...['network_mode', 'ipc', 'pid', 'uts', 'cgroup'].flatMap((k) => (typeof s[k] === 'string' && (s[k] as string).startsWith('service:') ? [[(s[k] as string).slice(8), restart] as [string, Obj]] : [])),
          ...asList(s.links).map((l): [string, Obj] => [text(l).split(':')[0], restart]),
          ...asList(s.volumes_from)
            .filter((f) => !text(f).startsWith('container:'))
            .map((f): [string, Obj] => [text(f).split(':')[0], { condition: 'service_started', required: true }]),
        ];
        if (implied.length === 0) continue;
        const deps = (s.depends_on ?? {}) as Obj;
        for (const [name, dep] of implied) deps[name] ??= dep;
        s.depends_on = deps;
      }
    },
  },
  {
    // Compose's JSON leaves out a service key whose value is false, 0, empty text or an empty list or
    // mapping (Go's omitempty), except the few it holds as pointers (init, attach, scale, command,
    // entrypoint), whose explicit false, 0 or [] it prints. (Empty networks then mean the default one.)
    name: 'zero values left out',
    apply(model) {
      // (and the mappings it holds as pointers to structs: printed even when empty)
      const kept = new Set(['init', 'attach', 'scale', 'command', 'entrypoint', 'logging', 'healthcheck', 'deploy', 'build', 'blkio_config', 'develop', 'credential_spec']);
      for (const [, s] of services(model)) for (const [k, v] of Object.entries(s)) if (isEmpty(v) && !kept.has(k)) delete s[k];
    },
  },
  {
    // Every service without networks (and without network_mode) is on the project's default network.
    name: 'default network',
    apply(model) {
      for (const [, s] of services(model)) if (s.networks === undefined && s.network_mode === undefined) s.networks = { default: null };
    },
  },
  {
    // Compose always prints command and entrypoint, null when not set.
    name: 'command and entrypoint null by default',
    apply(model) {
      for (const [, s] of services(model)) {
        s.command ??= null;
        s.entrypoint ??= null;
      }
    },
  },
  {
    // Service-level x-* keys are not part of Compose's JSON output.
    name: 'service extensions dropped',
    apply(model) {
      for (const [, s] of services(model)) for (const k of Object.keys(s)) if (k.startsWith('x-')) delete s[k];
    },
  },
  {
    // Compose's `config` prints only the networks, volumes, secrets and configs some service uses.
    name: 'unused top-level resources dropped',
    apply(model) {
      const used: Record<string, Set<string>> = { networks: new Set(), volumes: new Set(), secrets: new Set(), configs: new Set() };
      for (const [, s] of services(model)) {
        for (const n of Object.keys(isObject(s.networks) ? s.networks : {})) used.networks.add(n);
        for (const v of asList(s.volumes)) if (isObject(v) && v.type === 'volume' && typeof v.source === 'string') used.volumes.add(v.source);
        for (const x of asList(s.secrets)) used.secrets.add(text((x as Obj).source));
        for (const x of asList(s.configs)) used.configs.add(text((x as Obj).source));
        const build = s.build as Obj | undefined;
        for (const x of asList(build?.secrets)) used.secrets.add(isObject(x) ? text(x.source) : text(x));
      }
      if (used.networks.has('default')) model.networks = { default: {}, ...((model.networks ?? {}) as Obj) };
      for (const [section, names] of Object.entries(used)) {
        const entries = Object.entries((model[section] ?? {}) as Obj).filter(([n]) => names.has(n));
        if (entries.length > 0) model[section] = Object.fromEntries(entries);
        else delete model[section];
      }
    },
  },
  {
    // Compose names each resource <project>_<key> (external ones by their key), gives networks an
    // empty ipam, makes labels mappings and secret/config files absolute.
    name: 'top-level resource names and forms',
    apply(model, ctx) {
      for (const section of ['networks', 'volumes', 'secrets', 'configs']) {
        for (const [key, raw] of Object.entries((model[section] ?? {}) as Obj)) {
          const r: Obj = { ...(isObject(raw) ? raw : {}) };
          r.name ??= r.external === true ? key : `${ctx.projectName}_${key}`;
          if (section === 'networks') r.ipam ??= {};
          if (r.labels !== undefined) r.labels = keyValueMapping(r.labels);
          if (typeof r.file === 'string') r.file = absoluteFrom(ctx.projectDir)(r.file);
          (model[section] as Obj)[key] = r;
        }
      }
    },
  },
  {
    // The project's name is printed; the obsolete `version` is dropped (with a warning).
    name: 'project name, no version',
    apply(model, ctx) {
      model.name = ctx.projectName;
      delete model.version;
    },
  },
];

/**
 * Compose's `config` doubles every `$` of its output (docker/compose cmd/compose/config.go), so that
 * the printed file reads back to the same values: our values get the same treatment.
 */
const dollarsDoubled = (model: Obj): Obj => JSON.parse(JSON.stringify(model).replace(/\$/g, '$$$$')) as Obj;

/** Our model in Compose's canonical form. */
export function toComposeCanonical(model: Obj, ctx: CanonicalContext): Obj {
  const out = structuredClone(model);
  const svcs = (out.services ?? {}) as Record<string, Obj>;
  for (const s of Object.values(svcs)) {
    for (const [key, canon] of Object.entries(SERVICE_FIELDS)) if (s[key] !== undefined) s[key] = canon(s[key], ctx, s);
  }
  for (const n of NORMALISATIONS) n.apply(out, ctx);
  return dollarsDoubled(out);
}
