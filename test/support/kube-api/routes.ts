// URL → handler: authentication (bearer token, or a client certificate: CN = user), injected
// faults, discovery, then a resource's verbs — get, list, watch, pods/log, server-side apply and
// merge patch, create, delete with propagation — each answered as the real server words it.
import type * as http from 'node:http';
import type { TLSSocket } from 'node:tls';
import * as YAML from 'yaml';
import { withBody } from '../http-double';
import { serverSideApply } from './apply';
import { discovery, NOT_FOUND } from './discovery';
import { mergeApplied } from './managed-fields';
import type { PodSimulation } from './pods';
import { apiVersionOf, RESOURCES, statusBody, type Obj, type ResourceDef } from './resources';
import { fieldMatch, labelMatch } from './selectors';
import type { ObjectStore } from './store';
import type { ApiRequestRecord, Fault, KubeApiOptions } from './types';
import { serveWatch } from './watch';

export interface RouteContext {
  store: ObjectStore;
  pods: PodSimulation;
  requests: ApiRequestRecord[];
  faults: Fault[];
  tokens: Record<string, string>;
  deny?: KubeApiOptions['deny'];
  tls: boolean;
}

type Reply = (status: number, body: unknown, contentType?: string) => void;

interface ResourceRequest {
  resDef: ResourceDef;
  namespace?: string;
  name?: string;
  subresource?: string;
}

function authenticate(req: http.IncomingMessage, ctx: RouteContext): string | undefined {
  const auth = req.headers.authorization ?? '';
  const user = auth.startsWith('Bearer ') ? ctx.tokens[auth.slice(7)] : undefined;
  if (user || !ctx.tls) return user;
  const socket = req.socket as TLSSocket;
  if (!socket.authorized) return undefined;
  const peer = socket.getPeerCertificate();
  return peer && peer.subject ? String(peer.subject.CN) : undefined;
}

function sendFault(res: http.ServerResponse, fault: Fault): void {
  res.writeHead(fault.status, { 'Content-Type': 'application/json', ...(fault.retryAfterSeconds !== undefined ? { 'Retry-After': String(fault.retryAfterSeconds) } : {}) });
  const reason = fault.status === 429 ? 'TooManyRequests' : fault.status === 503 ? 'ServiceUnavailable' : 'InternalError';
  const message = fault.status === 429 ? 'the server has received too many requests and has asked us to try again later' : 'an error on the server ("injected by the test") has prevented the request from succeeding';
  res.end(JSON.stringify(statusBody(fault.status, reason, message)));
}

/** `/api/v1/namespaces/<ns>/pods/<name>/log` and the like; undefined for an unknown resource. */
function parseResourcePath(path: string): ResourceRequest | undefined {
  const m = /^\/(?:api\/(v1)|apis\/([^/]+)\/([^/]+))\/(.*)$/.exec(path);
  if (!m) return undefined;
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
  return resDef && { resDef, namespace, name, subresource };
}

export function kubeApiHandler(ctx: RouteContext): http.RequestListener {
  return withBody((req, res, bodyBytes) => {
    const url = new URL(req.url ?? '/', 'http://kube');
    const query = Object.fromEntries(url.searchParams);
    const record: ApiRequestRecord = { method: req.method ?? '', path: url.pathname, query, contentType: req.headers['content-type'], status: 0 };
    ctx.requests.push(record);
    const reply: Reply = (status, body, contentType = 'application/json') => {
      record.status = status;
      res.writeHead(status, { 'Content-Type': contentType });
      res.end(typeof body === 'string' ? body : JSON.stringify(body));
    };
    const user = authenticate(req, ctx);
    record.user = user;
    if (!user) return reply(401, statusBody(401, 'Unauthorized', 'Unauthorized'));
    const fault = ctx.faults.find((f) => f.times > 0 && f.match(record));
    if (fault) {
      fault.times -= 1;
      record.status = fault.status;
      return sendFault(res, fault);
    }
    // Who am I (kubectl auth whoami), as the real server answers it to any authenticated user.
    if (req.method === 'POST' && url.pathname === '/apis/authentication.k8s.io/v1/selfsubjectreviews') {
      return reply(201, { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview', metadata: {}, status: { userInfo: { username: user, groups: ['system:authenticated'] } } });
    }
    const found = req.method === 'GET' ? discovery(url.pathname) : undefined;
    if (found) return reply(found.status, found.body);
    const target = parseResourcePath(url.pathname);
    if (!target) return reply(NOT_FOUND.status, NOT_FOUND.body);
    serveResource(ctx, req, res, reply, { ...target, user, query, record, body: bodyBytes.toString('utf8') });
  });
}

function serveResource(
  ctx: RouteContext,
  req: http.IncomingMessage,
  res: http.ServerResponse,
  reply: Reply,
  r: ResourceRequest & { user: string; query: Record<string, string>; record: ApiRequestRecord; body: string },
): void {
  const { store } = ctx;
  const { resDef, namespace, name, subresource, query } = r;
  const watch = query.watch === '1' || query.watch === 'true';
  const verb = req.method === 'GET' ? (name ? 'get' : watch ? 'watch' : 'list') : req.method === 'PATCH' ? 'patch' : req.method === 'DELETE' ? 'delete' : req.method === 'POST' ? 'create' : req.method === 'PUT' ? 'update' : 'unknown';
  const resourceLabel = resDef.group ? `${resDef.name}.${resDef.group}` : resDef.name;
  const resource = subresource ? `${resDef.name}/${subresource}` : resDef.name;
  if (ctx.deny?.({ user: r.user, verb, group: resDef.group, resource, namespace, name })) {
    const what = name ? `${resourceLabel} "${name}"` : resourceLabel;
    const scope = namespace ? ` in the namespace "${namespace}"` : resDef.namespaced ? '' : ' at the cluster scope';
    return reply(403, statusBody(403, 'Forbidden', `${what} is forbidden: User "${r.user}" cannot ${verb} resource "${resource}" in API group "${resDef.group}"${scope}`, { name, group: resDef.group, kind: resDef.name }));
  }
  const notFound = () => reply(404, statusBody(404, 'NotFound', `${resourceLabel} "${name}" not found`, { name, group: resDef.group, kind: resDef.name }));
  const stored = name ? store.get(resDef, namespace, name) : undefined;

  if (req.method === 'GET' && subresource === 'log' && resDef.kind === 'Pod') {
    if (!stored) return notFound();
    let text = ctx.pods.logs(stored, query.container ?? stored.obj.spec.containers[0].name, query.previous === 'true');
    const tail = Number(query.tailLines);
    if (tail > 0) text = text.split('\n').filter(Boolean).slice(-tail).join('\n') + '\n';
    return reply(200, text, 'text/plain');
  }
  if (req.method === 'GET' && name) return stored ? reply(200, store.serialize(stored)) : notFound();
  const matching = () =>
    store.all().filter((s) => s.res === resDef && (!resDef.namespaced || !namespace || s.obj.metadata.namespace === namespace) && labelMatch(s.obj.metadata.labels, query.labelSelector) && fieldMatch(s.obj, query.fieldSelector));
  if (req.method === 'GET' && !watch) {
    return reply(200, { kind: `${resDef.kind}List`, apiVersion: apiVersionOf(resDef), metadata: { resourceVersion: String(store.resourceVersion) }, items: matching().map((s) => store.serialize(s)) });
  }
  if (req.method === 'GET') {
    r.record.status = 200;
    return serveWatch(store, req, res, { resDef, namespace, query, current: matching() });
  }
  if (req.method === 'PATCH') {
    const type = (req.headers['content-type'] ?? '').split(';')[0].trim();
    if (type === 'application/apply-patch+yaml') {
      if (!query.fieldManager) return reply(422, statusBody(422, 'Invalid', 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch'));
      let applied: Obj;
      try {
        applied = YAML.parse(r.body) as Obj;
      } catch (err) {
        return reply(400, statusBody(400, 'BadRequest', `error decoding YAML: ${(err as Error).message}`));
      }
      const out = serverSideApply(store, resDef, namespace, name!, applied, query.fieldManager, query.force === 'true');
      return reply(out.status, out.body);
    }
    if (type === 'application/merge-patch+json') {
      if (!stored) return notFound();
      const patch = JSON.parse(r.body) as Obj;
      return reply(200, store.update(stored, query.fieldManager ?? 'unknown', (o) => Object.assign(o, mergeApplied(o, patch))));
    }
    return reply(415, statusBody(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml`));
  }
  if (req.method === 'DELETE' && name) {
    if (!stored) return notFound();
    let propagation = resDef.kind === 'Job' ? 'Orphan' : 'Background';
    if (r.body) {
      try {
        propagation = (JSON.parse(r.body) as Obj).propagationPolicy ?? propagation;
      } catch {
        // a body that is not DeleteOptions: the default propagation
      }
    }
    if (query.propagationPolicy) propagation = query.propagationPolicy;
    const uid = stored.obj.metadata.uid;
    store.remove(stored, propagation);
    return reply(200, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', details: { name, group: resDef.group, kind: resDef.name, uid } });
  }
  if (req.method === 'POST' && !name) {
    const obj = JSON.parse(r.body) as Obj;
    if (store.get(resDef, namespace, obj.metadata?.name)) return reply(409, statusBody(409, 'AlreadyExists', `${resourceLabel} "${obj.metadata?.name}" already exists`));
    obj.metadata = { ...(obj.metadata ?? {}), namespace: resDef.namespaced ? namespace : undefined };
    return reply(201, store.create(obj, query.fieldManager ?? 'unknown'));
  }
  return reply(405, statusBody(405, 'MethodNotAllowed', `the server does not allow this method on the requested resource`));
}
