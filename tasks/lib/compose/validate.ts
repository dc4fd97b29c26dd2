// What Compose v2 refuses in a compose file, refused here too with a message that names the file,
// the line where known, the key, and what to write instead:
//   - checkFileKeys, on each file as read: keys the compose-spec does not define (at the top level
//     and in a service; `x-*` keys are free), environment/labels values that are not scalars, and
//     a deploy memory given as a number;
//   - checkServices, on the merged project: what compose-go's checkConsistency refuses (neither
//     image nor build, network_mode with networks, a healthcheck test without CMD/CMD-SHELL/NONE,
//     cpus/mem_limit/mem_reservation/pids_limit that contradict deploy.resources, scale and
//     deploy.replicas that differ, container_name with several replicas, one path mounted twice),
//     a dependency cycle, sizes and durations it cannot read, ports that are not ports, and
//     secrets/configs without a source.
import * as fs from 'node:fs';
import type { Document } from 'yaml';
import { FileError } from '../errors';
import { isObject } from '../util/object';
import { mountTarget } from './merge';
import { shortPorts } from './ports';
import { durationNanoseconds, sizeInBytes } from './units';

type Obj = Record<string, unknown>;

const TOP_KEYS = ['version', 'name', 'include', 'services', 'models', 'networks', 'volumes', 'secrets', 'configs', 'jobs'];
// The compose-spec's service (its container_spec and workload_spec), as compose-go v2.16 validates it.
const SERVICE_KEYS = [
  ...['attach', 'container_name', 'deploy', 'develop', 'extends', 'external_links', 'links', 'post_start', 'pre_start', 'pre_stop', 'profiles', 'provider', 'restart', 'scale'],
  ...['annotations', 'blkio_config', 'cap_add', 'cap_drop', 'cgroup', 'cgroup_parent', 'command', 'configs', 'cpu_count', 'cpu_percent', 'cpu_period', 'cpu_quota', 'cpu_rt_period', 'cpu_rt_runtime'],
  ...['cpu_shares', 'cpus', 'cpuset', 'credential_spec', 'device_cgroup_rules', 'devices', 'dns', 'dns_opt', 'dns_search', 'domainname', 'entrypoint', 'env_file', 'environment', 'extra_hosts', 'gpus'],
  ...['group_add', 'hostname', 'image', 'init', 'ipc', 'isolation', 'label_file', 'labels', 'logging', 'mac_address', 'mem_limit', 'mem_reservation', 'mem_swappiness', 'memswap_limit', 'models'],
  ...['network_mode', 'networks', 'oom_kill_disable', 'oom_score_adj', 'pid', 'pids_limit', 'platform', 'privileged', 'pull_policy', 'pull_refresh_after', 'read_only', 'runtime', 'secrets'],
  ...['security_opt', 'shm_size', 'stop_grace_period', 'stop_signal', 'storage_opt', 'sysctls', 'tmpfs', 'ulimits', 'use_api_socket', 'user', 'userns_mode', 'uts', 'volumes', 'volumes_from', 'working_dir'],
  ...['build', 'depends_on', 'expose', 'healthcheck', 'ports', 'stdin_open', 'tty'],
];

/** Refuses keys the compose-spec does not define, and non-scalar environment and label values, in one file as read. */
export function checkFileKeys(data: Obj, doc: Document.Parsed, file: string): void {
  const fail = (at: (string | number)[], message: string): never => {
    throw new FileError(`Compose file '${file}'${lineOf(doc, file, at)}: ${message}`);
  };
  for (const key of Object.keys(data)) {
    if (!TOP_KEYS.includes(key) && !key.startsWith('x-')) fail([key], `'${key}' is not a top-level key of a compose file${suggestion(key, TOP_KEYS)}. Use one of ${TOP_KEYS.join(', ')}, or an x-* extension.`);
  }
  for (const [name, service] of Object.entries(isObject(data.services) ? data.services : {})) {
    if (!isObject(service)) continue;
    for (const [key, value] of Object.entries(service)) {
      if (!SERVICE_KEYS.includes(key) && !key.startsWith('x-')) fail(['services', name, key], `service '${name}': '${key}' is not a service key Compose knows${suggestion(key, SERVICE_KEYS)}.`);
      const resources = key === 'deploy' && isObject(value) && isObject(value.resources) ? value.resources : {};
      for (const kind of ['limits', 'reservations']) {
        const memory = isObject(resources[kind]) ? (resources[kind] as Obj).memory : undefined;
        if (memory !== undefined && memory !== null && typeof memory !== 'string') fail(['services', name, 'deploy'], `services.${name}.deploy.resources.${kind}.memory must be text such as "512m" or "1g" (Compose refuses a number here).`);
      }
      if ((key === 'environment' || key === 'labels' || key === 'annotations') && isObject(value)) {
        for (const [k, v] of Object.entries(value)) {
          if (typeof v === 'object' && v !== null) fail(['services', name, key, k], `services.${name}.${key}.${k} must be text, a number, a boolean or null, not ${Array.isArray(v) ? 'a list' : 'a mapping'}.`);
        }
      }
    }
  }
}

/** Refuses what Compose refuses in the merged, active services and the top-level resources. */
export function checkServices(services: Record<string, Obj>, model: Obj, files: string): void {
  for (const [name, s] of Object.entries(services)) {
    const fail = (message: string): never => {
      throw new FileError(`${files}: service '${name}': ${message}`);
    };
    if (s.image === undefined && s.build === undefined && s.provider === undefined) fail("it has neither an image nor a build context. Give it 'image:' or 'build:'.");
    if (s.network_mode !== undefined && s.networks !== undefined) fail("it has both 'network_mode' and 'networks', which Compose refuses together. Keep one.");
    const health = isObject(s.healthcheck) ? s.healthcheck : {};
    if (Array.isArray(health.test) && health.test.length > 0 && !['CMD', 'CMD-SHELL', 'NONE'].includes(String(health.test[0]))) {
      fail(`healthcheck.test must start with CMD, CMD-SHELL or NONE, not '${String(health.test[0])}'. Write [CMD, ${String(health.test[0])}, …], or a string for the shell.`);
    }
    checkUnits(s, fail);
    checkResources(s, fail);
    checkMounts(s, fail);
    for (const port of Array.isArray(s.ports) ? s.ports : []) checkPort(port, fail);
  }
  checkCycles(services, files);
  for (const section of ['secrets', 'configs']) {
    for (const [name, r] of Object.entries(isObject(model[section]) ? (model[section] as Obj) : {})) {
      const spec = isObject(r) ? r : {};
      const sources = section === 'secrets' ? ['file', 'environment'] : ['file', 'environment', 'content'];
      if (spec.external !== true && !sources.some((k) => spec[k] !== undefined)) {
        throw new FileError(`${files}: ${section.slice(0, -1)} '${name}' has none of ${sources.map((k) => `'${k}'`).join(', ')}. Say where its value comes from (or mark it external: true).`);
      }
    }
  }
}

/** The services a service starts after: depends_on, and what links, volumes_from and `service:` namespaces imply. */
export function serviceDependencies(s: Obj): string[] {
  const deps = Array.isArray(s.depends_on) ? s.depends_on.map(String) : Object.keys(isObject(s.depends_on) ? s.depends_on : {});
  for (const link of Array.isArray(s.links) ? s.links : []) deps.push(String(link).split(':')[0]);
  for (const from of Array.isArray(s.volumes_from) ? s.volumes_from : []) if (!String(from).startsWith('container:')) deps.push(String(from).split(':')[0]);
  for (const key of ['network_mode', 'ipc', 'pid', 'uts', 'cgroup']) if (typeof s[key] === 'string' && (s[key] as string).startsWith('service:')) deps.push((s[key] as string).slice('service:'.length));
  return deps;
}

/** Services cannot start after themselves. */
function checkCycles(services: Record<string, Obj>, files: string): void {
  const done = new Set<string>();
  const visit = (name: string, chain: string[]): void => {
    if (chain.includes(name)) {
      const cycle = [...chain.slice(chain.indexOf(name)), name];
      throw new FileError(`${files}: service '${name}' depends on itself: ${cycle.join(' → ')} (through depends_on, links, volumes_from or a service: namespace). Break the cycle.`);
    }
    if (done.has(name) || !services[name]) return;
    for (const dep of serviceDependencies(services[name])) visit(dep, [...chain, name]);
    done.add(name);
  };
  for (const name of Object.keys(services)) visit(name, []);
}

const SIZE_KEYS = ['mem_limit', 'mem_reservation', 'memswap_limit', 'mem_swappiness', 'shm_size'];
const DURATION_KEYS = ['stop_grace_period', 'healthcheck.interval', 'healthcheck.timeout', 'healthcheck.start_period', 'healthcheck.start_interval'];

function checkUnits(s: Obj, fail: (m: string) => never): void {
  const at = (dotted: string) => dotted.split('.').reduce<unknown>((node, k) => (isObject(node) ? node[k] : undefined), s);
  for (const key of [...SIZE_KEYS, 'build.shm_size', 'deploy.resources.limits.memory', 'deploy.resources.reservations.memory']) {
    const v = at(key);
    if (v !== undefined && v !== null && sizeInBytes(v) === undefined) fail(`${key} '${String(v)}' is not a size. Write bytes, or a number with a unit: 512m, 1.5g, 64kb.`);
  }
  for (const key of [...DURATION_KEYS, 'deploy.restart_policy.delay', 'deploy.restart_policy.window', 'deploy.update_config.delay', 'deploy.update_config.monitor', 'deploy.rollback_config.delay', 'deploy.rollback_config.monitor']) {
    const v = at(key);
    if (v !== undefined && v !== null && durationNanoseconds(v) === undefined) fail(`${key} '${String(v)}' is not a duration. Write one such as 30s, 1m30s, 500ms or 1h.`);
  }
}

/** The service-level limits and deploy.resources must agree where both are given, and scale with deploy.replicas. */
function checkResources(s: Obj, fail: (m: string) => never): void {
  const deploy = isObject(s.deploy) ? s.deploy : undefined;
  const resources = deploy && isObject(deploy.resources) ? deploy.resources : {};
  const limits = isObject(resources.limits) ? resources.limits : undefined;
  const reservations = isObject(resources.reservations) ? resources.reservations : undefined;
  const pairs: [string, unknown, Obj | undefined, string, (v: unknown) => number | undefined][] = [
    ['cpus', s.cpus, limits, 'cpus', (v) => (v === undefined ? 0 : Math.fround(Number(v)))],
    ['mem_limit', s.mem_limit, limits, 'memory', (v) => (v === undefined ? 0 : sizeInBytes(v))],
    ['mem_reservation', s.mem_reservation, reservations, 'memory', (v) => (v === undefined ? 0 : sizeInBytes(v))],
    ['pids_limit', s.pids_limit, limits, 'pids', (v) => (v === undefined ? 0 : Number(v))],
  ];
  for (const [key, own, block, field, value] of pairs) {
    if (!deploy || !block || own === undefined || value(own) === 0) continue;
    if (value(own) !== value(block[field])) {
      const kind = block === limits ? 'limits' : 'reservations';
      fail(`'${key}' and 'deploy.resources.${kind}.${field}' differ (${String(own)} and ${block[field] === undefined ? 'not set' : String(block[field])}); Compose refuses distinct values. Set one of them.`);
    }
  }
  const replicas = deploy?.replicas;
  if (s.scale !== undefined && replicas !== undefined && Number(s.scale) !== Number(replicas)) fail(`'scale' (${String(s.scale)}) and 'deploy.replicas' (${String(replicas)}) differ. Set one of them.`);
  const scale = Number(s.scale ?? replicas ?? 1);
  if (s.container_name !== undefined && scale > 1) fail(`container_name '${String(s.container_name)}' names one container, but the service has ${scale} replicas. Remove container_name, or run one replica.`);
}

/** A container path may be mounted once: by tmpfs or by volumes. */
function checkMounts(s: Obj, fail: (m: string) => never): void {
  const seen = new Map<string, string>();
  const tmpfs = typeof s.tmpfs === 'string' ? [s.tmpfs] : Array.isArray(s.tmpfs) ? s.tmpfs : [];
  tmpfs.forEach((t, i) => seen.set(String(t).split(':')[0], `tmpfs[${i}]`));
  (Array.isArray(s.volumes) ? s.volumes : []).forEach((v, i) => {
    const target = isObject(v) ? String(v.target) : mountTarget(v);
    const earlier = seen.get(target);
    if (earlier) fail(`'${target}' is mounted twice (${earlier} and volumes[${i}]). Mount it once.`);
    seen.set(target, `volumes[${i}]`);
  });
}

const PORT = /^\d{1,5}(-\d{1,5})?$/;

function checkPort(port: unknown, fail: (m: string) => never): void {
  if (isObject(port)) {
    if (port.target === undefined) fail(`a port in long syntax has no 'target'. Give the container port: {target: 80, published: "8080"}.`);
    return;
  }
  const text = String(port);
  const bad = shortPorts(text).some((p) => !PORT.test(p.target) || (p.published !== undefined && !PORT.test(p.published)));
  if (bad) fail(`port '${text}' is not [ip:][published:]target[/protocol] with port numbers (such as "8080:80" or "127.0.0.1:53:53/udp").`);
}

/** `, line N` of the node at `at` in the file, when the document has it. */
function lineOf(doc: Document.Parsed, file: string, at: (string | number)[]): string {
  let node: unknown = doc.contents;
  let offset: number | undefined;
  for (const key of at) {
    const pair = (node as { items?: { key?: { value?: unknown; range?: number[] }; value?: unknown }[] })?.items?.find((p) => p.key?.value === key);
    if (!pair) break;
    offset = pair.key?.range?.[0];
    node = pair.value;
  }
  if (offset === undefined) return '';
  try {
    return `, line ${fs.readFileSync(file, 'utf8').slice(0, offset).split('\n').length}`;
  } catch {
    return '';
  }
}

/** ` (did you mean 'environment'?)` for a key one or two edits away from a known one. */
function suggestion(key: string, known: string[]): string {
  const best = known.map((k) => [k, editDistance(key, k)] as const).sort((a, b) => a[1] - b[1])[0];
  return best && best[1] <= 2 ? ` (did you mean '${best[0]}'?)` : '';
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length];
}
