// A Kubernetes API server double for tests, on 127.0.0.1 (HTTPS with a test CA, or plain HTTP),
// following the real API's semantics closely enough that a client which works here has a good
// chance against a real cluster — and one that gets them wrong fails here:
//
//  - discovery: /api, /apis, /api/v1 and /apis/<group>/<version> resource lists; unknown group
//    versions answer 404;
//  - authentication: bearer tokens, client certificates signed by the test CA (CN = user name), or
//    401 Unauthorized (a Status object); authorization through `deny(...)`, answered with the real
//    403 message ('… is forbidden: User "x" cannot patch resource "deployments" in API group "apps"
//    in the namespace "y"');
//  - server-side apply (PATCH application/apply-patch+yaml, fieldManager required, force) with
//    managed fields per manager (associative lists keyed by their merge keys), 409 conflicts naming
//    the owning manager ('Apply failed with 1 conflict: conflict with "kubectl-scale" using apps/v1:
//    .spec.replicas'), removal of fields a manager stops applying, defaulting, generation bumped on
//    spec changes (and, for a Deployment, annotation changes: the API server copies a Deployment's
//    annotations to its ReplicaSet), immutable fields (Deployment selector, Job template) answered 422;
//    `update(...)` changes an object as another manager would (operation Update);
//  - list with label and field selectors, resourceVersion; watch (?watch=1) from a resourceVersion,
//    ERROR 410 Expired for a compacted version, timeoutSeconds; DELETE with garbage collection of
//    dependents (ownerReferences);
//  - a small controller: Deployments make ReplicaSets (pod-template-hash, revision annotations,
//    reusing an old ReplicaSet on rollback), ReplicaSets make pods, StatefulSets and DaemonSets roll
//    their pods, Jobs run to Complete or Failed; status fields, observedGeneration and conditions
//    (Available, Progressing with ProgressDeadlineExceeded) as the real controllers set them.
//    Pods labelled `col.test/behaviour` (never-ready, crash-loop, image-pull-backoff) and annotated
//    `col.test/image-id` behave as the kwok stages of the real control plane make them.
//    Knobs: `behave(match, behaviour)` makes pods of an image run, fail with ImagePullBackOff or
//    CrashLoopBackOff (with log lines), stay unschedulable, or never get ready; `observeDelayMs`
//    delays observedGeneration; `imageIdFor` changes the imageID pods report.
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import type { TLSSocket } from 'node:tls';
import * as YAML from 'yaml';
import { issueCert, makeCa, type Pki as CaPki } from './pki';

type Obj = Record<string, any>;

interface ResourceDef {
  group: string;
  version: string;
  name: string;
  singularName: string;
  kind: string;
  namespaced: boolean;
  verbs: string[];
}

const ALL_VERBS = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];
const RESOURCES: ResourceDef[] = [
  ['', 'v1', 'namespaces', 'Namespace', false],
  ['', 'v1', 'pods', 'Pod', true],
  ['', 'v1', 'services', 'Service', true],
  ['', 'v1', 'configmaps', 'ConfigMap', true],
  ['', 'v1', 'secrets', 'Secret', true],
  ['', 'v1', 'persistentvolumeclaims', 'PersistentVolumeClaim', true],
  ['', 'v1', 'serviceaccounts', 'ServiceAccount', true],
  ['', 'v1', 'events', 'Event', true],
  ['apps', 'v1', 'deployments', 'Deployment', true],
  ['apps', 'v1', 'replicasets', 'ReplicaSet', true],
  ['apps', 'v1', 'statefulsets', 'StatefulSet', true],
  ['apps', 'v1', 'daemonsets', 'DaemonSet', true],
  ['apps', 'v1', 'controllerrevisions', 'ControllerRevision', true],
  ['batch', 'v1', 'jobs', 'Job', true],
  ['batch', 'v1', 'cronjobs', 'CronJob', true],
  ['networking.k8s.io', 'v1', 'ingresses', 'Ingress', true],
  ['networking.k8s.io', 'v1', 'networkpolicies', 'NetworkPolicy', true],
  ['autoscaling', 'v2', 'horizontalpodautoscalers', 'HorizontalPodAutoscaler', true],
  ['policy', 'v1', 'poddisruptionbudgets', 'PodDisruptionBudget', true],
  ['rbac.authorization.k8s.io', 'v1', 'roles', 'Role', true],
  ['rbac.authorization.k8s.io', 'v1', 'rolebindings', 'RoleBinding', true],
  ['rbac.authorization.k8s.io', 'v1', 'clusterroles', 'ClusterRole', false],
  ['rbac.authorization.k8s.io', 'v1', 'clusterrolebindings', 'ClusterRoleBinding', false],
].map(([group, version, name, kind, namespaced]) => ({
  group: group as string,
  version: version as string,
  name: name as string,
  singularName: (kind as string).toLowerCase(),
  kind: kind as string,
  namespaced: namespaced as boolean,
  verbs: ALL_VERBS,
}));

export type PodBehaviour =
  | { kind: 'run' }
  | { kind: 'ImagePullBackOff' }
  | { kind: 'CrashLoopBackOff'; logs?: string[]; exitCode?: number }
  | { kind: 'Unschedulable'; message?: string }
  | { kind: 'NeverReady' };

export interface KubeApiOptions {
  /** HTTPS with a test CA and client-certificate authentication (default true). */
  tls?: boolean;
  /** Bearer token → user name. */
  tokens?: Record<string, string>;
  /** Refuse (403) a request: return true to deny. */
  deny?: (request: { user: string; verb: string; group: string; resource: string; namespace?: string; name?: string }) => boolean;
  /** Controller step (default 15 ms). */
  stepMs?: number;
  /** Ticks a pod takes from creation to its behaviour (default 2). */
  podStartTicks?: number;
  /** One "second" of progressDeadlineSeconds, in real milliseconds (default 1000). */
  secondMs?: number;
  /** Nodes for DaemonSets (default 2). */
  nodes?: number;
  /** Events kept for watches from a resourceVersion (default 10000). */
  historyLimit?: number;
}

export interface ApiRequestRecord {
  method: string;
  path: string;
  query: Record<string, string>;
  user?: string;
  contentType?: string;
  status: number;
}

export interface KubeApiServer {
  url: string;
  /** PEM of the CA that signed the server certificate (and client certificates). */
  caPem?: string;
  /** A client certificate and key for `user`, signed by the test CA. */
  clientCertificate(user: string): { cert: string; key: string };
  requests: ApiRequestRecord[];
  behave(match: string | RegExp, behaviour: PodBehaviour): void;
  /** Delay between a spec change and observedGeneration catching up. */
  observeDelayMs: number;
  imageIdFor: (image: string) => string;
  get(apiVersion: string, kind: string, namespace: string | undefined, name: string): Obj | undefined;
  list(apiVersion: string, kind: string, namespace?: string): Obj[];
  /** Changes an object as another field manager would (operation Update): it takes the fields it changes. */
  update(apiVersion: string, kind: string, namespace: string | undefined, name: string, manager: string, mutate: (obj: Obj) => void): Obj;
  /** Creates an object directly (e.g. a namespace), owned by `manager` (operation Update). */
  create(obj: Obj, manager?: string): Obj;
  /** Forget watch history older than the current version (the next watch from an old version gets 410). */
  compact(): void;
  /** End every open watch now (as an API server does on its own timeouts). */
  closeWatches(): void;
  /**
   * Answer the next `times` requests that `match` accepts with `status` (a Status body) instead of
   * serving them: 429 with Retry-After, 500, 503 — what an overloaded real server does, but not on
   * demand. Watches included (a watch answered 503 is a watch that could not start).
   */
  fault(fault: { match: (r: { method: string; path: string; query: Record<string, string> }) => boolean; status: number; retryAfterSeconds?: number; times?: number }): void;
  stop(): Promise<void>;
}

// ---- test PKI (test/support/pki.ts) -------------------------------------------------------------

interface Pki {
  ca: CaPki;
  dir: string;
  caCert: string; // PEM
  serverKey: string;
  serverCert: string;
}

function makePki(): Pki {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'col-kube-pki-'));
  const ca = makeCa(dir, 'kube-test-ca');
  const server = issueCert(ca, 'server', { commonName: 'kube-apiserver', sans: ['127.0.0.1', 'localhost', 'kubernetes.default.svc'] });
  return { ca, dir, caCert: ca.caPem, serverKey: server.keyPem, serverCert: server.certPem };
}

function issueClientCert(pki: Pki, user: string): { cert: string; key: string } {
  const issued = issueCert(pki.ca, `client-${createHash('sha1').update(user).digest('hex').slice(0, 8)}`, { commonName: user, groups: ['deployers'] });
  return { cert: issued.certPem, key: issued.keyPem };
}

// ---- managed fields -------------------------------------------------------------------------------

/** Merge keys of associative lists, by field name (the ones that matter for pods and services). */
function listKeys(field: string, items: unknown[]): string[] | undefined {
  if (['containers', 'initContainers', 'ephemeralContainers', 'env', 'volumes', 'imagePullSecrets'].includes(field)) return ['name'];
  if (field === 'volumeMounts') return ['mountPath'];
  if (field === 'ports') {
    const first = items.find((i) => isObj(i)) as Obj | undefined;
    if (first && 'containerPort' in first) return ['containerPort', 'protocol'];
    if (first && 'port' in first) return ['port', 'protocol'];
  }
  return undefined;
}

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function itemKey(keys: string[], item: Obj): string {
  return keys.map((k) => `${k}=${JSON.stringify(item[k] ?? (k === 'protocol' ? 'TCP' : null))}`).join(',');
}

const IGNORED_TOP = new Set(['apiVersion', 'kind', 'status']);
const IGNORED_META = new Set(['name', 'namespace', 'uid', 'resourceVersion', 'generation', 'creationTimestamp', 'managedFields', 'deletionTimestamp', 'selfLink']);

/** Leaf paths of an applied configuration, with their values; `[k=v]` path parts for list items. */
function fieldSet(obj: Obj): Map<string, unknown> {
  const out = new Map<string, unknown>();
  const walk = (value: unknown, p: string, field: string) => {
    if (isObj(value)) {
      const keys = Object.keys(value);
      if (keys.length === 0) {
        out.set(p, {});
        return;
      }
      for (const k of keys) {
        if (p === '' && IGNORED_TOP.has(k)) continue;
        if (p === '.metadata' && IGNORED_META.has(k)) continue;
        walk(value[k], `${p}.${escapeKey(k)}`, k);
      }
      return;
    }
    if (Array.isArray(value)) {
      const keys = listKeys(field, value);
      if (keys && value.every(isObj)) {
        for (const item of value as Obj[]) {
          const ip = `${p}[${itemKey(keys, item)}]`;
          out.set(ip, '<item>');
          for (const k of Object.keys(item)) walk(item[k], `${ip}.${escapeKey(k)}`, k);
        }
        return;
      }
    }
    out.set(p, value);
  };
  walk(obj, '', '');
  return out;
}

/** Splits a field path into parts: ['.spec', '.template', '[name="web"]', '.image']. */
// Field paths are `.spec.template.metadata.labels.app`: a dot inside a key (app.kubernetes.io/name)
// is held as \u0001 so that the path splits where it should; keyOf reads it back.
const escapeKey = (k: string) => k.replace(/\./g, '\u0001');
const keyOf = (part: string) => part.slice(1).replace(/\u0001/g, '.');
/** A field path as people read it (in conflict messages). */
const readablePath = (p: string) => p.replace(/\u0001/g, '.');

function pathParts(p: string): string[] {
  return p.match(/\.[^.[]+|\[[^\]]*\]/g) ?? [];
}

function parseItemKey(part: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const kv of part.slice(1, -1).split(/,(?=\w+=)/)) {
    const eq = kv.indexOf('=');
    out[kv.slice(0, eq)] = JSON.parse(kv.slice(eq + 1));
  }
  return out;
}

function matchesKey(item: unknown, key: Record<string, unknown>): boolean {
  return isObj(item) && Object.entries(key).every(([k, v]) => (item[k] ?? (k === 'protocol' ? 'TCP' : null)) === v);
}

function descend(obj: Obj, parts: string[]): unknown {
  let cur: unknown = obj;
  for (const part of parts) {
    if (part.startsWith('.')) cur = isObj(cur) ? cur[keyOf(part)] : undefined;
    else cur = Array.isArray(cur) ? cur.find((i) => matchesKey(i, parseItemKey(part))) : undefined;
    if (cur === undefined) return undefined;
  }
  return cur;
}

function valueAt(obj: Obj, p: string): unknown {
  return descend(obj, pathParts(p));
}

function removeAt(obj: Obj, p: string): void {
  const parts = pathParts(p);
  const cur = descend(obj, parts.slice(0, -1));
  const last = parts[parts.length - 1];
  if (last.startsWith('.')) {
    if (isObj(cur)) delete cur[keyOf(last)];
  } else if (Array.isArray(cur)) {
    const i = cur.findIndex((x) => matchesKey(x, parseItemKey(last)));
    if (i >= 0) cur.splice(i, 1);
  }
}

/** Applies `patch` over `base`: maps merge, associative lists merge by key, other lists replace. */
function mergeApplied(base: unknown, patch: unknown, field = ''): unknown {
  if (isObj(patch)) {
    const out: Obj = isObj(base) ? { ...base } : {};
    for (const [k, v] of Object.entries(patch)) out[k] = mergeApplied(out[k], v, k);
    return out;
  }
  if (Array.isArray(patch)) {
    const keys = listKeys(field, patch);
    if (keys && Array.isArray(base) && patch.every(isObj) && base.every(isObj)) {
      const out = [...(base as Obj[])];
      for (const item of patch as Obj[]) {
        const key = Object.fromEntries(keys.map((k) => [k, item[k] ?? (k === 'protocol' ? 'TCP' : null)]));
        const i = out.findIndex((x) => matchesKey(x, key));
        if (i >= 0) out[i] = mergeApplied(out[i], item) as Obj;
        else out.push(structuredClone(item));
      }
      return out;
    }
    return structuredClone(patch);
  }
  return patch;
}

function fieldsV1(paths: Iterable<string>): Obj {
  const root: Obj = {};
  for (const p of paths) {
    let cur = root;
    for (const part of pathParts(p)) {
      const key = part.startsWith('.') ? `f:${keyOf(part)}` : `k:${JSON.stringify(parseItemKey(part))}`;
      cur[key] ??= {};
      cur = cur[key];
      if (part.startsWith('[')) cur['.'] ??= {};
    }
  }
  return root;
}

function sameValue(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

// ---- the server -------------------------------------------------------------------------------------

interface Manager {
  operation: 'Apply' | 'Update';
  apiVersion: string;
  time: string;
  fields: Set<string>;
}

interface Stored {
  res: ResourceDef;
  obj: Obj;
  managers: Map<string, Manager>;
  /** Controller bookkeeping. */
  internal: Obj;
}

interface WatchEventRecord {
  rv: number;
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  res: ResourceDef;
  obj: Obj;
}

interface Watcher {
  send(event: WatchEventRecord): void;
  end(): void;
}

export async function startKubeApi(options: KubeApiOptions = {}): Promise<KubeApiServer> {
  const useTls = options.tls ?? true;
  const pki = useTls ? makePki() : undefined;
  const tokens = options.tokens ?? {};
  const stepMs = options.stepMs ?? 15;
  const podStartTicks = options.podStartTicks ?? 2;
  const secondMs = options.secondMs ?? 1000;
  const nodes = options.nodes ?? 2;
  const historyLimit = options.historyLimit ?? 10_000;

  const store = new Map<string, Stored>();
  const history: WatchEventRecord[] = [];
  let compactedBefore = 0;
  const watchers = new Set<Watcher>();
  const requests: ApiRequestRecord[] = [];
  const behaviours: { match: string | RegExp; behaviour: PodBehaviour }[] = [];
  const faults: { match: (r: ApiRequestRecord) => boolean; status: number; retryAfterSeconds?: number; times: number }[] = [];
  let rv = 100;

  const keyOf = (res: ResourceDef, ns: string | undefined, name: string) => `${res.group}/${res.name}/${res.namespaced ? (ns ?? '') : ''}/${name}`;
  const resByKind = (apiVersion: string, kind: string) => {
    const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion];
    return RESOURCES.find((r) => r.group === group && r.version === version && r.kind === kind);
  };
  const apiVersionOf = (res: ResourceDef) => (res.group ? `${res.group}/${res.version}` : res.version);
  const now = () => new Date().toISOString().replace(/\.\d+Z$/, 'Z');

  const serialize = (s: Stored): Obj => {
    const obj = structuredClone(s.obj);
    obj.metadata.managedFields = [...s.managers.entries()].map(([manager, m]) => ({
      manager,
      operation: m.operation,
      apiVersion: m.apiVersion,
      time: m.time,
      fieldsType: 'FieldsV1',
      fieldsV1: fieldsV1(m.fields),
    }));
    return obj;
  };

  const emit = (type: WatchEventRecord['type'], s: Stored) => {
    const event: WatchEventRecord = { rv: Number(s.obj.metadata.resourceVersion), type, res: s.res, obj: serialize(s) };
    history.push(event);
    if (history.length > historyLimit) {
      const dropped = history.splice(0, history.length - historyLimit);
      compactedBefore = Math.max(compactedBefore, dropped[dropped.length - 1].rv);
    }
    for (const w of watchers) w.send(event);
  };

  /**
   * Writes an object (already merged); bumps resourceVersion, and generation when the spec changed.
   * `status`: written as through the status subresource (as the controllers write status and the
   * Deployment's revision annotation), which moves no generation.
   */
  const write = (s: Stored, previous: Obj | undefined, how: 'update' | 'status' = 'update'): Stored => {
    rv += 1;
    s.obj.metadata.resourceVersion = String(rv);
    if (!previous) {
      s.obj.metadata.uid ??= randomUUID();
      s.obj.metadata.creationTimestamp ??= now();
      s.obj.metadata.generation = 1;
    } else {
      // As the API server's deployment strategy does: its annotations count too.
      const strip = (o: Obj) => {
        const { metadata, status: _s, ...rest } = o;
        return s.obj.kind === 'Deployment' ? { ...rest, annotations: metadata.annotations ?? {} } : rest;
      };
      s.obj.metadata.generation = (previous.metadata.generation ?? 1) + (how === 'status' || sameValue(strip(previous), strip(s.obj)) ? 0 : 1);
    }
    store.set(keyOf(s.res, s.obj.metadata.namespace, s.obj.metadata.name), s);
    emit(previous ? 'MODIFIED' : 'ADDED', s);
    return s;
  };

  const remove = (s: Stored, propagation: string) => {
    store.delete(keyOf(s.res, s.obj.metadata.namespace, s.obj.metadata.name));
    rv += 1;
    s.obj.metadata.resourceVersion = String(rv);
    emit('DELETED', s);
    const uid = s.obj.metadata.uid;
    for (const other of [...store.values()]) {
      const owners: Obj[] = other.obj.metadata.ownerReferences ?? [];
      if (!owners.some((o) => o.uid === uid)) continue;
      if (propagation === 'Orphan') {
        const prev = structuredClone(other.obj);
        other.obj.metadata.ownerReferences = owners.filter((o) => o.uid !== uid);
        write(other, prev);
      } else remove(other, propagation);
    }
  };

  // ---- defaulting and validation
  const defaultPodSpec = (spec: Obj | undefined) => {
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
  };
  const applyDefaults = (res: ResourceDef, obj: Obj) => {
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
  };

  const invalid = (res: ResourceDef, name: string, causes: { field: string; message: string }[]) => ({
    status: 422,
    body: statusBody(422, 'Invalid', `${res.kind}.${res.group || 'core'} "${name}" is invalid: ${causes.map((c) => `${c.field}: ${c.message}`).join(', ')}`.replace('.core "', ' "'), {
      name,
      group: res.group,
      kind: res.kind,
      causes: causes.map((c) => ({ reason: 'FieldValueInvalid', message: c.message, field: c.field })),
    }),
  });

  const validate = (res: ResourceDef, obj: Obj, previous: Obj | undefined): { status: number; body: Obj } | undefined => {
    const name = obj.metadata?.name;
    if (typeof name !== 'string' || !/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(name) || name.length > 253) {
      return invalid(res, String(name), [{ field: 'metadata.name', message: `Invalid value: "${String(name)}": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.'` }]);
    }
    if (['Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet'].includes(res.kind)) {
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
    if (['Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet', 'Job', 'CronJob', 'Pod'].includes(res.kind)) {
      const containers = podSpec?.containers;
      if (!Array.isArray(containers) || containers.length === 0) return invalid(res, name, [{ field: 'spec.template.spec.containers', message: 'Required value' }]);
      for (const [i, c] of containers.entries()) {
        if (!c.image) return invalid(res, name, [{ field: `spec.template.spec.containers[${i}].image`, message: 'Required value' }]);
      }
    }
    return undefined;
  };

  // ---- store helpers
  const getStored = (res: ResourceDef, ns: string | undefined, name: string) => store.get(keyOf(res, ns, name));
  const namespaceExists = (ns: string) => store.has(keyOf(RESOURCES[0], undefined, ns));

  const createDirect = (obj: Obj, manager = 'test-setup'): Obj => {
    const res = resByKind(obj.apiVersion, obj.kind);
    if (!res) throw new Error(`unknown kind ${obj.apiVersion} ${obj.kind}`);
    const copy = structuredClone(obj);
    copy.metadata ??= {};
    applyDefaults(res, copy);
    const s: Stored = { res, obj: copy, managers: new Map(), internal: {} };
    s.managers.set(manager, { operation: 'Update', apiVersion: apiVersionOf(res), time: now(), fields: new Set(fieldSet(obj).keys()) });
    write(s, undefined);
    return serialize(s);
  };

  const updateAs = (s: Stored, manager: string, mutate: (obj: Obj) => void): Obj => {
    const previous = structuredClone(s.obj);
    const before = fieldSet(previous);
    mutate(s.obj);
    applyDefaults(s.res, s.obj);
    const after = fieldSet(s.obj);
    const changed = [...after.entries()].filter(([p, v]) => !before.has(p) || !sameValue(before.get(p), v)).map(([p]) => p);
    for (const [name, m] of s.managers) if (name !== manager) for (const p of changed) m.fields.delete(p);
    const mine = s.managers.get(manager) ?? { operation: 'Update' as const, apiVersion: apiVersionOf(s.res), time: now(), fields: new Set<string>() };
    for (const p of changed) mine.fields.add(p);
    mine.time = now();
    s.managers.set(manager, mine);
    write(s, previous);
    return serialize(s);
  };

  // ---- server-side apply
  const apply = (res: ResourceDef, ns: string | undefined, name: string, applied: Obj, manager: string, force: boolean): { status: number; body: Obj } => {
    if (!isObj(applied)) return { status: 400, body: statusBody(400, 'BadRequest', 'the body of an apply patch must be an object') };
    if (applied.apiVersion !== apiVersionOf(res) || applied.kind !== res.kind) {
      return { status: 400, body: statusBody(400, 'BadRequest', `the API version in the data (${applied.apiVersion}) and kind (${applied.kind}) do not match the request (${apiVersionOf(res)}, ${res.kind})`) };
    }
    applied.metadata ??= {};
    if (applied.metadata.name !== name) return { status: 400, body: statusBody(400, 'BadRequest', `the name of the object (${applied.metadata.name}) does not match the name on the URL (${name})`) };
    if (res.namespaced) {
      if (applied.metadata.namespace !== undefined && applied.metadata.namespace !== ns) {
        return { status: 400, body: statusBody(400, 'BadRequest', 'the namespace of the provided object does not match the namespace sent on the request') };
      }
      if (!namespaceExists(ns!)) return { status: 404, body: statusBody(404, 'NotFound', `namespaces "${ns}" not found`, { name: ns, kind: 'namespaces' }) };
    }
    const existing = getStored(res, ns, name);
    const fields = fieldSet(applied);
    const live: Obj = existing ? structuredClone(existing.obj) : { apiVersion: apiVersionOf(res), kind: res.kind, metadata: { name, ...(res.namespaced ? { namespace: ns } : {}) } };
    const managers = existing ? new Map([...existing.managers].map(([k, m]) => [k, { ...m, fields: new Set(m.fields) }])) : new Map<string, Manager>();
    // Conflicts: another manager owns a field this apply sets to a different value.
    const conflicts: { manager: string; apiVersion: string; field: string }[] = [];
    for (const [p, v] of fields) {
      if (v === '<item>') continue;
      for (const [other, m] of managers) {
        if (other === manager || !m.fields.has(p)) continue;
        if (!sameValue(valueAt(live, p), v)) conflicts.push({ manager: other, apiVersion: m.apiVersion, field: p });
      }
    }
    if (conflicts.length && !force) {
      const text = (c: (typeof conflicts)[number]) => `conflict with "${c.manager}" using ${c.apiVersion}`;
      const message =
        conflicts.length === 1
          ? `Apply failed with 1 conflict: ${text(conflicts[0])}: ${readablePath(conflicts[0].field)}`
          : `Apply failed with ${conflicts.length} conflicts: ${conflicts.map((c) => `${text(c)}: ${readablePath(c.field)}`).join('\n')}`;
      return {
        status: 409,
        body: statusBody(409, 'Conflict', message, { causes: conflicts.map((c) => ({ reason: 'FieldManagerConflict', message: text(c), field: readablePath(c.field).replace(/\[(\w+)=/g, '[$1=') })) }),
      };
    }
    if (force) for (const c of conflicts) managers.get(c.manager)!.fields.delete(c.field);
    // Fields this manager applied before and no longer applies, owned by nobody else, are removed.
    const mine = managers.get(manager);
    if (mine) {
      const dropped = [...mine.fields].filter((p) => !fields.has(p) && ![...managers].some(([n, m]) => n !== manager && m.fields.has(p)));
      for (const p of dropped.sort((a, b) => b.length - a.length)) removeAt(live, p);
    }
    const merged = mergeApplied(live, applied) as Obj;
    merged.metadata.name = name;
    if (res.namespaced) merged.metadata.namespace = ns;
    applyDefaults(res, merged);
    const problem = validate(res, merged, existing?.obj);
    if (problem) return problem;
    for (const [n, m] of [...managers]) if (m.fields.size === 0) managers.delete(n);
    managers.set(manager, { operation: 'Apply', apiVersion: apiVersionOf(res), time: now(), fields: new Set(fields.keys()) });
    const s: Stored = existing ?? { res, obj: merged, managers, internal: {} };
    const previous = existing ? structuredClone(existing.obj) : undefined;
    merged.metadata.uid = existing?.obj.metadata.uid;
    merged.metadata.creationTimestamp = existing?.obj.metadata.creationTimestamp;
    merged.metadata.generation = existing?.obj.metadata.generation;
    merged.status = existing?.obj.status;
    if (merged.metadata.uid === undefined) delete merged.metadata.uid;
    if (merged.metadata.creationTimestamp === undefined) delete merged.metadata.creationTimestamp;
    if (merged.status === undefined) delete merged.status;
    s.obj = merged;
    s.managers = managers;
    if (res.kind === 'Job' && !previous) {
      merged.metadata.uid = randomUUID();
      merged.spec.selector = { matchLabels: { 'batch.kubernetes.io/controller-uid': merged.metadata.uid } };
      merged.spec.template.metadata.labels['batch.kubernetes.io/controller-uid'] = merged.metadata.uid;
    }
    if (previous && sameValue({ ...previous, metadata: { ...previous.metadata, managedFields: undefined } }, merged)) {
      return { status: 200, body: serialize(s) }; // nothing changed: no new resourceVersion
    }
    write(s, previous);
    return { status: previous ? 200 : 201, body: serialize(s) };
  };

  // ---- selectors
  const labelMatch = (labels: Record<string, string> | undefined, selector: string | undefined): boolean => {
    if (!selector) return true;
    const l = labels ?? {};
    const parts = selector.match(/(?:[^,(]+\([^)]*\)|[^,]+)/g) ?? [];
    return parts.every((raw) => {
      const part = raw.trim();
      let m: RegExpExecArray | null;
      if ((m = /^([^\s!=]+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(part))) {
        const values = m[3].split(',').map((v) => v.trim());
        return m[2] === 'in' ? values.includes(l[m[1]]) : !values.includes(l[m[1]]);
      }
      if ((m = /^([^!=]+)!=(.*)$/.exec(part))) return l[m[1].trim()] !== m[2].trim();
      if ((m = /^([^!=]+)==?(.*)$/.exec(part))) return l[m[1].trim()] === m[2].trim();
      if (part.startsWith('!')) return !(part.slice(1) in l);
      return part in l;
    });
  };
  const fieldMatch = (obj: Obj, selector: string | undefined): boolean => {
    if (!selector) return true;
    return selector.split(',').every((p) => {
      const [k, v] = p.split('=');
      if (k === 'metadata.name') return obj.metadata.name === v;
      if (k === 'metadata.namespace') return obj.metadata.namespace === v;
      return true;
    });
  };

  // ---- the controller
  /** The label the kwok stages of the real control plane read too (test/support/kwok-stages.yaml), so one manifest fails the same way on both. */
  const LABEL_BEHAVIOURS: Record<string, PodBehaviour> = { 'never-ready': { kind: 'NeverReady' }, 'crash-loop': { kind: 'CrashLoopBackOff' }, 'image-pull-backoff': { kind: 'ImagePullBackOff' } };
  const behaviourFor = (images: string[], labels: Record<string, string> = {}): PodBehaviour => {
    const labelled = LABEL_BEHAVIOURS[labels['col.test/behaviour']];
    if (labelled) return labelled;
    for (const b of behaviours) {
      if (images.some((img) => (typeof b.match === 'string' ? img.includes(b.match) : b.match.test(img)))) return b.behaviour;
    }
    return { kind: 'run' };
  };
  const imageIdDefault = (image: string) => {
    const at = image.indexOf('@');
    if (at >= 0) return image;
    const repo = image.replace(/:[^/:]+$/, '');
    return `${repo}@sha256:${createHash('sha256').update(image).digest('hex')}`;
  };
  const api: KubeApiServer = {} as KubeApiServer;
  api.observeDelayMs = 0;
  api.imageIdFor = imageIdDefault;

  const templateHash = (template: unknown) => createHash('sha256').update(JSON.stringify(template)).digest('hex').slice(0, 10).replace(/[^a-z0-9]/g, 'x');
  const suffix = () => randomBytes(3).toString('hex').slice(0, 5);

  const ownedBy = (owner: Stored, kind: string) =>
    [...store.values()].filter((s) => s.res.kind === kind && s.obj.metadata.namespace === owner.obj.metadata.namespace && (s.obj.metadata.ownerReferences ?? []).some((o: Obj) => o.uid === owner.obj.metadata.uid));
  const ownerRef = (owner: Stored) => ({ apiVersion: apiVersionOf(owner.res), kind: owner.res.kind, name: owner.obj.metadata.name, uid: owner.obj.metadata.uid, controller: true, blockOwnerDeletion: true });
  const podRes = RESOURCES.find((r) => r.kind === 'Pod')!;
  const rsRes = RESOURCES.find((r) => r.kind === 'ReplicaSet')!;
  const controllerManager = 'kube-controller-manager';

  const setStatus = (s: Stored, status: Obj) => {
    if (sameValue(s.obj.status, status)) return;
    const previous = structuredClone(s.obj);
    s.obj.status = status;
    write(s, previous);
  };

  const makePod = (owner: Stored, name: string, template: Obj, extraLabels: Record<string, string>, node?: string) => {
    const spec = structuredClone(template.spec ?? {});
    if (node) spec.nodeName = node;
    const obj: Obj = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, namespace: owner.obj.metadata.namespace, labels: { ...(template.metadata?.labels ?? {}), ...extraLabels }, annotations: template.metadata?.annotations, ownerReferences: [ownerRef(owner)] },
      spec,
      status: { phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'True' }] },
    };
    if (!obj.metadata.annotations) delete obj.metadata.annotations;
    const s: Stored = { res: podRes, obj, managers: new Map(), internal: { ticks: 0, restarts: 0 } };
    write(s, undefined);
  };

  const podReady = (p: Stored) => (p.obj.status?.conditions ?? []).some((c: Obj) => c.type === 'Ready' && c.status === 'True');

  const tickPod = (p: Stored, restartPolicy: string) => {
    p.internal.ticks += 1;
    if (p.obj.status?.phase === 'Succeeded' || p.obj.status?.phase === 'Failed') return;
    if (p.internal.ticks < podStartTicks) return;
    const containers: Obj[] = p.obj.spec.containers ?? [];
    const b = behaviourFor(
      containers.map((c) => c.image),
      p.obj.metadata.labels,
    );
    const imageIdOverride: string | undefined = p.obj.metadata.annotations?.['col.test/image-id'];
    const started = p.obj.metadata.creationTimestamp;
    const isJob = restartPolicy !== 'Always';
    const cs = (c: Obj, state: Obj, ready: boolean, extra: Obj = {}) => ({
      name: c.name,
      image: c.image,
      imageID: state.waiting && b.kind === 'ImagePullBackOff' ? '' : (imageIdOverride ?? api.imageIdFor(c.image)),
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
        conditions: [{ type: 'PodScheduled', status: 'True' }, { type: 'Ready', status: 'False', reason: 'ContainersNotReady' }],
        containerStatuses: containers.map((c) => cs(c, { waiting: { reason, message: reason === 'ErrImagePull' ? `failed to pull and unpack image "${c.image}": not found` : `Back-off pulling image "${c.image}"` } }, false)),
      };
    } else if (b.kind === 'CrashLoopBackOff') {
      if (isJob) {
        status = {
          phase: 'Failed',
          conditions: [{ type: 'PodScheduled', status: 'True' }, { type: 'Ready', status: 'False' }],
          containerStatuses: containers.map((c) => cs(c, { terminated: { exitCode: b.exitCode ?? 1, reason: 'Error', startedAt: started, finishedAt: now() } }, false)),
        };
      } else {
        if (p.internal.restarts === 0 || p.internal.ticks % 5 === 0) p.internal.restarts += 1;
        status = {
          phase: 'Running',
          conditions: [{ type: 'PodScheduled', status: 'True' }, { type: 'Ready', status: 'False', reason: 'ContainersNotReady' }],
          containerStatuses: containers.map((c) =>
            cs(c, { waiting: { reason: 'CrashLoopBackOff', message: `back-off 10s restarting failed container=${c.name} pod=${p.obj.metadata.name}` } }, false, {
              lastState: { terminated: { exitCode: b.exitCode ?? 1, reason: 'Error', startedAt: started, finishedAt: now() } },
            }),
          ),
        };
      }
    } else if (b.kind === 'NeverReady') {
      status = {
        phase: 'Running',
        conditions: [{ type: 'PodScheduled', status: 'True' }, { type: 'Ready', status: 'False', reason: 'ContainersNotReady' }],
        containerStatuses: containers.map((c) => cs(c, { running: { startedAt: started } }, false)),
      };
    } else if (isJob) {
      status = {
        phase: 'Succeeded',
        conditions: [{ type: 'PodScheduled', status: 'True' }, { type: 'Ready', status: 'False', reason: 'PodCompleted' }],
        containerStatuses: containers.map((c) => cs(c, { terminated: { exitCode: 0, reason: 'Completed', startedAt: started, finishedAt: now() } }, false)),
      };
    } else {
      status = {
        phase: 'Running',
        conditions: [{ type: 'PodScheduled', status: 'True' }, { type: 'Initialized', status: 'True' }, { type: 'ContainersReady', status: 'True' }, { type: 'Ready', status: 'True' }],
        containerStatuses: containers.map((c) => cs(c, { running: { startedAt: started } }, true)),
      };
    }
    status.startTime = started;
    for (const c of status.containerStatuses ?? []) if (c.containerID === undefined) delete c.containerID;
    // restartCount moves every tick in a crash loop; keep the object stable otherwise.
    setStatus(p, status);
  };

  const podLogs = (p: Stored, container: string, previous: boolean): string => {
    const c = (p.obj.spec.containers ?? []).find((x: Obj) => x.name === container);
    const b = behaviourFor(c ? [c.image] : []);
    if (b.kind === 'CrashLoopBackOff') return (b.logs ?? ['starting', 'fatal: could not start']).join('\n') + '\n';
    if (previous) return '';
    return `${container} started\nlistening\n`;
  };

  const reconcileReplicaSet = (rs: Stored) => {
    const want = rs.obj.spec.replicas ?? 1;
    const pods = ownedBy(rs, 'Pod');
    for (let i = pods.length; i < want; i++) makePod(rs, `${rs.obj.metadata.name}-${suffix()}`, rs.obj.spec.template, {});
    for (const extra of pods.slice(want)) remove(extra, 'Background');
    const live = ownedBy(rs, 'Pod');
    for (const p of live) tickPod(p, 'Always');
    const ready = live.filter(podReady).length;
    setStatus(rs, { replicas: live.length, fullyLabeledReplicas: live.length, readyReplicas: ready, availableReplicas: ready, observedGeneration: rs.obj.metadata.generation });
  };

  const observed = (s: Stored): boolean => {
    const gen = s.obj.metadata.generation;
    if (s.internal.seenGeneration !== gen) {
      s.internal.seenGeneration = gen;
      s.internal.seenAt = Date.now();
      s.internal.progressAt = Date.now();
    }
    return Date.now() - s.internal.seenAt >= api.observeDelayMs;
  };

  const reconcileDeployment = (d: Stored) => {
    if (!observed(d)) return;
    const spec = d.obj.spec;
    const want = spec.replicas ?? 1;
    const hash = templateHash(spec.template);
    const sets = ownedBy(d, 'ReplicaSet');
    const revisionOf = (rs: Stored) => Number(rs.obj.metadata.annotations?.['deployment.kubernetes.io/revision'] ?? 0);
    const maxRevision = Math.max(0, ...sets.map(revisionOf));
    let current = sets.find((rs) => rs.obj.metadata.labels?.['pod-template-hash'] === hash);
    let createdNow = false;
    if (!current) {
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
      current = { res: rsRes, obj, managers: new Map([[controllerManager, { operation: 'Update', apiVersion: 'apps/v1', time: now(), fields: new Set<string>() }]]), internal: {} };
      write(current, undefined);
      createdNow = true;
    } else if (revisionOf(current) !== maxRevision) {
      // Rolling back to an older template: its ReplicaSet becomes the newest revision again.
      const prev = structuredClone(current.obj);
      current.obj.metadata.annotations = { ...current.obj.metadata.annotations, 'deployment.kubernetes.io/revision': String(maxRevision + 1) };
      write(current, prev);
    }
    const revision = current.obj.metadata.annotations['deployment.kubernetes.io/revision'];
    if (d.obj.metadata.annotations?.['deployment.kubernetes.io/revision'] !== revision) {
      const prev = structuredClone(d.obj);
      d.obj.metadata.annotations = { ...(d.obj.metadata.annotations ?? {}), 'deployment.kubernetes.io/revision': revision };
      write(d, prev, 'status');
    }
    // Scale: the new ReplicaSet up at once; the old ones down once the new pods are available.
    if (current.obj.spec.replicas !== want) {
      const prev = structuredClone(current.obj);
      current.obj.spec.replicas = want;
      write(current, prev);
    }
    const newAvailable = current.obj.status?.availableReplicas ?? 0;
    const olds = ownedBy(d, 'ReplicaSet').filter((rs) => rs !== current);
    for (const old of olds) {
      if (newAvailable >= want && old.obj.spec.replicas !== 0) {
        const prev = structuredClone(old.obj);
        old.obj.spec.replicas = 0;
        write(old, prev);
      }
    }
    for (const rs of ownedBy(d, 'ReplicaSet')) reconcileReplicaSet(rs);
    // Prune history beyond revisionHistoryLimit (old, scaled-down sets).
    const limit = spec.revisionHistoryLimit ?? 10;
    const idle = ownedBy(d, 'ReplicaSet')
      .filter((rs) => rs !== current && rs.obj.spec.replicas === 0 && (rs.obj.status?.replicas ?? 0) === 0)
      .sort((a, b) => revisionOf(a) - revisionOf(b));
    for (const rs of idle.slice(0, Math.max(0, idle.length - limit))) remove(rs, 'Background');

    const all = ownedBy(d, 'ReplicaSet');
    const sum = (f: (rs: Stored) => number) => all.reduce((n, rs) => n + f(rs), 0);
    const replicas = sum((rs) => rs.obj.status?.replicas ?? 0);
    const updated = current.obj.status?.replicas ?? 0;
    const ready = sum((rs) => rs.obj.status?.readyReplicas ?? 0);
    const available = sum((rs) => rs.obj.status?.availableReplicas ?? 0);
    const previousStatus: Obj = d.obj.status ?? {};
    if ((current.obj.status?.availableReplicas ?? 0) > (d.internal.lastNewAvailable ?? -1) || createdNow) {
      d.internal.lastNewAvailable = current.obj.status?.availableReplicas ?? 0;
      d.internal.progressAt = Date.now();
    }
    const complete = updated === want && replicas === want && available >= want && (current.obj.status?.availableReplicas ?? 0) >= want;
    const deadlineMs = (spec.progressDeadlineSeconds ?? 600) * secondMs;
    const oldProgressing = (previousStatus.conditions ?? []).find((c: Obj) => c.type === 'Progressing');
    const maxUnavailable = Math.floor(want * 0.25);
    let progressing: Obj;
    if (complete) {
      progressing = { type: 'Progressing', status: 'True', reason: 'NewReplicaSetAvailable', message: `ReplicaSet "${current.obj.metadata.name}" has successfully progressed.` };
    } else if (oldProgressing?.reason === 'ProgressDeadlineExceeded' && d.internal.deadlineGeneration === d.obj.metadata.generation) {
      progressing = oldProgressing;
    } else if (Date.now() - d.internal.progressAt > deadlineMs) {
      progressing = { type: 'Progressing', status: 'False', reason: 'ProgressDeadlineExceeded', message: `ReplicaSet "${current.obj.metadata.name}" has timed out progressing.` };
      d.internal.deadlineGeneration = d.obj.metadata.generation;
    } else {
      progressing = { type: 'Progressing', status: 'True', reason: createdNow ? 'NewReplicaSetCreated' : 'ReplicaSetUpdated', message: `ReplicaSet "${current.obj.metadata.name}" is progressing.` };
    }
    const availableCondition =
      available >= want - maxUnavailable
        ? { type: 'Available', status: 'True', reason: 'MinimumReplicasAvailable', message: 'Deployment has minimum availability.' }
        : { type: 'Available', status: 'False', reason: 'MinimumReplicasUnavailable', message: 'Deployment does not have minimum availability.' };
    const status: Obj = {
      observedGeneration: d.obj.metadata.generation,
      replicas,
      updatedReplicas: updated,
      readyReplicas: ready,
      availableReplicas: available,
      conditions: [availableCondition, progressing],
    };
    if (want - available > 0) status.unavailableReplicas = want - available;
    setStatus(d, status);
  };

  const reconcileStatefulSet = (s: Stored) => {
    if (!observed(s)) return;
    const want = s.obj.spec.replicas ?? 1;
    const revision = `${s.obj.metadata.name}-${templateHash(s.obj.spec.template)}`;
    const pods = ownedBy(s, 'Pod');
    const byOrdinal = new Map(pods.map((p) => [Number(p.obj.metadata.name.slice(s.obj.metadata.name.length + 1)), p]));
    for (let i = 0; i < want; i++) {
      if (!byOrdinal.has(i) && [...Array(i).keys()].every((j) => byOrdinal.get(j) && podReady(byOrdinal.get(j)!))) {
        makePod(s, `${s.obj.metadata.name}-${i}`, s.obj.spec.template, { 'controller-revision-hash': revision, 'statefulset.kubernetes.io/pod-name': `${s.obj.metadata.name}-${i}` });
        break;
      }
    }
    for (const [i, p] of byOrdinal) if (i >= want) remove(p, 'Background');
    const live = ownedBy(s, 'Pod');
    for (const p of live) tickPod(p, 'Always');
    // Roll in reverse ordinal order, one pod at a time, once the others are ready.
    const outdated = live.filter((p) => p.obj.metadata.labels['controller-revision-hash'] !== revision).sort((a, b) => b.obj.metadata.name.localeCompare(a.obj.metadata.name));
    if (outdated.length && live.filter((p) => p !== outdated[0]).every(podReady)) remove(outdated[0], 'Background');
    const after = ownedBy(s, 'Pod');
    const updated = after.filter((p) => p.obj.metadata.labels['controller-revision-hash'] === revision);
    const ready = after.filter(podReady).length;
    const done = updated.length === want && after.length === want;
    const previousCurrent = s.obj.status?.currentRevision ?? revision;
    setStatus(s, {
      observedGeneration: s.obj.metadata.generation,
      replicas: after.length,
      readyReplicas: ready,
      availableReplicas: ready,
      currentReplicas: done ? updated.length : after.length - updated.length,
      updatedReplicas: updated.length,
      currentRevision: done ? revision : previousCurrent,
      updateRevision: revision,
      collisionCount: 0,
    });
  };

  const reconcileDaemonSet = (s: Stored) => {
    if (!observed(s)) return;
    const hash = templateHash(s.obj.spec.template);
    const pods = ownedBy(s, 'Pod');
    for (let n = 0; n < nodes; n++) {
      const node = `node-${n}`;
      const onNode = pods.filter((p) => p.obj.spec.nodeName === node);
      if (!onNode.length) makePod(s, `${s.obj.metadata.name}-${suffix()}`, s.obj.spec.template, { 'controller-revision-hash': hash, 'pod-template-generation': String(s.obj.metadata.generation) }, node);
    }
    const live = ownedBy(s, 'Pod');
    for (const p of live) tickPod(p, 'Always');
    const outdated = live.filter((p) => p.obj.metadata.labels['controller-revision-hash'] !== hash);
    if (outdated.length && live.filter((p) => !outdated.includes(p)).every(podReady)) remove(outdated[0], 'Background');
    const after = ownedBy(s, 'Pod');
    const updated = after.filter((p) => p.obj.metadata.labels['controller-revision-hash'] === hash);
    const ready = after.filter(podReady).length;
    setStatus(s, {
      observedGeneration: s.obj.metadata.generation,
      desiredNumberScheduled: nodes,
      currentNumberScheduled: after.length,
      updatedNumberScheduled: updated.length,
      numberReady: ready,
      numberAvailable: updated.filter(podReady).length,
      numberMisscheduled: 0,
      ...(nodes - ready > 0 ? { numberUnavailable: nodes - ready } : {}),
    });
  };

  const reconcileJob = (j: Stored) => {
    if (!observed(j)) return;
    const conditions: Obj[] = j.obj.status?.conditions ?? [];
    if (conditions.some((c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True')) return;
    const pods = ownedBy(j, 'Pod');
    const restartPolicy = j.obj.spec.template?.spec?.restartPolicy ?? 'Never';
    const active = pods.filter((p) => p.obj.status?.phase !== 'Succeeded' && p.obj.status?.phase !== 'Failed');
    const succeeded = pods.filter((p) => p.obj.status?.phase === 'Succeeded').length;
    const failed = pods.filter((p) => p.obj.status?.phase === 'Failed').length;
    const completions = j.obj.spec.completions ?? 1;
    if (succeeded < completions && active.length === 0 && failed <= (j.obj.spec.backoffLimit ?? 6)) {
      makePod(j, `${j.obj.metadata.name}-${suffix()}`, j.obj.spec.template, { 'batch.kubernetes.io/job-name': j.obj.metadata.name });
    }
    for (const p of ownedBy(j, 'Pod')) tickPod(p, restartPolicy);
    const after = ownedBy(j, 'Pod');
    const s2 = after.filter((p) => p.obj.status?.phase === 'Succeeded').length;
    const f2 = after.filter((p) => p.obj.status?.phase === 'Failed').length;
    const a2 = after.length - s2 - f2;
    const status: Obj = { startTime: j.obj.status?.startTime ?? now(), active: a2, succeeded: s2, failed: f2, ready: 0 };
    if (s2 >= completions) status.conditions = [{ type: 'SuccessCriteriaMet', status: 'True' }, { type: 'Complete', status: 'True', lastTransitionTime: now() }];
    else if (f2 > (j.obj.spec.backoffLimit ?? 6)) status.conditions = [{ type: 'FailureTarget', status: 'True' }, { type: 'Failed', status: 'True', reason: 'BackoffLimitExceeded', message: 'Job has reached the specified backoff limit' }];
    setStatus(j, status);
  };

  const timer = setInterval(() => {
    try {
      for (const s of [...store.values()]) {
        if (!store.has(keyOf(s.res, s.obj.metadata.namespace, s.obj.metadata.name))) continue;
        if (s.res.kind === 'Deployment') reconcileDeployment(s);
        else if (s.res.kind === 'StatefulSet') reconcileStatefulSet(s);
        else if (s.res.kind === 'DaemonSet') reconcileDaemonSet(s);
        else if (s.res.kind === 'Job') reconcileJob(s);
        else if (s.res.kind === 'ReplicaSet' && !(s.obj.metadata.ownerReferences ?? []).length) reconcileReplicaSet(s);
      }
    } catch (err) {
      process.stderr.write(`kube-api controller: ${(err as Error).stack}\n`);
    }
  }, stepMs);
  timer.unref();

  // ---- HTTP
  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://kube');
      const query = Object.fromEntries(url.searchParams);
      const record: ApiRequestRecord = { method: req.method ?? '', path: url.pathname, query, contentType: req.headers['content-type'], status: 0 };
      requests.push(record);
      const reply = (status: number, body: unknown, contentType = 'application/json') => {
        record.status = status;
        res.writeHead(status, { 'Content-Type': contentType });
        res.end(typeof body === 'string' ? body : JSON.stringify(body));
      };
      // Authentication.
      let user: string | undefined;
      const auth = req.headers.authorization ?? '';
      if (auth.startsWith('Bearer ')) user = tokens[auth.slice(7)];
      if (!user && useTls) {
        const socket = req.socket as TLSSocket;
        if (socket.authorized) {
          const peer = socket.getPeerCertificate();
          if (peer && peer.subject) user = String(peer.subject.CN);
        }
      }
      record.user = user;
      if (!user) return reply(401, statusBody(401, 'Unauthorized', 'Unauthorized'));
      const fault = faults.find((f) => f.times > 0 && f.match(record));
      if (fault) {
        fault.times -= 1;
        record.status = fault.status;
        res.writeHead(fault.status, { 'Content-Type': 'application/json', ...(fault.retryAfterSeconds !== undefined ? { 'Retry-After': String(fault.retryAfterSeconds) } : {}) });
        const reason = fault.status === 429 ? 'TooManyRequests' : fault.status === 503 ? 'ServiceUnavailable' : 'InternalError';
        return res.end(JSON.stringify(statusBody(fault.status, reason, fault.status === 429 ? 'the server has received too many requests and has asked us to try again later' : 'an error on the server ("injected by the test") has prevented the request from succeeding')));
      }

      // Who am I (kubectl auth whoami), as the real server answers it to any authenticated user.
      if (req.method === 'POST' && url.pathname === '/apis/authentication.k8s.io/v1/selfsubjectreviews') {
        return reply(201, { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview', metadata: {}, status: { userInfo: { username: user, groups: ['system:authenticated'] } } });
      }
      // Discovery.
      if (req.method === 'GET' && url.pathname === '/version') return reply(200, { major: '1', minor: '31', gitVersion: 'v1.31.0-outer-loop-test' });
      if (req.method === 'GET' && url.pathname === '/api') return reply(200, { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: '127.0.0.1' }] });
      if (req.method === 'GET' && url.pathname === '/apis') {
        const groups = [...new Set(RESOURCES.filter((r) => r.group).map((r) => `${r.group}/${r.version}`))].map((gv) => {
          const [name, version] = gv.split('/');
          return { name, versions: [{ groupVersion: gv, version }], preferredVersion: { groupVersion: gv, version } };
        });
        return reply(200, { kind: 'APIGroupList', apiVersion: 'v1', groups });
      }
      const gvMatch = /^\/(?:api\/(v1)|apis\/([^/]+)\/([^/]+))\/?$/.exec(url.pathname);
      if (req.method === 'GET' && gvMatch) {
        const group = gvMatch[1] ? '' : gvMatch[2];
        const version = gvMatch[1] ?? gvMatch[3];
        const list = RESOURCES.filter((r) => r.group === group && r.version === version);
        if (!list.length) return reply(404, statusBody(404, 'NotFound', 'the server could not find the requested resource'));
        const resources = list.flatMap((r) => {
          const entry = { name: r.name, singularName: r.singularName, namespaced: r.namespaced, kind: r.kind, verbs: r.verbs };
          const subs = [{ name: `${r.name}/status`, singularName: '', namespaced: r.namespaced, kind: r.kind, verbs: ['get', 'patch', 'update'] }];
          if (r.kind === 'Pod') subs.push({ name: 'pods/log', singularName: '', namespaced: true, kind: 'Pod', verbs: ['get'] });
          return [entry, ...subs];
        });
        return reply(200, { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: group ? `${group}/${version}` : version, resources });
      }

      // Resources.
      const m = /^\/(?:api\/(v1)|apis\/([^/]+)\/([^/]+))\/(.*)$/.exec(url.pathname);
      if (!m) return reply(404, statusBody(404, 'NotFound', 'the server could not find the requested resource'));
      const group = m[1] ? '' : m[2];
      const version = m[1] ?? m[3];
      let parts = m[4].split('/').filter(Boolean).map(decodeURIComponent);
      let namespace: string | undefined;
      if (parts[0] === 'namespaces' && parts.length >= 3) {
        namespace = parts[1];
        parts = parts.slice(2);
      }
      const [resourceName, name, subresource] = parts;
      const resDef = RESOURCES.find((r) => r.group === group && r.version === version && r.name === resourceName);
      if (!resDef) return reply(404, statusBody(404, 'NotFound', 'the server could not find the requested resource'));
      const watch = query.watch === '1' || query.watch === 'true';
      const verb = req.method === 'GET' ? (name ? 'get' : watch ? 'watch' : 'list') : req.method === 'PATCH' ? 'patch' : req.method === 'DELETE' ? 'delete' : req.method === 'POST' ? 'create' : req.method === 'PUT' ? 'update' : 'unknown';
      const resourceLabel = resDef.group ? `${resDef.name}.${resDef.group}` : resDef.name;
      if (options.deny?.({ user, verb, group: resDef.group, resource: subresource ? `${resDef.name}/${subresource}` : resDef.name, namespace, name })) {
        const target = name ? `${resourceLabel} "${name}"` : resourceLabel;
        const scope = namespace ? ` in the namespace "${namespace}"` : resDef.namespaced ? '' : ' at the cluster scope';
        return reply(403, statusBody(403, 'Forbidden', `${target} is forbidden: User "${user}" cannot ${verb} resource "${subresource ? `${resDef.name}/${subresource}` : resDef.name}" in API group "${resDef.group}"${scope}`, { name, group: resDef.group, kind: resDef.name }));
      }
      const notFound = () => reply(404, statusBody(404, 'NotFound', `${resourceLabel} "${name}" not found`, { name, group: resDef.group, kind: resDef.name }));

      if (req.method === 'GET' && subresource === 'log' && resDef.kind === 'Pod') {
        const pod = getStored(resDef, namespace, name);
        if (!pod) return notFound();
        const container = query.container ?? pod.obj.spec.containers[0].name;
        let text = podLogs(pod, container, query.previous === 'true');
        const tail = Number(query.tailLines);
        if (tail > 0) text = text.split('\n').filter(Boolean).slice(-tail).join('\n') + '\n';
        return reply(200, text, 'text/plain');
      }
      if (req.method === 'GET' && name) {
        const s = getStored(resDef, namespace, name);
        return s ? reply(200, serialize(s)) : notFound();
      }
      const matching = () =>
        [...store.values()].filter((s) => s.res === resDef && (!resDef.namespaced || !namespace || s.obj.metadata.namespace === namespace) && labelMatch(s.obj.metadata.labels, query.labelSelector) && fieldMatch(s.obj, query.fieldSelector));
      if (req.method === 'GET' && !watch) {
        return reply(200, { kind: `${resDef.kind}List`, apiVersion: apiVersionOf(resDef), metadata: { resourceVersion: String(rv) }, items: matching().map(serialize) });
      }
      if (req.method === 'GET' && watch) {
        record.status = 200;
        res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' });
        const from = query.resourceVersion;
        const fieldName = /metadata\.name=([^,]+)/.exec(query.fieldSelector ?? '')?.[1];
        const fits = (e: WatchEventRecord) =>
          e.res === resDef && (!resDef.namespaced || !namespace || e.obj.metadata.namespace === namespace) && (!fieldName || e.obj.metadata.name === fieldName) && labelMatch(e.obj.metadata.labels, query.labelSelector);
        const send = (e: { type: string; object: Obj }) => res.write(`${JSON.stringify(e)}\n`);
        if (from && from !== '0' && Number(from) < compactedBefore) {
          send({ type: 'ERROR', object: statusBody(410, 'Expired', `too old resource version: ${from} (${compactedBefore})`) });
          return res.end();
        }
        if (!from || from === '0') for (const s of matching()) send({ type: 'ADDED', object: serialize(s) });
        else for (const e of history) if (e.rv > Number(from) && fits(e)) send({ type: e.type, object: e.obj });
        const watcher: Watcher = {
          send: (e) => {
            if (fits(e)) send({ type: e.type, object: e.obj });
          },
          end: () => {
            watchers.delete(watcher);
            res.end();
          },
        };
        watchers.add(watcher);
        const timeout = Number(query.timeoutSeconds);
        const t = timeout > 0 ? setTimeout(() => watcher.end(), timeout * 1000) : undefined;
        req.socket.on('close', () => {
          if (t) clearTimeout(t);
          watchers.delete(watcher);
        });
        return;
      }
      const body = Buffer.concat(chunks).toString('utf8');
      if (req.method === 'PATCH') {
        const type = (req.headers['content-type'] ?? '').split(';')[0].trim();
        if (type === 'application/apply-patch+yaml') {
          if (!query.fieldManager) return reply(422, statusBody(422, 'Invalid', 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch'));
          let applied: Obj;
          try {
            applied = YAML.parse(body) as Obj;
          } catch (err) {
            return reply(400, statusBody(400, 'BadRequest', `error decoding YAML: ${(err as Error).message}`));
          }
          const out = apply(resDef, namespace, name, applied, query.fieldManager, query.force === 'true');
          return reply(out.status, out.body);
        }
        if (type === 'application/merge-patch+json') {
          const s = getStored(resDef, namespace, name);
          if (!s) return notFound();
          const patch = JSON.parse(body) as Obj;
          return reply(200, updateAs(s, query.fieldManager ?? 'unknown', (o) => Object.assign(o, mergeApplied(o, patch))));
        }
        return reply(415, statusBody(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml`));
      }
      if (req.method === 'DELETE' && name) {
        const s = getStored(resDef, namespace, name);
        if (!s) return notFound();
        let propagation = resDef.kind === 'Job' ? 'Orphan' : 'Background';
        if (body) {
          try {
            propagation = (JSON.parse(body) as Obj).propagationPolicy ?? propagation;
          } catch {
            // ignore
          }
        }
        if (query.propagationPolicy) propagation = query.propagationPolicy;
        const gone = serialize(s);
        remove(s, propagation);
        return reply(200, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', details: { name, group: resDef.group, kind: resDef.name, uid: gone.metadata.uid } });
      }
      if (req.method === 'POST' && !name) {
        const obj = JSON.parse(body) as Obj;
        if (getStored(resDef, namespace, obj.metadata?.name)) return reply(409, statusBody(409, 'AlreadyExists', `${resourceLabel} "${obj.metadata?.name}" already exists`));
        obj.metadata = { ...(obj.metadata ?? {}), namespace: resDef.namespaced ? namespace : undefined };
        return reply(201, createDirect(obj, query.fieldManager ?? 'unknown'));
      }
      return reply(405, statusBody(405, 'MethodNotAllowed', `the server does not allow this method on the requested resource`));
    });
  };

  const server = useTls
    ? https.createServer({ key: pki!.serverKey, cert: pki!.serverCert, ca: pki!.caCert, requestCert: true, rejectUnauthorized: false }, handler)
    : http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;

  createDirect({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default' } });
  createDirect({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'kube-system' } });

  Object.assign(api, {
    url: `${useTls ? 'https' : 'http'}://127.0.0.1:${port}`,
    caPem: pki?.caCert,
    clientCertificate: (user: string) => {
      if (!pki) throw new Error('client certificates need tls: true');
      return issueClientCert(pki, user);
    },
    requests,
    behave: (match: string | RegExp, behaviour: PodBehaviour) => behaviours.unshift({ match, behaviour }),
    get: (apiVersion: string, kind: string, namespace: string | undefined, name: string) => {
      const r = resByKind(apiVersion, kind);
      const s = r && getStored(r, namespace, name);
      return s ? serialize(s) : undefined;
    },
    list: (apiVersion: string, kind: string, namespace?: string) => {
      const r = resByKind(apiVersion, kind);
      return [...store.values()].filter((s) => s.res === r && (!namespace || s.obj.metadata.namespace === namespace)).map(serialize);
    },
    update: (apiVersion: string, kind: string, namespace: string | undefined, name: string, manager: string, mutate: (obj: Obj) => void) => {
      const r = resByKind(apiVersion, kind);
      const s = r && getStored(r, namespace, name);
      if (!s) throw new Error(`${kind} ${namespace}/${name} not found`);
      return updateAs(s, manager, mutate);
    },
    create: (obj: Obj, manager?: string) => createDirect(obj, manager),
    compact: () => {
      compactedBefore = rv + 1;
      history.length = 0;
    },
    fault: (f: Parameters<KubeApiServer['fault']>[0]) => void faults.push({ ...f, times: f.times ?? 1 }),
    closeWatches: () => {
      for (const w of [...watchers]) w.end();
    },
    stop: async () => {
      clearInterval(timer);
      for (const w of [...watchers]) w.end();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        (server as http.Server).closeAllConnections?.();
      });
      if (pki) fs.rmSync(pki.dir, { recursive: true, force: true });
    },
  });
  return api;
}

export function statusBody(code: number, reason: string, message: string, details?: Obj): Obj {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, ...(details ? { details } : {}), code };
}

/** A kubeconfig text for the server: token, client certificate, or exec plugin user. */
/** A kubeconfig (YAML) for a server at `api.url` trusting `api.caPem` (the double, or the real control plane). */
export function kubeconfigFor(
  api: { url: string; caPem?: string },
  user: { token?: string; clientCertificate?: { cert: string; key: string }; exec?: Obj },
  options: { namespace?: string; insecure?: boolean } = {},
): string {
  const cluster: Obj = { server: api.url };
  if (options.insecure) cluster['insecure-skip-tls-verify'] = true;
  else if (api.caPem) cluster['certificate-authority-data'] = Buffer.from(api.caPem).toString('base64');
  const u: Obj = {};
  if (user.token) u.token = user.token;
  if (user.clientCertificate) {
    u['client-certificate-data'] = Buffer.from(user.clientCertificate.cert).toString('base64');
    u['client-key-data'] = Buffer.from(user.clientCertificate.key).toString('base64');
  }
  if (user.exec) u.exec = user.exec;
  return YAML.stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'test', cluster }],
    users: [{ name: 'deployer', user: u }],
    contexts: [{ name: 'test', context: { cluster: 'test', user: 'deployer', ...(options.namespace ? { namespace: options.namespace } : {}) } }],
    'current-context': 'test',
  });
}

// ---- Azure: AAD token endpoint and the AKS credential actions of ARM ----------------------------

export interface AksDoubleOptions {
  tenant: string;
  clientId: string;
  clientSecret: string;
  subscription: string;
  resourceGroup: string;
  cluster: string;
  /** The kubeconfig listClusterUserCredential returns (listClusterAdminCredential returns `adminKubeconfig`). */
  userKubeconfig: string;
  adminKubeconfig?: string;
  /** Called with each AAD token issued for the AKS server application (so the API server accepts it). */
  onClusterToken?: (token: string) => void;
  /** Identities allowed to list credentials (default: all). */
  allowed?: boolean;
}

export interface AksDouble {
  url: string;
  requests: { method: string; path: string; status: number; scope?: string }[];
  stop(): Promise<void>;
}

/**
 * Azure AD client credentials (POST /<tenant>/oauth2/v2.0/token) and ARM's
 * POST /subscriptions/<s>/resourceGroups/<rg>/providers/Microsoft.ContainerService/managedClusters/<c>/
 * listClusterUserCredential|listClusterAdminCredential?api-version=…, with ARM's error shapes.
 */
export async function startAksDouble(options: AksDoubleOptions): Promise<AksDouble> {
  const armTokens = new Set<string>();
  const requests: AksDouble['requests'] = [];
  let base = '';
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://aks');
      const record: AksDouble['requests'][number] = { method: req.method ?? '', path: url.pathname, status: 0 };
      requests.push(record);
      const reply = (status: number, body: unknown) => {
        record.status = status;
        res.writeHead(status, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      if (req.method === 'POST' && url.pathname === `/${options.tenant}/oauth2/v2.0/token`) {
        const form = Object.fromEntries(new URLSearchParams(Buffer.concat(chunks).toString('utf8')));
        record.scope = form.scope;
        if (form.grant_type !== 'client_credentials' || form.client_id !== options.clientId || form.client_secret !== options.clientSecret) {
          return reply(401, { error: 'invalid_client', error_description: 'AADSTS7000215: Invalid client secret provided.' });
        }
        const token = `aad.${randomBytes(16).toString('hex')}`;
        if (form.scope === `${base}/.default` || form.scope === 'https://management.azure.com/.default') armTokens.add(token);
        else if (/^[0-9a-f-]{36}\/\.default$/.test(form.scope ?? '')) options.onClusterToken?.(token);
        else return reply(400, { error: 'invalid_scope', error_description: `AADSTS1002012: The provided value for scope ${form.scope} is not valid.` });
        return reply(200, { token_type: 'Bearer', expires_in: 3599, access_token: token });
      }
      const m = /^\/subscriptions\/([^/]+)\/resourceGroups\/([^/]+)\/providers\/Microsoft\.ContainerService\/managedClusters\/([^/]+)\/(listClusterUserCredential|listClusterAdminCredential)$/.exec(url.pathname);
      if (req.method === 'POST' && m) {
        const auth = req.headers.authorization ?? '';
        if (!auth.startsWith('Bearer ') || !armTokens.has(auth.slice(7))) return reply(401, { error: { code: 'InvalidAuthenticationToken', message: 'The access token is invalid.' } });
        if (!url.searchParams.get('api-version')) return reply(400, { error: { code: 'MissingApiVersionParameter', message: "The api-version query parameter (?api-version=) is required for all requests." } });
        if (m[1] !== options.subscription || m[2].toLowerCase() !== options.resourceGroup.toLowerCase() || m[3] !== options.cluster) {
          return reply(404, { error: { code: 'ResourceNotFound', message: `The Resource 'Microsoft.ContainerService/managedClusters/${m[3]}' under resource group '${m[2]}' was not found.` } });
        }
        if (options.allowed === false) {
          return reply(403, { error: { code: 'AuthorizationFailed', message: `The client '${options.clientId}' does not have authorization to perform action 'Microsoft.ContainerService/managedClusters/${m[4]}/action'.` } });
        }
        const admin = m[4] === 'listClusterAdminCredential';
        if (admin && !options.adminKubeconfig) return reply(400, { error: { code: 'BadRequest', message: 'Getting static credential is not allowed because this cluster is set to disable local accounts.' } });
        const text = admin ? options.adminKubeconfig! : options.userKubeconfig;
        return reply(200, { kubeconfigs: [{ name: admin ? 'clusterAdmin' : 'clusterUser', value: Buffer.from(text).toString('base64') }] });
      }
      reply(404, { error: { code: 'NotFound', message: `no route ${req.method} ${url.pathname}` } });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url: base,
    requests,
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections?.();
      }),
  };
}
