// A small HTTP client over node:http/https with keep-alive agents (one pair per client), a body size
// limit, a per-request timeout and cancellation. Registry round trips are short and many: reusing
// connections matters more than anything else for speed. TLS options (a cluster CA, a client
// certificate, an SNI name) apply to the https agent; `stream` answers at the headers, for watches.
import * as http from 'node:http';
import * as https from 'node:https';
import { abortError } from './abort';

export interface HttpRequest {
  method: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  url: string;
  headers?: Record<string, string>;
  body?: string;
  /** Until the whole body is read; for `stream`, until the headers. */
  timeoutMs?: number;
  /** Not used by `stream`. */
  maxBodyBytes?: number;
  signal?: AbortSignal;
}

export interface HttpResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  url: string;
}

/** A response whose body is read by the caller (who destroys it to stop early). */
export interface HttpStreamResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: http.IncomingMessage;
  url: string;
}

/** TLS settings of the https agent: trusted CAs, a client certificate, the SNI / verified name. */
export type TlsOptions = Pick<https.AgentOptions, 'ca' | 'cert' | 'key' | 'servername' | 'rejectUnauthorized'>;

/** A network-level failure (no HTTP status): refused, reset, timed out, name not resolved. */
export class NetworkError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'NetworkError';
    this.code = code;
  }
}

const DEFAULT_MAX_BODY = 8 * 1024 * 1024;

export class HttpTransport {
  private readonly httpAgent: http.Agent;
  private readonly httpsAgent: https.Agent;

  constructor(options: { tls?: TlsOptions } = {}) {
    // Only the settings given: an explicit `rejectUnauthorized: undefined` would turn verification off.
    const tls = Object.fromEntries(Object.entries(options.tls ?? {}).filter(([, v]) => v !== undefined)) as TlsOptions;
    this.httpAgent = new http.Agent({ keepAlive: true, maxSockets: 16 });
    this.httpsAgent = new https.Agent({ keepAlive: true, maxSockets: 16, ...tls });
  }

  request(req: HttpRequest): Promise<HttpResponse> {
    const maxBody = req.maxBodyBytes ?? DEFAULT_MAX_BODY;
    return this.send<HttpResponse>(req, (res, url, finish) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > maxBody) {
          // Settle first: destroying the response emits 'aborted' at once, which would report ECONNRESET.
          finish(new NetworkError('EBODYTOOLARGE', `response from ${url.host} is larger than ${maxBody} bytes`));
          res.destroy();
          return;
        }
        chunks.push(chunk);
      });
      res.on('end', () => finish(undefined, { status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), url: url.toString() }));
      res.on('error', (err) => finish(toNetworkError(err)));
      res.on('aborted', () => finish(new NetworkError('ECONNRESET', 'connection reset while reading the response')));
    });
  }

  /**
   * Answers once the headers arrive (the timeout runs until then); the caller reads the body and
   * destroys it to stop early. Aborting the signal later destroys the body too.
   */
  stream(req: HttpRequest): Promise<HttpStreamResponse> {
    return this.send<HttpStreamResponse>(req, (res, url, finish) => {
      finish(undefined, { status: res.statusCode ?? 0, headers: res.headers, body: res, url: url.toString() });
      const signal = req.signal;
      if (!signal) return;
      const onAbort = () => res.destroy();
      signal.addEventListener('abort', onAbort, { once: true });
      res.once('close', () => signal.removeEventListener('abort', onAbort));
    });
  }

  private send<T>(req: HttpRequest, onResponse: (res: http.IncomingMessage, url: URL, finish: (err: Error | undefined, value?: T) => void) => void): Promise<T> {
    const url = new URL(req.url);
    const isHttps = url.protocol === 'https:';
    const agent = isHttps ? this.httpsAgent : this.httpAgent;
    const send = isHttps ? https.request : http.request;
    const headers: Record<string, string> = { 'User-Agent': 'container-outer-loop', ...req.headers };
    if (req.body !== undefined) headers['Content-Length'] = String(Buffer.byteLength(req.body));

    return new Promise<T>((resolve, reject) => {
      if (req.signal?.aborted) {
        reject(abortError(req.signal));
        return;
      }
      let settled = false;
      const finish = (err: Error | undefined, value?: T) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        req.signal?.removeEventListener('abort', onAbort);
        if (err) reject(err);
        else resolve(value as T);
      };
      const request = send(url, { method: req.method, headers, agent }, (res) => onResponse(res, url, finish));
      const timeoutMs = req.timeoutMs ?? 30_000;
      const timer = setTimeout(() => {
        request.destroy(new NetworkError('ETIMEDOUT', `no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      const onAbort = () => {
        request.destroy();
        finish(abortError(req.signal!));
      };
      req.signal?.addEventListener('abort', onAbort, { once: true });
      request.on('error', (err) => finish(toNetworkError(err)));
      request.end(req.body);
    });
  }

  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }
}

function toNetworkError(err: Error): Error {
  if (err instanceof NetworkError) return err;
  const code = (err as NodeJS.ErrnoException).code;
  if (code) return new NetworkError(code, err.message, { cause: err });
  if (/socket hang up/i.test(err.message)) return new NetworkError('ECONNRESET', err.message, { cause: err });
  return err;
}

/** Network errors worth another attempt. DNS "not found" is not transient; EAI_AGAIN is. */
export function isTransientNetworkError(err: unknown): err is NetworkError {
  return (
    err instanceof NetworkError &&
    ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'ENETUNREACH', 'EHOSTUNREACH', 'ECONNABORTED', 'UND_ERR_SOCKET'].includes(
      err.code,
    )
  );
}

export function header(res: HttpResponse, name: string): string | undefined {
  const value = res.headers[name.toLowerCase()];
  return Array.isArray(value) ? value.join(', ') : value;
}

/** The response body parsed as JSON when it is an object (or array); undefined for anything else. */
export function jsonObject(res: HttpResponse): Record<string, unknown> | undefined {
  try {
    const value = JSON.parse(res.body.toString('utf8')) as unknown;
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** A URL for a log line: no query string (it may carry an account name) and no userinfo. */
export function safeUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return '<url>';
  }
}

/** Runs `fn` with the given transport, or with a transport of its own that is closed afterwards. */
export async function withTransport<T>(given: HttpTransport | undefined, fn: (transport: HttpTransport) => Promise<T>): Promise<T> {
  const transport = given ?? new HttpTransport();
  try {
    return await fn(transport);
  } finally {
    if (!given) transport.close();
  }
}
