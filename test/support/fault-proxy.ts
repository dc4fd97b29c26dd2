// An HTTP proxy in front of a real registry that injects faults from a plan, then forwards.
//
// For each request the plan entries are tried in order; the first one that still has uses left
// (`times`, default 1) and whose `match` accepts the request answers it instead of the registry:
// with `status`, `headers` (e.g. Retry-After) and a registry-style JSON error body (or `body`),
// after `delayMs`; `reset: true` destroys the connection instead of answering. The request body is
// read to its end first, as a real front end would. Everything else is forwarded as-is, bodies
// streamed both ways, headers kept (Location, WWW-Authenticate, Docker-Content-Digest ...).
// The Host header is kept, so the registry builds its Location URLs for the proxy; absolute
// Location headers that still name the target are rewritten to the proxy anyway.
import * as http from 'node:http';
import type * as net from 'node:net';

export interface FaultPlanEntry {
  status: number;
  headers?: Record<string, string>;
  /** Uses of this entry; default 1. Infinity for "always". */
  times?: number;
  match?: (req: http.IncomingMessage) => boolean;
  /** Response body; default a registry error document for the status. */
  body?: string;
  /** Wait this long before answering. */
  delayMs?: number;
  /** Drop the connection without an answer (a connection reset as the client sees it). */
  reset?: boolean;
}

export interface FaultProxyRecord {
  method: string;
  url: string;
  /** The status the client got (the planned one, or the registry's); 0 for a reset. */
  status: number;
  injected: boolean;
}

export interface FaultProxy {
  /** '127.0.0.1:PORT' */
  host: string;
  url: string;
  /** Requests received, injected or forwarded. */
  requests(): number;
  log(): FaultProxyRecord[];
  /** Plan entries not used up yet. */
  remaining(): number;
  stop(): Promise<void>;
}

const ERROR_CODES: Record<number, string> = {
  400: 'UNSUPPORTED',
  401: 'UNAUTHORIZED',
  403: 'DENIED',
  404: 'NOT_FOUND',
  408: 'UNKNOWN',
  429: 'TOOMANYREQUESTS',
  500: 'UNKNOWN',
  502: 'UNAVAILABLE',
  503: 'UNAVAILABLE',
  504: 'UNAVAILABLE',
};

export async function startFaultProxy(target: string, plan: FaultPlanEntry[]): Promise<FaultProxy> {
  const [targetHost, targetPortText] = splitHostPort(target);
  const targetPort = Number(targetPortText);
  const entries = plan.map((e) => ({ ...e, left: e.times ?? 1 }));
  const log: FaultProxyRecord[] = [];
  let proxyHost = '';
  const agent = new http.Agent({ keepAlive: true });

  const server = http.createServer((req, res) => {
    const record: FaultProxyRecord = { method: req.method ?? '?', url: req.url ?? '', status: 0, injected: false };
    log.push(record);
    const entry = entries.find((e) => e.left > 0 && (!e.match || e.match(req)));
    if (entry) {
      entry.left--;
      record.injected = true;
      req.resume();
      req.on('end', () => {
        setTimeout(() => {
          if (entry.reset) {
            req.socket.destroy();
            return;
          }
          const code = ERROR_CODES[entry.status] ?? 'UNKNOWN';
          const body =
            entry.body ??
            (entry.status >= 400
              ? JSON.stringify({ errors: [{ code, message: `injected by the fault proxy: ${entry.status}`, detail: null }] })
              : '');
          record.status = entry.status;
          res.writeHead(entry.status, {
            ...(body ? { 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(body)) } : {}),
            'Docker-Distribution-Api-Version': 'registry/2.0',
            ...entry.headers,
          });
          res.end(body);
        }, entry.delayMs ?? 0);
      });
      return;
    }

    const upstream = http.request(
      { host: targetHost, port: targetPort, method: req.method, path: req.url, headers: req.headers, agent },
      (up) => {
        record.status = up.statusCode ?? 0;
        const headers = { ...up.headers };
        const location = headers.location;
        if (typeof location === 'string') headers.location = rewriteLocation(location, target, proxyHost);
        res.writeHead(up.statusCode ?? 502, up.statusMessage, headers);
        up.pipe(res);
        up.on('error', () => res.destroy());
      },
    );
    upstream.on('error', (err) => {
      if (!res.headersSent) {
        record.status = 502;
        res.writeHead(502, { 'Content-Type': 'text/plain' });
        res.end(`fault proxy: ${err.message}`);
      } else {
        res.destroy();
      }
    });
    req.pipe(upstream);
    req.on('error', () => upstream.destroy());
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as net.AddressInfo;
  proxyHost = `127.0.0.1:${port}`;
  return {
    host: proxyHost,
    url: `http://${proxyHost}`,
    requests: () => log.length,
    log: () => log.map((r) => ({ ...r })),
    remaining: () => entries.reduce((n, e) => n + (Number.isFinite(e.left) ? e.left : 1), 0),
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
        agent.destroy();
      }),
  };
}

function rewriteLocation(location: string, target: string, proxyHost: string): string {
  try {
    const u = new URL(location);
    if (u.host === target) {
      u.host = proxyHost;
      return u.toString();
    }
  } catch {
    /* relative: already goes through the proxy */
  }
  return location;
}

function splitHostPort(hostPort: string): [string, string] {
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(hostPort);
  if (!m) throw new Error(`fault proxy target must be host:port, got ${hostPort}`);
  return [m[1], m[2]];
}
