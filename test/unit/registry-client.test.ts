// Protocol edge cases of the registry client against a tiny in-process registry that follows the
// distribution and token specs closely enough, and injects 429/503/resets on demand. The real
// registries (distribution with none/htpasswd/token auth) are in test/integration/registry.test.ts.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { RegistryError } from '../../tasks/lib/errors';
import { parseReference } from '../../tasks/lib/reference';
import { parseChallenges, pickChallenge } from '../../tasks/lib/registry/challenge';
import { RegistryClient } from '../../tasks/lib/registry/client';
import { errorDetails } from '../../tasks/lib/registry/errors';
import { MEDIA_TYPES, pickPlatform } from '../../tasks/lib/registry/manifest';
import { DEFAULT_RETRY, backoffDelay } from '../../tasks/lib/util/retry';
import { isRetryableStatus, parseRetryAfter } from '../../tasks/lib/util/http-retry';

const sha256 = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const FAST_RETRY = { attempts: 4, baseDelayMs: 5, maxDelayMs: 20, maxRetryAfterMs: 2_000 };

type Fault = { status?: number; headers?: Record<string, string>; reset?: boolean; match?: (req: http.IncomingMessage) => boolean };

interface FakeOptions {
  auth: 'none' | 'basic' | 'bearer';
  user?: string;
  password?: string;
  /** Seconds; omitted from the token response when undefined. */
  expiresIn?: number;
  /** HEAD answers without Docker-Content-Digest. */
  headWithoutDigest?: boolean;
  /** Anonymous token requests get pull tokens. */
  anonymousPull?: boolean;
  /** Token responses use access_token only. */
  accessTokenOnly?: boolean;
}

interface Manifest {
  body: Buffer;
  mediaType: string;
}

/** A small registry: manifests by path and reference, optional Basic or Bearer auth, fault queue. */
async function startFake(options: FakeOptions) {
  const manifests = new Map<string, Manifest>();
  const tokens = new Map<string, Set<string>>(); // token → scopes
  const faults: Fault[] = [];
  const log: { method: string; url: string; authorization?: string; status: number }[] = [];
  const tokenLog: { method: string; scopes: string[]; user?: string; body?: string }[] = [];
  let counter = 0;

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://fake');
      const entry = { method: req.method ?? '', url: url.pathname + url.search, authorization: req.headers.authorization, status: 0 };
      log.push(entry);
      const send = (status: number, headers: Record<string, string>, body?: string | Buffer) => {
        entry.status = status;
        res.writeHead(status, headers);
        res.end(req.method === 'HEAD' ? undefined : body);
      };
      const faultIndex = faults.findIndex((f) => !f.match || f.match(req));
      if (faultIndex >= 0) {
        const [fault] = faults.splice(faultIndex, 1);
        if (fault.reset) {
          entry.status = 0;
          req.socket.destroy();
          return;
        }
        const body = JSON.stringify({ errors: [{ code: fault.status === 429 ? 'TOOMANYREQUESTS' : 'UNAVAILABLE', message: 'injected' }] });
        return send(fault.status ?? 503, { 'Content-Type': 'application/json', ...fault.headers }, body);
      }

      if (url.pathname === '/token') {
        const scopes = url.searchParams.getAll('scope');
        let user: string | undefined;
        let password: string | undefined;
        const body = Buffer.concat(chunks).toString('utf8');
        if (req.method === 'POST') {
          const form = new URLSearchParams(body);
          scopes.push(...(form.get('scope') ?? '').split(' ').filter(Boolean));
          if (form.get('grant_type') !== 'refresh_token' || form.get('refresh_token') !== 'identity-token-123') {
            tokenLog.push({ method: 'POST', scopes, body });
            return send(401, { 'Content-Type': 'application/json' }, JSON.stringify({ error: 'invalid_grant', error_description: 'bad refresh token' }));
          }
          user = options.user;
          password = options.password;
        } else if (req.headers.authorization) {
          const decoded = Buffer.from(req.headers.authorization.replace(/^Basic /, ''), 'base64').toString('utf8');
          user = decoded.slice(0, decoded.indexOf(':'));
          password = decoded.slice(decoded.indexOf(':') + 1);
        }
        tokenLog.push({ method: req.method ?? '', scopes, user, body: req.method === 'POST' ? body : undefined });
        if (user === undefined && !options.anonymousPull) {
          return send(401, { 'Content-Type': 'application/json' }, JSON.stringify({ details: 'authentication required' }));
        }
        if (user !== undefined && (user !== options.user || password !== options.password)) {
          return send(401, { 'Content-Type': 'application/json' }, JSON.stringify({ details: 'incorrect username or password' }));
        }
        if (url.searchParams.get('service') !== 'fake-registry' && req.method === 'GET') {
          return send(400, { 'Content-Type': 'application/json' }, JSON.stringify({ details: 'wrong service' }));
        }
        const token = `tok-${++counter}-${Math.random().toString(36).slice(2)}`;
        tokens.set(token, new Set(scopes));
        const answer: Record<string, unknown> = options.accessTokenOnly ? { access_token: token } : { token, access_token: token };
        if (options.expiresIn !== undefined) answer.expires_in = options.expiresIn;
        return send(200, { 'Content-Type': 'application/json' }, JSON.stringify(answer));
      }

      const m = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(url.pathname);
      if (!m) return send(404, { 'Content-Type': 'application/json' }, JSON.stringify({ errors: [{ code: 'NOT_FOUND', message: 'no route' }] }));
      const [, repo, reference] = m;
      const scope = `repository:${repo}:pull`;
      const authz = req.headers.authorization ?? '';
      const challenge = () => {
        if (options.auth === 'basic') return 'Basic realm="fake"';
        return `Bearer realm="http://${host}/token",service="fake-registry",scope="${scope}"`;
      };
      if (options.auth === 'basic') {
        const expected = `Basic ${Buffer.from(`${options.user}:${options.password}`).toString('base64')}`;
        if (authz !== expected) {
          return send(401, { 'Content-Type': 'application/json', 'WWW-Authenticate': challenge() }, JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] }));
        }
      } else if (options.auth === 'bearer') {
        const token = authz.replace(/^Bearer /, '');
        if (!tokens.get(token)?.has(scope)) {
          return send(401, { 'Content-Type': 'application/json', 'WWW-Authenticate': challenge() }, JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] }));
        }
      }
      if (![...manifests.keys()].some((k) => k.startsWith(`${repo}@`))) {
        return send(404, { 'Content-Type': 'application/json' }, JSON.stringify({ errors: [{ code: 'NAME_UNKNOWN', message: 'repository name not known to registry' }] }));
      }
      const manifest = manifests.get(`${repo}@${reference}`);
      if (!manifest) {
        return send(404, { 'Content-Type': 'application/json' }, JSON.stringify({ errors: [{ code: 'MANIFEST_UNKNOWN', message: 'manifest unknown' }] }));
      }
      const headers: Record<string, string> = { 'Content-Type': manifest.mediaType, 'Content-Length': String(manifest.body.length) };
      if (!(req.method === 'HEAD' && options.headWithoutDigest)) headers['Docker-Content-Digest'] = sha256(manifest.body);
      entry.status = 200;
      res.writeHead(200, headers);
      res.end(req.method === 'HEAD' ? undefined : manifest.body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    host,
    log,
    tokenLog,
    faults,
    revokeTokens: () => tokens.clear(),
    /** Stores a manifest under its digest and the tags given; returns the digest. */
    put(repo: string, tags: string[], manifest: object, mediaType: string, rawBody?: Buffer): string {
      const body = rawBody ?? Buffer.from(JSON.stringify(manifest));
      const digest = sha256(body);
      for (const ref of [digest, ...tags]) manifests.set(`${repo}@${ref}`, { body, mediaType });
      return digest;
    },
    /** Serves `body` under `reference` (e.g. a digest it does not hash to). */
    putRaw(repo: string, reference: string, body: Buffer, mediaType: string) {
      manifests.set(`${repo}@${reference}`, { body, mediaType });
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

type Fake = Awaited<ReturnType<typeof startFake>>;

function imageManifest(seed: string) {
  return {
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.ociManifest,
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(`config-${seed}`), size: 10 },
    layers: [],
  };
}

function client(extra: Partial<ConstructorParameters<typeof RegistryClient>[0]> = {}) {
  const secrets: string[] = [];
  const debug: string[] = [];
  const c = new RegistryClient({
    retry: FAST_RETRY,
    random: () => 0.5,
    setSecret: (s) => secrets.push(s),
    log: { debug: (m) => debug.push(m) },
    ...extra,
  });
  return { c, secrets, debug };
}

const ref = (fake: Fake, text: string) => parseReference(`${fake.host}/${text}`);

describe('WWW-Authenticate parsing', () => {
  it('reads Bearer parameters, quoted values with escapes and commas, and several challenges', () => {
    const challenges = parseChallenges(
      'Basic realm="a, \\"quoted\\" realm", Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull,push"',
    );
    assert.equal(challenges.length, 2);
    assert.deepEqual(challenges[0], { scheme: 'basic', params: { realm: 'a, "quoted" realm' } });
    assert.deepEqual(pickChallenge(challenges), {
      scheme: 'bearer',
      params: { realm: 'https://auth.example.com/token', service: 'registry.example.com', scope: 'repository:a/b:pull,push' },
    });
  });

  it('prefers Bearer, falls back to Basic, and ignores schemes it cannot answer', () => {
    assert.equal(pickChallenge(parseChallenges('Negotiate abc==, Basic realm="x"'))?.scheme, 'basic');
    assert.equal(pickChallenge(parseChallenges('Negotiate abc==')), undefined);
    assert.equal(pickChallenge(parseChallenges(undefined)), undefined);
  });
});

describe('backoff arithmetic', () => {
  it('doubles up to the cap with equal jitter, and Retry-After wins (capped)', () => {
    const opts = { ...DEFAULT_RETRY };
    assert.equal(backoffDelay(1, opts, undefined, () => 0), 125);
    assert.equal(backoffDelay(1, opts, undefined, () => 0.999), 249);
    assert.equal(backoffDelay(3, opts, undefined, () => 0), 500);
    assert.equal(backoffDelay(20, opts, undefined, () => 0), 4_000); // 8 s cap, half fixed
    assert.equal(backoffDelay(1, opts, 1_000, () => 0), 1_000);
    assert.equal(backoffDelay(1, opts, 3_600_000, () => 0), 30_000);
  });

  it('reads Retry-After as seconds or an HTTP date', () => {
    assert.equal(parseRetryAfter('3'), 3_000);
    const now = Date.parse('2024-01-01T00:00:00Z');
    assert.equal(parseRetryAfter('Mon, 01 Jan 2024 00:00:05 GMT', now), 5_000);
    assert.equal(parseRetryAfter('soon'), undefined);
  });

  it('retries exactly 408, 429 and 5xx except 501/505', () => {
    assert.deepEqual([400, 401, 403, 404, 408, 429, 500, 501, 502, 503, 504, 505].filter(isRetryableStatus), [408, 429, 500, 502, 503, 504]);
  });

  it('reads registry and OAuth2 error bodies', () => {
    const res = (body: object) => ({ status: 400, headers: {}, url: '', body: Buffer.from(JSON.stringify(body)) });
    assert.deepEqual(errorDetails(res({ errors: [{ code: 'DENIED', message: 'requested access to the resource is denied' }] })), {
      code: 'DENIED',
      message: 'requested access to the resource is denied',
    });
    assert.deepEqual(errorDetails(res({ error: 'invalid_grant', error_description: 'expired' })), { code: 'INVALID_GRANT', message: 'expired' });
  });
});

describe('platform selection', () => {
  const entries = [
    { digest: 'a', platform: { os: 'linux', architecture: 'amd64' } },
    { digest: 'b', platform: { os: 'linux', architecture: 'arm', variant: 'v6' } },
    { digest: 'c', platform: { os: 'linux', architecture: 'arm', variant: 'v7' } },
    { digest: 'd', platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
  ];
  it('matches os/arch, default variants (arm → v7, arm64 → v8) and explicit variants', () => {
    assert.equal(pickPlatform(entries, 'linux/amd64')?.digest, 'a');
    assert.equal(pickPlatform(entries, 'linux/arm')?.digest, 'c');
    assert.equal(pickPlatform(entries, 'linux/arm/v6')?.digest, 'b');
    assert.equal(pickPlatform(entries, 'linux/arm64')?.digest, 'd');
    assert.equal(pickPlatform(entries, 'linux/s390x'), undefined);
    assert.equal(pickPlatform(entries, 'windows/amd64'), undefined);
  });
});

describe('RegistryClient against an open registry', () => {
  let fake: Fake;
  let digest: string;
  before(async () => {
    fake = await startFake({ auth: 'none' });
    digest = fake.put('team/app', ['1.0'], imageManifest('app'), MEDIA_TYPES.ociManifest);
  });
  after(() => fake.stop());

  it('resolves a tag with one HEAD', async () => {
    const { c } = client();
    const result = await c.resolve(ref(fake, 'team/app:1.0'));
    assert.equal(result.digest, digest);
    assert.equal(result.mediaType, MEDIA_TYPES.ociManifest);
    assert.deepEqual(result.platforms, []);
    assert.deepEqual(result.reference, { domain: fake.host, path: 'team/app', tag: '1.0', digest });
    assert.deepEqual(c.stats, { requests: 1, tokenRequests: 0, retries: 0 });
    assert.equal(fake.log.at(-1)?.method, 'HEAD');
    c.close();
  });

  it('sends the full Accept list, index types first', async () => {
    const seen: string[] = [];
    const server = http.createServer((req, res) => {
      seen.push(String(req.headers.accept));
      res.writeHead(200, { 'Docker-Content-Digest': digest, 'Content-Type': MEDIA_TYPES.ociManifest });
      res.end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { c } = client();
    await c.resolve(parseReference(`127.0.0.1:${(server.address() as AddressInfo).port}/x:1`));
    c.close();
    server.close();
    assert.equal(
      seen[0],
      'application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json',
    );
  });

  it('retries 429 (honouring Retry-After) and 503, then succeeds', async () => {
    fake.faults.push({ status: 429, headers: { 'Retry-After': '1' } }, { status: 503 });
    const { c, debug } = client();
    const started = Date.now();
    const result = await c.resolve(ref(fake, 'team/app:1.0'));
    assert.equal(result.digest, digest);
    assert.deepEqual(c.stats, { requests: 3, tokenRequests: 0, retries: 2 });
    assert.ok(Date.now() - started >= 950, 'waited for Retry-After: 1');
    assert.ok(debug.some((l) => /answered 429; attempt 2 of 4 in 10\d\d ms/.test(l)), debug.join('\n'));
    c.close();
  });

  it('retries a connection reset', async () => {
    fake.faults.push({ reset: true });
    const { c } = client();
    assert.equal((await c.resolve(ref(fake, 'team/app:1.0'))).digest, digest);
    assert.deepEqual(c.stats, { requests: 2, tokenRequests: 0, retries: 1 });
    c.close();
  });

  it('gives up after the configured attempts with a retryable RegistryError', async () => {
    fake.faults.push({ status: 503 }, { status: 503 }, { status: 503 }, { status: 503 });
    const { c } = client();
    await assert.rejects(c.resolve(ref(fake, 'team/app:1.0')), (err: RegistryError) => {
      assert.ok(err instanceof RegistryError);
      assert.equal(err.status, 503);
      assert.equal(err.retryable, true);
      assert.match(err.message, /answered 503 .*after 4 attempts/);
      return true;
    });
    assert.equal(c.stats.retries, 3);
    c.close();
  });

  it('does not retry 404, and tells a missing tag from a missing repository', async () => {
    const { c } = client();
    await assert.rejects(c.resolve(ref(fake, 'team/app:nope')), (err: RegistryError) => {
      assert.equal(err.status, 404);
      assert.equal(err.code, 'MANIFEST_UNKNOWN');
      assert.match(err.message, new RegExp(`^the image ${fake.host}/team/app:nope was not found in ${fake.host}`));
      return true;
    });
    await assert.rejects(c.resolve(ref(fake, 'team/missing:1')), (err: RegistryError) => err.status === 404 && err.code === 'NAME_UNKNOWN');
    assert.equal(c.stats.retries, 0);
    // HEAD has no body: one GET (not retried) per failure learns the registry's error code.
    assert.equal(c.stats.requests, 4);
    c.close();
  });

  it('does not retry 403', async () => {
    fake.faults.push({ status: 403, match: (req) => req.url?.includes('/manifests/') ?? false }, { status: 403 });
    const { c } = client();
    await assert.rejects(c.resolve(ref(fake, 'team/app:1.0')), (err: RegistryError) => err.status === 403 && /did not allow pulling/.test(err.message));
    assert.equal(c.stats.retries, 0);
    c.close();
  });

  it('reports an unreachable registry after the retries', async () => {
    const server = http.createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    await new Promise<void>((r) => server.close(() => r()));
    const { c } = client();
    await assert.rejects(c.resolve(parseReference(`127.0.0.1:${port}/a:1`)), (err: RegistryError) => {
      assert.match(err.message, new RegExp(`^could not reach 127.0.0.1:${port} \\(ECONNREFUSED\\) after 4 attempts`));
      assert.equal(err.code, 'ECONNREFUSED');
      return true;
    });
    assert.deepEqual(c.stats, { requests: 4, tokenRequests: 0, retries: 3 });
    c.close();
  });

  it('resolves by digest and refuses content that does not hash to it', async () => {
    const { c } = client();
    assert.equal((await c.resolve(ref(fake, `team/app@${digest}`))).digest, digest);
    const wrong = sha256('something else');
    fake.putRaw('team/app', wrong, Buffer.from(JSON.stringify(imageManifest('evil'))), MEDIA_TYPES.ociManifest);
    await assert.rejects(c.resolve(ref(fake, `team/app@${wrong}`)), (err: RegistryError) => err.code === 'DIGEST_INVALID');
    c.close();
  });

  it('lists the platforms of an index, and picks one platform when asked', async () => {
    const amd = fake.put('multi/app', [], imageManifest('amd'), MEDIA_TYPES.ociManifest);
    const arm = fake.put('multi/app', [], imageManifest('arm'), MEDIA_TYPES.ociManifest);
    const index = {
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.ociIndex,
      manifests: [
        { mediaType: MEDIA_TYPES.ociManifest, digest: amd, size: 1, platform: { os: 'linux', architecture: 'amd64' } },
        { mediaType: MEDIA_TYPES.ociManifest, digest: arm, size: 1, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
        { mediaType: MEDIA_TYPES.ociManifest, digest: sha256('att'), size: 1, platform: { os: 'unknown', architecture: 'unknown' } },
      ],
    };
    const indexDigest = fake.put('multi/app', ['latest'], index, MEDIA_TYPES.ociIndex);
    const { c } = client();

    const plain = await c.resolve(ref(fake, 'multi/app:latest'));
    assert.equal(plain.digest, indexDigest);
    assert.equal(plain.mediaType, MEDIA_TYPES.ociIndex);
    assert.deepEqual(plain.platforms, []);
    assert.equal(c.stats.requests, 1);

    const listed = await c.resolve(ref(fake, 'multi/app:latest'), { platforms: true });
    assert.equal(listed.digest, indexDigest);
    assert.deepEqual(listed.platforms, ['linux/amd64', 'linux/arm64/v8']);
    assert.equal(c.stats.requests, 2, 'one GET instead of the HEAD');

    const one = await c.resolve(ref(fake, 'multi/app:latest'), { platform: 'linux/arm64' });
    assert.equal(one.digest, arm);
    assert.deepEqual(one.platforms, ['linux/arm64/v8']);
    await assert.rejects(c.resolve(ref(fake, 'multi/app:latest'), { platform: 'linux/s390x' }), /has no image for the platform linux\/s390x \(it has: linux\/amd64, linux\/arm64\/v8\)/);
    c.close();
  });

  it('falls back to GET and hashes the body when HEAD has no Docker-Content-Digest', async () => {
    const bare = await startFake({ auth: 'none', headWithoutDigest: true });
    const d = bare.put('team/app', ['1.0'], { ...imageManifest('bare'), mediaType: MEDIA_TYPES.dockerManifest }, MEDIA_TYPES.dockerManifest);
    const { c } = client();
    const result = await c.resolve(ref(bare, 'team/app:1.0'));
    assert.equal(result.digest, d);
    assert.equal(result.mediaType, MEDIA_TYPES.dockerManifest);
    assert.deepEqual(bare.log.map((l) => l.method), ['HEAD', 'GET']);
    c.close();
    await bare.stop();
  });
});

describe('RegistryClient with Bearer tokens', () => {
  let fake: Fake;
  const repos = ['a', 'b', 'c', 'd', 'e'];
  const digests: Record<string, string> = {};
  const user = 'ci';
  const password = `p@ss:wörd "quoted" ${Math.random()}`;
  before(async () => {
    fake = await startFake({ auth: 'bearer', user, password, expiresIn: 300 });
    for (const r of repos) digests[r] = fake.put(`team/${r}`, ['1'], imageManifest(r), MEDIA_TYPES.ociManifest);
  });
  after(() => fake.stop());

  const credentials = async () => ({ username: user, password });

  it('first contact costs 3 requests, a new repository 2, a warm one 1', async () => {
    const { c, secrets, debug } = client({ credentials });
    fake.log.length = 0;
    assert.equal((await c.resolve(ref(fake, 'team/a:1'))).digest, digests.a);
    assert.deepEqual(c.stats, { requests: 3, tokenRequests: 1, retries: 0 });
    assert.deepEqual(
      fake.log.map((l) => `${l.method} ${l.url.split('?')[0]} ${l.status}`),
      ['HEAD /v2/team/a/manifests/1 401', 'GET /token 200', 'HEAD /v2/team/a/manifests/1 200'],
    );
    assert.equal(fake.log[0].authorization, undefined, 'the first request goes without credentials');

    await c.resolve(ref(fake, 'team/b:1'));
    assert.equal(c.stats.requests, 5, 'realm known: token + HEAD');
    await c.resolve(ref(fake, 'team/a:1'));
    await c.resolve(ref(fake, `team/b@${digests.b}`));
    assert.deepEqual(c.stats, { requests: 7, tokenRequests: 2, retries: 0 });

    // Every token went through setSecret; no log line carries a token or the password.
    const issued = fake.log.filter((l) => l.authorization?.startsWith('Bearer ')).map((l) => (l.authorization as string).slice(7));
    assert.ok(issued.length >= 4);
    for (const t of issued) assert.ok(secrets.includes(t), 'token registered as a secret');
    const basic = Buffer.from(`${user}:${password}`).toString('base64');
    assert.ok(secrets.includes(basic));
    for (const line of debug) {
      for (const t of [...issued, password, basic]) assert.ok(!line.includes(t), `debug line leaks a secret: ${line}`);
    }
    c.close();
  });

  it('resolveMany asks one token for all scopes of a registry', async () => {
    const { c } = client({ credentials });
    fake.tokenLog.length = 0;
    const refs = repos.map((r) => ref(fake, `team/${r}:1`));
    const results = await c.resolveMany(refs);
    assert.deepEqual(results.map((r) => r.digest), repos.map((r) => digests[r]));
    assert.equal(c.stats.tokenRequests, 1);
    assert.deepEqual(fake.tokenLog[0].scopes.sort(), repos.map((r) => `repository:team/${r}:pull`));
    assert.equal(c.stats.requests, repos.length + 2, 'HEAD 401 + one token + one HEAD each');

    await c.resolveMany(refs);
    assert.equal(c.stats.requests, 2 * repos.length + 2, 'warm: one HEAD each');
    c.close();
  });

  it('resolveMany with a known realm: one token request, then one HEAD each', async () => {
    const { c } = client({ credentials });
    await c.resolve(ref(fake, 'team/a:1'));
    const before = c.stats.requests;
    await c.resolveMany(['b', 'c', 'd'].map((r) => ref(fake, `team/${r}:1`)));
    assert.equal(c.stats.requests - before, 4);
    assert.equal(c.stats.tokenRequests, 2);
    c.close();
  });

  it('re-authenticates once when a cached token is refused', async () => {
    const { c } = client({ credentials });
    await c.resolve(ref(fake, 'team/a:1'));
    fake.revokeTokens();
    assert.equal((await c.resolve(ref(fake, 'team/a:1'))).digest, digests.a);
    assert.deepEqual(c.stats, { requests: 6, tokenRequests: 2, retries: 0 });
    c.close();
  });

  it('asks a new token when the cached one expires (expires_in minus a margin)', async () => {
    const short = await startFake({ auth: 'bearer', user, password, expiresIn: 1 });
    short.put('team/a', ['1'], imageManifest('a'), MEDIA_TYPES.ociManifest);
    const { c } = client({ credentials });
    await c.resolve(ref(short, 'team/a:1'));
    await c.resolve(ref(short, 'team/a:1'));
    assert.equal(c.stats.tokenRequests, 1);
    await new Promise((r) => setTimeout(r, 800)); // 1 s life, 250 ms margin
    await c.resolve(ref(short, 'team/a:1'));
    assert.equal(c.stats.tokenRequests, 2);
    assert.equal(c.stats.requests, 6);
    c.close();
    await short.stop();
  });

  it('defaults a token without expires_in to 60 s, and takes access_token', async () => {
    const plain = await startFake({ auth: 'bearer', user, password, accessTokenOnly: true });
    plain.put('team/a', ['1'], imageManifest('a'), MEDIA_TYPES.ociManifest);
    const { c } = client({ credentials });
    await c.resolve(ref(plain, 'team/a:1'));
    await c.resolve(ref(plain, 'team/a:1'));
    assert.deepEqual(c.stats, { requests: 4, tokenRequests: 1, retries: 0 });
    c.close();
    await plain.stop();
  });

  it('a wrong password fails with "authentication failed", not retried', async () => {
    const { c, debug } = client({ credentials: async () => ({ username: user, password: 'wrong-password' }) });
    await assert.rejects(c.resolve(ref(fake, 'team/a:1')), (err: RegistryError) => {
      assert.ok(err instanceof RegistryError);
      assert.equal(err.status, 401);
      assert.match(err.message, new RegExp(`^authentication failed for ${fake.host}: incorrect username or password. Check the service connection's username and password`));
      return true;
    });
    assert.equal(c.stats.retries, 0);
    assert.ok(!debug.join('\n').includes('wrong-password'));
    c.close();
  });

  it('asks an anonymous token when there is no credential', async () => {
    const open = await startFake({ auth: 'bearer', anonymousPull: true });
    open.put('library/busybox', ['1'], imageManifest('bb'), MEDIA_TYPES.ociManifest);
    const { c } = client();
    await c.resolve(ref(open, 'library/busybox:1'));
    assert.equal(open.tokenLog[0].user, undefined);
    assert.equal(c.stats.requests, 3);
    c.close();
    await open.stop();

    const closed = await startFake({ auth: 'bearer' });
    const { c: c2 } = client();
    await assert.rejects(c2.resolve(ref(closed, 'team/a:1')), (err: RegistryError) => err.status === 401 && /refused an anonymous token/.test(err.message));
    c2.close();
    await closed.stop();
  });

  it('uses the OAuth2 POST flow with an identity token', async () => {
    const { c, secrets } = client({ credentials: async () => ({ username: '', password: '', identityToken: 'identity-token-123' }) });
    fake.tokenLog.length = 0;
    assert.equal((await c.resolve(ref(fake, 'team/c:1'))).digest, digests.c);
    assert.equal(fake.tokenLog[0].method, 'POST');
    const form = new URLSearchParams(fake.tokenLog[0].body);
    assert.equal(form.get('grant_type'), 'refresh_token');
    assert.equal(form.get('service'), 'fake-registry');
    assert.equal(form.get('scope'), 'repository:team/c:pull');
    assert.ok(secrets.length > 0);
    c.close();
  });

  it('retries the token server too', async () => {
    const { c } = client({ credentials });
    fake.faults.push({ status: 503, match: (req) => req.url?.startsWith('/token') ?? false });
    assert.equal((await c.resolve(ref(fake, 'team/d:1'))).digest, digests.d);
    assert.deepEqual(c.stats, { requests: 4, tokenRequests: 1, retries: 1 });
    c.close();
  });
});

describe('RegistryClient with Basic auth', () => {
  let fake: Fake;
  let digest: string;
  before(async () => {
    fake = await startFake({ auth: 'basic', user: 'u', password: 'secret-pw' });
    digest = fake.put('team/a', ['1'], imageManifest('a'), MEDIA_TYPES.ociManifest);
  });
  after(() => fake.stop());

  it('costs 2 requests the first time and 1 after', async () => {
    const { c } = client({ credentials: async () => ({ username: 'u', password: 'secret-pw' }) });
    assert.equal((await c.resolve(ref(fake, 'team/a:1'))).digest, digest);
    assert.equal(c.stats.requests, 2);
    await c.resolve(ref(fake, 'team/a:1'));
    assert.deepEqual(c.stats, { requests: 3, tokenRequests: 0, retries: 0 });
    c.close();
  });

  it('a wrong password is a 401 RegistryError naming the registry', async () => {
    const { c } = client({ credentials: async () => ({ username: 'u', password: 'nope' }) });
    await assert.rejects(c.resolve(ref(fake, 'team/a:1')), (err: RegistryError) => {
      assert.equal(err.status, 401);
      assert.equal(err.code, 'UNAUTHORIZED');
      assert.match(err.message, new RegExp(`^authentication failed for ${fake.host}: authentication required`));
      return true;
    });
    c.close();
  });

  it('without credentials says that a login is needed', async () => {
    const { c } = client();
    await assert.rejects(c.resolve(ref(fake, 'team/a:1')), (err: RegistryError) => err.status === 401 && /requires a login/.test(err.message));
    c.close();
  });
});
