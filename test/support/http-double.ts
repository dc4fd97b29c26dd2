// What every HTTP double in test/support does the same way: read a request's whole body before
// answering it, listen on 127.0.0.1 on a free port, and stop with the open connections closed
// (keep-alive clients would hold `close` open otherwise). And a free port for a real server the
// tests start (a registry, etcd).
import type * as http from 'node:http';
import * as net from 'node:net';

/** A request listener that is called once the request's body has arrived. */
export function withBody(handle: (req: http.IncomingMessage, res: http.ServerResponse, body: Buffer) => void): http.RequestListener {
  return (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => handle(req, res, Buffer.concat(chunks)));
  };
}

/** Listens on 127.0.0.1 on a free port, and gives the port. */
export async function listenLocal(server: net.Server): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return (server.address() as net.AddressInfo).port;
}

/** A port on 127.0.0.1 that was free a moment ago. */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  server.unref();
  const port = await listenLocal(server);
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Closes a server and the connections still open to it. */
export function closeServer(server: http.Server): Promise<void> {
  return new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
