// The test harness itself: a real engine, a locally made base image, real registries in the three
// auth modes, the token issuer, and the fault proxy.
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { pushedDigest } from '../../tasks/lib/docker/stream';
import { pushedManifestType } from '../support/stack';
import { startEngine, type TestEngine } from '../support/engine';
import { BASE_IMAGE, ensureBaseImage } from '../support/base-image';
import { startRegistry, type TestRegistry } from '../support/registry';
import { startFaultProxy } from '../support/fault-proxy';
import { logText } from '../support/images';

let engine: TestEngine;
const registries: Partial<Record<'none' | 'htpasswd' | 'token', TestRegistry>> = {};

before(async () => {
  engine = await startEngine();
  const [none, htpasswd, token] = await Promise.all([startRegistry('none'), startRegistry('htpasswd'), startRegistry('token')]);
  Object.assign(registries, { none, htpasswd, token });
});

after(async () => {
  await Promise.all(Object.values(registries).map((r) => r.stop()));
  await engine?.stop();
});

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

async function streamLines(stream: NodeJS.ReadableStream): Promise<Record<string, any>[]> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.from(c as Buffer));
  return Buffer.concat(chunks)
    .toString('utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l));
}

async function getToken(reg: TestRegistry, scope: string, password = reg.password!): Promise<Response> {
  const url = `${reg.realm}?service=${encodeURIComponent(reg.service!)}&scope=${encodeURIComponent(scope)}`;
  return fetch(url, { headers: { authorization: basic(reg.username!, password) } });
}

describe('engine', () => {
  test('answers ping and runs a container of the base image, which is removed afterwards', async () => {
    const { docker } = engine;
    assert.equal(String(await docker.ping()), 'OK');
    const imageId = await ensureBaseImage(docker);
    assert.match(imageId, /^sha256:[0-9a-f]{64}$/);
    assert.equal(await ensureBaseImage(docker), imageId, 'a second call reuses the image');

    const container = await docker.createContainer({ Image: BASE_IMAGE, Cmd: ['sh', '-c', 'echo ok; id -un; ls /tmp >/dev/null && echo tmp'] });
    try {
      await container.start();
      const { StatusCode } = await container.wait();
      assert.equal(StatusCode, 0);
      const logs = (await container.logs({ stdout: true, stderr: true })) as unknown as Buffer;
      const out = logText(logs);
      assert.match(out, /^ok$/m);
      assert.match(out, /^root$/m);
      assert.match(out, /^tmp$/m);
    } finally {
      await container.remove({ force: true });
    }
    await assert.rejects(container.inspect(), (err: { statusCode?: number }) => err.statusCode === 404);
  });

  // The tests run against an engine on this host (a unix socket), so its published ports are on 127.0.0.1.
  test('publishes a container port on the host (bridge network, iptables, docker-proxy)', async () => {
    const { docker } = engine;
    await ensureBaseImage(docker);
    const container = await docker.createContainer({
      Image: BASE_IMAGE,
      Cmd: ['sh', '-c', 'echo served > /tmp/index.html && exec httpd -f -p 8080 -h /tmp'],
      ExposedPorts: { '8080/tcp': {} },
      HostConfig: { PortBindings: { '8080/tcp': [{ HostIp: '127.0.0.1', HostPort: '' }] } },
    });
    try {
      await container.start();
      const info = await container.inspect();
      const port = info.NetworkSettings.Ports['8080/tcp']?.[0]?.HostPort;
      assert.ok(port, 'a host port was assigned');
      let body = '';
      for (let i = 0; i < 50 && body !== 'served\n'; i++) {
        try {
          body = await (await fetch(`http://127.0.0.1:${port}/index.html`)).text();
        } catch {
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      assert.equal(body, 'served\n');
    } finally {
      await container.remove({ force: true });
    }
  });
});

describe('registry without auth', () => {
  test('GET /v2/ is 200', async () => {
    const res = await fetch(`${registries.none!.url}/v2/`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('docker-distribution-api-version'), 'registry/2.0');
  });
});

describe('registry with htpasswd', () => {
  test('anonymous GET /v2/ is 401 with a Basic challenge', async () => {
    const res = await fetch(`${registries.htpasswd!.url}/v2/`);
    assert.equal(res.status, 401);
    assert.match(res.headers.get('www-authenticate') ?? '', /^Basic realm="test-registry"/);
  });

  test('the test user gets 200, a wrong password 401', async () => {
    const reg = registries.htpasswd!;
    assert.equal(reg.username, 'ci-user');
    assert.match(reg.password!, /[$:@'" %&!]/, 'the password has punctuation');
    const ok = await fetch(`${reg.url}/v2/`, { headers: { authorization: basic(reg.username!, reg.password!) } });
    assert.equal(ok.status, 200);
    const wrong = await fetch(`${reg.url}/v2/`, { headers: { authorization: basic(reg.username!, `${reg.password}x`) } });
    assert.equal(wrong.status, 401);
  });
});

describe('registry with token auth', () => {
  test('anonymous GET /v2/ is 401 with a Bearer challenge naming the issuer and service', async () => {
    const reg = registries.token!;
    const res = await fetch(`${reg.url}/v2/`);
    assert.equal(res.status, 401);
    assert.equal(res.headers.get('www-authenticate'), `Bearer realm="${reg.realm}",service="test-registry"`);
  });

  test('the issuer gives the test user a token the registry accepts', async () => {
    const reg = registries.token!;
    const before = reg.tokenRequests!();
    const res = await getToken(reg, 'repository:harness/none:pull,push');
    assert.equal(res.status, 200);
    const body = (await res.json()) as { token: string; access_token: string; expires_in: number; issued_at: string };
    assert.equal(body.access_token, body.token);
    assert.equal(body.expires_in, 300);
    assert.ok(!Number.isNaN(Date.parse(body.issued_at)));
    const [header, claims] = body.token.split('.').slice(0, 2).map((p) => JSON.parse(Buffer.from(p, 'base64url').toString()));
    assert.equal(header.alg, 'RS256');
    assert.equal(header.x5c.length, 1);
    assert.equal(claims.aud, 'test-registry');
    assert.equal(claims.iss, 'test-issuer');
    assert.deepEqual(claims.access, [{ type: 'repository', name: 'harness/none', actions: ['pull', 'push'] }]);
    assert.equal(reg.tokenRequests!(), before + 1);

    const tags = await fetch(`${reg.url}/v2/harness/none/tags/list`, { headers: { authorization: `Bearer ${body.token}` } });
    assert.equal(tags.status, 404, 'a valid token reaches the repository, which does not exist');
    const err = (await tags.json()) as { errors: { code: string }[] };
    assert.equal(err.errors[0].code, 'NAME_UNKNOWN');

    const otherRepo = await fetch(`${reg.url}/v2/harness/other/tags/list`, { headers: { authorization: `Bearer ${body.token}` } });
    assert.equal(otherRepo.status, 401, 'the token is scoped to the repository it was asked for');
    assert.match(otherRepo.headers.get('www-authenticate') ?? '', /scope="repository:harness\/other:pull"/);
  });

  test('several scopes in one request, as one token', async () => {
    const reg = registries.token!;
    const url = `${reg.realm}?service=test-registry&scope=repository:a/one:pull&scope=repository:a/two:pull,push`;
    const res = await fetch(url, { headers: { authorization: basic(reg.username!, reg.password!) } });
    assert.equal(res.status, 200);
    const { token } = (await res.json()) as { token: string };
    for (const repo of ['a/one', 'a/two']) {
      const tags = await fetch(`${reg.url}/v2/${repo}/tags/list`, { headers: { authorization: `Bearer ${token}` } });
      assert.equal(tags.status, 404, repo);
    }
  });

  test('a wrong password, no credentials or a wrong service get no token', async () => {
    const reg = registries.token!;
    const wrong = await getToken(reg, 'repository:harness/none:pull', `${reg.password}x`);
    assert.equal(wrong.status, 401);
    const anonymous = await fetch(`${reg.realm}?service=test-registry&scope=repository:harness/none:pull`);
    assert.equal(anonymous.status, 401);
    const otherService = await fetch(`${reg.realm}?service=elsewhere&scope=repository:harness/none:pull`, {
      headers: { authorization: basic(reg.username!, reg.password!) },
    });
    assert.equal(otherService.status, 400);
    const statuses = reg.tokenLog!().slice(-3).map((r) => r.status);
    assert.deepEqual(statuses, [401, 401, 400]);
  });
});

describe('dockerd pushes to the test registries', () => {
  for (const mode of ['htpasswd', 'token'] as const) {
    test(`push to the ${mode} registry reports the digest the registry serves`, async () => {
      const { docker } = engine;
      const reg = registries[mode]!;
      await ensureBaseImage(docker);
      const repo = `${reg.host}/harness/busybox`;
      await docker.getImage(BASE_IMAGE).tag({ repo, tag: 'push' });
      try {
        const tokensBefore = reg.tokenRequests?.() ?? 0;
        const stream = await docker.getImage(`${repo}:push`).push({
          authconfig: { username: reg.username, password: reg.password, serveraddress: reg.host },
        } as object);
        const lines = await streamLines(stream);
        const failure = lines.find((l) => l.error || l.errorDetail);
        assert.equal(failure, undefined, JSON.stringify(failure));
        const digest = lines.map((l) => pushedDigest(l, 'push')).find(Boolean) as string;
        assert.match(digest, /^sha256:[0-9a-f]{64}$/);

        let authorization = basic(reg.username!, reg.password!);
        if (mode === 'token') {
          assert.ok(reg.tokenRequests!() > tokensBefore, 'dockerd asked the issuer for a token');
          const res = await getToken(reg, 'repository:harness/busybox:pull');
          authorization = `Bearer ${((await res.json()) as { token: string }).token}`;
        }
        const head = await fetch(`${reg.url}/v2/harness/busybox/manifests/push`, {
          method: 'HEAD',
          headers: { authorization, accept: pushedManifestType() },
        });
        assert.equal(head.status, 200);
        assert.equal(head.headers.get('docker-content-digest'), digest);
      } finally {
        await docker.getImage(`${repo}:push`).remove();
      }
    });
  }
});

describe('fault proxy', () => {
  test('answers the planned 429 and 503, then forwards', async () => {
    const proxy = await startFaultProxy(registries.none!.host, [
      { status: 429, headers: { 'Retry-After': '1' } },
      { status: 503 },
    ]);
    try {
      const first = await fetch(`${proxy.url}/v2/`);
      assert.equal(first.status, 429);
      assert.equal(first.headers.get('retry-after'), '1');
      assert.equal(((await first.json()) as { errors: { code: string }[] }).errors[0].code, 'TOOMANYREQUESTS');
      const second = await fetch(`${proxy.url}/v2/`);
      assert.equal(second.status, 503);
      await second.arrayBuffer();
      const third = await fetch(`${proxy.url}/v2/`);
      assert.equal(third.status, 200);
      assert.equal(third.headers.get('docker-distribution-api-version'), 'registry/2.0');
      await third.arrayBuffer();
      assert.equal(proxy.requests(), 3);
      assert.deepEqual(proxy.log().map((r) => [r.status, r.injected]), [[429, true], [503, true], [200, false]]);
      assert.equal(proxy.remaining(), 0);
    } finally {
      await proxy.stop();
    }
  });

  test('forwards uploads with Location through the proxy, streams bodies, honours match and reset', async () => {
    const reg = registries.htpasswd!;
    const proxy = await startFaultProxy(reg.host, [
      { status: 500, match: (req) => req.method === 'PUT' },
      { status: 0, reset: true, match: (req) => req.method === 'GET' && /\/blobs\/sha256:/.test(req.url ?? '') },
    ]);
    const authorization = basic(reg.username!, reg.password!);
    try {
      const blob = crypto.randomBytes(256 * 1024);
      const digest = `sha256:${crypto.createHash('sha256').update(blob).digest('hex')}`;
      const start = await fetch(`${proxy.url}/v2/harness/blob/blobs/uploads/`, { method: 'POST', headers: { authorization } });
      assert.equal(start.status, 202);
      const location = start.headers.get('location')!;
      assert.ok(new URL(location, proxy.url).host === proxy.host, `Location goes through the proxy: ${location}`);
      const putUrl = new URL(location, proxy.url);
      putUrl.searchParams.set('digest', digest);
      const put = async () =>
        fetch(putUrl, { method: 'PUT', headers: { authorization, 'content-type': 'application/octet-stream' }, body: blob });
      const failed = await put();
      assert.equal(failed.status, 500, 'the planned PUT failure');
      await failed.arrayBuffer();
      const stored = await put();
      assert.equal(stored.status, 201, await stored.text());
      assert.equal(stored.headers.get('docker-content-digest'), digest);

      await assert.rejects(fetch(`${proxy.url}/v2/harness/blob/blobs/${digest}`, { headers: { authorization } }), 'the planned reset');
      const got = await fetch(`${proxy.url}/v2/harness/blob/blobs/${digest}`, { headers: { authorization } });
      assert.equal(got.status, 200);
      assert.ok(Buffer.from(await got.arrayBuffer()).equals(blob));
    } finally {
      await proxy.stop();
    }
  });
});
