// A small Kubernetes API client over the registry's HttpTransport (no @kubernetes/client-node):
// TLS from the kubeconfig (CA, client certificate, insecure-skip-tls-verify, SNI name), bearer
// tokens from static tokens, token files or exec plugins (credentials.ts), discovery, server-side
// apply, and watch streams. Every request, and the opening of every watch, goes through the one
// retry loop (../retry.ts) with the registry's rule for HTTP (../registry/retry.ts), under a total
// deadline and the task's cancellation; a 401 renews the credential once. Keep-alive, per-attempt
// timeouts and the body size limit are the transport's.
// Errors are Kubernetes `Status` objects turned into messages that say what to do; a 401 or 403
// names the connection input and, for 403, the verb, resource and namespace that were refused.
import type * as http from 'node:http';
import { buffer } from 'node:stream/consumers';
import { OuterLoopError } from '../errors';
import { abortError } from '../util/abort';
import { HttpRequest, HttpResponse, HttpTransport, NetworkError } from '../util/http';
import { DEFAULT_RETRY, DeadlinePassed, RetriesExhausted, retry } from '../util/retry';
import { RetryableAnswer, isRetryableStatus, isTransientHttpFailure } from '../util/http-retry';
import { Credentials, KubeCredentials } from './credentials';
import type { ResolvedKubeconfig } from './kubeconfig';
import { WatchEnd, readWatchStream } from './watch-stream';
import { KubeObject, describe, splitApiVersion } from './objects';

export interface ApiResource {
  name: string;
  kind: string;
  namespaced: boolean;
  verbs: string[];
  group: string;
  version: string;
}

export interface KubeStatus {
  kind?: string;
  status?: string;
  message?: string;
  reason?: string;
  code?: number;
  details?: { name?: string; group?: string; kind?: string; causes?: { reason?: string; message?: string; field?: string }[] };
}

/** The API server answered with an error status, or could not be reached. */
export class KubeApiError extends OuterLoopError {
  readonly status?: number;
  readonly reason?: string;
  readonly details?: KubeStatus['details'];
  readonly code?: string;
  constructor(message: string, info: { status?: number; reason?: string; details?: KubeStatus['details']; code?: string; cause?: unknown } = {}) {
    super(message, { cause: info.cause });
    this.status = info.status;
    this.reason = info.reason;
    this.details = info.details;
    this.code = info.code;
  }
}

export interface RequestOptions {
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  contentType?: string;
  timeoutMs?: number;
  /** Say what the request is for in errors: "apply Deployment web". */
  what?: string;
  /** Answer these statuses instead of throwing (e.g. 404 for "does it exist?"). */
  allow?: number[];
}

export interface ClientOptions {
  setSecret: (s: string) => void;
  log?: { debug(message: string): void };
  signal?: AbortSignal;
  /** Per-attempt timeout (default 30 s): until the whole answer is read; for a watch, until its headers. */
  timeoutMs?: number;
  /** Attempts for transient failures (default 3). */
  attempts?: number;
  /** First retry delay (default 500 ms; doubles). */
  retryDelayMs?: number;
  /** Total time of one request over every attempt and wait (default 2 min). A watch has its own length instead. */
  deadlineMs?: number;
  env?: NodeJS.ProcessEnv;
  execTimeoutMs?: number;
}

export interface WatchEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: KubeObject & { metadata: KubeObject['metadata'] & { resourceVersion?: string } };
}

const USER_AGENT = 'container-outer-loop/1 (KubernetesDeploy)';
const MAX_BODY = 64 * 1024 * 1024;

export class KubeClient {
  private readonly credentials: KubeCredentials;
  private transport?: { key: string; transport: HttpTransport };
  private readonly groupVersions = new Map<string, Promise<ApiResource[] | undefined>>();
  readonly server: URL;

  constructor(
    readonly config: ResolvedKubeconfig,
    private readonly options: ClientOptions,
  ) {
    this.server = new URL(config.cluster.server);
    this.credentials = new KubeCredentials(config, { setSecret: options.setSecret, log: options.log, env: options.env, execTimeoutMs: options.execTimeoutMs });
  }

  close(): void {
    this.transport?.transport.close();
    this.transport = undefined;
  }

  /** Where the client connects, for messages: "https://10.0.0.1:6443 (context aks-prod, user clusterUser)". */
  describeTarget(): string {
    return `${this.server.origin} (context '${this.config.contextName}', user '${this.config.userName}')`;
  }

  // ---- requests ------------------------------------------------------------------------------

  async request<T = unknown>(method: HttpRequest['method'], path: string, options: RequestOptions = {}): Promise<{ status: number; body: T; headers: http.IncomingHttpHeaders }> {
    const body = options.body === undefined ? undefined : typeof options.body === 'string' ? options.body : JSON.stringify(options.body);
    const url = this.url(path, options.query).toString();
    const res = await this.send(method, path, Date.now() + (this.options.deadlineMs ?? 120_000), (credentials, signal) =>
      this.transportFor(credentials).request({
        method,
        url,
        headers: this.headers(credentials, body === undefined ? undefined : (options.contentType ?? 'application/json')),
        body,
        timeoutMs: options.timeoutMs ?? this.timeoutMs,
        maxBodyBytes: MAX_BODY,
        signal,
      }),
    );
    const parsed = parseBody(res.body.toString('utf8'));
    if (res.status >= 400 && !(options.allow ?? []).includes(res.status)) throw this.errorFor(res.status, parsed, method, path, options.what);
    return { status: res.status, body: parsed as T, headers: res.headers };
  }

  /**
   * One round trip by `open`, under the one retry loop: a retryable answer (408, 429, 5xx but 501
   * and 505) is tried again after its Retry-After or a backoff, and so is a transient network
   * error, until the attempts or `deadline` run out; then the last answer is returned. A 401 renews
   * a renewable credential (exec plugin, token file) once and starts over within the same deadline:
   * the one place the client re-authenticates. Not reached, or cancelled, is thrown as `failure` says.
   */
  private async send<R extends HttpResponse>(method: string, path: string, deadline: number, open: (credentials: Credentials, signal: AbortSignal) => Promise<R>): Promise<R> {
    const attempts = this.options.attempts ?? 3;
    const withCredentials = async (credentials: Credentials): Promise<R> => {
      try {
        return await retry(
          async ({ signal }) => {
            const res = await open(credentials, signal);
            if (isRetryableStatus(res.status)) throw new RetryableAnswer(res);
            return res;
          },
          {
            retry: { ...DEFAULT_RETRY, attempts, baseDelayMs: this.options.retryDelayMs ?? 500, maxRetryAfterMs: 10_000 },
            deadline,
            signal: this.options.signal,
            isTransient: isTransientHttpFailure,
            onRetry: (err, attempt, delay) => {
              const reason = err instanceof RetryableAnswer ? `answered ${err.res.status}` : (err as NetworkError).code;
              this.options.log?.debug(`kubernetes: ${method} ${path}: ${reason}; attempt ${attempt + 1} of ${attempts} in ${delay} ms`);
            },
          },
        );
      } catch (err) {
        if (!(err instanceof RetriesExhausted)) throw this.failure(err, method, path);
        const last = err.last;
        if (last instanceof RetryableAnswer) return last.res as R; // what `open` answered
        throw this.failure(last instanceof DeadlinePassed ? new NetworkError('ETIMEDOUT', 'no answer before the time limit', { cause: last }) : last, method, path);
      }
    };
    const res = await withCredentials(await this.credentials.get());
    if (res.status !== 401 || !this.credentials.canRefresh) return res;
    this.options.log?.debug('kubernetes: 401, renewing the credential once');
    return withCredentials(await this.credentials.get(true));
  }

  private get timeoutMs(): number {
    return this.options.timeoutMs ?? 30_000;
  }

  /** One transport per client certificate: an exec plugin that returns a new one gets a new transport. */
  private transportFor(credentials: Credentials): HttpTransport {
    const key = `${credentials.clientCertificate ?? ''}|${credentials.clientKey ? 'key' : ''}`;
    if (this.transport && this.transport.key === key) return this.transport.transport;
    this.transport?.transport.close();
    const cluster = this.config.cluster;
    const transport = new HttpTransport({
      tls: { ca: cluster.ca, cert: credentials.clientCertificate, key: credentials.clientKey, rejectUnauthorized: !cluster.insecureSkipTlsVerify, servername: cluster.tlsServerName },
    });
    this.transport = { key, transport };
    return transport;
  }

  private headers(credentials: Credentials, contentType?: string): Record<string, string> {
    const headers: Record<string, string> = { 'User-Agent': USER_AGENT, Accept: 'application/json' };
    if (credentials.token) headers.Authorization = `Bearer ${credentials.token}`;
    else if (credentials.basic) headers.Authorization = `Basic ${credentials.basic}`;
    if (contentType) headers['Content-Type'] = contentType;
    return headers;
  }

  private url(path: string, query?: RequestOptions['query']): URL {
    const url = new URL(this.server.toString());
    url.pathname = `${url.pathname.replace(/\/+$/, '')}${path}`;
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    return url;
  }

  /** What a failed round trip is thrown as: the task's cancellation, or a message that says what to check. */
  private failure(err: unknown, method: string, path: string): Error {
    if (err instanceof NetworkError && err.code === 'EBODYTOOLARGE') return new KubeApiError(`The API server's answer to ${method} ${path} is larger than ${MAX_BODY} bytes.`);
    if (!(err instanceof NetworkError) && this.options.signal?.aborted) return abortError(this.options.signal);
    return this.networkError(err instanceof Error ? err : new Error(String(err)), method, path);
  }

  private networkError(err: Error, method: string, path: string): KubeApiError {
    const code = (err as NodeJS.ErrnoException).code ?? '';
    const target = this.describeTarget();
    let hint = '';
    if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS|HOSTNAME|ALTNAME/i.test(code) || /certificate|altname/i.test(err.message)) {
      hint = ` The server's TLS certificate was not accepted (${err.message}). Check the cluster's certificate-authority in the connection, or its tls-server-name.`;
    } else if (code === 'ECONNREFUSED' || code === 'EHOSTUNREACH' || code === 'ENETUNREACH' || code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
      hint = ` Check the server URL of ${this.config.source} and that the agent can reach it (firewall, private cluster, VPN).`;
    } else if (code === 'ETIMEDOUT') {
      hint = ` The API server did not answer in time. Check that the agent can reach it.`;
    }
    return new KubeApiError(`Cannot reach the Kubernetes API server at ${target}: ${code || err.message} on ${method} ${path}.${hint}`, { code: code || 'ENETWORK', cause: err });
  }

  private errorFor(status: number, body: unknown, method: string, path: string, what?: string): KubeApiError {
    const s = (typeof body === 'object' && body !== null ? body : {}) as KubeStatus;
    const message = s.message ?? (typeof body === 'string' ? body.slice(0, 300) : `HTTP ${status}`);
    const doing = what ?? `${method} ${path}`;
    const info = { status, reason: s.reason, details: s.details };
    if (status === 401) {
      return new KubeApiError(
        `The Kubernetes API server refused the credentials of ${this.config.source} (401 Unauthorized) for ${doing}. The token or certificate is invalid or has expired: renew it in the service connection${this.config.user.exec ? ', or check what the exec plugin returns' : ''}.`,
        info,
      );
    }
    if (status === 403) {
      return new KubeApiError(
        `The Kubernetes API server forbade ${doing} (403 Forbidden): ${message}. Grant this permission to the account of ${this.config.source} (a Role or ClusterRole bound to it), or deploy to a namespace it may use.`,
        info,
      );
    }
    return new KubeApiError(`${capitalize(doing)} failed: ${message} (${status}${s.reason ? ` ${s.reason}` : ''}).`, info);
  }

  // ---- discovery -----------------------------------------------------------------------------

  /** The resources a group version serves, or undefined when the cluster does not serve it. */
  resources(apiVersion: string): Promise<ApiResource[] | undefined> {
    let pending = this.groupVersions.get(apiVersion);
    if (!pending) {
      const { group, version } = splitApiVersion(apiVersion);
      const path = group ? `/apis/${group}/${version}` : `/api/${version}`;
      pending = this.request<{ resources?: Omit<ApiResource, 'group' | 'version'>[] }>('GET', path, { allow: [404], what: `discovery of ${apiVersion}` }).then((res) =>
        res.status === 404 ? undefined : (res.body.resources ?? []).map((r) => ({ ...r, group, version })),
      );
      pending.catch(() => this.groupVersions.delete(apiVersion));
      this.groupVersions.set(apiVersion, pending);
    }
    return pending;
  }

  /** The resource for a kind; a clear error when the cluster does not know it. */
  async resourceFor(apiVersion: string, kind: string, where?: string): Promise<ApiResource> {
    const list = await this.resources(apiVersion);
    const at = where ? ` (${where})` : '';
    if (!list) {
      throw new KubeApiError(
        `The cluster does not serve apiVersion '${apiVersion}' for kind '${kind}'${at}. ${deprecatedHint(apiVersion, kind) ?? 'Install the CRD or API that provides it, or fix the apiVersion.'}`,
        { status: 404, reason: 'NotFound' },
      );
    }
    const resource = list.find((r) => r.kind === kind && !r.name.includes('/'));
    if (!resource) {
      throw new KubeApiError(`The cluster does not know kind '${kind}' in apiVersion '${apiVersion}'${at}. Check the spelling of the kind, or install the CRD that defines it.`, { status: 404, reason: 'NotFound' });
    }
    return resource;
  }

  /** The URL path of a resource (collection when name is undefined). */
  resourcePath(resource: ApiResource, namespace: string | undefined, name?: string, subresource?: string): string {
    const base = resource.group ? `/apis/${resource.group}/${resource.version}` : `/api/${resource.version}`;
    const ns = resource.namespaced && namespace ? `/namespaces/${encodeURIComponent(namespace)}` : '';
    return `${base}${ns}/${resource.name}${name ? `/${encodeURIComponent(name)}` : ''}${subresource ? `/${subresource}` : ''}`;
  }

  async pathFor(apiVersion: string, kind: string, namespace: string | undefined, name?: string): Promise<string> {
    return this.resourcePath(await this.resourceFor(apiVersion, kind), namespace, name);
  }

  // ---- verbs ---------------------------------------------------------------------------------

  async get<T extends KubeObject = KubeObject>(apiVersion: string, kind: string, namespace: string | undefined, name: string): Promise<T | undefined> {
    const res = await this.request<T>('GET', await this.pathFor(apiVersion, kind, namespace, name), { allow: [404], what: `get ${kind} ${namespace ? `${namespace}/` : ''}${name}` });
    return res.status === 404 ? undefined : res.body;
  }

  async list<T extends KubeObject = KubeObject>(apiVersion: string, kind: string, namespace: string | undefined, query: { labelSelector?: string; fieldSelector?: string } = {}): Promise<{ items: T[]; resourceVersion?: string }> {
    const res = await this.request<{ items?: T[]; metadata?: { resourceVersion?: string } }>('GET', await this.pathFor(apiVersion, kind, namespace), {
      query,
      what: `list ${kind} in ${namespace ?? 'the cluster'}`,
    });
    return { items: res.body.items ?? [], resourceVersion: res.body.metadata?.resourceVersion };
  }

  /** Server-side apply: PATCH with application/apply-patch+yaml (the body is JSON, which is YAML). */
  async apply<T extends KubeObject = KubeObject>(object: KubeObject, options: { fieldManager: string; force: boolean }): Promise<T> {
    const resource = await this.resourceFor(object.apiVersion, object.kind);
    const path = this.resourcePath(resource, object.metadata.namespace, object.metadata.name);
    const res = await this.request<T>('PATCH', path, {
      query: { fieldManager: options.fieldManager, force: options.force ? 'true' : undefined },
      body: object,
      contentType: 'application/apply-patch+yaml',
      what: `server-side apply of ${describe(object)}`,
    });
    return res.body;
  }

  async delete(apiVersion: string, kind: string, namespace: string | undefined, name: string, propagationPolicy: 'Foreground' | 'Background' | 'Orphan' = 'Background'): Promise<boolean> {
    const res = await this.request('DELETE', await this.pathFor(apiVersion, kind, namespace, name), {
      body: { kind: 'DeleteOptions', apiVersion: 'v1', propagationPolicy },
      allow: [404],
      what: `delete ${kind} ${namespace ? `${namespace}/` : ''}${name}`,
    });
    return res.status !== 404;
  }

  async podLogs(namespace: string, pod: string, container: string, options: { tailLines: number; previous?: boolean }): Promise<string | undefined> {
    try {
      const res = await this.request<string>('GET', `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(pod)}/log`, {
        query: { container, tailLines: options.tailLines, previous: options.previous ? 'true' : undefined, limitBytes: 64 * 1024 },
        allow: [400, 404],
        what: `logs of pod ${pod}`,
      });
      if (res.status >= 400) return undefined;
      return typeof res.body === 'string' ? res.body : JSON.stringify(res.body);
    } catch {
      return undefined;
    }
  }

  /**
   * A watch stream (`?watch=1`) from `resourceVersion`. `onEvent` returns true to stop. Resolves
   * with 'stopped', 'closed' (the server ended it: re-list and watch again), 'gone' (410: the
   * version is too old), or 'timeout' (`timeoutMs` passed). Opening it is retried like any request,
   * but within the watch's own length rather than a request's deadline.
   */
  async watch(path: string, query: Record<string, string | number | undefined>, onEvent: (event: WatchEvent) => boolean | void, timeoutMs: number): Promise<WatchEnd> {
    const end = Date.now() + timeoutMs;
    const url = this.url(path, { ...query, watch: 1, allowWatchBookmarks: 'true', timeoutSeconds: Math.max(1, Math.ceil(timeoutMs / 1000)) }).toString();
    let opened: HttpResponse & { stream?: http.IncomingMessage };
    try {
      opened = await this.send('GET', path, end, async (credentials, signal) => {
        const res = await this.transportFor(credentials).stream({ method: 'GET', url, headers: this.headers(credentials), timeoutMs: Math.min(timeoutMs, this.timeoutMs), signal });
        // A refusal is read whole, like any answer; a stream is handed on unread.
        return res.status < 400 ? { ...res, body: Buffer.alloc(0), stream: res.body } : { ...res, body: await buffer(res.body) };
      });
    } catch (err) {
      if (Date.now() >= end && !this.options.signal?.aborted) return 'timeout';
      throw err;
    }
    if (opened.status === 410) return 'gone';
    if (!opened.stream) throw this.errorFor(opened.status, parseBody(opened.body.toString('utf8')), 'GET', path, `watch ${path}`);
    return readWatchStream(opened.stream, onEvent, end - Date.now(), {
      signal: this.options.signal,
      failed: (status) => new KubeApiError(`Watch of ${path} failed: ${status.message ?? 'error'}`, { status: status.code, reason: status.reason }),
    });
  }
}

function parseBody(text: string): unknown {
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

/** The old API versions kompose 1.18 and old manifests emit, with their replacements. */
function deprecatedHint(apiVersion: string, kind: string): string | undefined {
  const current: Record<string, string> = {
    Deployment: 'apps/v1',
    DaemonSet: 'apps/v1',
    StatefulSet: 'apps/v1',
    ReplicaSet: 'apps/v1',
    Ingress: 'networking.k8s.io/v1',
    NetworkPolicy: 'networking.k8s.io/v1',
    CronJob: 'batch/v1',
    HorizontalPodAutoscaler: 'autoscaling/v2',
    PodDisruptionBudget: 'policy/v1',
  };
  if (current[kind] && current[kind] !== apiVersion && /beta|alpha|^extensions\//.test(apiVersion)) {
    return `${kind} moved to '${current[kind]}'; '${apiVersion}' was removed from current Kubernetes. Change the apiVersion (the fields may need updating too).`;
  }
  return undefined;
}

/** matchLabels and matchExpressions as a label selector string (for list and watch). */
export function selectorString(selector: unknown): string {
  if (typeof selector !== 'object' || selector === null) return '';
  const s = selector as { matchLabels?: Record<string, string>; matchExpressions?: { key: string; operator: string; values?: string[] }[] };
  const parts = Object.entries(s.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`);
  for (const e of s.matchExpressions ?? []) {
    if (e.operator === 'In') parts.push(`${e.key} in (${(e.values ?? []).join(',')})`);
    else if (e.operator === 'NotIn') parts.push(`${e.key} notin (${(e.values ?? []).join(',')})`);
    else if (e.operator === 'Exists') parts.push(e.key);
    else if (e.operator === 'DoesNotExist') parts.push(`!${e.key}`);
  }
  return parts.join(',');
}
