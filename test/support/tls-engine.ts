// A TLS-protected Docker endpoint on 127.0.0.1 for the TCP+TLS deployments: a node TLS server that
// requires a client certificate signed by the test CA (mutual TLS, as `dockerd --tlsverify` does)
// and pipes each accepted connection to the test engine's unix socket.
//
// Why not a second dockerd with --tlsverify: a second engine needs its own data root, exec root,
// bridge and iptables chains, and takes seconds to start; the TLS handshake, certificate checks
// and the Engine API behind them are what the deploy task meets on a real TLS host, and this gives
// exactly that in milliseconds. (Every HTTP request, hijacked or not, is bytes over the tunnel.)
// Certificates come from the test PKI (pki.ts): a CA, a server certificate for 127.0.0.1/localhost,
// a client certificate (extendedKeyUsage clientAuth); plus a second, untrusted CA with its own
// client certificate, for the mismatch cases.
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { listenLocal } from './http-double';
import { issueCert, makeCa } from './pki';

export interface TlsCredentials {
  ca: string;
  cert: string;
  key: string;
}

export interface TlsEngine {
  host: string;
  port: number;
  /** tcp://127.0.0.1:PORT */
  url: string;
  /** The CA that signed the server certificate, and a client certificate it trusts. */
  client: TlsCredentials;
  /** A CA and client certificate the endpoint does not trust (and that did not sign the server). */
  rogue: TlsCredentials;
  /** Connections the endpoint refused in the handshake. */
  refused(): number;
  stop(): Promise<void>;
}

export async function startTlsEngine(engineSocket: string): Promise<TlsEngine> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'col-tls-'));
  fs.chmodSync(dir, 0o700);
  try {
    const ca = makeCa(path.join(dir, 'trusted'), 'test-ca');
    const rogueCa = makeCa(path.join(dir, 'rogue'), 'rogue-ca');
    const serverCert = issueCert(ca, 'server', { commonName: 'server', sans: ['127.0.0.1', 'localhost'] });
    const client = issueCert(ca, 'client', { commonName: 'client' });
    const rogue = issueCert(rogueCa, 'rogue-client', { commonName: 'rogue-client' });

    let refused = 0;
    const sockets = new Set<net.Socket>();
    const server = tls.createServer({ key: serverCert.keyPem, cert: serverCert.certPem, ca: ca.caPem, requestCert: true, rejectUnauthorized: true }, (conn) => {
      sockets.add(conn);
      const upstream = net.connect(engineSocket);
      sockets.add(upstream);
      conn.pipe(upstream).pipe(conn);
      const close = () => {
        conn.destroy();
        upstream.destroy();
        sockets.delete(conn);
        sockets.delete(upstream);
      };
      conn.on('error', close);
      upstream.on('error', close);
      conn.on('close', close);
      upstream.on('close', close);
    });
    server.on('tlsClientError', () => refused++);
    const port = await listenLocal(server);
    return {
      host: '127.0.0.1',
      port,
      url: `tcp://127.0.0.1:${port}`,
      client: { ca: ca.caPem, cert: client.certPem, key: client.keyPem },
      rogue: { ca: rogueCa.caPem, cert: rogue.certPem, key: rogue.keyPem },
      refused: () => refused,
      async stop() {
        for (const s of sockets) s.destroy();
        await new Promise<void>((resolve) => server.close(() => resolve()));
        fs.rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}
