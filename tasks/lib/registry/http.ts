// A small HTTP client over node:http/https with keep-alive agents (one pair per client), a body size
// limit, a per-request timeout and cancellation. Registry round trips are short and many: reusing
// connections matters more than anything else for speed.
import * as http from 'node:http';
import * as https from 'node:https';

export interface HttpRequest {
  method: 'GET' | 'HEAD' | 'POST';
  url: string;
  headers?: Record<string, string>;
  body?: string;
  timeoutMs?: number;
  maxBodyBytes?: number;
  signal?: AbortSignal;
}

export interface HttpResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  url: string;
}

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
  private readonly httpAgent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  private readonly httpsAgent = new https.Agent({ keepAlive: true, maxSockets: 16 });

  request(req: HttpRequest): Promise<HttpResponse> {
    const url = new URL(req.url);
    const isHttps = url.protocol === 'https:';
    const agent = isHttps ? this.httpsAgent : this.httpAgent;
    const send = isHttps ? https.request : http.request;
    const maxBody = req.maxBodyBytes ?? DEFAULT_MAX_BODY;
    const headers: Record<string, string> = { 'User-Agent': 'container-outer-loop', ...req.headers };
    if (req.body !== undefined) headers['Content-Length'] = String(Buffer.byteLength(req.body));

    return new Promise<HttpResponse>((resolve, reject) => {
      if (req.signal?.aborted) {
        reject(req.signal.reason instanceof Error ? req.signal.reason : new Error('aborted'));
        return;
      }
      let settled = false;
      const finish = (err: Error | undefined, res?: HttpResponse) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        req.signal?.removeEventListener('abort', onAbort);
        if (err) reject(err);
        else resolve(res as HttpResponse);
      };
      const request = send(url, { method: req.method, headers, agent }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > maxBody) {
            res.destroy();
            finish(new NetworkError('EBODYTOOLARGE', `response from ${url.host} is larger than ${maxBody} bytes`));
            return;
          }
          chunks.push(chunk);
        });
        res.on('end', () =>
          finish(undefined, { status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), url: url.toString() }),
        );
        res.on('error', (err) => finish(toNetworkError(err)));
        res.on('aborted', () => finish(new NetworkError('ECONNRESET', 'connection reset while reading the response')));
      });
      const timeoutMs = req.timeoutMs ?? 30_000;
      const timer = setTimeout(() => {
        request.destroy(new NetworkError('ETIMEDOUT', `no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      const onAbort = () => {
        request.destroy();
        finish(req.signal?.reason instanceof Error ? req.signal.reason : new Error('aborted'));
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
