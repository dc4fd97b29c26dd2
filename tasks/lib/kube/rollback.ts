// Rollback and canary workloads.
//
// Rollback undoes a workload to the revision that ran before this deployment, as
// `kubectl rollout undo` does: for a Deployment, from the previous ReplicaSet's pod template
// (revision annotation `deployment.kubernetes.io/revision`, without its `pod-template-hash` label);
// for a StatefulSet or DaemonSet, from the template that was live before the apply. It is applied
// with the task's own field manager (forced), so the next deployment does not conflict with it.
//
// Canary: `<name>-canary` runs the new template and `<name>-baseline` the template running now,
// each at `canaryPercentage` of the Deployment's replicas, with the label
// container-outer-loop/variant=canary|baseline added to their selectors and pods. The pods keep
// every label of the stable pods, so the Services that select the stable pods send them a share of
// the traffic in proportion to their replicas.
import { OuterLoopError } from '../errors';
import { KubeClient, selectorString } from './client';
import { KubeObject, VARIANT_LABEL, describe, getPath } from './objects';
import { isObject } from '../util/object';

export const REVISION_ANNOTATION = 'deployment.kubernetes.io/revision';

export interface BeforeState {
  existed: boolean;
  revision?: string;
  template?: unknown;
  generation?: number;
  /** The object as it was (the trace annotations are kept from it while its content does not change). */
  live?: KubeObject;
}

export async function captureBefore(client: KubeClient, obj: KubeObject): Promise<BeforeState> {
  const live = await client.get(obj.apiVersion, obj.kind, obj.metadata.namespace, obj.metadata.name as string);
  if (!live) return { existed: false };
  return {
    existed: true,
    revision: live.metadata.annotations?.[REVISION_ANNOTATION],
    template: getPath(live, ['spec', 'template']),
    generation: (live.metadata as { generation?: number }).generation,
    live,
  };
}

export interface RollbackPlan {
  object?: KubeObject;
  /** Why nothing can be rolled back, when `object` is undefined. */
  reason?: string;
  /** "revision 3" */
  target?: string;
  /**
   * A StatefulSet's revision being rolled out (status.updateRevision) when the rollback is planned:
   * with the default OrderedReady policy the controller will not replace a pod of it that never
   * became Ready, so the rollback would hang (kubernetes/kubernetes#67250, "forced rollback").
   */
  failedRevision?: string;
}

/** The object to apply to undo `desired` to what ran before. */
export async function planRollback(client: KubeClient, desired: KubeObject, before: BeforeState): Promise<RollbackPlan> {
  if (!before.existed) return { reason: `${describe(desired)} was created by this deployment; there is no previous revision to roll back to` };
  const live = await client.get(desired.apiVersion, desired.kind, desired.metadata.namespace, desired.metadata.name as string);
  if (!live) return { reason: `${describe(desired)} no longer exists` };
  let template: unknown;
  let target: string;
  let failedRevision: string | undefined;
  if (desired.kind === 'Deployment') {
    const current = live.metadata.annotations?.[REVISION_ANNOTATION];
    if (before.revision !== undefined && current === before.revision) {
      return { reason: `${describe(desired)}: its pod template did not change in this deployment (still revision ${current}), so there is nothing to roll back` };
    }
    const uid = (live.metadata as { uid?: string }).uid;
    const { items } = await client.list('apps/v1', 'ReplicaSet', desired.metadata.namespace, { labelSelector: selectorString(getPath(live, ['spec', 'selector'])) });
    const owned = items.filter((rs) => {
      const owners = (rs.metadata as { ownerReferences?: { uid?: string; kind?: string }[] }).ownerReferences ?? [];
      return owners.some((o) => o.kind === 'Deployment' && (!uid || o.uid === uid));
    });
    const rev = (rs: KubeObject) => Number(rs.metadata.annotations?.[REVISION_ANNOTATION] ?? 0);
    const currentRev = Number(current ?? 0);
    const previous =
      owned.find((rs) => before.revision !== undefined && rs.metadata.annotations?.[REVISION_ANNOTATION] === before.revision) ??
      owned.filter((rs) => rev(rs) < currentRev).sort((a, b) => rev(b) - rev(a))[0];
    if (!previous) return { reason: `${describe(desired)}: no ReplicaSet of the previous revision was found (revisionHistoryLimit may be 0)` };
    template = structuredClone(getPath(previous, ['spec', 'template']));
    const labels = getPath(template, ['metadata', 'labels']);
    if (isObject(labels)) delete labels['pod-template-hash'];
    // Served templates carry `creationTimestamp: null`; a null in an applied configuration means "remove".
    const meta = getPath(template, ['metadata']);
    if (isObject(meta) && meta.creationTimestamp === null) delete meta.creationTimestamp;
    target = `revision ${rev(previous)}`;
  } else if (desired.kind === 'StatefulSet' || desired.kind === 'DaemonSet') {
    if (!before.template) return { reason: `${describe(desired)}: its previous template is unknown` };
    if (JSON.stringify(getPath(live, ['spec', 'template'])) === JSON.stringify(before.template)) {
      return { reason: `${describe(desired)}: its pod template did not change in this deployment, so there is nothing to roll back` };
    }
    template = structuredClone(before.template);
    target = before.generation !== undefined ? `generation ${before.generation}` : 'the previous template';
    const updating = getPath(live, ['status', 'updateRevision']);
    if (desired.kind === 'StatefulSet' && typeof updating === 'string' && updating !== getPath(live, ['status', 'currentRevision'])) failedRevision = updating;
  } else {
    return { reason: `${describe(desired)} cannot be rolled back (only Deployments, StatefulSets and DaemonSets can)` };
  }
  const object = structuredClone(desired);
  (object.spec as Record<string, unknown>).template = template;
  return { object, target, failedRevision };
}

/** Deletes the StatefulSet's pods of `revision`, as the Kubernetes docs say to after reverting a broken template; returns their names. */
export async function deletePodsOfRevision(client: KubeClient, obj: KubeObject, revision: string): Promise<string[]> {
  const selector = selectorString(getPath(obj, ['spec', 'selector']));
  const { items } = await client.list('v1', 'Pod', obj.metadata.namespace, { labelSelector: `${selector ? `${selector},` : ''}controller-revision-hash=${revision}` });
  const names = items.map((p) => p.metadata.name as string);
  for (const name of names) await client.delete('v1', 'Pod', obj.metadata.namespace, name);
  return names;
}

// ---- canary -------------------------------------------------------------------------------------

export function canaryReplicas(desired: KubeObject, percentage: number): number {
  const replicas = getPath(desired, ['spec', 'replicas']);
  const total = typeof replicas === 'number' ? replicas : 1;
  return Math.max(1, Math.ceil((total * percentage) / 100));
}

function withVariant(obj: KubeObject, variant: 'canary' | 'baseline', replicas: number, template: unknown, selector: unknown): KubeObject {
  const out: KubeObject = {
    apiVersion: obj.apiVersion,
    kind: obj.kind,
    metadata: {
      name: `${obj.metadata.name}-${variant}`,
      namespace: obj.metadata.namespace,
      labels: { ...(obj.metadata.labels ?? {}), [VARIANT_LABEL]: variant },
    },
    spec: {},
  };
  if (obj.metadata.annotations) out.metadata.annotations = { ...obj.metadata.annotations };
  const spec = structuredClone((obj.spec ?? {}) as Record<string, unknown>);
  spec.replicas = replicas;
  const sel = structuredClone(isObject(selector) ? selector : {}) as { matchLabels?: Record<string, string> };
  sel.matchLabels = { ...(sel.matchLabels ?? {}), [VARIANT_LABEL]: variant };
  spec.selector = sel;
  const tpl = structuredClone(isObject(template) ? template : {}) as { metadata?: { labels?: Record<string, string> } };
  tpl.metadata = { ...(tpl.metadata ?? {}), labels: { ...(tpl.metadata?.labels ?? {}), [VARIANT_LABEL]: variant } };
  delete tpl.metadata.labels!['pod-template-hash'];
  spec.template = tpl;
  out.spec = spec;
  return out;
}

/** The canary (new template) and, when the Deployment runs already, the baseline (current template). */
export async function canaryObjects(client: KubeClient, desired: KubeObject, percentage: number): Promise<{ canary: KubeObject; baseline?: KubeObject }> {
  const replicas = canaryReplicas(desired, percentage);
  const canary = withVariant(desired, 'canary', replicas, getPath(desired, ['spec', 'template']), getPath(desired, ['spec', 'selector']));
  const stable = await client.get(desired.apiVersion, desired.kind, desired.metadata.namespace, desired.metadata.name as string);
  if (!stable) return { canary };
  const baseline = withVariant(desired, 'baseline', replicas, getPath(stable, ['spec', 'template']), getPath(stable, ['spec', 'selector']));
  return { canary, baseline };
}

/** Deletes `<name>-canary` and `<name>-baseline` of each Deployment; returns what was deleted. */
export async function removeCanaries(client: KubeClient, deployments: KubeObject[]): Promise<string[]> {
  const removed: string[] = [];
  for (const desired of deployments) {
    for (const variant of ['canary', 'baseline']) {
      const name = `${desired.metadata.name}-${variant}`;
      const live = await client.get(desired.apiVersion, desired.kind, desired.metadata.namespace, name);
      if (!live) continue;
      if (live.metadata.labels?.[VARIANT_LABEL] !== variant) {
        throw new OuterLoopError(`${desired.kind} ${desired.metadata.namespace}/${name} exists but is not a ${variant} made by this task (no ${VARIANT_LABEL}=${variant} label); it was left alone.`);
      }
      if (await client.delete(desired.apiVersion, desired.kind, desired.metadata.namespace, name, 'Background')) removed.push(`${desired.kind} ${name}`);
    }
  }
  return removed;
}
