// What a Kubernetes namespace runs, for the drift report: every container of every pod, attributed to
// the workload that owns the pod (a ReplicaSet's Deployment, a Job's CronJob), with the digest its
// status reports (imageID) and its restarts.
//
// Telling KubernetesDeploy's own workloads apart: it applies with server-side apply under its
// fieldManager (default container-outer-loop), which the API server records in each object's
// managedFields. A workload without an Apply entry of that manager was created some other way
// (kubectl create, kubectl run, another tool); a pod that no workload owns was started by hand.
import { digestOfImageId } from '../kube/rollout';
import type { KubeClient } from '../kube/client';
import { isObject } from '../util/object';
import { KubeObject, getPath, templateContainers } from '../kube/objects';
import { parseReference, repositoryName } from '../reference';
import type { ExpectedImage, RunningContainer } from './drift';

/** The kinds whose objects own pods, as the drift report reads them. */
const OWNER_KINDS = [
  ['apps/v1', 'ReplicaSet'],
  ['apps/v1', 'Deployment'],
  ['apps/v1', 'StatefulSet'],
  ['apps/v1', 'DaemonSet'],
  ['batch/v1', 'Job'],
  ['batch/v1', 'CronJob'],
] as const;

type Obj = Record<string, unknown>;

/** Kinds whose pods finish and may be cleaned away (ttlSecondsAfterFinished, history limits), or not be scheduled yet. */
const RUN_TO_COMPLETION = new Set(['Job', 'CronJob']);

/** The images each rendered workload's containers must run (what the deployment pins), by workload name and container. */
export function expectedFromObjects(objects: KubeObject[]): ExpectedImage[] {
  return objects.flatMap((obj) =>
    templateContainers(obj).map((c) => {
      const ref = parseReference(c.image);
      return { service: obj.metadata.name as string, container: c.name, repository: repositoryName(ref), digest: ref.digest, ...(RUN_TO_COMPLETION.has(obj.kind) ? { optional: true } : {}) };
    }),
  );
}

function controllerOf(obj: KubeObject): { kind: string; uid: string; name: string } | undefined {
  const refs = (obj.metadata.ownerReferences as Obj[] | undefined) ?? [];
  const ref = refs.find((r) => r.controller === true);
  return ref ? { kind: String(ref.kind), uid: String(ref.uid), name: String(ref.name) } : undefined;
}

/** Whether `fieldManager` applied the object (server-side apply). */
export function appliedBy(obj: KubeObject, fieldManager: string): boolean {
  const entries = (obj.metadata.managedFields as Obj[] | undefined) ?? [];
  return entries.some((e) => e.manager === fieldManager && e.operation === 'Apply');
}

function containerState(status: Obj | undefined, podPhase: string, init: boolean): { state: string; down?: string } {
  if (!status) return { state: podPhase, down: podPhase === 'Succeeded' ? undefined : `its pod is ${podPhase} and the container has not started` };
  const state = (status.state ?? {}) as Obj;
  const waiting = state.waiting as Obj | undefined;
  const terminated = state.terminated as Obj | undefined;
  if (waiting) return { state: String(waiting.reason ?? 'Waiting'), down: `it is waiting (${String(waiting.reason ?? 'no reason given')}${waiting.message ? `: ${String(waiting.message)}` : ''})` };
  if (terminated) {
    const code = Number(terminated.exitCode ?? 0);
    const text = `terminated ${code}${terminated.reason ? ` (${String(terminated.reason)})` : ''}`;
    return code === 0 ? { state: text } : { state: text, down: `it ${text}` };
  }
  if (!init && status.ready === false) return { state: 'running, not Ready', down: 'it is running but not Ready' };
  return { state: 'running' };
}

/** Every container of every pod of the namespace, attributed to its workload. */
export async function readNamespaceForDrift(client: KubeClient, namespace: string, fieldManager: string): Promise<RunningContainer[]> {
  const owners = new Map<string, KubeObject>();
  for (const [apiVersion, kind] of OWNER_KINDS) {
    for (const o of (await client.list(apiVersion, kind, namespace)).items) owners.set(o.metadata.uid as string, { ...o, kind });
  }
  /** The top workload owning an object: a ReplicaSet's Deployment, a Job's CronJob. */
  const topOwner = (obj: KubeObject): KubeObject | undefined => {
    let current: KubeObject | undefined;
    for (let ref = controllerOf(obj), depth = 0; ref && depth < 5; ref = current && controllerOf(current), depth++) {
      const next = owners.get(ref.uid);
      if (!next) return current ?? { apiVersion: '', kind: ref.kind, metadata: { name: ref.name } };
      current = next;
    }
    return current;
  };
  const out: RunningContainer[] = [];
  for (const pod of (await client.list('v1', 'Pod', namespace)).items) {
    if (pod.metadata.deletionTimestamp) continue; // on its way out
    const podName = pod.metadata.name as string;
    const workload = topOwner(pod);
    const byHand = !workload
      ? appliedBy(pod, fieldManager)
        ? undefined
        : 'it is a bare pod that no workload owns (kubectl run?)'
      : !workload.metadata.managedFields
        ? `it is owned by ${workload.kind} ${String(workload.metadata.name)}, which KubernetesDeploy does not deploy`
        : appliedBy(workload, fieldManager)
          ? undefined
          : `${workload.kind} ${String(workload.metadata.name)} was not applied by KubernetesDeploy (no server-side apply by '${fieldManager}')`;
    const phase = String(getPath(pod, ['status', 'phase']) ?? 'Pending');
    const statuses = new Map<string, Obj>();
    for (const key of ['initContainerStatuses', 'containerStatuses']) {
      for (const s of (getPath(pod, ['status', key]) as Obj[] | undefined) ?? []) statuses.set(String(s.name), s);
    }
    const spec = (isObject(pod.spec) ? pod.spec : {}) as Obj; // list items carry no kind
    for (const list of ['initContainers', 'containers']) {
      for (const c of (spec[list] as Obj[] | undefined) ?? []) {
        const name = String(c.name);
        const status = statuses.get(name);
        let repository: string | undefined;
        try {
          repository = repositoryName(parseReference(String(c.image)));
        } catch {
          repository = undefined;
        }
        const { state, down } = containerState(status, phase, list === 'initContainers');
        out.push({
          service: workload ? String(workload.metadata.name) : podName,
          container: name,
          name: `${podName}/${name}`,
          repository,
          digest: status ? digestOfImageId(String(status.imageID ?? '')) : undefined,
          restarts: Number(status?.restartCount ?? 0),
          state,
          down: phase === 'Failed' ? `its pod failed${getPath(pod, ['status', 'reason']) ? ` (${String(getPath(pod, ['status', 'reason']))})` : ''}` : down,
          byHand,
        });
      }
    }
  }
  return out;
}
