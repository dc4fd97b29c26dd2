// The Kubernetes workload of a compose service: a Deployment, or a StatefulSet / DaemonSet from
// `kompose.controller.type`, a DaemonSet from `deploy.mode: global`, a Job from `restart: "no"`, a
// CronJob from `kompose.cronjob.schedule`; replicas from `deploy.replicas` or `scale`, and a
// HorizontalPodAutoscaler from the `kompose.hpa.*` labels.
import { InputError } from '../errors';
import { Obj, ServiceContext, WorkloadKind } from './convert-context';
import { KubeObject } from './objects';
import { isObject } from '../util/object';

/** The workload of a compose service (the pod template made), and its HorizontalPodAutoscaler when the `kompose.hpa.*` labels ask for one. */
export function workloadObjects(
  ctx: ServiceContext,
  w: { kind: WorkloadKind; replicas: number; raw: Obj; deploy: Obj; selector: Record<string, string>; template: Obj; claimTemplates: KubeObject[]; metadata: () => KubeObject['metadata'] },
): KubeObject[] {
  const { kind, replicas, raw, deploy, selector, template, claimTemplates, metadata } = w;
  const warn = ctx.warn;
  const out: KubeObject[] = [];
  const hpa = hpaFrom(ctx.labels, ctx, kind, replicas);
  if (kind === 'Deployment') {
    const spec: Obj = hpa ? {} : { replicas };
    Object.assign(spec, { selector: { matchLabels: selector }, template });
    out.push({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: metadata(), spec });
  } else if (kind === 'StatefulSet') {
    const spec: Obj = hpa ? {} : { replicas };
    Object.assign(spec, { serviceName: ctx.k8s, selector: { matchLabels: selector }, template });
    if (claimTemplates.length) spec.volumeClaimTemplates = claimTemplates;
    out.push({ apiVersion: 'apps/v1', kind: 'StatefulSet', metadata: metadata(), spec });
  } else if (kind === 'DaemonSet') {
    if (replicas !== 1) warn(`'deploy.replicas' (${replicas}) is not converted (a DaemonSet runs one pod on each node; remove it, or deploy.mode: global).`);
    out.push({ apiVersion: 'apps/v1', kind: 'DaemonSet', metadata: metadata(), spec: { selector: { matchLabels: selector }, template } });
  } else {
    const restart = String(raw.restart ?? '') === 'no' || (isObject(deploy.restart_policy) && deploy.restart_policy.condition === 'none') ? 'Never' : 'OnFailure';
    (template.spec as Obj).restartPolicy = restart;
    const backoff = ctx.labels['kompose.cronjob.backoff_limit'];
    const jobSpec: Obj = { backoffLimit: backoff !== undefined && /^\d+$/.test(backoff) ? Number(backoff) : restart === 'Never' ? 0 : 6, template };
    if (replicas !== 1) jobSpec.parallelism = replicas;
    if (kind === 'Job') {
      out.push({ apiVersion: 'batch/v1', kind: 'Job', metadata: metadata(), spec: jobSpec });
    } else {
      const spec: Obj = { schedule: ctx.labels['kompose.cronjob.schedule'], jobTemplate: { spec: jobSpec } };
      const policy = ctx.labels['kompose.cronjob.concurrency_policy'];
      if (policy) {
        if (['Allow', 'Forbid', 'Replace'].includes(policy)) spec.concurrencyPolicy = policy;
        else warn(`label kompose.cronjob.concurrency_policy '${policy}' is not converted (it must be Allow, Forbid or Replace; change it).`);
      }
      out.push({ apiVersion: 'batch/v1', kind: 'CronJob', metadata: metadata(), spec });
    }
  }
  if (hpa) out.push(hpa(metadata()));
  return out;
}

/** `perReplicaVolumes`: the service has anonymous volumes and several replicas, each of which compose gives its own volumes. */
export function workloadKind(raw: Obj, deploy: Obj, ctx: ServiceContext, perReplicaVolumes: boolean): WorkloadKind {
  if (ctx.labels['kompose.cronjob.schedule']) return 'CronJob';
  const type = ctx.labels['kompose.controller.type']?.toLowerCase();
  if (type) {
    if (type === 'deployment') return 'Deployment';
    if (type === 'statefulset') return 'StatefulSet';
    if (type === 'daemonset') return 'DaemonSet';
    if (type === 'job') return 'Job';
    ctx.warn(`label kompose.controller.type '${type}' is not converted (deployment, statefulset, daemonset and job are; a Deployment was made).`);
    return 'Deployment';
  }
  if (deploy.mode === 'global') return 'DaemonSet';
  const restart = raw.restart === undefined ? undefined : String(raw.restart);
  const condition = isObject(deploy.restart_policy) ? deploy.restart_policy.condition : undefined;
  if (restart === 'no' || condition === 'none') return 'Job';
  if (restart === 'on-failure' || condition === 'on-failure') {
    ctx.warn(`restart '${restart ?? condition}' becomes a Deployment, whose pods always restart; use restart: "no" for a run-to-completion Job.`);
  }
  return perReplicaVolumes ? 'StatefulSet' : 'Deployment';
}

export function replicaCount(raw: Obj, deploy: Obj, ctx: ServiceContext): number {
  const value = deploy.replicas ?? raw.scale;
  if (value === undefined || value === null) return 1;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InputError(`${ctx.where}: replicas must be a whole number, not '${String(value)}'.`);
  return n;
}

function hpaFrom(labels: Record<string, string>, ctx: ServiceContext, kind: string, replicas: number): ((meta: KubeObject['metadata']) => KubeObject) | undefined {
  const keys = ['kompose.hpa.replicas.min', 'kompose.hpa.replicas.max', 'kompose.hpa.cpu', 'kompose.hpa.memory'];
  if (!keys.some((k) => labels[k] !== undefined)) return undefined;
  if (kind !== 'Deployment' && kind !== 'StatefulSet') {
    ctx.warn('the kompose.hpa.* labels are not converted (a HorizontalPodAutoscaler scales a Deployment or a StatefulSet only; remove them).');
    return undefined;
  }
  const num = (key: string, fallback: number) => {
    const v = labels[key];
    if (v === undefined) return fallback;
    const n = Number(v.replace(/%$/, ''));
    if (!Number.isInteger(n) || n < 1) throw new InputError(`${ctx.where}: label ${key} must be a whole number above 0, not '${v}'.`);
    return n;
  };
  const min = num('kompose.hpa.replicas.min', Math.max(1, replicas));
  const max = num('kompose.hpa.replicas.max', Math.max(min, 10));
  if (max < min) throw new InputError(`${ctx.where}: kompose.hpa.replicas.max (${max}) is below kompose.hpa.replicas.min (${min}).`);
  const metrics: Obj[] = [];
  for (const [key, resource] of [['kompose.hpa.cpu', 'cpu'], ['kompose.hpa.memory', 'memory']] as const) {
    if (labels[key] !== undefined) metrics.push({ type: 'Resource', resource: { name: resource, target: { type: 'Utilization', averageUtilization: num(key, 50) } } });
  }
  if (!metrics.length) metrics.push({ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 50 } } });
  return (meta) => ({
    apiVersion: 'autoscaling/v2',
    kind: 'HorizontalPodAutoscaler',
    metadata: meta,
    spec: { scaleTargetRef: { apiVersion: 'apps/v1', kind, name: ctx.k8s }, minReplicas: min, maxReplicas: max, metrics },
  });
}
