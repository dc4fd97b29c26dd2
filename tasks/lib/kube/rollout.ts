// Rollout status with kubectl's rules (k8s.io/kubectl/pkg/polymorphichelpers/rollout_status.go),
// judged from watch events (not sleep-polling), always bounded by a deadline; on failure, the
// reasons of each failing pod (ImagePullBackOff, CrashLoopBackOff, Unschedulable, …) and the last
// lines of its logs; on success, the check that running pods' imageIDs carry the lock's digests.
import { KubeClient, WatchEvent, selectorString } from './client';
import { KubeObject, describe, getPath, podSpecOf } from './objects';
import { isObject } from '../util/object';

export interface RolloutState {
  done: boolean;
  /** What is being waited for, or why it failed. */
  message: string;
  /** A terminal failure: waiting longer will not help. */
  failed?: boolean;
  /** The Deployment's progressDeadlineSeconds, when `failed` is the controller's ProgressDeadlineExceeded. */
  progressDeadlineSeconds?: number;
}

type Status = Record<string, unknown>;

function num(v: unknown): number {
  return typeof v === 'number' ? v : 0;
}

/** kubectl's DeploymentStatusViewer. */
export function deploymentState(d: KubeObject): RolloutState {
  const name = d.metadata.name;
  const status = (d.status ?? {}) as Status;
  const generation = num(d.metadata.generation);
  if (generation <= num(status.observedGeneration)) {
    const conditions = Array.isArray(status.conditions) ? (status.conditions as Status[]) : [];
    const progressing = conditions.find((c) => c.type === 'Progressing');
    if (progressing && progressing.reason === 'ProgressDeadlineExceeded') {
      const seconds = getPath(d, ['spec', 'progressDeadlineSeconds']);
      return {
        done: false,
        failed: true,
        message: `deployment "${name}" exceeded its progress deadline${progressing.message ? ` (${String(progressing.message)})` : ''}`,
        progressDeadlineSeconds: typeof seconds === 'number' ? seconds : 600,
      };
    }
    const replicas = getPath(d, ['spec', 'replicas']);
    const want = typeof replicas === 'number' ? replicas : undefined;
    if (want !== undefined && num(status.updatedReplicas) < want) {
      return { done: false, message: `Waiting for deployment "${name}" rollout to finish: ${num(status.updatedReplicas)} out of ${want} new replicas have been updated...` };
    }
    if (num(status.replicas) > num(status.updatedReplicas)) {
      return { done: false, message: `Waiting for deployment "${name}" rollout to finish: ${num(status.replicas) - num(status.updatedReplicas)} old replicas are pending termination...` };
    }
    if (num(status.availableReplicas) < num(status.updatedReplicas)) {
      return { done: false, message: `Waiting for deployment "${name}" rollout to finish: ${num(status.availableReplicas)} of ${num(status.updatedReplicas)} updated replicas are available...` };
    }
    return { done: true, message: `deployment "${name}" successfully rolled out` };
  }
  return { done: false, message: `Waiting for deployment spec update to be observed...` };
}

/** kubectl's StatefulSetStatusViewer. */
export function statefulSetState(s: KubeObject): RolloutState {
  const name = s.metadata.name;
  const status = (s.status ?? {}) as Status;
  const strategy = getPath(s, ['spec', 'updateStrategy', 'type']) ?? 'RollingUpdate';
  if (strategy !== 'RollingUpdate') return { done: true, message: `statefulset "${name}" uses the ${String(strategy)} strategy; rollout status is only available for RollingUpdate (not waited for)` };
  if (num(status.observedGeneration) === 0 || num(s.metadata.generation) > num(status.observedGeneration)) {
    return { done: false, message: 'Waiting for statefulset spec update to be observed...' };
  }
  const replicas = getPath(s, ['spec', 'replicas']);
  const want = typeof replicas === 'number' ? replicas : 1;
  if (num(status.readyReplicas) < want) {
    return { done: false, message: `Waiting for ${want - num(status.readyReplicas)} pods to be ready...` };
  }
  const partition = getPath(s, ['spec', 'updateStrategy', 'rollingUpdate', 'partition']);
  if (typeof partition === 'number' && partition > 0) {
    if (num(status.updatedReplicas) < want - partition) {
      return { done: false, message: `Waiting for partitioned roll out to finish: ${num(status.updatedReplicas)} out of ${want - partition} new pods have been updated...` };
    }
    return { done: true, message: `partitioned roll out complete: ${num(status.updatedReplicas)} new pods have been updated...` };
  }
  if (status.updateRevision !== status.currentRevision) {
    return { done: false, message: `waiting for statefulset rolling update to complete ${num(status.updatedReplicas)} pods at revision ${String(status.updateRevision)}...` };
  }
  return { done: true, message: `statefulset rolling update complete ${num(status.currentReplicas)} pods at revision ${String(status.currentRevision)}...` };
}

/** kubectl's DaemonSetStatusViewer. */
export function daemonSetState(d: KubeObject): RolloutState {
  const name = d.metadata.name;
  const status = (d.status ?? {}) as Status;
  const strategy = getPath(d, ['spec', 'updateStrategy', 'type']) ?? 'RollingUpdate';
  if (strategy !== 'RollingUpdate') return { done: true, message: `daemon set "${name}" uses the ${String(strategy)} strategy; rollout status is only available for RollingUpdate (not waited for)` };
  if (num(d.metadata.generation) <= num(status.observedGeneration)) {
    if (num(status.updatedNumberScheduled) < num(status.desiredNumberScheduled)) {
      return { done: false, message: `Waiting for daemon set "${name}" rollout to finish: ${num(status.updatedNumberScheduled)} out of ${num(status.desiredNumberScheduled)} new pods have been updated...` };
    }
    if (num(status.numberAvailable) < num(status.desiredNumberScheduled)) {
      return { done: false, message: `Waiting for daemon set "${name}" rollout to finish: ${num(status.numberAvailable)} of ${num(status.desiredNumberScheduled)} updated pods are available...` };
    }
    return { done: true, message: `daemon set "${name}" successfully rolled out` };
  }
  return { done: false, message: 'Waiting for daemon set spec update to be observed...' };
}

/** A Job is done when its Complete condition is True; failed when its Failed condition is. */
export function jobState(j: KubeObject): RolloutState {
  const name = j.metadata.name;
  const status = (j.status ?? {}) as Status;
  const conditions = Array.isArray(status.conditions) ? (status.conditions as Status[]) : [];
  const failed = conditions.find((c) => c.type === 'Failed' && c.status === 'True');
  if (failed) return { done: false, failed: true, message: `job "${name}" failed: ${String(failed.reason ?? '')}${failed.message ? ` (${String(failed.message)})` : ''}` };
  if (conditions.some((c) => c.type === 'Complete' && c.status === 'True')) return { done: true, message: `job "${name}" completed` };
  return { done: false, message: `Waiting for job "${name}" to complete: ${num(status.succeeded)} succeeded, ${num(status.active)} active, ${num(status.failed)} failed...` };
}

export function rolloutState(obj: KubeObject): RolloutState | undefined {
  switch (obj.kind) {
    case 'Deployment':
      return deploymentState(obj);
    case 'StatefulSet':
      return statefulSetState(obj);
    case 'DaemonSet':
      return daemonSetState(obj);
    case 'Job':
      return jobState(obj);
    default:
      return undefined;
  }
}

export interface WaitResult {
  object: KubeObject;
  ok: boolean;
  message: string;
  timedOut?: boolean;
  /** The last state seen (for a timeout: what it was still waiting for). */
  last?: KubeObject;
}

/**
 * Waits for one workload with a GET then a watch from its resourceVersion, re-listing when the
 * server ends the watch or answers 410 Gone, until done, failed, or the deadline.
 */
export async function waitForRollout(
  client: KubeClient,
  target: KubeObject,
  deadline: number,
  log: { info(m: string): void; debug(m: string): void },
): Promise<WaitResult> {
  const { apiVersion, kind } = target;
  const ns = target.metadata.namespace;
  const name = target.metadata.name as string;
  const resource = await client.resourceFor(apiVersion, kind);
  const collection = client.resourcePath(resource, ns);
  let lastMessage = '';
  let last: KubeObject | undefined;
  const report = (state: RolloutState) => {
    if (state.message !== lastMessage) {
      lastMessage = state.message;
      log.info(`  ${state.message}`);
    }
  };
  // The controller measures progress from the time its Progressing condition last moved, which a
  // failed rollout before ours may have left long ago: rolled back to a ReplicaSet that is already
  // up, a Deployment is reported past its deadline at once, then completes. So the verdict counts
  // only once our change has had the whole progressDeadlineSeconds; until then, wait and ask again.
  const since = Date.now();
  let verdictAt = 0;
  const judged = (state: RolloutState): RolloutState => {
    if (!state.failed || state.progressDeadlineSeconds === undefined) return state;
    verdictAt = since + state.progressDeadlineSeconds * 1000;
    return Date.now() >= verdictAt ? state : { done: false, message: `${state.message}; judged again at ${state.progressDeadlineSeconds} s after this change` };
  };
  while (true) {
    const remaining = deadline - Date.now();
    if (remaining <= 0) return { object: target, ok: false, timedOut: true, message: `${describe(target)}: timed out; ${lastMessage || 'no status yet'}`, last };
    const current = await client.get(apiVersion, kind, ns, name);
    if (!current) return { object: target, ok: false, message: `${describe(target)} disappeared while waiting for its rollout.` };
    last = current;
    let state = judged(rolloutState(current)!);
    report(state);
    if (state.done) return { object: target, ok: true, message: state.message, last };
    if (state.failed) return { object: target, ok: false, message: state.message, last };
    const rv = (current.metadata as { resourceVersion?: string }).resourceVersion;
    let outcome: RolloutState | undefined;
    const end = await client.watch(collection, { fieldSelector: `metadata.name=${name}`, resourceVersion: rv }, (event: WatchEvent) => {
      if (event.type === 'BOOKMARK') return false;
      if (event.type === 'DELETED') {
        outcome = { done: false, failed: true, message: `${describe(target)} was deleted while waiting for its rollout.` };
        return true;
      }
      last = event.object;
      const raw = rolloutState(event.object)!;
      state = judged(raw);
      report(state);
      if (state.done || state.failed) {
        outcome = state;
        return true;
      }
      return raw.failed === true; // a verdict put off: watch again, with a timer for when it counts

    }, Math.max(1, (verdictAt > Date.now() ? Math.min(deadline, verdictAt) : deadline) - Date.now()));
    log.debug(`kubernetes: watch of ${describe(target)} ended: ${end}`);
    if (outcome) return { object: target, ok: !!outcome.done, message: outcome.message, last };
    if (end === 'timeout' && Date.now() >= deadline) return { object: target, ok: false, timedOut: true, message: `${describe(target)}: timed out; ${lastMessage}`, last };
    // 'closed' or 'gone': GET again and watch from the new version.
  }
}

// ---- why pods fail ---------------------------------------------------------------------------

export interface PodProblem {
  pod: string;
  container?: string;
  reason: string;
  message?: string;
  restarts?: number;
  logs?: string;
}

const WAITING_FAILURES = new Set(['ImagePullBackOff', 'ErrImagePull', 'CrashLoopBackOff', 'CreateContainerConfigError', 'CreateContainerError', 'InvalidImageName', 'RunContainerError', 'ErrImageNeverPull', 'PreCreateHookError', 'PostStartHookError']);

/** Pods a workload selects (a Job's by its job-name label), without those being deleted. */
export async function workloadPods(client: KubeClient, workload: KubeObject): Promise<KubeObject[]> {
  const selector = selectorString(getPath(workload, ['spec', 'selector']) ?? (workload.kind === 'Job' ? { matchLabels: { 'batch.kubernetes.io/job-name': workload.metadata.name } } : undefined));
  if (!selector) return [];
  const { items } = await client.list('v1', 'Pod', workload.metadata.namespace, { labelSelector: selector });
  return items.filter((p) => !(p.metadata as { deletionTimestamp?: string }).deletionTimestamp);
}

/** Reasons each failing pod gives, with the last log lines of failing containers. */
export async function diagnosePods(client: KubeClient, workload: KubeObject, options: { tailLines: number; maxPods?: number }): Promise<PodProblem[]> {
  let pods: KubeObject[];
  try {
    pods = await workloadPods(client, workload);
  } catch (err) {
    return [{ pod: '?', reason: 'PodsNotListed', message: (err as Error).message }];
  }
  const problems: PodProblem[] = [];
  for (const pod of pods) {
    if (problems.length >= (options.maxPods ?? 5) * 2) break;
    const name = pod.metadata.name as string;
    const status = (pod.status ?? {}) as Status;
    const conditions = Array.isArray(status.conditions) ? (status.conditions as Status[]) : [];
    const scheduled = conditions.find((c) => c.type === 'PodScheduled');
    if (scheduled && scheduled.status === 'False') {
      problems.push({ pod: name, reason: String(scheduled.reason ?? 'Unschedulable'), message: scheduled.message ? String(scheduled.message) : undefined });
      continue;
    }
    const statuses = [...((status.initContainerStatuses as Status[]) ?? []), ...((status.containerStatuses as Status[]) ?? [])];
    for (const cs of statuses) {
      const state = (cs.state ?? {}) as Status;
      const lastState = (cs.lastState ?? {}) as Status;
      const waiting = state.waiting as Status | undefined;
      const terminated = state.terminated as Status | undefined;
      const lastTerminated = lastState.terminated as Status | undefined;
      const restarts = num(cs.restartCount);
      let problem: PodProblem | undefined;
      if (waiting && (WAITING_FAILURES.has(String(waiting.reason)) || restarts > 0)) {
        problem = { pod: name, container: String(cs.name), reason: String(waiting.reason), message: waiting.message ? String(waiting.message) : undefined, restarts };
      } else if (terminated && num(terminated.exitCode) !== 0) {
        problem = { pod: name, container: String(cs.name), reason: String(terminated.reason ?? 'Error'), message: `exit code ${num(terminated.exitCode)}${terminated.message ? `: ${String(terminated.message)}` : ''}`, restarts };
      } else if (cs.ready === false && state.running) {
        // Asked only once the rollout failed: a container still unready then is why.
        const ready = conditions.find((c) => c.type === 'Ready' && c.status === 'False');
        const why = ready?.reason ? `${String(ready.reason)}${ready.message ? `: ${String(ready.message)}` : ''}` : 'its readiness probe has not passed';
        problem = { pod: name, container: String(cs.name), reason: 'NotReady', message: `running, never Ready (${why})`, restarts };
      }
      if (!problem) continue;
      if (lastTerminated && !problem.message?.includes('exit code')) {
        problem.message = `${problem.message ? `${problem.message}; ` : ''}last exit code ${num(lastTerminated.exitCode)} (${String(lastTerminated.reason ?? 'Error')})`;
      }
      const pulled = problem.reason === 'ImagePullBackOff' || problem.reason === 'ErrImagePull' || problem.reason === 'InvalidImageName';
      if (!pulled) {
        const logs = await client.podLogs(pod.metadata.namespace as string, name, String(cs.name), { tailLines: options.tailLines, previous: restarts > 0 && !!waiting });
        const fallback = !logs && restarts > 0 ? await client.podLogs(pod.metadata.namespace as string, name, String(cs.name), { tailLines: options.tailLines }) : undefined;
        const text = (logs ?? fallback ?? '').trimEnd();
        if (text) problem.logs = text;
      }
      problems.push(problem);
    }
    if (!statuses.length && status.phase === 'Pending' && status.reason) problems.push({ pod: name, reason: String(status.reason), message: status.message ? String(status.message) : undefined });
  }
  return problems.slice(0, (options.maxPods ?? 5) * 2);
}

export function formatProblems(problems: PodProblem[]): string {
  return problems
    .map((p) => {
      const head = `    pod ${p.pod}${p.container ? `, container ${p.container}` : ''}: ${p.reason}${p.message ? ` — ${p.message}` : ''}${p.restarts ? ` (restarts: ${p.restarts})` : ''}`;
      if (!p.logs) return head;
      return `${head}\n      last log lines:\n${p.logs
        .split(/\r?\n/)
        .map((l) => `        | ${l}`)
        .join('\n')}`;
    })
    .join('\n');
}

// ---- imageID verification ----------------------------------------------------------------------

export interface ImageCheck {
  workload: string;
  pod: string;
  container: string;
  image: string;
  imageID: string;
  expected: string;
  ok: boolean | 'unknown';
}

/** The `sha256:…` digest in a container status imageID (`docker-pullable://repo@sha256:…`, `repo@sha256:…`). */
export function digestOfImageId(imageID: string): string | undefined {
  const at = imageID.lastIndexOf('@');
  if (at < 0) return undefined;
  const digest = imageID.slice(at + 1);
  return /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/.test(digest) ? digest : undefined;
}

/**
 * For each running pod of the workload whose containers run the pinned images, the imageID must
 * carry the digest pinned for that container. Pods of older revisions (other images) are skipped.
 */
export async function verifyImageIds(client: KubeClient, workload: KubeObject, expected: Map<string, string>): Promise<ImageCheck[]> {
  if (expected.size === 0) return [];
  const pods = await workloadPods(client, workload);
  const checks: ImageCheck[] = [];
  for (const pod of pods) {
    const spec = (pod.spec ?? {}) as { containers?: { name: string; image: string }[]; initContainers?: { name: string; image: string }[] };
    const containers = [...(spec.initContainers ?? []), ...(spec.containers ?? [])];
    const current = containers.every((c) => !expected.has(c.name) || expected.get(c.name) === digestOfImageId(c.image));
    if (!current) continue; // a pod of an older revision
    const status = (pod.status ?? {}) as Status;
    if (status.phase !== 'Running' && status.phase !== 'Succeeded') continue;
    const statuses = [...((status.initContainerStatuses as Status[]) ?? []), ...((status.containerStatuses as Status[]) ?? [])];
    for (const cs of statuses) {
      const digest = expected.get(String(cs.name));
      if (!digest) continue;
      const imageID = String(cs.imageID ?? '');
      const seen = digestOfImageId(imageID);
      checks.push({ workload: describe(workload), pod: pod.metadata.name as string, container: String(cs.name), image: String(cs.image ?? ''), imageID, expected: digest, ok: seen === undefined ? 'unknown' : seen === digest });
    }
  }
  return checks;
}

/** Container name → pinned digest, for a workload's pod template (empty for kinds without one). */
export function expectedDigests(workload: KubeObject): Map<string, string> {
  const map = new Map<string, string>();
  const spec = podSpecOf(workload);
  if (!spec) return map;
  for (const list of ['initContainers', 'containers']) {
    const containers = spec[list];
    if (!Array.isArray(containers)) continue;
    for (const c of containers) {
      if (!isObject(c) || typeof c.image !== 'string') continue;
      const digest = digestOfImageId(c.image);
      if (digest) map.set(String(c.name), digest);
    }
  }
  return map;
}
