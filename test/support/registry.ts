// Real CNCF Distribution registries (Debian package docker-registry, `docker-registry serve`) on
// 127.0.0.1, for the integration tests: plain, htpasswd (Basic) and token (Bearer) auth.
//
// Token mode runs a small in-process token issuer that follows the Docker token protocol:
//   GET  /token?service=test-registry&scope=repository:NAME:pull,push[&scope=...]  (Basic auth)
//   POST /token  (OAuth2 form: grant_type=password, username, password, service, scope)
// It answers {"token", "access_token", "expires_in": 300, "issued_at"} with an RS256 JWT whose
// header carries the issuer's self-signed certificate in `x5c`; the registry trusts that
// certificate through `auth.token.rootcertbundle`.
// Decisions (strict on purpose, so that clients are tested for doing the right thing):
//   - the test user gets every action it asks for (pull, push, delete, *), on any repository, and
//     registry:catalog:*; a wrong password → 401;
//   - anonymous requests (no Authorization) → 401, unless startRegistry('token', { anonymousPull:
//     true }), in which case they get pull-only tokens (like a public repository on Docker Hub);
//   - `service` must be present and equal to the challenge's service (test-registry), else 400;
//   - tokenRequests() counts every request that reached /token, successful or not.
// The password is random per registry and contains punctuation (`$ : @ ' " % & !` and a space)
// so that quoting and escaping mistakes in the code under test show up.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { closeServer, freePort, listenLocal } from './http-double';
import { makeCa } from './pki';

export type RegistryAuthMode = 'none' | 'htpasswd' | 'token';

export interface TestRegistry {
  /** '127.0.0.1:PORT' */
  host: string;
  /** 'http://127.0.0.1:PORT' */
  url: string;
  mode: RegistryAuthMode;
  username?: string;
  password?: string;
  /** The registry's storage (filesystem driver root), for tests that look at or corrupt blobs. */
  storageDir: string;
  /** token mode: the issuer's realm and the registry's service name. */
  realm?: string;
  service?: string;
  stop(): Promise<void>;
  /** token mode: how many requests reached the token issuer. */
  tokenRequests?: () => number;
  /** token mode: what the issuer was asked and what it answered, in order. */
  tokenLog?: () => TokenRequestRecord[];
}

export interface TokenRequestRecord {
  method: string;
  user?: string;
  service?: string;
  scopes: string[];
  status: number;
}

export interface RegistryOptions {
  /** token mode: give anonymous requests pull-only tokens instead of 401. */
  anonymousPull?: boolean;
}

export const TEST_USERNAME = 'ci-user';
export const TOKEN_SERVICE = 'test-registry';
export const TOKEN_ISSUER = 'test-issuer';
const READY_TIMEOUT_MS = 15_000;

const running = new Set<ChildProcess>();
let exitHookInstalled = false;

export async function startRegistry(mode: RegistryAuthMode, options: RegistryOptions = {}): Promise<TestRegistry> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `col-registry-${mode}-`));
  fs.chmodSync(dir, 0o700);
  const storageDir = path.join(dir, 'storage');
  fs.mkdirSync(storageDir);
  const cleanups: (() => Promise<void>)[] = [];
  const cleanup = async () => {
    for (const fn of cleanups.reverse()) await fn().catch(() => {});
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    const password = mode === 'none' ? undefined : randomPassword();
    const auth: string[] = [];
    let issuer: TokenIssuer | undefined;
    if (mode === 'htpasswd') {
      const htpasswdFile = path.join(dir, 'htpasswd');
      fs.writeFileSync(htpasswdFile, bcryptLine(TEST_USERNAME, password!), { mode: 0o600 });
      auth.push('auth:', '  htpasswd:', '    realm: test-registry', `    path: ${htpasswdFile}`);
    } else if (mode === 'token') {
      issuer = await startTokenIssuer(dir, { username: TEST_USERNAME, password: password!, anonymousPull: !!options.anonymousPull });
      cleanups.push(() => issuer!.stop());
      auth.push(
        'auth:',
        '  token:',
        `    realm: ${issuer.realm}`,
        `    service: ${TOKEN_SERVICE}`,
        `    issuer: ${TOKEN_ISSUER}`,
        `    rootcertbundle: ${issuer.certFile}`,
      );
    }

    const { child, host } = await launchRegistry(dir, storageDir, auth);
    cleanups.push(() => stopChild(child));
    const url = `http://${host}`;
    return {
      host,
      url,
      mode,
      username: mode === 'none' ? undefined : TEST_USERNAME,
      password,
      storageDir,
      realm: issuer?.realm,
      service: issuer ? TOKEN_SERVICE : undefined,
      tokenRequests: issuer ? () => issuer!.log.length : undefined,
      tokenLog: issuer ? () => issuer!.log.map((r) => ({ ...r, scopes: [...r.scopes] })) : undefined,
      stop: cleanup,
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

function randomPassword(): string {
  return `pw-${crypto.randomBytes(9).toString('base64url')}$:@'" %&!`;
}

/** A bcrypt htpasswd line made by `htpasswd -niB` (password on stdin). */
function bcryptLine(user: string, password: string): string {
  const out = spawnSync('htpasswd', ['-niB', user], { input: password, encoding: 'utf8' });
  if (out.error || out.status !== 0) {
    throw new Error(`htpasswd failed (install the Debian package apache2-utils): ${out.error?.message ?? out.stderr}`);
  }
  const line = out.stdout.trim();
  if (!line.startsWith(`${user}:$2`)) throw new Error(`htpasswd printed something unexpected: ${line}`);
  return `${line}\n`;
}

async function launchRegistry(dir: string, storageDir: string, auth: string[]): Promise<{ child: ChildProcess; host: string }> {
  installExitHook();
  let lastError: Error | undefined;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const host = `127.0.0.1:${port}`;
    const config = path.join(dir, 'config.yml');
    fs.writeFileSync(
      config,
      [
        'version: 0.1',
        'log:',
        '  level: warn',
        '  accesslog:',
        '    disabled: true',
        'storage:',
        '  filesystem:',
        `    rootdirectory: ${storageDir}`,
        '  delete:',
        '    enabled: true',
        '  maintenance:',
        '    uploadpurging:',
        '      enabled: false',
        'http:',
        `  addr: ${host}`,
        `  secret: ${crypto.randomBytes(16).toString('hex')}`,
        ...auth,
        '',
      ].join('\n'),
    );
    let child: ChildProcess;
    try {
      child = spawn('docker-registry', ['serve', config], { stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (err) {
      throw new Error(`Cannot run docker-registry (install the Debian package docker-registry): ${(err as Error).message}`);
    }
    running.add(child);
    let output = '';
    const keep = (c: Buffer) => {
      output = (output + c.toString('utf8')).slice(-8_000);
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    let exited: string | undefined;
    child.on('error', (err) => (exited = `could not start: ${err.message}`));
    child.on('exit', (code, signal) => {
      running.delete(child);
      exited = `exited with ${signal ?? `code ${code}`}`;
    });

    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (Date.now() < deadline && !exited) {
      try {
        const res = await fetch(`http://${host}/v2/`, { signal: AbortSignal.timeout(1_000) });
        await res.arrayBuffer();
        if (res.status === 200 || res.status === 401) return { child, host };
      } catch {
        /* not yet */
      }
      await sleep(50);
    }
    await stopChild(child);
    lastError = new Error(`docker-registry on ${host} did not answer /v2/ (${exited ?? 'timed out'}):\n${output}`);
    if (!/address already in use/.test(output)) break;
  }
  throw lastError!;
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of running) child.kill('SIGKILL');
  });
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
  running.delete(child);
}

// ---------------------------------------------------------------- the token issuer

interface TokenIssuer {
  realm: string;
  certFile: string;
  log: TokenRequestRecord[];
  stop(): Promise<void>;
}

async function startTokenIssuer(
  dir: string,
  opts: { username: string; password: string; anonymousPull: boolean },
): Promise<TokenIssuer> {
  // The issuer's self-signed certificate: a test CA of its own (pki.ts) whose key signs the tokens.
  const ca = makeCa(path.join(dir, 'issuer'), TOKEN_ISSUER);
  const privateKey = crypto.createPrivateKey(fs.readFileSync(ca.caKey));
  const certFile = ca.caCert;
  const certDer = new crypto.X509Certificate(ca.caPem).raw.toString('base64');
  const header = b64url(JSON.stringify({ alg: 'RS256', typ: 'JWT', x5c: [certDer] }));

  const log: TokenRequestRecord[] = [];
  const server = http.createServer((req, res) => {
    void handle(req, res).catch((err: Error) => {
      if (!res.headersSent) reply(res, 500, { details: err.message });
    });
  });

  const reply = (res: http.ServerResponse, status: number, body: object, headers: Record<string, string> = {}) => {
    res.writeHead(status, { 'Content-Type': 'application/json', ...headers });
    res.end(JSON.stringify(body));
  };

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://issuer');
    if (url.pathname !== '/token') return reply(res, 404, { details: 'not found' });
    const record: TokenRequestRecord = { method: req.method ?? '?', scopes: [], status: 0 };
    log.push(record);
    const done = (status: number, body: object, headers?: Record<string, string>) => {
      record.status = status;
      reply(res, status, body, headers);
    };

    let params: URLSearchParams;
    let user: string | undefined;
    let password: string | undefined;
    if (req.method === 'GET') {
      params = url.searchParams;
      const authz = req.headers.authorization;
      if (authz) {
        const m = /^Basic\s+(\S+)$/i.exec(authz);
        if (!m) return done(401, { details: 'unsupported authorization scheme' }, { 'WWW-Authenticate': 'Basic realm="test-issuer"' });
        const decoded = Buffer.from(m[1], 'base64').toString('utf8');
        const colon = decoded.indexOf(':');
        user = colon < 0 ? decoded : decoded.slice(0, colon);
        password = colon < 0 ? '' : decoded.slice(colon + 1);
      }
    } else if (req.method === 'POST') {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      params = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
      if (params.get('grant_type') !== 'password') {
        return done(400, { error: 'unsupported_grant_type', error_description: 'only grant_type=password is supported' });
      }
      user = params.get('username') ?? '';
      password = params.get('password') ?? '';
    } else {
      return done(405, { details: 'method not allowed' });
    }

    const service = params.get('service') ?? undefined;
    const scopes = params.getAll('scope').flatMap((s) => s.split(' ')).filter(Boolean);
    record.user = user;
    record.service = service;
    record.scopes = scopes;

    if (user === undefined) {
      if (!opts.anonymousPull) {
        return done(401, { details: 'authentication required' }, { 'WWW-Authenticate': 'Basic realm="test-issuer"' });
      }
    } else if (!safeEqual(user, opts.username) || !safeEqual(password ?? '', opts.password)) {
      return done(401, { details: 'incorrect username or password' }, { 'WWW-Authenticate': 'Basic realm="test-issuer"' });
    }
    if (service !== TOKEN_SERVICE) {
      return done(400, { details: `unknown service ${JSON.stringify(service ?? null)}: expected ${TOKEN_SERVICE}` });
    }

    const access: { type: string; name: string; actions: string[] }[] = [];
    for (const scope of scopes) {
      const first = scope.indexOf(':');
      const last = scope.lastIndexOf(':');
      if (first < 0 || last === first) return done(400, { details: `malformed scope ${scope}` });
      const type = scope.slice(0, first).replace(/\(.*\)$/, '');
      const name = scope.slice(first + 1, last);
      const asked = scope.slice(last + 1).split(',').filter(Boolean);
      const allowed = user === undefined ? ['pull'] : ['pull', 'push', 'delete', '*'];
      const actions = type === 'repository' || (type === 'registry' && user !== undefined) ? asked.filter((a) => allowed.includes(a)) : [];
      const existing = access.find((a) => a.type === type && a.name === name);
      if (existing) existing.actions = [...new Set([...existing.actions, ...actions])];
      else access.push({ type, name, actions });
    }

    const now = Math.floor(Date.now() / 1000);
    const claims = {
      iss: TOKEN_ISSUER,
      sub: user ?? '',
      aud: TOKEN_SERVICE,
      exp: now + 300,
      nbf: now - 10,
      iat: now,
      jti: crypto.randomBytes(12).toString('hex'),
      access,
    };
    const signingInput = `${header}.${b64url(JSON.stringify(claims))}`;
    const signature = crypto.sign('sha256', Buffer.from(signingInput), privateKey).toString('base64url');
    const token = `${signingInput}.${signature}`;
    const issuedAt = new Date(now * 1000).toISOString();
    if (req.method === 'POST') {
      return done(200, { access_token: token, expires_in: 300, issued_at: issuedAt, scope: scopes.join(' ') });
    }
    return done(200, { token, access_token: token, expires_in: 300, issued_at: issuedAt });
  }

  const port = await listenLocal(server);
  return {
    realm: `http://127.0.0.1:${port}/token`,
    certFile,
    log,
    stop: () => closeServer(server),
  };
}

function b64url(s: string): string {
  return Buffer.from(s, 'utf8').toString('base64url');
}

function safeEqual(a: string, b: string): boolean {
  const ha = crypto.createHash('sha256').update(a).digest();
  const hb = crypto.createHash('sha256').update(b).digest();
  return crypto.timingSafeEqual(ha, hb);
}
