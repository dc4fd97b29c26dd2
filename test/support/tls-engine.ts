// A TLS-protected Docker endpoint on 127.0.0.1 for the TCP+TLS deployments: a node TLS server that
// requires a client certificate signed by the test CA (mutual TLS, as `dockerd --tlsverify` does)
// and pipes each accepted connection to the test engine's unix socket.
//
// Why not a second dockerd with --tlsverify: a second engine needs its own data root, exec root,
// bridge and iptables chains, and takes seconds to start; the TLS handshake, certificate checks
// and the Engine API behind them are what the deploy task meets on a real TLS host, and this gives
// exactly that in milliseconds. (Every HTTP request, hijacked or not, is bytes over the tunnel.)
// Certificates are made with openssl: a CA, a server certificate for 127.0.0.1/localhost, a client
// certificate (extendedKeyUsage clientAuth); plus a second, untrusted CA with its own client
// certificate, for the mismatch cases.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tls from 'node:tls';

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
    const ssl = (args: string[]) => {
      const r = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`openssl ${args.join(' ')} failed: ${r.stderr}`);
    };
    const makeCa = (name: string) => {
      ssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2', '-subj', `/CN=${name}`, '-keyout', `${name}-key.pem`, '-out', `${name}.pem`]);
    };
    const makeCert = (ca: string, name: string, ext: string) => {
      fs.writeFileSync(path.join(dir, `${name}.ext`), ext);
      ssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', `/CN=${name}`, '-keyout', `${name}-key.pem`, '-out', `${name}.csr`]);
      ssl(['x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.pem`, '-CAkey', `${ca}-key.pem`, '-CAcreateserial', '-days', '2', '-extfile', `${name}.ext`, '-out', `${name}.pem`]);
    };
    makeCa('test-ca');
    makeCa('rogue-ca');
    makeCert('test-ca', 'server', 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n');
    makeCert('test-ca', 'client', 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n');
    makeCert('rogue-ca', 'rogue-client', 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n');
    const read = (f: string) => fs.readFileSync(path.join(dir, f), 'utf8');

    let refused = 0;
    const sockets = new Set<net.Socket>();
    const server = tls.createServer({ key: read('server-key.pem'), cert: read('server.pem'), ca: read('test-ca.pem'), requestCert: true, rejectUnauthorized: true }, (client) => {
      sockets.add(client);
      const upstream = net.connect(engineSocket);
      sockets.add(upstream);
      client.pipe(upstream).pipe(client);
      const close = () => {
        client.destroy();
        upstream.destroy();
        sockets.delete(client);
        sockets.delete(upstream);
      };
      client.on('error', close);
      upstream.on('error', close);
      client.on('close', close);
      upstream.on('close', close);
    });
    server.on('tlsClientError', () => refused++);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const { port } = server.address() as net.AddressInfo;
    return {
      host: '127.0.0.1',
      port,
      url: `tcp://127.0.0.1:${port}`,
      client: { ca: read('test-ca.pem'), cert: read('client.pem'), key: read('client-key.pem') },
      rogue: { ca: read('rogue-ca.pem'), cert: read('rogue-client.pem'), key: read('rogue-client-key.pem') },
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
