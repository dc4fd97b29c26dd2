// A small kube-controller-manager: Deployments make ReplicaSets (pod-template-hash, revision
// annotations, reusing an old ReplicaSet on rollback, history pruned), ReplicaSets make pods,
// StatefulSets and DaemonSets roll their pods, Jobs run to Complete or Failed; status fields,
// observedGeneration and conditions (Available, Progressing with ProgressDeadlineExceeded) as the
// real controllers set them. One pass over the store every `stepMs`.
import { createHash, randomBytes } from 'node:crypto';
import { podReady, type PodSimulation } from './pods';
import { resourceOfKind, timestamp, type Obj } from './resources';
import { ownerRef, type ObjectStore, type Stored } from './store';

export interface ControllerSettings {
  stepMs: number;
  /** One "second" of progressDeadlineSeconds, in real milliseconds. */
  secondMs: number;
  /** Nodes for DaemonSets. */
  nodes: number;
}

const templateHash = (template: unknown) => createHash('sha256').update(JSON.stringify(template)).digest('hex').slice(0, 10).replace(/[^a-z0-9]/g, 'x');
const suffix = () => randomBytes(3).toString('hex').slice(0, 5);
const revisionOf = (rs: Stored) => Number(rs.obj.metadata.annotations?.['deployment.kubernetes.io/revision'] ?? 0);

export class Controller {
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly store: ObjectStore,
    private readonly pods: PodSimulation,
    private readonly settings: ControllerSettings,
    /** Read at each step: tests change `observeDelayMs` on the server. */
    private readonly knobs: { observeDelayMs: number },
  ) {
    this.timer = setInterval(() => this.step(), settings.stepMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private step(): void {
    try {
      for (const s of this.store.all()) {
        if (!this.store.holds(s)) continue;
        if (s.res.kind === 'Deployment') this.reconcileDeployment(s);
        else if (s.res.kind === 'StatefulSet') this.reconcileStatefulSet(s);
        else if (s.res.kind === 'DaemonSet') this.reconcileDaemonSet(s);
        else if (s.res.kind === 'Job') this.reconcileJob(s);
        else if (s.res.kind === 'ReplicaSet' && !(s.obj.metadata.ownerReferences ?? []).length) this.reconcileReplicaSet(s);
      }
    } catch (err) {
      process.stderr.write(`kube-api controller: ${(err as Error).stack}\n`);
    }
  }

  /** Whether the controller has seen the object's generation (`observeDelayMs` after it changed). */
  private observed(s: Stored): boolean {
    const gen = s.obj.metadata.generation;
    if (s.internal.seenGeneration !== gen) {
      s.internal.seenGeneration = gen;
      s.internal.seenAt = Date.now();
      s.internal.progressAt = Date.now();
    }
    return Date.now() - s.internal.seenAt >= this.knobs.observeDelayMs;
  }

  /** Changes an object in place and writes it (`status`: as the status subresource, no new generation). */
  private change(s: Stored, mutate: (obj: Obj) => void, how: 'update' | 'status' = 'update'): void {
    const prev = structuredClone(s.obj);
    mutate(s.obj);
    this.store.write(s, prev, how);
  }

  private reconcileReplicaSet(rs: Stored): void {
    const want = rs.obj.spec.replicas ?? 1;
    const pods = this.store.ownedBy(rs, 'Pod');
    for (let i = pods.length; i < want; i++) this.pods.make(rs, `${rs.obj.metadata.name}-${suffix()}`, rs.obj.spec.template, {});
    for (const extra of pods.slice(want)) this.store.remove(extra, 'Background');
    const live = this.store.ownedBy(rs, 'Pod');
    for (const p of live) this.pods.tick(p, 'Always');
    const ready = live.filter(podReady).length;
    this.store.setStatus(rs, { replicas: live.length, fullyLabeledReplicas: live.length, readyReplicas: ready, availableReplicas: ready, observedGeneration: rs.obj.metadata.generation });
  }

  /** The Deployment's ReplicaSet for its current template, made (or made the newest revision again, on rollback) as needed. */
  private currentReplicaSet(d: Stored, want: number): { current: Stored; createdNow: boolean } {
    const spec = d.obj.spec;
    const hash = templateHash(spec.template);
    const sets = this.store.ownedBy(d, 'ReplicaSet');
    const maxRevision = Math.max(0, ...sets.map(revisionOf));
    const found = sets.find((rs) => rs.obj.metadata.labels?.['pod-template-hash'] === hash);
    if (found) {
      // Rolling back to an older template: its ReplicaSet becomes the newest revision again.
      if (revisionOf(found) !== maxRevision) this.change(found, (o) => (o.metadata.annotations = { ...o.metadata.annotations, 'deployment.kubernetes.io/revision': String(maxRevision + 1) }));
      return { current: found, createdNow: false };
    }
    const template = structuredClone(spec.template);
    template.metadata = { ...(template.metadata ?? {}), labels: { ...(template.metadata?.labels ?? {}), 'pod-template-hash': hash } };
    const obj: Obj = {
      apiVersion: 'apps/v1',
      kind: 'ReplicaSet',
      metadata: {
        name: `${d.obj.metadata.name}-${hash}`,
        namespace: d.obj.metadata.namespace,
        labels: template.metadata.labels,
        annotations: { 'deployment.kubernetes.io/revision': String(maxRevision + 1), 'deployment.kubernetes.io/desired-replicas': String(want) },
        ownerReferences: [ownerRef(d)],
      },
      spec: { replicas: 0, selector: { matchLabels: { ...(spec.selector?.matchLabels ?? {}), 'pod-template-hash': hash } }, template },
    };
    const managers = new Map([['kube-controller-manager', { operation: 'Update' as const, apiVersion: 'apps/v1', time: timestamp(), fields: new Set<string>() }]]);
    return { current: this.store.write({ res: resourceOfKind('ReplicaSet'), obj, managers, internal: {} }, undefined), createdNow: true };
  }

  private reconcileDeployment(d: Stored): void {
    if (!this.observed(d)) return;
    const spec = d.obj.spec;
    const want = spec.replicas ?? 1;
    const { current, createdNow } = this.currentReplicaSet(d, want);
    const revision = current.obj.metadata.annotations['deployment.kubernetes.io/revision'];
    if (d.obj.metadata.annotations?.['deployment.kubernetes.io/revision'] !== revision) {
      this.change(d, (o) => (o.metadata.annotations = { ...(o.metadata.annotations ?? {}), 'deployment.kubernetes.io/revision': revision }), 'status');
    }
    // Scale: the new ReplicaSet up at once; the old ones down once the new pods are available.
    if (current.obj.spec.replicas !== want) this.change(current, (o) => (o.spec.replicas = want));
    const newAvailable = current.obj.status?.availableReplicas ?? 0;
    for (const old of this.store.ownedBy(d, 'ReplicaSet').filter((rs) => rs !== current)) {
      if (newAvailable >= want && old.obj.spec.replicas !== 0) this.change(old, (o) => (o.spec.replicas = 0));
    }
    for (const rs of this.store.ownedBy(d, 'ReplicaSet')) this.reconcileReplicaSet(rs);
    // Prune history beyond revisionHistoryLimit (old, scaled-down sets).
    const limit = spec.revisionHistoryLimit ?? 10;
    const idle = this.store
      .ownedBy(d, 'ReplicaSet')
      .filter((rs) => rs !== current && rs.obj.spec.replicas === 0 && (rs.obj.status?.replicas ?? 0) === 0)
      .sort((a, b) => revisionOf(a) - revisionOf(b));
    for (const rs of idle.slice(0, Math.max(0, idle.length - limit))) this.store.remove(rs, 'Background');
    this.store.setStatus(d, this.deploymentStatus(d, current, createdNow));
  }

  private deploymentStatus(d: Stored, current: Stored, createdNow: boolean): Obj {
    const spec = d.obj.spec;
    const want = spec.replicas ?? 1;
    const all = this.store.ownedBy(d, 'ReplicaSet');
    const sum = (f: (rs: Stored) => number) => all.reduce((n, rs) => n + f(rs), 0);
    const replicas = sum((rs) => rs.obj.status?.replicas ?? 0);
    const updated = current.obj.status?.replicas ?? 0;
    const ready = sum((rs) => rs.obj.status?.readyReplicas ?? 0);
    const available = sum((rs) => rs.obj.status?.availableReplicas ?? 0);
    const newAvailable = current.obj.status?.availableReplicas ?? 0;
    if (newAvailable > (d.internal.lastNewAvailable ?? -1) || createdNow) {
      d.internal.lastNewAvailable = newAvailable;
      d.internal.progressAt = Date.now();
    }
    const complete = updated === want && replicas === want && available >= want && newAvailable >= want;
    const deadlineMs = (spec.progressDeadlineSeconds ?? 600) * this.settings.secondMs;
    const oldProgressing = ((d.obj.status ?? {}).conditions ?? []).find((c: Obj) => c.type === 'Progressing');
    const maxUnavailable = Math.floor(want * 0.25);
    const rsName = current.obj.metadata.name;
    let progressing: Obj;
    if (complete) {
      progressing = { type: 'Progressing', status: 'True', reason: 'NewReplicaSetAvailable', message: `ReplicaSet "${rsName}" has successfully progressed.` };
    } else if (oldProgressing?.reason === 'ProgressDeadlineExceeded' && d.internal.deadlineGeneration === d.obj.metadata.generation) {
      progressing = oldProgressing;
    } else if (Date.now() - d.internal.progressAt > deadlineMs) {
      progressing = { type: 'Progressing', status: 'False', reason: 'ProgressDeadlineExceeded', message: `ReplicaSet "${rsName}" has timed out progressing.` };
      d.internal.deadlineGeneration = d.obj.metadata.generation;
    } else {
      progressing = { type: 'Progressing', status: 'True', reason: createdNow ? 'NewReplicaSetCreated' : 'ReplicaSetUpdated', message: `ReplicaSet "${rsName}" is progressing.` };
    }
    const availableCondition =
      available >= want - maxUnavailable
        ? { type: 'Available', status: 'True', reason: 'MinimumReplicasAvailable', message: 'Deployment has minimum availability.' }
        : { type: 'Available', status: 'False', reason: 'MinimumReplicasUnavailable', message: 'Deployment does not have minimum availability.' };
    const status: Obj = { observedGeneration: d.obj.metadata.generation, replicas, updatedReplicas: updated, readyReplicas: ready, availableReplicas: available, conditions: [availableCondition, progressing] };
    if (want - available > 0) status.unavailableReplicas = want - available;
    return status;
  }

  private reconcileStatefulSet(s: Stored): void {
    if (!this.observed(s)) return;
    const want = s.obj.spec.replicas ?? 1;
    const name = s.obj.metadata.name;
    const revision = `${name}-${templateHash(s.obj.spec.template)}`;
    const byOrdinal = new Map(this.store.ownedBy(s, 'Pod').map((p) => [Number(p.obj.metadata.name.slice(name.length + 1)), p]));
    for (let i = 0; i < want; i++) {
      if (!byOrdinal.has(i) && [...Array(i).keys()].every((j) => byOrdinal.get(j) && podReady(byOrdinal.get(j)!))) {
        this.pods.make(s, `${name}-${i}`, s.obj.spec.template, { 'controller-revision-hash': revision, 'statefulset.kubernetes.io/pod-name': `${name}-${i}` });
        break;
      }
    }
    for (const [i, p] of byOrdinal) if (i >= want) this.store.remove(p, 'Background');
    const live = this.store.ownedBy(s, 'Pod');
    for (const p of live) this.pods.tick(p, 'Always');
    // Roll in reverse ordinal order, one pod at a time, once the others are ready.
    const outdated = live.filter((p) => p.obj.metadata.labels['controller-revision-hash'] !== revision).sort((a, b) => b.obj.metadata.name.localeCompare(a.obj.metadata.name));
    if (outdated.length && live.filter((p) => p !== outdated[0]).every(podReady)) this.store.remove(outdated[0], 'Background');
    const after = this.store.ownedBy(s, 'Pod');
    const updated = after.filter((p) => p.obj.metadata.labels['controller-revision-hash'] === revision);
    const ready = after.filter(podReady).length;
    const done = updated.length === want && after.length === want;
    this.store.setStatus(s, {
      observedGeneration: s.obj.metadata.generation,
      replicas: after.length,
      readyReplicas: ready,
      availableReplicas: ready,
      currentReplicas: done ? updated.length : after.length - updated.length,
      updatedReplicas: updated.length,
      currentRevision: done ? revision : (s.obj.status?.currentRevision ?? revision),
      updateRevision: revision,
      collisionCount: 0,
    });
  }

  private reconcileDaemonSet(s: Stored): void {
    if (!this.observed(s)) return;
    const nodes = this.settings.nodes;
    const hash = templateHash(s.obj.spec.template);
    const pods = this.store.ownedBy(s, 'Pod');
    for (let n = 0; n < nodes; n++) {
      const node = `node-${n}`;
      if (!pods.some((p) => p.obj.spec.nodeName === node)) {
        this.pods.make(s, `${s.obj.metadata.name}-${suffix()}`, s.obj.spec.template, { 'controller-revision-hash': hash, 'pod-template-generation': String(s.obj.metadata.generation) }, node);
      }
    }
    const live = this.store.ownedBy(s, 'Pod');
    for (const p of live) this.pods.tick(p, 'Always');
    const outdated = live.filter((p) => p.obj.metadata.labels['controller-revision-hash'] !== hash);
    if (outdated.length && live.filter((p) => !outdated.includes(p)).every(podReady)) this.store.remove(outdated[0], 'Background');
    const after = this.store.ownedBy(s, 'Pod');
    const updated = after.filter((p) => p.obj.metadata.labels['controller-revision-hash'] === hash);
    const ready = after.filter(podReady).length;
    this.store.setStatus(s, {
      observedGeneration: s.obj.metadata.generation,
      desiredNumberScheduled: nodes,
      currentNumberScheduled: after.length,
      updatedNumberScheduled: updated.length,
      numberReady: ready,
      numberAvailable: updated.filter(podReady).length,
      numberMisscheduled: 0,
      ...(nodes - ready > 0 ? { numberUnavailable: nodes - ready } : {}),
    });
  }

  private reconcileJob(j: Stored): void {
    if (!this.observed(j)) return;
    const conditions: Obj[] = j.obj.status?.conditions ?? [];
    if (conditions.some((c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True')) return;
    const phaseCount = (pods: Stored[], phase: string) => pods.filter((p) => p.obj.status?.phase === phase).length;
    const pods = this.store.ownedBy(j, 'Pod');
    const restartPolicy = j.obj.spec.template?.spec?.restartPolicy ?? 'Never';
    const active = pods.length - phaseCount(pods, 'Succeeded') - phaseCount(pods, 'Failed');
    const completions = j.obj.spec.completions ?? 1;
    const backoffLimit = j.obj.spec.backoffLimit ?? 6;
    if (phaseCount(pods, 'Succeeded') < completions && active === 0 && phaseCount(pods, 'Failed') <= backoffLimit) {
      this.pods.make(j, `${j.obj.metadata.name}-${suffix()}`, j.obj.spec.template, { 'batch.kubernetes.io/job-name': j.obj.metadata.name });
    }
    for (const p of this.store.ownedBy(j, 'Pod')) this.pods.tick(p, restartPolicy);
    const after = this.store.ownedBy(j, 'Pod');
    const succeeded = phaseCount(after, 'Succeeded');
    const failed = phaseCount(after, 'Failed');
    const status: Obj = { startTime: j.obj.status?.startTime ?? timestamp(), active: after.length - succeeded - failed, succeeded, failed, ready: 0 };
    if (succeeded >= completions) status.conditions = [{ type: 'SuccessCriteriaMet', status: 'True' }, { type: 'Complete', status: 'True', lastTransitionTime: timestamp() }];
    else if (failed > backoffLimit) status.conditions = [{ type: 'FailureTarget', status: 'True' }, { type: 'Failed', status: 'True', reason: 'BackoffLimitExceeded', message: 'Job has reached the specified backoff limit' }];
    this.store.setStatus(j, status);
  }
}
