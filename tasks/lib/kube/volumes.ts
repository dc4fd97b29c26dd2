// Compose volumes, configs and secrets as pod volumes: named and anonymous volumes become
// PersistentVolumeClaims (volumeClaimTemplates for a StatefulSet, so that each replica has its own,
// as each compose container has), `tmpfs` and `shm_size` Memory emptyDirs, `configs` ConfigMaps and
// `secrets` Secrets, each mounted where compose would mount it. What cannot be converted (bind
// mounts, volume drivers, other volume types) is warned about.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { stringMapping } from '../compose/merge';
import { memoryQuantity } from '../compose/units';
import { InputError } from '../errors';
import { NotConverted, VOLUME_KEYS, komposeLabelNotConverted, labelNotConverted, notConvertedMessage } from './compose-keys';
import type { ComposeProject } from './compose-project';
import { CONFIG_KEY, Claim, Obj, ServiceContext, WorkloadKind, k8sName, validAnnotations } from './convert-context';
import { isObject } from '../util/object';
import { KubeObject } from './objects';

const MAX_CONFIG_BYTES = 1024 * 1024;
const DEFAULT_VOLUME_SIZE = '100Mi';

/** A `volumes` entry in the long syntax. */
export type VolumeEntry = Obj & { type: string; source?: string; target: string };

export interface VolumeTargets {
  service: string;
  kind: WorkloadKind;
  /** Whether the workload runs pods that may be on different nodes and cannot have claims of their own (a DaemonSet, parallel Jobs, a Deployment of several replicas). */
  severalPods: boolean;
  volumes: Map<string, Obj>;
  mounts: Obj[];
  claims: Map<string, Claim>;
  claimTemplates: KubeObject[];
  labels: Record<string, string>;
  /** The services that mount each named volume. */
  volumeUsers: Map<string, Set<string>>;
}

/** The `kompose.*` labels of a top-level volume that the conversion reads. */
const VOLUME_KOMPOSE_LABELS = new Set(['kompose.volume.size', 'kompose.volume.storage-class-name']);

const OTHER_VOLUME_TYPES: Record<string, NotConverted> = {
  image: VOLUME_KEYS.image as NotConverted,
  npipe: { why: 'named pipes are a feature of Windows hosts', instead: 'remove it' },
  cluster: { why: 'cluster volumes are a Swarm feature', instead: 'use a named volume' },
};

/** The services that mount each named volume (their volumes in the long syntax): a volume several share is mounted differently. */
export function namedVolumeUsers(services: { name: string; raw: Obj }[]): Map<string, Set<string>> {
  const users = new Map<string, Set<string>>();
  for (const { name, raw } of services) {
    for (const v of raw.volumes as VolumeEntry[]) if (v.type === 'volume' && v.source) users.set(v.source, (users.get(v.source) ?? new Set()).add(name));
  }
  return users;
}

/** A top-level volume no service uses gets no claim: said in a warning, not dropped silently. */
export function unusedVolumeWarnings(project: ComposeProject, users: Map<string, Set<string>>): string[] {
  return Object.entries(project.volumes)
    .filter(([name, spec]) => !users.has(name) && !spec.external)
    .map(([name]) => `compose volume '${name}' is not used by any service; no claim was made.`);
}

/** A mount's container path: absolute, and a Linux path (the conversion makes Linux pods). */
function containerPath(target: unknown, ctx: ServiceContext): string {
  const text = String(target ?? '');
  if (/^[A-Za-z]:([\\/]|$)/.test(text) || text.startsWith('\\')) {
    throw new InputError(`${ctx.where}: the volume at ${text} has a Windows container path. This conversion makes Linux pods, whose container paths start with '/'; deploy Windows containers with manifests of your own (source: manifests).`);
  }
  if (!text.startsWith('/')) throw new InputError(`${ctx.where}: the volume at '${text}' needs an absolute container path, such as /data.`);
  return text;
}

/** A claim's name for an anonymous volume: the service and the mount's path (stable while the path is), hashed when too long or taken by a named volume. */
function anonymousClaimName(k8s: string, target: string, project: ComposeProject): string {
  const slug = target.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '') || 'root';
  const name = `${k8s}-${slug}`;
  const taken = Object.entries(project.volumes).some(([n, spec]) => (typeof spec.name === 'string' && spec.name ? spec.name : n).toLowerCase().replace(/[_.]/g, '-') === name);
  if (name.length <= 63 && !taken) return name;
  const hash = createHash('sha256').update(target).digest('hex').slice(0, 8);
  return `${name.slice(0, 54).replace(/-+$/, '')}-${hash}`;
}

/** The service-level `tmpfs` entries (`/path[:options]`): `size` becomes the emptyDir's sizeLimit; other options are warned about. */
function tmpfsMounts(value: unknown, ctx: ServiceContext): { target: string; sizeLimit?: string }[] {
  if (value === undefined || value === null) return [];
  return (Array.isArray(value) ? value : [value]).map((item) => {
    const text = String(item);
    const colon = text.indexOf(':');
    const target = containerPath(colon < 0 ? text : text.slice(0, colon), ctx);
    let sizeLimit: string | undefined;
    for (const option of colon < 0 ? [] : text.slice(colon + 1).split(',')) {
      if (option.startsWith('size=')) sizeLimit = memoryQuantity(option.slice(5), `${ctx.where} tmpfs '${text}' size`);
      else if (option) ctx.warn(`option '${option}' of tmpfs ${target} is not converted (a Memory emptyDir has the mode, owner and mount options the kubelet gives it; set ownership with kompose.security-context.fsgroup).`);
    }
    return { target, sizeLimit };
  });
}

/** `volume.subpath` (or kompose's `kompose.volume.subpath` label for all of them): a relative path inside the volume. */
function subPathOf(v: VolumeEntry, ctx: ServiceContext): string | undefined {
  const value = (isObject(v.volume) ? v.volume.subpath : undefined) ?? ctx.labels['kompose.volume.subpath'];
  if (value === undefined || value === '') return undefined;
  const text = String(value);
  if (text.startsWith('/') || text.split('/').includes('..')) throw new InputError(`${ctx.where}: the subpath '${text}' of the volume at ${String(v.target)} must be a relative path inside the volume, without '..'.`);
  return text;
}

export function convertVolumes(raw: Obj, ctx: ServiceContext, project: ComposeProject, t: VolumeTargets): void {
  let emptyDirs = 0;
  const volumeType = ctx.labels['kompose.volume.type'];
  if (volumeType && !['persistentVolumeClaim', 'emptyDir'].includes(volumeType)) {
    ctx.warn(`label kompose.volume.type '${volumeType}' is not converted (persistentVolumeClaim and emptyDir are); persistentVolumeClaim is used.`);
  }
  const mount = (name: string, mountPath: string, readOnly: boolean, subPath?: string) => {
    t.mounts.push({ name, mountPath, ...(readOnly ? { readOnly } : {}), ...(subPath ? { subPath } : {}) });
  };
  const addEmptyDir = (mountPath: string, memory: boolean, sizeLimit?: string, readOnly = false, subPath?: string) => {
    const name = `${memory ? 'tmpfs' : 'emptydir'}-${emptyDirs++}`;
    t.volumes.set(name, { name, emptyDir: { ...(memory ? { medium: 'Memory' } : {}), ...(sizeLimit ? { sizeLimit } : {}) } });
    mount(name, mountPath, readOnly, subPath);
  };
  const claimSpec = (volumeLabels: Record<string, string>): Obj => {
    const size = volumeLabels['kompose.volume.size'] ?? ctx.labels['kompose.volume.size'] ?? DEFAULT_VOLUME_SIZE;
    const storageClass = volumeLabels['kompose.volume.storage-class-name'] ?? ctx.labels['kompose.volume.storage-class-name'];
    return { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: size } }, ...(storageClass ? { storageClassName: storageClass } : {}) };
  };
  const claimObject = (name: string, spec: Obj, annotations: Record<string, string>): KubeObject => ({
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: { name, labels: { ...t.labels }, ...(Object.keys(annotations).length ? { annotations } : {}) },
    spec,
  });
  const template = (claim: KubeObject, mountPath: string, readOnly: boolean, subPath?: string) => {
    if (!t.claimTemplates.some((c) => c.metadata.name === claim.metadata.name)) t.claimTemplates.push(claim);
    mount(claim.metadata.name as string, mountPath, readOnly, subPath);
  };
  /** The claim of a top-level volume: its `kompose.*` labels size it, its other labels are its annotations. */
  const namedClaim = (volume: string, claimName: string, top: Obj): KubeObject => {
    const labels = stringMapping(top.labels, `volume '${volume}' labels`, project.env);
    const volumeWarn = (m: string) => ctx.warn(`volume '${volume}': ${m}`);
    const others: Record<string, string> = {};
    for (const [k, value] of Object.entries(labels)) {
      if (!k.startsWith('kompose.')) others[k] = value;
      else {
        const rule = komposeLabelNotConverted(k, VOLUME_KOMPOSE_LABELS);
        if (rule) volumeWarn(labelNotConverted(k, rule));
      }
    }
    return claimObject(claimName, claimSpec(labels), validAnnotations(others, volumeWarn));
  };
  const claimVolume = (claimName: string, mountPath: string, readOnly: boolean, subPath?: string) => {
    t.volumes.set(claimName, { name: claimName, persistentVolumeClaim: { claimName } });
    mount(claimName, mountPath, readOnly, subPath);
  };

  for (const { target, sizeLimit } of tmpfsMounts(raw.tmpfs, ctx)) addEmptyDir(target, true, sizeLimit);
  if (raw.shm_size !== undefined && raw.shm_size !== null) addEmptyDir('/dev/shm', true, memoryQuantity(raw.shm_size, `${ctx.where} shm_size`));

  for (const v of raw.volumes as VolumeEntry[]) {
    const target = containerPath(v.target, ctx);
    const readOnly = v.read_only === true || v.read_only === 'true';
    if (v.type === 'tmpfs') {
      const size = isObject(v.tmpfs) ? v.tmpfs.size : undefined;
      addEmptyDir(target, true, size === undefined ? undefined : memoryQuantity(size, `${ctx.where} the volume at ${target}: tmpfs.size`), readOnly);
      continue;
    }
    if (v.type === 'bind') {
      ctx.warn(`bind mount '${String(v.source)}:${target}' is not converted (the agent's files are not on the cluster's nodes; use configs, a ConfigMap or a named volume).`);
      continue;
    }
    if (v.type !== 'volume') {
      const rule = OTHER_VOLUME_TYPES[String(v.type)] ?? { why: `compose knows no volume type '${String(v.type)}'`, instead: 'use volume, tmpfs or bind' };
      ctx.warn(`the volume of type ${String(v.type)} at ${target} is not converted (${rule.why}; ${rule.instead}).`);
      continue;
    }
    const subPath = subPathOf(v, ctx);
    const volumeLabels = isObject(v.volume) ? stringMapping(v.volume.labels, `${ctx.where} the volume at ${target}: volume.labels`, project.env) : {};
    if (!v.source) {
      // An anonymous volume outlives container restarts and `docker compose up` (Compose reattaches it): a claim, never an emptyDir.
      if (volumeType === 'emptyDir') {
        addEmptyDir(target, false, undefined, readOnly, subPath);
        continue;
      }
      const claimName = anonymousClaimName(ctx.k8s, target, project);
      const claim = claimObject(claimName, claimSpec({}), validAnnotations(volumeLabels, ctx.warn));
      if (t.kind === 'StatefulSet') {
        template(claim, target, readOnly, subPath);
        continue;
      }
      if (t.severalPods) {
        ctx.warn(
          `the anonymous volume at ${target} becomes the claim '${claimName}', which all pods of the ${t.kind} share, where compose gives each container its own; ` +
            `a ReadWriteOnce claim is mounted on one node only (${t.kind === 'Deployment' ? 'remove kompose.controller.type: deployment to get a StatefulSet with a claim per replica' : 'use a ReadWriteMany storage class with kompose.volume.storage-class-name'}).`,
        );
      }
      t.claims.set(claimName, { claim, service: t.service });
      claimVolume(claimName, target, readOnly, subPath);
      continue;
    }
    const top = project.volumes[v.source];
    if (top === undefined) throw new InputError(`${ctx.where}: volume '${v.source}' is not declared under the top-level 'volumes:' key.`);
    if (Object.keys(volumeLabels).length) {
      ctx.warn(notConvertedMessage('volumes.volume.labels', { why: `a named volume takes its labels from its top-level entry`, instead: `move them to volumes: ${v.source}: labels` }, `the volume at ${target}`));
    }
    const claimName = k8sName(typeof top.name === 'string' && top.name ? top.name : v.source, 'Compose volume name');
    if (volumeType === 'emptyDir') {
      addEmptyDir(target, false, undefined, readOnly, subPath);
      continue;
    }
    if (top.driver || top.driver_opts) ctx.warn(`volume '${v.source}': driver and driver_opts are not converted (the cluster's storage class provides volumes; choose one with kompose.volume.storage-class-name).`);
    if (top.external) {
      // An external volume is a claim that already exists in the namespace.
      claimVolume(claimName, target, readOnly, subPath);
      continue;
    }
    const usedElsewhere = (t.volumeUsers.get(v.source)?.size ?? 0) > 1;
    if (t.kind === 'StatefulSet' && !usedElsewhere) {
      const claim = t.claimTemplates.find((c) => c.metadata.name === claimName) ?? namedClaim(v.source, claimName, top);
      template(claim, target, readOnly, subPath);
      continue;
    }
    const existing = t.claims.get(claimName);
    if (!existing) t.claims.set(claimName, { claim: namedClaim(v.source, claimName, top), service: t.service });
    else if (existing.service !== t.service && !t.volumes.has(claimName)) {
      ctx.warn(`volume '${v.source}' is shared with another service ('${existing.service}'): a ReadWriteOnce claim can only be mounted by pods on one node (use a ReadWriteMany storage class with kompose.volume.storage-class-name, or keep the pods on one node).`);
    }
    claimVolume(claimName, target, readOnly, subPath);
  }
}

export function convertFiles(
  kind: 'configs' | 'secrets',
  value: unknown,
  ctx: ServiceContext,
  project: ComposeProject,
  t: { volumes: Map<string, Obj>; mounts: Obj[]; store: Map<string, KubeObject>; labels: Record<string, string>; secretValues: string[] },
): void {
  if (value === undefined || value === null) return;
  if (!Array.isArray(value)) throw new InputError(`${ctx.where}: ${kind} must be a list.`);
  const top = kind === 'configs' ? project.configs : project.secrets;
  const noun = kind === 'configs' ? 'config' : 'secret';
  for (const item of value) {
    const spec: Obj = isObject(item) ? item : { source: item };
    const source = String(spec.source ?? '');
    if (!(source in top)) throw new InputError(`${ctx.where}: ${noun} '${source}' is not declared under the top-level '${kind}:' key.`);
    const def = top[source];
    const objName = k8sName(typeof def.name === 'string' && def.name ? def.name : source, `Compose ${noun} name`);
    let key = objName;
    if (!def.external) {
      let content: Buffer;
      if (def.file !== undefined) {
        const file = path.resolve(project.projectDir, String(def.file));
        if (!fs.existsSync(file)) throw new InputError(`${noun} '${source}': file '${String(def.file)}' does not exist (relative to ${project.projectDir}).`);
        const size = fs.statSync(file).size;
        if (size > MAX_CONFIG_BYTES) throw new InputError(`${noun} '${source}': file '${String(def.file)}' is ${size} bytes; Kubernetes stores at most 1 MiB.`);
        content = project.readable.read(file, `Compose ${kind}.${source}.file`);
        key = path.basename(file);
        if (!CONFIG_KEY.test(key)) key = objName;
      } else if (def.environment !== undefined) {
        const v = project.env[String(def.environment)];
        if (v === undefined) throw new InputError(`${noun} '${source}': variable '${String(def.environment)}' is not set.`);
        content = Buffer.from(v);
      } else if (def.content !== undefined) {
        content = Buffer.from(String(def.content));
      } else {
        throw new InputError(`${noun} '${source}' needs file, environment, content or external: true.`);
      }
      if (!t.store.has(objName)) {
        const meta = { name: objName, labels: { ...t.labels } };
        if (kind === 'secrets') {
          const b64 = content.toString('base64');
          t.secretValues.push(content.toString('utf8'), b64);
          t.store.set(objName, { apiVersion: 'v1', kind: 'Secret', metadata: meta, type: 'Opaque', data: { [key]: b64 } });
        } else {
          const text = content.toString('utf8');
          const binary = !Buffer.from(text, 'utf8').equals(content);
          t.store.set(objName, { apiVersion: 'v1', kind: 'ConfigMap', metadata: meta, ...(binary ? { binaryData: { [key]: content.toString('base64') } } : { data: { [key]: text } }) });
        }
      }
    } else {
      ctx.warn(`${noun} '${source}' is external: the ${kind === 'configs' ? 'ConfigMap' : 'Secret'} '${objName}' must already exist with a key '${objName}'.`);
    }
    const defaultTarget = kind === 'secrets' ? `/run/secrets/${source}` : `/${source}`;
    let target = spec.target === undefined ? defaultTarget : String(spec.target);
    if (!target.startsWith('/')) target = kind === 'secrets' ? `/run/secrets/${target}` : `/${target}`;
    const volumeName = `${noun}-${objName}`.slice(0, 63).replace(/-+$/, '');
    const itemSpec: Obj = { key, path: key };
    if (spec.mode !== undefined) {
      const mode = Number(spec.mode);
      if (Number.isInteger(mode) && mode >= 0 && mode <= 0o777) itemSpec.mode = mode;
      else ctx.warn(`mode ${String(spec.mode)} of ${noun} '${source}' is not converted (it is not a file mode; write one such as 0440).`);
    }
    const volume: Obj = kind === 'secrets' ? { name: volumeName, secret: { secretName: objName, items: [itemSpec] } } : { name: volumeName, configMap: { name: objName, items: [itemSpec] } };
    t.volumes.set(volumeName, volume);
    t.mounts.push({ name: volumeName, mountPath: target, subPath: key, readOnly: true });
  }
}
