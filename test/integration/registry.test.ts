// The registry client and credentials against real CNCF Distribution registries (anonymous,
// htpasswd, token), with images pushed by a real engine: resolve() must give the digest the push
// reported (aux.Digest) and the digest skopeo sees, in the documented number of round trips.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { createCredentialSource, registryAuthHeader, withPrivateDockerConfig, type Credential } from '../../tasks/lib/auth';
import type { EndpointInfo } from '../../tasks/lib/context';
import { RegistryError } from '../../tasks/lib/errors';
import { parseReference } from '../../tasks/lib/reference';
import { RegistryClient } from '../../tasks/lib/registry/client';
import { BASE_IMAGE, startEngineWithBaseImage } from '../support/base-image';
import { createTestContext, type TestContext } from '../support/context';
import { pushedDigest, type StreamEvent } from '../../tasks/lib/docker/stream';
import { pushedManifestType } from '../support/stack';
import type { TestEngine } from '../support/engine';
import { startFaultProxy } from '../support/fault-proxy';
import { startRegistry, type RegistryAuthMode, type TestRegistry } from '../support/registry';

const run = promisify(execFile);
const MODES: RegistryAuthMode[] = ['none', 'htpasswd', 'token'];
const FAST_RETRY = { attempts: 4, baseDelayMs: 20, maxDelayMs: 200 };

let engine: TestEngine;
const registries = {} as Record<RegistryAuthMode, TestRegistry>;

before(async () => {
  engine = await startEngineWithBaseImage();
  const started = await Promise.all(MODES.map((m) => startRegistry(m)));
  MODES.forEach((m, i) => (registries[m] = started[i]));
});

after(async () => {
  await Promise.all(Object.values(registries).map((r) => r.stop()));
  await engine?.stop();
});

function credentialOf(reg: TestRegistry, password = reg.password): Credential | undefined {
  return reg.username && password ? { username: reg.username, password } : undefined;
}

/** A dockerregistry service connection for the registry, as the agent hands it over. */
function endpointOf(reg: TestRegistry, password = reg.password): EndpointInfo | undefined {
  if (!reg.username || !password) return undefined;
  return { id: 'reg-1', input: 'containerRegistry', url: reg.url, scheme: 'UsernamePassword', auth: { username: reg.username, password, registry: reg.url }, data: {} };
}

function clientFor(reg: TestRegistry, ctx: TestContext, password?: string, extra: Partial<ConstructorParameters<typeof RegistryClient>[0]> = {}) {
  const endpoint = endpointOf(reg, password);
  const credentials = createCredentialSource({ endpoint, setSecret: (s) => ctx.setSecret(s), useDockerConfig: false });
  return new RegistryClient({ credentials, setSecret: (s) => ctx.setSecret(s), log: ctx, retry: FAST_RETRY, ...extra });
}

/** Tags the base image as repo:tag and pushes it through the Engine API with X-Registry-Auth; returns the digest the push stream reported (aux.Digest, or the containerd store's status line). */
async function push(reg: TestRegistry, repo: string, tag: string, ctx: TestContext): Promise<string> {
  const name = `${reg.host}/${repo}`;
  await engine.docker.getImage(BASE_IMAGE).tag({ repo: name, tag });
  const key = registryAuthHeader(credentialOf(reg), reg.host, (s) => ctx.setSecret(s));
  try {
    const stream = (await engine.docker.getImage(`${name}:${tag}`).push({ authconfig: { key } } as object)) as NodeJS.ReadableStream;
    const chunks: Buffer[] = [];
    for await (const c of stream) chunks.push(Buffer.from(c as Buffer));
    let digest: string | undefined;
    for (const line of Buffer.concat(chunks).toString('utf8').split('\n')) {
      if (!line.trim()) continue;
      const event = JSON.parse(line) as StreamEvent;
      if (event.error || event.errorDetail) throw new Error(`push of ${name}:${tag} failed: ${event.error ?? event.errorDetail?.message}`);
      digest = pushedDigest(event, tag) ?? digest;
    }
    assert.match(digest ?? '', /^sha256:[0-9a-f]{64}$/, 'the push stream reports the digest');
    return digest as string;
  } finally {
    await engine.docker.getImage(`${name}:${tag}`).remove({ noprune: true }).catch(() => undefined);
  }
}

/** skopeo's view of the digest; credentials through an auth file in a private folder, never --creds. */
async function skopeoDigest(reg: TestRegistry, repo: string, tag: string): Promise<string> {
  const credential = credentialOf(reg);
  const inspect = async (args: string[]) => {
    const { stdout } = await run('skopeo', ['inspect', '--tls-verify=false', ...args, `docker://${reg.host}/${repo}:${tag}`], { timeout: 60_000 });
    return (JSON.parse(stdout) as { Digest: string }).Digest;
  };
  if (!credential) return inspect(['--no-creds']);
  return withPrivateDockerConfig([{ registry: reg.host, credential }], (dir) => inspect(['--authfile', `${dir}/config.json`]));
}

const expectedFirstContact: Record<RegistryAuthMode, number> = { none: 1, htpasswd: 2, token: 3 };

for (const mode of MODES) {
  describe(`${mode} registry`, () => {
    test('resolve() equals the pushed digest and skopeo, in the documented round trips', async () => {
      const reg = registries[mode];
      const ctx = createTestContext();
      const pushed = await push(reg, 'it/busybox', mode, ctx);
      const client = clientFor(reg, ctx);
      try {
        const ref = parseReference(`${reg.host}/it/busybox:${mode}`);
        const resolved = await client.resolve(ref);
        assert.equal(resolved.digest, pushed);
        assert.equal(resolved.digest, await skopeoDigest(reg, 'it/busybox', mode));
        assert.equal(resolved.mediaType, pushedManifestType());
        assert.equal(client.stats.requests, expectedFirstContact[mode], 'first contact');
        assert.equal(client.stats.tokenRequests, mode === 'token' ? 1 : 0);

        const before = client.stats.requests;
        assert.equal((await client.resolve(ref)).digest, pushed);
        assert.equal(client.stats.requests - before, 1, 'warm: exactly one request');

        // By digest: the same manifest, one request.
        assert.equal((await client.resolve(parseReference(`${reg.host}/it/busybox@${pushed}`))).digest, pushed);
        assert.equal(client.stats.requests - before, 2);
        assert.equal(client.stats.retries, 0);

        if (reg.password) {
          const logs = ctx.logs.join('\n');
          assert.ok(!logs.includes(reg.password), 'the password is never logged');
          assert.ok(ctx.secrets.has(reg.password));
        }
      } finally {
        client.close();
      }
    });

    test('a missing tag is a 404, not retried', async () => {
      const reg = registries[mode];
      const client = clientFor(reg, createTestContext());
      try {
        await assert.rejects(client.resolve(parseReference(`${reg.host}/it/busybox:no-such-tag`)), (err: RegistryError) => {
          assert.ok(err instanceof RegistryError);
          assert.equal(err.status, 404);
          assert.equal(err.code, 'MANIFEST_UNKNOWN');
          assert.match(err.message, new RegExp(`the image ${reg.host}/it/busybox:no-such-tag was not found in ${reg.host}`));
          return true;
        });
        assert.equal(client.stats.retries, 0);
      } finally {
        client.close();
      }
    });

    if (mode !== 'none') {
      test('a wrong password is a RegistryError 401 "authentication failed", with no secret in the log', async () => {
        const reg = registries[mode];
        const ctx = createTestContext();
        const wrong = `${reg.password}-wrong`;
        const client = clientFor(reg, ctx, wrong);
        try {
          await assert.rejects(client.resolve(parseReference(`${reg.host}/it/busybox:${mode}`)), (err: RegistryError) => {
            assert.ok(err instanceof RegistryError);
            assert.equal(err.status, 401);
            assert.match(err.message, new RegExp(`^authentication failed for ${reg.host}: .*Check the service connection's username and password`));
            assert.ok(!err.message.includes(wrong));
            return true;
          });
          assert.equal(client.stats.retries, 0);
          assert.ok(!ctx.logs.join('\n').includes(wrong));
        } finally {
          client.close();
        }
      });
    }
  });
}

describe('token registry: tokens per scope', () => {
  test('a new repository with a known realm costs 2 requests; resolveMany asks one token for all', async () => {
    const reg = registries.token;
    const ctx = createTestContext();
    const repos = ['multi/one', 'multi/two', 'multi/three', 'multi/four'];
    const pushed: string[] = [];
    for (const r of repos) pushed.push(await push(reg, r, 'v1', ctx));
    const client = clientFor(reg, ctx);
    try {
      await client.resolve(parseReference(`${reg.host}/${repos[0]}:v1`));
      assert.equal(client.stats.requests, 3);
      await client.resolve(parseReference(`${reg.host}/${repos[1]}:v1`));
      assert.equal(client.stats.requests, 5, 'realm known: token + HEAD');

      const fresh = clientFor(reg, ctx);
      const issuerBefore = reg.tokenRequests!();
      const results = await fresh.resolveMany(repos.map((r) => parseReference(`${reg.host}/${r}:v1`)));
      assert.deepEqual(results.map((r) => r.digest), pushed);
      assert.equal(reg.tokenRequests!() - issuerBefore, 1, 'one token request reached the issuer');
      const last = reg.tokenLog!().at(-1)!;
      assert.deepEqual([...last.scopes].sort(), repos.map((r) => `repository:${r}:pull`).sort());
      assert.equal(fresh.stats.requests, repos.length + 2);
      await fresh.resolveMany(repos.map((r) => parseReference(`${reg.host}/${r}:v1`)));
      assert.equal(fresh.stats.requests, 2 * repos.length + 2, 'warm: one request per reference');
      fresh.close();
    } finally {
      client.close();
    }
  });
});

describe('fault proxy in front of the token registry', () => {
  test('429 with Retry-After: 1, then 503, then the real answer: resolves, with 2 retries', async () => {
    const reg = registries.token;
    const ctx = createTestContext();
    const pushed = await push(reg, 'it/faulty', 'v1', ctx);
    const isManifest = (req: { url?: string }) => (req.url ?? '').includes('/manifests/');
    const proxy = await startFaultProxy(reg.host, [
      { status: 429, headers: { 'Retry-After': '1' }, match: isManifest },
      { status: 503, match: isManifest },
    ]);
    try {
      const started = Date.now();
      // The proxy is another host:port; the service connection's credential must apply to it.
      const credentials = createCredentialSource({
        endpoint: { ...endpointOf(reg)!, url: proxy.url, auth: { username: reg.username!, password: reg.password!, registry: proxy.url } },
        setSecret: (s) => ctx.setSecret(s),
        useDockerConfig: false,
      });
      const viaProxy = new RegistryClient({ credentials, setSecret: (s) => ctx.setSecret(s), log: ctx, retry: FAST_RETRY });
      const resolved = await viaProxy.resolve(parseReference(`${proxy.host}/it/faulty:v1`));
      assert.equal(resolved.digest, pushed);
      assert.equal(viaProxy.stats.retries, 2);
      assert.ok(Date.now() - started >= 1_000, 'Retry-After was honoured');
      const injected = proxy.log().filter((r) => r.injected).map((r) => r.status);
      assert.deepEqual(injected, [429, 503]);
      assert.equal(proxy.remaining(), 0);
      // HEAD 429 → HEAD 503 → HEAD 401 → token → HEAD 200
      assert.equal(viaProxy.stats.requests, 5);
      viaProxy.close();
    } finally {
      await proxy.stop();
    }
  });
});
