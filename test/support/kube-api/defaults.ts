// Defaulting and validation, as the API server does them before it stores an object: the
// defaults the real server fills in (which clients see, and which move no field ownership of
// theirs), and the 422 Invalid answers for a bad name, a selector that does not match its
// template, an immutable field changed, a pod template without containers or images.
import { isObj, sameValue, statusBody, type Answer, type Obj, type ResourceDef } from './resources';

function defaultPodSpec(spec: Obj | undefined): void {
  if (!isObj(spec)) return;
  spec.restartPolicy ??= 'Always';
  spec.terminationGracePeriodSeconds ??= 30;
  spec.dnsPolicy ??= 'ClusterFirst';
  spec.schedulerName ??= 'default-scheduler';
  spec.securityContext ??= {};
  for (const c of [...(spec.initContainers ?? []), ...(spec.containers ?? [])] as Obj[]) {
    c.terminationMessagePath ??= '/dev/termination-log';
    c.terminationMessagePolicy ??= 'File';
    c.imagePullPolicy ??= typeof c.image === 'string' && (/:latest$/.test(c.image) || !/[:@][^/]*$/.test(c.image)) ? 'Always' : 'IfNotPresent';
    c.resources ??= {};
    for (const p of (c.ports ?? []) as Obj[]) p.protocol ??= 'TCP';
  }
}

/** Fills in the server's defaults, in place. */
export function applyDefaults(res: ResourceDef, obj: Obj): void {
  const spec = obj.spec;
  if (res.kind === 'Deployment' && isObj(spec)) {
    spec.replicas ??= 1;
    spec.revisionHistoryLimit ??= 10;
    spec.progressDeadlineSeconds ??= 600;
    spec.strategy ??= { type: 'RollingUpdate', rollingUpdate: { maxSurge: '25%', maxUnavailable: '25%' } };
    defaultPodSpec(spec.template?.spec);
  } else if ((res.kind === 'StatefulSet' || res.kind === 'DaemonSet') && isObj(spec)) {
    if (res.kind === 'StatefulSet') {
      spec.replicas ??= 1;
      spec.podManagementPolicy ??= 'OrderedReady';
    }
    spec.revisionHistoryLimit ??= 10;
    spec.updateStrategy ??= res.kind === 'StatefulSet' ? { type: 'RollingUpdate', rollingUpdate: { partition: 0 } } : { type: 'RollingUpdate', rollingUpdate: { maxSurge: 0, maxUnavailable: 1 } };
    defaultPodSpec(spec.template?.spec);
  } else if (res.kind === 'ReplicaSet' && isObj(spec)) {
    defaultPodSpec(spec.template?.spec);
  } else if (res.kind === 'Job' && isObj(spec)) {
    spec.backoffLimit ??= 6;
    spec.completions ??= 1;
    spec.parallelism ??= 1;
    spec.template ??= {};
    spec.template.metadata ??= {};
    spec.template.metadata.labels = { ...(spec.template.metadata.labels ?? {}), 'batch.kubernetes.io/job-name': obj.metadata.name, 'job-name': obj.metadata.name };
    spec.selector ??= { matchLabels: { 'batch.kubernetes.io/controller-uid': obj.metadata.uid ?? 'pending' } };
    defaultPodSpec(spec.template.spec);
  } else if (res.kind === 'Pod') {
    defaultPodSpec(spec);
  } else if (res.kind === 'Service' && isObj(spec)) {
    spec.type ??= 'ClusterIP';
    spec.sessionAffinity ??= 'None';
    if (spec.clusterIP === undefined) spec.clusterIP = `10.96.${Math.floor(Math.random() * 250)}.${Math.floor(Math.random() * 250) + 1}`;
    for (const p of (spec.ports ?? []) as Obj[]) {
      p.protocol ??= 'TCP';
      p.targetPort ??= p.port;
    }
  } else if (res.kind === 'Secret') {
    obj.type ??= 'Opaque';
  }
}

function invalid(res: ResourceDef, name: string, causes: { field: string; message: string }[]): Answer {
  return {
    status: 422,
    body: statusBody(422, 'Invalid', `${res.kind}.${res.group || 'core'} "${name}" is invalid: ${causes.map((c) => `${c.field}: ${c.message}`).join(', ')}`.replace('.core "', ' "'), {
      name,
      group: res.group,
      kind: res.kind,
      causes: causes.map((c) => ({ reason: 'FieldValueInvalid', message: c.message, field: c.field })),
    }),
  };
}

const WORKLOADS = ['Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet'];

/** The 422 answer for `obj` (replacing `previous`, if any), or undefined when it is valid. */
export function validate(res: ResourceDef, obj: Obj, previous: Obj | undefined): Answer | undefined {
  const name = obj.metadata?.name;
  if (typeof name !== 'string' || !/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(name) || name.length > 253) {
    return invalid(res, String(name), [{ field: 'metadata.name', message: `Invalid value: "${String(name)}": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.'` }]);
  }
  if (WORKLOADS.includes(res.kind)) {
    const selector = obj.spec?.selector?.matchLabels ?? {};
    const labels = obj.spec?.template?.metadata?.labels ?? {};
    if (!obj.spec?.selector) return invalid(res, name, [{ field: 'spec.selector', message: 'Required value' }]);
    if (!Object.entries(selector).every(([k, v]) => labels[k] === v)) {
      return invalid(res, name, [{ field: 'spec.template.metadata.labels', message: `Invalid value: ${JSON.stringify(labels)}: \`selector\` does not match template \`labels\`` }]);
    }
    if (previous && !sameValue(previous.spec?.selector, obj.spec?.selector)) {
      return invalid(res, name, [{ field: 'spec.selector', message: `Invalid value: ${JSON.stringify(obj.spec.selector)}: field is immutable` }]);
    }
  }
  if (res.kind === 'Job' && previous && !sameValue(previous.spec?.template?.spec, obj.spec?.template?.spec)) {
    return invalid(res, name, [{ field: 'spec.template', message: 'Invalid value: ...: field is immutable' }]);
  }
  const podSpec = res.kind === 'Pod' ? obj.spec : res.kind === 'CronJob' ? obj.spec?.jobTemplate?.spec?.template?.spec : obj.spec?.template?.spec;
  if ([...WORKLOADS, 'Job', 'CronJob', 'Pod'].includes(res.kind)) {
    const containers = podSpec?.containers;
    if (!Array.isArray(containers) || containers.length === 0) return invalid(res, name, [{ field: 'spec.template.spec.containers', message: 'Required value' }]);
    for (const [i, c] of containers.entries()) {
      if (!c.image) return invalid(res, name, [{ field: `spec.template.spec.containers[${i}].image`, message: 'Required value' }]);
    }
  }
  return undefined;
}
