// Compose → Kubernetes, our own conversion (no kompose binary), emitting current API versions only:
// apps/v1, batch/v1, v1, networking.k8s.io/v1, autoscaling/v2. The common `kompose.*` labels users
// already write are honoured. Anything that is not converted is listed as a warning, never dropped
// silently. Every object this emits validates against the Kubernetes OpenAPI schemas (tests check).
//
// Each service is built in named steps, as kompose builds a pod spec from its options:
// serviceInput (keys checked, labels read) → workloadKind → containerFor (`env_file` becomes a
// ConfigMap used with envFrom) → podSpecFor (volumes, configs and secrets: volumes.ts) →
// podTemplate → workloadObjects (workload.ts) → serviceAndIngress (service.ts). Compose values are
// read by compose/ (ports, units, words); compose-keys.ts says what happens to every other key.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { extraHostEntries } from '../compose/build';
import { ServiceEnvFile, readServiceEnvFiles } from '../compose/dotenv';
import { stringMapping } from '../compose/merge';
import { LongPort, exposedPorts, longPorts } from '../compose/ports';
import { cpuQuantity, durationSeconds, memoryQuantity } from '../compose/units';
import { parseVolumeSpec } from '../compose/volume-spec';
import { words } from '../compose/words';
import { InputError } from '../errors';
import { checkServiceKeys, komposeLabelNotConverted, labelNotConverted } from './compose-keys';
import { CONFIG_KEY, DNS_LABEL, ENV_NAME, Obj, ServiceContext, WorkloadKind, k8sName, validAnnotations } from './convert-context';
import type { ComposeProject } from './compose-project';
import { PortSpec, containerPorts, parsePorts, serviceAndIngress } from './service';
import { replicaCount, workloadKind, workloadObjects } from './workload';
import { Claim, VolumeEntry, convertFiles, convertVolumes, namedVolumeUsers, unusedVolumeWarnings } from './volumes';
import { KubeObject, MANAGED_BY_LABEL, MANAGED_BY_VALUE, NAME_LABEL, PART_OF_LABEL } from './objects';
import { isObject } from '../util/object';

export interface ConvertOptions {
  /** The image of a service that has only `build:` (from the lock, by service name). */
  imageFor?: (service: string) => string | undefined;
}

export interface Conversion {
  objects: KubeObject[];
  warnings: string[];
  /** Values placed in Secret objects: the caller registers them with setSecret. */
  secretValues: string[];
}

/** What the services' conversions add to: the objects, and those that several services may share by name. */
interface Collected {
  objects: KubeObject[];
  warnings: string[];
  secretValues: string[];
  claims: Map<string, Claim>;
  configMaps: Map<string, KubeObject>;
  secrets: Map<string, KubeObject>;
  /** The services that mount each named volume. */
  volumeUsers: Map<string, Set<string>>;
  /** The `app.kubernetes.io/part-of` value: the compose project's name. */
  partOf: string;
}

/** A compose service being converted: its keys in the long syntax, what it is called and labelled. */
interface ServiceInput {
  name: string;
  raw: Obj;
  deploy: Obj;
  image: string;
  ctx: ServiceContext;
  /** The compose labels and deploy.labels that are not `kompose.*`, as the objects' annotations. */
  annotations: Record<string, string>;
  selector: Record<string, string>;
  labels: Record<string, string>;
}

export function convertCompose(project: ComposeProject, options: ConvertOptions = {}): Conversion {
  // Every service in long syntax first: which services share a named volume decides how it is mounted.
  const services = project.services.map((svc) => ({ svc, ...inLongSyntax(svc.raw, `compose service '${svc.name}'`) }));
  const out: Collected = {
    objects: [],
    warnings: [],
    secretValues: [],
    claims: new Map(),
    configMaps: new Map(),
    secrets: new Map(),
    volumeUsers: namedVolumeUsers(services.map(({ svc, raw }) => ({ name: svc.name, raw }))),
    partOf: labelValue(project.name) ?? 'app',
  };
  for (const { svc, raw, warnings } of services) convertService(serviceInput(svc, raw, warnings, project, options, out), project, out);
  out.warnings.push(...unusedVolumeWarnings(project, out.volumeUsers));
  // Separate copies, so no two places share an object (YAML output would turn them into aliases).
  const all = [...out.configMaps.values(), ...out.secrets.values(), ...[...out.claims.values()].map((c) => c.claim), ...out.objects].map((o) => structuredClone(o));
  return { objects: all, warnings: out.warnings, secretValues: out.secretValues };
}

/** One service: its workload's kind, container, pod and workload, then its Service and Ingress. */
function convertService(s: ServiceInput, project: ComposeProject, out: Collected): void {
  const { raw, deploy, ctx } = s;
  const replicas = replicaCount(raw, deploy, ctx);
  const scaled = replicas > 1 || Object.keys(ctx.labels).some((k) => k.startsWith('kompose.hpa.'));
  const anonymousClaims = (raw.volumes as VolumeEntry[]).some((v) => v.type === 'volume' && !v.source) && ctx.labels['kompose.volume.type'] !== 'emptyDir';
  const kind = workloadKind(raw, deploy, ctx, anonymousClaims && scaled);
  const { container, ports, exposed } = containerFor(s, project, out);
  const claimTemplates: KubeObject[] = [];
  const podSpec = podSpecFor(s, container, { kind, severalPods: kind === 'DaemonSet' || (kind !== 'StatefulSet' && scaled), claimTemplates }, project, out);
  const template = podTemplate(s, podSpec, project);
  const metadata = (): KubeObject['metadata'] => ({ name: ctx.k8s, labels: { ...s.labels }, ...(Object.keys(s.annotations).length ? { annotations: { ...s.annotations } } : {}) });
  out.objects.push(...workloadObjects(ctx, { kind, replicas, raw, deploy, selector: s.selector, template, claimTemplates, metadata }));
  out.objects.push(...serviceAndIngress(ctx, { service: s.name, kind, selector: s.selector, labels: s.labels, annotations: s.annotations, ports, exposed }));
}

/** The service's context: its keys checked, its labels read (warnings go to `out`), its image found. */
function serviceInput(svc: ComposeProject['services'][number], raw: Obj, syntaxWarnings: string[], project: ComposeProject, options: ConvertOptions, out: Collected): ServiceInput {
  const where = `compose service '${svc.name}'`;
  const warn = (m: string) => out.warnings.push(`${where}: ${m}`);
  const k8s = k8sName(svc.name, `Compose service name`);
  checkServiceKeys(raw, warn);
  syntaxWarnings.forEach(warn);
  const deploy = isObject(raw.deploy) ? raw.deploy : {};
  const serviceLabels = stringMapping(raw.labels, `service '${svc.name}' labels`, project.env);
  const deployLabels = stringMapping(deploy.labels, `service '${svc.name}' deploy.labels`, project.env);
  const ctx: ServiceContext = { k8s, where, labels: komposeLabels(serviceLabels, deployLabels, warn), warn };
  const image = svc.image ?? options.imageFor?.(svc.name);
  if (!image) {
    throw new InputError(`${where} has no image: add 'image:' (the repository BuildAndTag pushed), or deploy with an image lock that has an image named '${svc.name}'.`);
  }
  const selector = { [NAME_LABEL]: k8s, [PART_OF_LABEL]: out.partOf };
  const annotations = { ...annotationsFrom(serviceLabels, ctx), ...annotationsFrom(deployLabels, ctx) };
  if (deploy.mode !== undefined && deploy.mode !== 'replicated' && deploy.mode !== 'global') warn(`deploy.mode '${String(deploy.mode)}' is not converted (only replicated and global have a Kubernetes workload; use restart: "no" for a Job).`);
  return { name: svc.name, raw, deploy, image, ctx, annotations, selector, labels: { ...selector, [MANAGED_BY_LABEL]: MANAGED_BY_VALUE } };
}

/** The container: command, environment (env_file as a ConfigMap), ports (returned for the Service too), resources, probes, security; its mounts come with the pod. */
function containerFor(s: ServiceInput, project: ComposeProject, out: Collected): { container: Obj; ports: PortSpec[]; exposed: PortSpec[] } {
  const { raw, ctx } = s;
  const container: Obj = { name: ctx.k8s, image: s.image };
  if (raw.entrypoint !== undefined && raw.entrypoint !== null) container.command = words(raw.entrypoint, `${ctx.where} entrypoint`);
  if (raw.command !== undefined && raw.command !== null) container.args = words(raw.command, `${ctx.where} command`);
  const env = environment(raw.environment, ctx, project.env);
  if (env.length) container.env = env;
  const envFiles = envFileData(raw.env_file, raw.environment, ctx, project);
  if (envFiles) {
    const cmName = `${ctx.k8s}-env`;
    out.configMaps.set(cmName, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: cmName, labels: s.labels }, data: envFiles });
    container.envFrom = [{ configMapRef: { name: cmName } }];
  }
  if (raw.working_dir !== undefined) container.workingDir = String(raw.working_dir);
  const ports = parsePorts(raw.ports as LongPort[], ctx.where, ctx.warn);
  const exposed: PortSpec[] = exposedPorts(raw.expose, ctx.where);
  const portList = containerPorts(ports, exposed);
  if (portList.length) container.ports = portList;
  const resources = resourcesFrom(raw, s.deploy, ctx);
  if (resources) container.resources = resources;
  const probes = healthcheck(raw.healthcheck, ctx);
  if (probes) {
    container.livenessProbe = probes;
    container.readinessProbe = structuredClone(probes);
  }
  const securityContext = containerSecurity(raw, ctx);
  if (securityContext) container.securityContext = securityContext;
  if (raw.stdin_open === true) container.stdin = true;
  if (raw.tty === true) container.tty = true;
  const pullPolicy = imagePullPolicy(raw.pull_policy, ctx.labels['kompose.image-pull-policy'], ctx);
  if (pullPolicy) container.imagePullPolicy = pullPolicy;
  return { container, ports, exposed };
}

/** The pod spec around the container: volumes, configs and secrets mounted (claims to `out` or to `claimTemplates`), grace period, hostname, host aliases, pull secret, service account, fsGroup. */
function podSpecFor(s: ServiceInput, container: Obj, w: { kind: WorkloadKind; severalPods: boolean; claimTemplates: KubeObject[] }, project: ComposeProject, out: Collected): Obj {
  const { raw, ctx } = s;
  const podSpec: Obj = { containers: [container] };
  const volumes = new Map<string, Obj>();
  const mounts: Obj[] = [];
  const labels = { [PART_OF_LABEL]: out.partOf, [MANAGED_BY_LABEL]: MANAGED_BY_VALUE };
  convertVolumes(raw, ctx, project, { service: s.name, kind: w.kind, severalPods: w.severalPods, volumes, mounts, claims: out.claims, claimTemplates: w.claimTemplates, labels, volumeUsers: out.volumeUsers });
  convertFiles('configs', raw.configs, ctx, project, { volumes, mounts, store: out.configMaps, labels, secretValues: out.secretValues });
  convertFiles('secrets', raw.secrets, ctx, project, { volumes, mounts, store: out.secrets, labels, secretValues: out.secretValues });
  if (mounts.length) container.volumeMounts = mounts;
  if (volumes.size) podSpec.volumes = [...volumes.values()];
  const grace = raw.stop_grace_period === undefined ? undefined : durationSeconds(raw.stop_grace_period, `${ctx.where} stop_grace_period`);
  if (grace !== undefined) podSpec.terminationGracePeriodSeconds = Math.ceil(grace);
  if (raw.hostname !== undefined) {
    const host = String(raw.hostname).toLowerCase();
    if (DNS_LABEL.test(host)) podSpec.hostname = host;
    else ctx.warn(`hostname '${raw.hostname}' is not converted (a pod hostname is a DNS label: lower-case letters, digits and '-'; change it).`);
  }
  const hostAliases = hostAliasesFrom(raw.extra_hosts, ctx);
  if (hostAliases.length) podSpec.hostAliases = hostAliases;
  if (ctx.labels['kompose.image-pull-secret']) podSpec.imagePullSecrets = [{ name: ctx.labels['kompose.image-pull-secret'] }];
  if (ctx.labels['kompose.serviceaccount-name']) podSpec.serviceAccountName = ctx.labels['kompose.serviceaccount-name'];
  if (ctx.labels['kompose.security-context.fsgroup'] !== undefined) {
    const g = Number(ctx.labels['kompose.security-context.fsgroup']);
    if (Number.isInteger(g) && g >= 0) podSpec.securityContext = { fsGroup: g };
    else ctx.warn(`label kompose.security-context.fsgroup '${ctx.labels['kompose.security-context.fsgroup']}' is not converted (it must be a numeric group id).`);
  }
  return podSpec;
}

/** The pod template: the pod spec, labelled with the selector, annotated with the service's `annotations`. */
function podTemplate(s: ServiceInput, podSpec: Obj, project: ComposeProject): Obj {
  const raw = s.raw;
  const podAnnotations = stringMapping(raw.annotations, `service '${s.name}' annotations`, project.env);
  const template: Obj = { metadata: { labels: { ...s.selector } }, spec: podSpec };
  if (Object.keys(podAnnotations).length) (template.metadata as Obj).annotations = validAnnotations(podAnnotations, s.ctx.warn);
  return template;
}

// ---- container pieces --------------------------------------------------------------------------

function environment(value: unknown, ctx: ServiceContext, env: Record<string, string | undefined>): Obj[] {
  if (value === undefined || value === null) return [];
  const out: Obj[] = [];
  const add = (name: string, v: string | undefined) => {
    if (!ENV_NAME.test(name)) {
      ctx.warn(`environment variable '${name}' is not converted (it is not a Kubernetes variable name: letters, digits, '_', '-' and '.', not starting with a digit; rename it).`);
      return;
    }
    if (v === undefined) {
      ctx.warn(`environment variable '${name}' is not converted (it has no value, and the pipeline does not set it; give it a value, or set a pipeline variable of that name).`);
      return;
    }
    out.push({ name, value: v });
  };
  if (Array.isArray(value)) {
    for (const item of value) {
      const text = String(item);
      const eq = text.indexOf('=');
      if (eq < 0) add(text, env[text]);
      else add(text.slice(0, eq), text.slice(eq + 1));
    }
  } else if (isObject(value)) {
    for (const [k, v] of Object.entries(value)) add(k, v === null || v === undefined ? env[k] : String(v));
  } else throw new InputError(`${ctx.where} environment must be a mapping or a list of KEY=VALUE.`);
  return out;
}

function envFileData(value: unknown, serviceEnvironment: unknown, ctx: ServiceContext, project: ComposeProject): Record<string, string> | undefined {
  if (value === undefined || value === null) return undefined;
  const files: ServiceEnvFile[] = [];
  const named: string[] = [];
  for (const item of Array.isArray(value) ? value : [value]) {
    const spec: Obj = isObject(item) ? item : { path: item };
    const file = path.resolve(project.projectDir, String(spec.path));
    named.push(String(spec.path));
    if (fs.existsSync(file)) files.push({ file, format: spec.format });
    else if (spec.required !== false) throw new InputError(`${ctx.where}: env_file '${String(spec.path)}' does not exist (relative to ${project.projectDir}).`);
  }
  const data: Record<string, string> = {};
  for (const [k, v] of Object.entries(readServiceEnvFiles(files, serviceEnvironment, project.env, ctx.where, project.readable))) {
    if (!CONFIG_KEY.test(k) || !ENV_NAME.test(k)) ctx.warn(`variable '${k}' of env_file '${named.join("', '")}' is not converted (it is not a Kubernetes variable name: letters, digits, '_', '-' and '.', not starting with a digit; rename it).`);
    else data[k] = v;
  }
  return Object.keys(data).length ? data : undefined;
}

function resourcesFrom(raw: Obj, deploy: Obj, ctx: ServiceContext): Obj | undefined {
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
  return Object.keys(out).length ? out : undefined;
}

function healthcheck(value: unknown, ctx: ServiceContext): Obj | undefined {
  if (!isObject(value) || value.disable === true) return undefined;
  const test = value.test;
  let command: string[] | undefined;
  if (typeof test === 'string') command = ['/bin/sh', '-c', test];
  else if (Array.isArray(test) && test.length > 0) {
    const [first, ...rest] = test.map(String);
    if (first === 'NONE') return undefined;
    if (first === 'CMD') command = rest;
    else if (first === 'CMD-SHELL') command = ['/bin/sh', '-c', rest.join(' ')];
    else throw new InputError(`${ctx.where}: healthcheck.test must start with CMD, CMD-SHELL or NONE, not '${first}'.`);
  }
  if (!command || command.length === 0) {
    ctx.warn("'healthcheck' is not converted (it has no test, and the image's HEALTHCHECK is not visible to Kubernetes; write the check in healthcheck.test).");
    return undefined;
  }
  const seconds = (key: string, fallback: number) => (value[key] === undefined ? fallback : Math.max(1, Math.ceil(durationSeconds(value[key], `${ctx.where} healthcheck.${key}`))));
  const probe: Obj = {
    exec: { command },
    periodSeconds: seconds('interval', 30),
    timeoutSeconds: seconds('timeout', 30),
    failureThreshold: value.retries === undefined ? 3 : Math.max(1, Number(value.retries)),
  };
  if (value.start_period !== undefined) probe.initialDelaySeconds = Math.ceil(durationSeconds(value.start_period, `${ctx.where} healthcheck.start_period`));
  return probe;
}

function containerSecurity(raw: Obj, ctx: ServiceContext): Obj | undefined {
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
  return Object.keys(sc).length ? sc : undefined;
}

function imagePullPolicy(value: unknown, label: string | undefined, ctx: ServiceContext): string | undefined {
  if (label) {
    if (['Always', 'IfNotPresent', 'Never'].includes(label)) return label;
    ctx.warn(`label kompose.image-pull-policy '${label}' is not converted (it must be Always, IfNotPresent or Never; change it).`);
  }
  if (value === undefined || value === null) return undefined;
  const map: Record<string, string> = { always: 'Always', never: 'Never', missing: 'IfNotPresent', if_not_present: 'IfNotPresent' };
  const policy = map[String(value)];
  if (!policy) ctx.warn(`pull_policy '${String(value)}' is not converted (the kubelet has no such policy, and a digest-pinned image never changes; the default, IfNotPresent, applies).`);
  return policy;
}

function annotationsFrom(labels: Record<string, string>, ctx: ServiceContext): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(labels)) if (!k.startsWith('kompose.')) out[k] = v;
  return validAnnotations(out, ctx.warn);
}

/**
 * The `kompose.*` labels of a service, from `labels` and `deploy.labels` (where Swarm users keep
 * theirs); `labels` wins when both set one. Each one the conversion does not read is warned about.
 */
function komposeLabels(serviceLabels: Record<string, string>, deployLabels: Record<string, string>, warn: (message: string) => void): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [from, labels] of [['deploy.labels', deployLabels], ['labels', serviceLabels]] as const) {
    for (const [k, v] of Object.entries(labels)) {
      if (!k.startsWith('kompose.')) continue;
      if (from === 'labels' && k in out && out[k] !== v) warn(`label '${k}' is set in labels ('${v}') and in deploy.labels ('${out[k]}'); the value in labels is used.`);
      out[k] = v;
    }
  }
  for (const k of Object.keys(out)) {
    const rule = komposeLabelNotConverted(k);
    if (rule) warn(labelNotConverted(k, rule));
  }
  return out;
}

/** `extra_hosts` (`host:ip`, `host=ip`, or a mapping of host to one or more addresses) as the pod's hostAliases, one per address. */
function hostAliasesFrom(value: unknown, ctx: ServiceContext): Obj[] {
  const entries = extraHostEntries(value, `${ctx.where}: extra_hosts`);
  const byAddress = new Map<string, string[]>();
  for (const [host, ip] of entries) {
    if (ip === 'host-gateway') {
      ctx.warn(`extra_hosts '${host}' (host-gateway) is not converted (host-gateway is the address of the Docker host, which pods do not have; use a Service, or the node's address in a manifest).`);
      continue;
    }
    byAddress.set(ip, [...(byAddress.get(ip) ?? []), host]);
  }
  return [...byAddress].map(([ip, hostnames]) => ({ ip, hostnames }));
}

function labelValue(text: string): string | undefined {
  const v = text.toLowerCase().replace(/[^a-z0-9._-]/g, '-').replace(/^[^a-z0-9]+|[^a-z0-9]+$/g, '').slice(0, 63).replace(/[^a-z0-9]+$/, '');
  return v || undefined;
}

/**
 * The service with `volumes` and `ports` in the long syntax (a list, maybe empty), read once for
 * both the key check and the conversion; with warnings about the short volume modes that have no
 * long form (Compose ignores them too).
 */
function inLongSyntax(raw: Obj, where: string): { raw: Obj; warnings: string[] } {
  if (raw.volumes !== undefined && raw.volumes !== null && !Array.isArray(raw.volumes)) throw new InputError(`${where}: volumes must be a list.`);
  const warnings: string[] = [];
  const volumes = ((raw.volumes ?? []) as unknown[]).map((v) => {
    if (isObject(v)) return { ...v, type: v.type ?? 'volume' };
    const { volume, ignoredModes } = parseVolumeSpec(String(v), where);
    for (const mode of ignoredModes) warnings.push(`mode '${mode}' of volume '${String(v)}' is not converted (Compose ignores it too; remove it).`);
    return volume;
  });
  return { raw: { ...raw, volumes, ports: longPorts(raw.ports, where) }, warnings };
}
