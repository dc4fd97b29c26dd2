// Compose → Kubernetes, our own conversion (no kompose binary), emitting current API versions only:
// apps/v1, batch/v1, v1, networking.k8s.io/v1, autoscaling/v2. The common `kompose.*` labels users
// already write are honoured. Anything that is not converted is listed as a warning, never dropped
// silently. Every object this emits validates against the Kubernetes OpenAPI schemas (tests check).
//
// Each service is built in named steps, as kompose builds a pod spec from its PodSpecOptions:
// serviceInput (keys checked, labels read) → workloadKind (workload.ts) → the POD_STEPS, each of
// which adds one concern to the container (container.ts) or the pod spec (pod.ts; volumes, configs
// and secrets: volumes.ts) → podTemplate → workloadObjects (workload.ts) → serviceAndIngress
// (service.ts). Compose values are read by compose/ (ports, units, words); compose-keys.ts says
// what happens to every other key.
import { stringMapping } from '../compose/merge';
import { longPorts } from '../compose/ports';
import { parseVolumeSpec } from '../compose/volume-spec';
import { InputError } from '../errors';
import { checkServiceKeys, komposeLabelNotConverted, labelNotConverted } from './compose-keys';
import type { ComposeProject } from './compose-project';
import { setCommand, setEnvFiles, setEnvironment, setPorts, setProbes, setPullPolicy, setResources, setSecurityContext, setTerminal, setWorkingDir } from './container';
import { Collected, Obj, PodBuild, PodStep, ServiceContext, ServiceInput, k8sName, validAnnotations } from './convert-context';
import { isObject } from '../util/object';
import { KubeObject, MANAGED_BY_LABEL, MANAGED_BY_VALUE, NAME_LABEL, PART_OF_LABEL } from './objects';
import { setFsGroup, setGracePeriod, setHostAliases, setHostname, setPullSecret, setServiceAccount, setVolumes } from './pod';
import { serviceAndIngress } from './service';
import { namedVolumeUsers, unusedVolumeWarnings, VolumeEntry } from './volumes';
import { replicaCount, workloadKind, workloadObjects } from './workload';

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

/**
 * The steps that build a service's pod, in order: each adds one concern to the container or the pod
 * spec. The order is that of the keys in the manifests.
 */
const POD_STEPS: PodStep[] = [
  setCommand,
  setEnvironment,
  setEnvFiles,
  setWorkingDir,
  setPorts,
  setResources,
  setProbes,
  setSecurityContext,
  setTerminal,
  setPullPolicy,
  setVolumes,
  setGracePeriod,
  setHostname,
  setHostAliases,
  setPullSecret,
  setServiceAccount,
  setFsGroup,
];

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

/** One service: its workload's kind, its pod (POD_STEPS) and workload, then its Service and Ingress. */
function convertService(s: ServiceInput, project: ComposeProject, out: Collected): void {
  const { raw, deploy, ctx } = s;
  const replicas = replicaCount(raw, deploy, ctx);
  const scaled = replicas > 1 || Object.keys(ctx.labels).some((k) => k.startsWith('kompose.hpa.'));
  const anonymousClaims = (raw.volumes as VolumeEntry[]).some((v) => v.type === 'volume' && !v.source) && ctx.labels['kompose.volume.type'] !== 'emptyDir';
  const kind = workloadKind(raw, deploy, ctx, anonymousClaims && scaled);
  const container: Obj = { name: ctx.k8s, image: s.image };
  const pod: PodBuild = {
    service: s,
    project,
    out,
    workload: { kind, severalPods: kind === 'DaemonSet' || (kind !== 'StatefulSet' && scaled), claimTemplates: [] },
    container,
    spec: { containers: [container] },
    ports: [],
    exposed: [],
  };
  for (const step of POD_STEPS) step(pod);
  const template = podTemplate(s, pod.spec, project);
  const metadata = (): KubeObject['metadata'] => ({ name: ctx.k8s, labels: { ...s.labels }, ...(Object.keys(s.annotations).length ? { annotations: { ...s.annotations } } : {}) });
  out.objects.push(...workloadObjects(ctx, { kind, replicas, raw, deploy, selector: s.selector, template, claimTemplates: pod.workload.claimTemplates, metadata }));
  out.objects.push(...serviceAndIngress(ctx, { service: s.name, kind, selector: s.selector, labels: s.labels, annotations: s.annotations, ports: pod.ports, exposed: pod.exposed }));
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

/** The pod template: the pod spec, labelled with the selector, annotated with the service's `annotations`. */
function podTemplate(s: ServiceInput, podSpec: Obj, project: ComposeProject): Obj {
  const raw = s.raw;
  const podAnnotations = stringMapping(raw.annotations, `service '${s.name}' annotations`, project.env);
  const template: Obj = { metadata: { labels: { ...s.selector } }, spec: podSpec };
  if (Object.keys(podAnnotations).length) (template.metadata as Obj).annotations = validAnnotations(podAnnotations, s.ctx.warn);
  return template;
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
