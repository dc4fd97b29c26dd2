// Kubernetes objects as plain data, and the facts about kinds the task relies on: where pod specs
// sit (for pinning and rollout), which kinds are workloads, and the order in which to apply them.
import { FileError } from '../errors';
import { isObject } from '../util/object';

export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  [key: string]: unknown;
}

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  [key: string]: unknown;
}

/** Label every object the task generates or applies carries. */
export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const MANAGED_BY_VALUE = 'container-outer-loop';
/** The label that names a compose service's pods (services select it). */
export const NAME_LABEL = 'app.kubernetes.io/name';
export const PART_OF_LABEL = 'app.kubernetes.io/part-of';
/** Canary variant of a pod: absent on stable pods, `canary` or `baseline` on the extra workloads. */
export const VARIANT_LABEL = 'container-outer-loop/variant';

/** Path from the object to its pod spec, by kind. Unknown kinds have none (they pass through). */
const POD_SPEC_PATHS: Record<string, string[]> = {
  Pod: ['spec'],
  PodTemplate: ['template', 'spec'],
  Deployment: ['spec', 'template', 'spec'],
  StatefulSet: ['spec', 'template', 'spec'],
  DaemonSet: ['spec', 'template', 'spec'],
  ReplicaSet: ['spec', 'template', 'spec'],
  ReplicationController: ['spec', 'template', 'spec'],
  Job: ['spec', 'template', 'spec'],
  CronJob: ['spec', 'jobTemplate', 'spec', 'template', 'spec'],
};

/** The container lists of a pod spec that carry images. */
export const CONTAINER_LISTS = ['initContainers', 'containers', 'ephemeralContainers'] as const;

export function podSpecPath(kind: string): string[] | undefined {
  return POD_SPEC_PATHS[kind];
}

/** The pod spec of a pod-bearing object (plain data), or undefined for other kinds or a missing spec. */
export function podSpecOf(obj: KubeObject): Record<string, unknown> | undefined {
  const specPath = podSpecPath(obj.kind);
  const spec = specPath && getPath(obj, specPath);
  return isObject(spec) ? spec : undefined;
}

/** The containers of a pod-bearing object's pod spec that name an image, init containers first; none for other kinds. */
export function templateContainers(obj: KubeObject): { name: string; image: string }[] {
  const spec = podSpecOf(obj);
  if (!spec) return [];
  return [spec.initContainers, spec.containers].flatMap((list) =>
    (Array.isArray(list) ? list : []).filter((c): c is { name: string; image: string } => isObject(c) && typeof c.name === 'string' && typeof c.image === 'string'),
  );
}

/** Kinds whose rollout the task waits for. */
export const ROLLOUT_KINDS = new Set(['Deployment', 'StatefulSet', 'DaemonSet', 'Job']);

// Apply order: what others refer to first (namespaces, accounts, config, storage), then services,
// then workloads, then what routes to them. Unknown kinds go after the known ones, in file order.
const APPLY_ORDER = [
  'Namespace',
  'CustomResourceDefinition',
  'PriorityClass',
  'ServiceAccount',
  'ClusterRole',
  'ClusterRoleBinding',
  'Role',
  'RoleBinding',
  'Secret',
  'ConfigMap',
  'StorageClass',
  'PersistentVolume',
  'PersistentVolumeClaim',
  'LimitRange',
  'ResourceQuota',
  'Service',
  'Pod',
  'ReplicaSet',
  'ReplicationController',
  'Deployment',
  'StatefulSet',
  'DaemonSet',
  'Job',
  'CronJob',
  'HorizontalPodAutoscaler',
  'PodDisruptionBudget',
  'Ingress',
  'NetworkPolicy',
];

export function applyRank(kind: string): number {
  const i = APPLY_ORDER.indexOf(kind);
  return i < 0 ? APPLY_ORDER.length : i;
}

/** A stable sort into apply order. */
export function sortForApply<T extends { object: KubeObject }>(items: T[]): T[] {
  return items
    .map((item, i) => ({ item, i }))
    .sort((a, b) => applyRank(a.item.object.kind) - applyRank(b.item.object.kind) || a.i - b.i)
    .map((x) => x.item);
}

export function describe(obj: { kind: string; metadata?: ObjectMeta }): string {
  const ns = obj.metadata?.namespace ? `${obj.metadata.namespace}/` : '';
  return `${obj.kind} ${ns}${obj.metadata?.name ?? '(no name)'}`;
}

/** The value at `path` in plain data, or undefined. */
export function getPath(value: unknown, path: readonly string[]): unknown {
  let current = value;
  for (const key of path) {
    if (!isObject(current)) return undefined;
    current = current[key];
  }
  return current;
}

/** Checks the shape every Kubernetes object must have; `where` names the file and document. */
export function asKubeObject(value: unknown, where: string): KubeObject {
  if (!isObject(value)) throw new FileError(`${where} is not a Kubernetes object (a mapping with apiVersion, kind and metadata).`);
  const { apiVersion, kind } = value;
  const metadata = value.metadata as Record<string, unknown> | undefined;
  if (typeof apiVersion !== 'string' || !apiVersion) throw new FileError(`${where} has no apiVersion.`);
  if (typeof kind !== 'string' || !kind) throw new FileError(`${where} has no kind.`);
  if (kind !== 'List' && (!isObject(metadata) || (typeof metadata.name !== 'string' && typeof metadata.generateName !== 'string'))) {
    throw new FileError(`${where} (${kind}) has no metadata.name.`);
  }
  if (kind !== 'List' && typeof metadata?.generateName === 'string' && typeof metadata.name !== 'string') {
    throw new FileError(`${where} (${kind}) uses metadata.generateName; server-side apply needs a fixed metadata.name.`);
  }
  return value as KubeObject;
}

/** `apps/v1` → { group: 'apps', version: 'v1' }; `v1` → { group: '', version: 'v1' }. */
export function splitApiVersion(apiVersion: string): { group: string; version: string } {
  const i = apiVersion.indexOf('/');
  return i < 0 ? { group: '', version: apiVersion } : { group: apiVersion.slice(0, i), version: apiVersion.slice(i + 1) };
}
