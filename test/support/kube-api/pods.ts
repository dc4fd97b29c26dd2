// Pods as the kubelet would run them: Pending for a few controller ticks, then their behaviour —
// running and ready, ImagePullBackOff, CrashLoopBackOff (with log lines), Unschedulable, never
// ready, or (under a Job) Succeeded or Failed. Pods labelled `col.test/behaviour` (never-ready,
// crash-loop, image-pull-backoff) and annotated `col.test/image-id` behave as the kwok stages of the
// real control plane make them.
import { createHash } from 'node:crypto';
import { resourceOfKind, timestamp, type Obj } from './resources';
import { ownerRef, type ObjectStore, type Stored } from './store';

export type PodBehaviour =
  | { kind: 'run' }
  | { kind: 'ImagePullBackOff' }
  | { kind: 'CrashLoopBackOff'; logs?: string[]; exitCode?: number }
  | { kind: 'Unschedulable'; message?: string }
  | { kind: 'NeverReady' };

/** The label the kwok stages of the real control plane read too (test/support/kwok-stages.yaml), so one manifest fails the same way on both. */
const LABEL_BEHAVIOURS: Record<string, PodBehaviour> = { 'never-ready': { kind: 'NeverReady' }, 'crash-loop': { kind: 'CrashLoopBackOff' }, 'image-pull-backoff': { kind: 'ImagePullBackOff' } };

/** The imageID a pod reports for `image` unless a test says otherwise: the image pinned by a digest of its name. */
export function defaultImageId(image: string): string {
  if (image.includes('@')) return image;
  const repo = image.replace(/:[^/:]+$/, '');
  return `${repo}@sha256:${createHash('sha256').update(image).digest('hex')}`;
}

export function podReady(p: Stored): boolean {
  return (p.obj.status?.conditions ?? []).some((c: Obj) => c.type === 'Ready' && c.status === 'True');
}

// Fresh objects each time: a status is stored as it is, and a test may change it in place.
const scheduled = () => ({ type: 'PodScheduled', status: 'True' });
const notReady = () => ({ type: 'Ready', status: 'False', reason: 'ContainersNotReady' });

export class PodSimulation {
  private readonly behaviours: { match: string | RegExp; behaviour: PodBehaviour }[] = [];

  constructor(
    private readonly store: ObjectStore,
    private readonly settings: { podStartTicks: number; nodes: number },
    /** Read at each tick: tests change `imageIdFor` on the server. */
    private readonly knobs: { imageIdFor: (image: string) => string },
  ) {}

  /** Pods with an image `match` accepts behave so (the latest rule first). */
  behave(match: string | RegExp, behaviour: PodBehaviour): void {
    this.behaviours.unshift({ match, behaviour });
  }

  private behaviourFor(images: string[], labels: Record<string, string> = {}): PodBehaviour {
    const labelled = LABEL_BEHAVIOURS[labels['col.test/behaviour']];
    if (labelled) return labelled;
    for (const b of this.behaviours) {
      if (images.some((img) => (typeof b.match === 'string' ? img.includes(b.match) : b.match.test(img)))) return b.behaviour;
    }
    return { kind: 'run' };
  }

  make(owner: Stored, name: string, template: Obj, extraLabels: Record<string, string>, node?: string): void {
    const spec = structuredClone(template.spec ?? {});
    if (node) spec.nodeName = node;
    const obj: Obj = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, namespace: owner.obj.metadata.namespace, labels: { ...(template.metadata?.labels ?? {}), ...extraLabels }, annotations: template.metadata?.annotations, ownerReferences: [ownerRef(owner)] },
      spec,
      status: { phase: 'Pending', conditions: [scheduled()] },
    };
    if (!obj.metadata.annotations) delete obj.metadata.annotations;
    this.store.write({ res: resourceOfKind('Pod'), obj, managers: new Map(), internal: { ticks: 0, restarts: 0 } }, undefined);
  }

  /** One kubelet step for a pod; `restartPolicy` other than Always (a Job's) lets it finish. */
  tick(p: Stored, restartPolicy: string): void {
    const { podStartTicks, nodes } = this.settings;
    p.internal.ticks += 1;
    if (p.obj.status?.phase === 'Succeeded' || p.obj.status?.phase === 'Failed') return;
    if (p.internal.ticks < podStartTicks) return;
    const containers: Obj[] = p.obj.spec.containers ?? [];
    const b = this.behaviourFor(
      containers.map((c) => c.image),
      p.obj.metadata.labels,
    );
    const imageIdOverride: string | undefined = p.obj.metadata.annotations?.['col.test/image-id'];
    const started = p.obj.metadata.creationTimestamp;
    const isJob = restartPolicy !== 'Always';
    const cs = (c: Obj, state: Obj, ready: boolean, extra: Obj = {}) => ({
      name: c.name,
      image: c.image,
      imageID: state.waiting && b.kind === 'ImagePullBackOff' ? '' : (imageIdOverride ?? this.knobs.imageIdFor(c.image)),
      containerID: state.waiting && b.kind === 'ImagePullBackOff' ? undefined : `containerd://${createHash('sha256').update(p.obj.metadata.uid + c.name).digest('hex')}`,
      ready,
      started: !!state.running,
      restartCount: p.internal.restarts,
      state,
      lastState: {},
      ...extra,
    });
    let status: Obj;
    if (b.kind === 'Unschedulable') {
      status = { phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: b.message ?? `0/${nodes} nodes are available: ${nodes} Insufficient cpu. preemption: 0/${nodes} nodes are available: ${nodes} No preemption victims found for incoming pod.` }] };
    } else if (b.kind === 'ImagePullBackOff') {
      const reason = p.internal.ticks < podStartTicks + 2 ? 'ErrImagePull' : 'ImagePullBackOff';
      status = {
        phase: 'Pending',
        conditions: [scheduled(), notReady()],
        containerStatuses: containers.map((c) => cs(c, { waiting: { reason, message: reason === 'ErrImagePull' ? `failed to pull and unpack image "${c.image}": not found` : `Back-off pulling image "${c.image}"` } }, false)),
      };
    } else if (b.kind === 'CrashLoopBackOff') {
      if (isJob) {
        status = {
          phase: 'Failed',
          conditions: [scheduled(), { type: 'Ready', status: 'False' }],
          containerStatuses: containers.map((c) => cs(c, { terminated: { exitCode: b.exitCode ?? 1, reason: 'Error', startedAt: started, finishedAt: timestamp() } }, false)),
        };
      } else {
        if (p.internal.restarts === 0 || p.internal.ticks % 5 === 0) p.internal.restarts += 1;
        status = {
          phase: 'Running',
          conditions: [scheduled(), notReady()],
          containerStatuses: containers.map((c) =>
            cs(c, { waiting: { reason: 'CrashLoopBackOff', message: `back-off 10s restarting failed container=${c.name} pod=${p.obj.metadata.name}` } }, false, {
              lastState: { terminated: { exitCode: b.exitCode ?? 1, reason: 'Error', startedAt: started, finishedAt: timestamp() } },
            }),
          ),
        };
      }
    } else if (b.kind === 'NeverReady') {
      status = { phase: 'Running', conditions: [scheduled(), notReady()], containerStatuses: containers.map((c) => cs(c, { running: { startedAt: started } }, false)) };
    } else if (isJob) {
      status = {
        phase: 'Succeeded',
        conditions: [scheduled(), { type: 'Ready', status: 'False', reason: 'PodCompleted' }],
        containerStatuses: containers.map((c) => cs(c, { terminated: { exitCode: 0, reason: 'Completed', startedAt: started, finishedAt: timestamp() } }, false)),
      };
    } else {
      status = {
        phase: 'Running',
        conditions: [scheduled(), { type: 'Initialized', status: 'True' }, { type: 'ContainersReady', status: 'True' }, { type: 'Ready', status: 'True' }],
        containerStatuses: containers.map((c) => cs(c, { running: { startedAt: started } }, true)),
      };
    }
    status.startTime = started;
    for (const c of status.containerStatuses ?? []) if (c.containerID === undefined) delete c.containerID;
    // restartCount moves every tick in a crash loop; keep the object stable otherwise.
    this.store.setStatus(p, status);
  }

  /** What `kubectl logs` shows for a container (`previous`: the last crashed run). */
  logs(p: Stored, container: string, previous: boolean): string {
    const c = (p.obj.spec.containers ?? []).find((x: Obj) => x.name === container);
    const b = this.behaviourFor(c ? [c.image] : []);
    if (b.kind === 'CrashLoopBackOff') return (b.logs ?? ['starting', 'fatal: could not start']).join('\n') + '\n';
    if (previous) return '';
    return `${container} started\nlistening\n`;
  }
}
