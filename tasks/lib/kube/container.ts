// The steps that build a converted service's container, one concern each: command, environment,
// env_file, working directory, ports, resources, probes, security, terminal, pull policy. Each one
// reads the service's compose keys and adds to `pod.container`; what it cannot convert it warns
// about. (The pod's own keys, volumes included: pod.ts.)
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ServiceEnvFile, readServiceEnvFiles } from '../compose/dotenv';
import { LongPort, exposedPorts } from '../compose/ports';
import { cpuQuantity, durationSeconds, memoryQuantity } from '../compose/units';
import { words } from '../compose/words';
import { InputError } from '../errors';
import { CONFIG_KEY, ENV_NAME, Obj, PodBuild } from './convert-context';
import { isObject } from '../util/object';
import { containerPorts, parsePorts } from './service';

/** `entrypoint` as the container's command, `command` as its args. */
export function setCommand({ container, service: { raw, ctx } }: PodBuild): void {
  if (raw.entrypoint !== undefined && raw.entrypoint !== null) container.command = words(raw.entrypoint, `${ctx.where} entrypoint`);
  if (raw.command !== undefined && raw.command !== null) container.args = words(raw.command, `${ctx.where} command`);
}

/** `environment` (a mapping, or a list of KEY=VALUE; a name without a value takes the pipeline's) as the container's env. */
export function setEnvironment({ container, project, service: { raw, ctx } }: PodBuild): void {
  const value = raw.environment;
  if (value === undefined || value === null) return;
  const env: Obj[] = [];
  const add = (name: string, v: string | undefined) => {
    if (!ENV_NAME.test(name)) {
      ctx.warn(`environment variable '${name}' is not converted (it is not a Kubernetes variable name: letters, digits, '_', '-' and '.', not starting with a digit; rename it).`);
      return;
    }
    if (v === undefined) {
      ctx.warn(`environment variable '${name}' is not converted (it has no value, and the pipeline does not set it; give it a value, or set a pipeline variable of that name).`);
      return;
    }
    env.push({ name, value: v });
  };
  if (Array.isArray(value)) {
    for (const item of value) {
      const text = String(item);
      const eq = text.indexOf('=');
      if (eq < 0) add(text, project.env[text]);
      else add(text.slice(0, eq), text.slice(eq + 1));
    }
  } else if (isObject(value)) {
    for (const [k, v] of Object.entries(value)) add(k, v === null || v === undefined ? project.env[k] : String(v));
  } else throw new InputError(`${ctx.where} environment must be a mapping or a list of KEY=VALUE.`);
  if (env.length) container.env = env;
}

/** `env_file` as a ConfigMap `<service>-env` the container reads with envFrom. */
export function setEnvFiles({ container, project, out, service }: PodBuild): void {
  const { raw, ctx } = service;
  if (raw.env_file === undefined || raw.env_file === null) return;
  const files: ServiceEnvFile[] = [];
  const named: string[] = [];
  for (const item of Array.isArray(raw.env_file) ? raw.env_file : [raw.env_file]) {
    const spec: Obj = isObject(item) ? item : { path: item };
    const file = path.resolve(project.projectDir, String(spec.path));
    named.push(String(spec.path));
    if (fs.existsSync(file)) files.push({ file, format: spec.format });
    else if (spec.required !== false) throw new InputError(`${ctx.where}: env_file '${String(spec.path)}' does not exist (relative to ${project.projectDir}).`);
  }
  const data: Record<string, string> = {};
  for (const [k, v] of Object.entries(readServiceEnvFiles(files, raw.environment, project.env, ctx.where, project.readable))) {
    if (!CONFIG_KEY.test(k) || !ENV_NAME.test(k)) ctx.warn(`variable '${k}' of env_file '${named.join("', '")}' is not converted (it is not a Kubernetes variable name: letters, digits, '_', '-' and '.', not starting with a digit; rename it).`);
    else data[k] = v;
  }
  if (!Object.keys(data).length) return;
  const name = `${ctx.k8s}-env`;
  out.configMaps.set(name, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, labels: service.labels }, data });
  container.envFrom = [{ configMapRef: { name } }];
}

export function setWorkingDir({ container, service: { raw } }: PodBuild): void {
  if (raw.working_dir !== undefined) container.workingDir = String(raw.working_dir);
}

/** `ports` and `expose` as the container's ports, each target port and protocol once; kept on the pod for the Service. */
export function setPorts(pod: PodBuild): void {
  const { raw, ctx } = pod.service;
  pod.ports = parsePorts(raw.ports as LongPort[], ctx.where, ctx.warn);
  pod.exposed = exposedPorts(raw.expose, ctx.where);
  const list = containerPorts(pod.ports, pod.exposed);
  if (list.length) pod.container.ports = list;
}

/** `deploy.resources` (limits and reservations; else `cpus`, `mem_limit`, `mem_reservation`) as the container's limits and requests. */
export function setResources({ container, service: { raw, deploy, ctx } }: PodBuild): void {
  const resources = isObject(deploy.resources) ? deploy.resources : {};
  const out: Obj = {};
  const part = (spec: unknown, legacy: { cpus?: unknown; memory?: unknown }, name: 'limits' | 'requests', composeName: string) => {
    const s = isObject(spec) ? spec : {};
    const r: Record<string, string> = {};
    const cpus = s.cpus ?? legacy.cpus;
    const memory = s.memory ?? legacy.memory;
    if (cpus !== undefined && cpus !== null) r.cpu = cpuQuantity(cpus, `${ctx.where} deploy.resources.${composeName}.cpus`);
    if (memory !== undefined && memory !== null) r.memory = memoryQuantity(memory, `${ctx.where} deploy.resources.${composeName}.memory`);
    if (Object.keys(r).length) out[name] = r;
  };
  part(resources.limits, { cpus: raw.cpus, memory: raw.mem_limit }, 'limits', 'limits');
  part(resources.reservations, { memory: raw.mem_reservation }, 'requests', 'reservations');
  if (Object.keys(out).length) container.resources = out;
}

/** `healthcheck` as the container's liveness and readiness probes (an exec probe each). */
export function setProbes({ container, service: { raw, ctx } }: PodBuild): void {
  const value = raw.healthcheck;
  if (!isObject(value) || value.disable === true) return;
  const test = value.test;
  let command: string[] | undefined;
  if (typeof test === 'string') command = ['/bin/sh', '-c', test];
  else if (Array.isArray(test) && test.length > 0) {
    const [first, ...rest] = test.map(String);
    if (first === 'NONE') return;
    if (first === 'CMD') command = rest;
    else if (first === 'CMD-SHELL') command = ['/bin/sh', '-c', rest.join(' ')];
    else throw new InputError(`${ctx.where}: healthcheck.test must start with CMD, CMD-SHELL or NONE, not '${first}'.`);
  }
  if (!command || command.length === 0) {
    ctx.warn("'healthcheck' is not converted (it has no test, and the image's HEALTHCHECK is not visible to Kubernetes; write the check in healthcheck.test).");
    return;
  }
  const seconds = (key: string, fallback: number) => (value[key] === undefined ? fallback : Math.max(1, Math.ceil(durationSeconds(value[key], `${ctx.where} healthcheck.${key}`))));
  const probe: Obj = {
    exec: { command },
    periodSeconds: seconds('interval', 30),
    timeoutSeconds: seconds('timeout', 30),
    failureThreshold: value.retries === undefined ? 3 : Math.max(1, Number(value.retries)),
  };
  if (value.start_period !== undefined) probe.initialDelaySeconds = Math.ceil(durationSeconds(value.start_period, `${ctx.where} healthcheck.start_period`));
  container.livenessProbe = probe;
  container.readinessProbe = structuredClone(probe);
}

/** `cap_add`, `cap_drop`, `privileged`, `read_only` and a numeric `user` as the container's securityContext. */
export function setSecurityContext({ container, service: { raw, ctx } }: PodBuild): void {
  const sc: Obj = {};
  const caps = (v: unknown) => (Array.isArray(v) ? v.map((c) => String(c).toUpperCase().replace(/^CAP_/, '')) : []);
  const add = caps(raw.cap_add);
  const drop = caps(raw.cap_drop);
  if (add.length || drop.length) {
    const c: Obj = {};
    if (add.length) c.add = add;
    if (drop.length) c.drop = drop;
    sc.capabilities = c;
  }
  if (raw.privileged === true) sc.privileged = true;
  if (raw.read_only === true) sc.readOnlyRootFilesystem = true;
  if (raw.user !== undefined && raw.user !== null) {
    const text = String(raw.user);
    const m = /^(\d+)(?::(\d+))?$/.exec(text);
    if (m) {
      sc.runAsUser = Number(m[1]);
      if (m[2] !== undefined) sc.runAsGroup = Number(m[2]);
    } else if (text === 'root' || text === 'root:root') sc.runAsUser = 0;
    else ctx.warn(`user '${text}' is not converted (Kubernetes takes a numeric user id, runAsUser; write the id, such as 1000 or 1000:1000).`);
  }
  if (Object.keys(sc).length) container.securityContext = sc;
}

/** `stdin_open` and `tty`. */
export function setTerminal({ container, service: { raw } }: PodBuild): void {
  if (raw.stdin_open === true) container.stdin = true;
  if (raw.tty === true) container.tty = true;
}

/** The `kompose.image-pull-policy` label, else `pull_policy`, as the container's imagePullPolicy. */
export function setPullPolicy({ container, service: { raw, ctx } }: PodBuild): void {
  const label = ctx.labels['kompose.image-pull-policy'];
  if (label) {
    if (['Always', 'IfNotPresent', 'Never'].includes(label)) {
      container.imagePullPolicy = label;
      return;
    }
    ctx.warn(`label kompose.image-pull-policy '${label}' is not converted (it must be Always, IfNotPresent or Never; change it).`);
  }
  const value = raw.pull_policy;
  if (value === undefined || value === null) return;
  const map: Record<string, string> = { always: 'Always', never: 'Never', missing: 'IfNotPresent', if_not_present: 'IfNotPresent' };
  const policy = map[String(value)];
  if (policy) container.imagePullPolicy = policy;
  else ctx.warn(`pull_policy '${String(value)}' is not converted (the kubelet has no such policy, and a digest-pinned image never changes; the default, IfNotPresent, applies).`);
}
