// BuildAndTag and PushWithDigest libraries against a real engine and real registries.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type Dockerode from 'dockerode';
import { createCredentialSource } from '../../tasks/lib/auth';
import { buildAndTag, BuildAndTagOptions } from '../../tasks/lib/build';
import { readLock } from '../../tasks/lib/lock/file';
import { pushWithDigest, PushOptions } from '../../tasks/lib/push';
import { RegistryClient } from '../../tasks/lib/registry/client';
import { BASE_IMAGE, startEngineWithBaseImage } from '../support/base-image';
import { createTestContext, TestContext } from '../support/context';
import type { TestEngine } from '../support/engine';
import { startFaultProxy } from '../support/fault-proxy';
import { buildOptions as defaultBuildOptions, outputOf, tagAndPush } from '../support/images';
import { startRegistry, TestRegistry } from '../support/registry';
import { skopeoDigest } from '../support/skopeo';
import { stackFromEnv } from '../support/stack';
import { pushWithDigestDefaults } from '../support/task-defaults';

const FIXTURE = path.join(__dirname, '..', 'fixtures', 'shop');
const COMMIT = '0123456789abcdef0123456789abcdef01234567';

let engine: TestEngine;
let docker: Dockerode;
let anon: TestRegistry;
let basic: TestRegistry;
let bearer: TestRegistry;
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'col-bp-'));

before(async () => {
  engine = await startEngineWithBaseImage();
  docker = engine.docker;
  [anon, basic, bearer] = await Promise.all([startRegistry('none'), startRegistry('htpasswd'), startRegistry('token')]);
});

after(async () => {
  await Promise.all([anon, basic, bearer].filter(Boolean).map((r) => r.stop()));
  await engine?.stop();
});

function buildOptions(over: Partial<BuildAndTagOptions>): BuildAndTagOptions {
  return defaultBuildOptions(docker, {
    dockerfile: path.join(FIXTURE, 'web', 'Dockerfile'),
    buildContext: path.join(FIXTURE, 'web'),
    tags: ['1.0.0'],
    addPipelineLabels: true,
    buildRecordPath: path.join(work, `record-${Math.random().toString(36).slice(2)}.json`),
    pipeline: { buildNumber: '20261122.1', buildId: '42', commit: COMMIT, repositoryUri: 'https://dev.azure.com/org/shop/_git/shop' },
    ...over,
  });
}

function pushOptions(ctx: TestContext, registry: TestRegistry | undefined, over: Partial<PushOptions>): PushOptions {
  const endpoint = registry?.password
    ? { id: 'reg', input: 'containerRegistry', url: `http://${registry.host}`, scheme: 'UsernamePassword', auth: { username: registry.username!, password: registry.password }, data: { registry: `http://${registry.host}` } }
    : undefined;
  const credentials = createCredentialSource({ endpoint, setSecret: (s) => ctx.setSecret(s), dockerConfigDir: path.join(work, 'no-docker-config') });
  return {
    engine: async () => docker,
    client: new RegistryClient({ credentials, log: ctx, setSecret: (s) => ctx.setSecret(s) }),
    credentials,
    images: [],
    additionalTags: [],
    lockFile: path.join(work, `lock-${Math.random().toString(36).slice(2)}.json`),
    publishArtifact: true,
    artifactName: 'image-lock',
    pipeline: { buildNumber: '20261122.1', buildId: '42', commit: COMMIT },
    ...pushWithDigestDefaults(),
    ...over,
  };
}

describe('a compose app built, pushed and locked (anonymous registry)', () => {
  let recordPath: string;
  let lockFile: string;
  const env = { REGISTRY: '', APP_TAG: 'rc1' };

  before(async () => {
    env.REGISTRY = anon.host;
    // The third-party image the app uses: pushed under a tag, resolved by the task without pulling.
    await tagAndPush(docker, BASE_IMAGE, `${anon.host}/third-party/cache:1.0`);
  });

  test('BuildAndTag builds every service with build:, honours build args, .dockerignore and labels', async () => {
    const ctx = createTestContext();
    const record = await buildAndTag(buildOptions({ composeFile: path.join(FIXTURE, 'docker-compose.yml'), tags: ['20261122.1'], buildArgs: { GREETING: 'from-pipeline' }, env }), ctx);
    recordPath = ctx.outputs.buildRecord;
    assert.deepEqual(record.images.map((i) => i.name).sort(), ['api', 'web']);
    const api = record.images.find((i) => i.name === 'api')!;
    assert.deepEqual(api.tags, ['rc1', '20261122.1']);
    assert.equal(api.repository, `${anon.host}/shop/api`);
    assert.equal((await docker.getImage(`${anon.host}/shop/api:rc1`).inspect()).Id, api.imageId);
    assert.equal(await outputOf(docker, api.imageId, ['cat', '/greeting']), 'from-pipeline', 'the buildArgs input reaches the build');
    const web = record.images.find((i) => i.name === 'web')!;
    const files = await outputOf(docker, web.imageId, ['ls', '/app']);
    assert.match(files, /index\.html/);
    assert.doesNotMatch(files, /secret\.txt/, '.dockerignore is honoured');
    const labels = (await docker.getImage(web.imageId).inspect()).Config.Labels;
    assert.equal(labels['org.opencontainers.image.revision'], COMMIT);
    assert.equal(labels['dev.azure.pipelines.build.number'], '20261122.1');
    assert.deepEqual(JSON.parse(ctx.outputs.imageIds), { web: web.imageId, api: api.imageId });
  });

  test('compose build keys reach the engine: dockerfile_inline, extra_hosts, tags, and shm_size and ulimits where the engine applies them', async () => {
    const project = (limits: string) => {
      const dir = fs.mkdtempSync(path.join(work, 'keys-'));
      fs.writeFileSync(
        path.join(dir, 'docker-compose.yml'),
        `services:
  tool:
    image: \${REGISTRY}/shop/tool
    build:
      context: .
      dockerfile_inline: |
        FROM ${BASE_IMAGE}
        RUN grep db.internal /etc/hosts > /hosts.txt; df -k /dev/shm | tail -n 1 > /shm.txt; ulimit -n > /nofile.txt
      extra_hosts: ["db.internal:10.9.8.7"]
      tags: ["\${REGISTRY}/shop/tool:extra"]
${limits}`,
      );
      return path.join(dir, 'docker-compose.yml');
    };
    const build = (file: string) => buildAndTag(buildOptions({ composeFile: file, tags: ['1.0'], env, addPipelineLabels: false }), createTestContext());
    const record = await build(project(''));
    const tool = record.images.find((i) => i.name === 'tool')!;
    assert.match(await outputOf(docker, tool.imageId, ['cat', '/hosts.txt']), /^10\.9\.8\.7\s+db\.internal/, 'extra_hosts in the RUN step');
    assert.equal((await docker.getImage(`${anon.host}/shop/tool:extra`).inspect()).Id, tool.imageId, 'build.tags tag the image');
    const withLimits = project('      shm_size: 256m\n      ulimits:\n        nofile: {soft: 2048, hard: 4096}\n');
    if (stackFromEnv() === 'legacy') {
      // Docker 20.10's BuildKit ignores shmsize and ulimits: refused before anything is built, not dropped.
      await assert.rejects(build(withLimits), /compose service 'tool': 'build\.shm_size' and 'build\.ulimits' would be ignored by this engine's BuildKit \(Engine API 1\.41; it applies them from API 1\.42/);
    } else {
      const limited = (await build(withLimits)).images[0];
      assert.match(await outputOf(docker, limited.imageId, ['cat', '/shm.txt']), /\s262144\s/, 'shm_size: 256 MiB of /dev/shm in the RUN step');
      assert.equal(await outputOf(docker, limited.imageId, ['cat', '/nofile.txt']), '2048', 'ulimits in the RUN step');
    }
  });

  test('PushWithDigest pushes, locks digests equal to the registry, resolves third-party images', async () => {
    const ctx = createTestContext();
    const options = pushOptions(ctx, undefined, { buildRecordPath: recordPath, additionalTags: ['latest'], composeFile: path.join(FIXTURE, 'docker-compose.yml'), env });
    const result = await pushWithDigest(options, ctx);
    lockFile = result.lockFile;
    const lock = readLock(lockFile);
    assert.deepEqual(lock.images.map((i) => `${i.name}:${i.source}`), ['api:built', 'cache:resolved', 'web:built']);
    for (const image of lock.images) {
      for (const tag of image.tags) assert.equal(await skopeoDigest(`${image.repository}:${tag}`), image.digest, `${image.name}:${tag}`);
      assert.equal(image.ref, `${image.repository}@${image.digest}`);
    }
    assert.deepEqual(lock.images.find((i) => i.name === 'web')!.tags, ['20261122.1', 'latest']);
    assert.equal(lock.commit, COMMIT);
    assert.deepEqual(ctx.artifacts, [{ name: 'image-lock', path: lockFile }]);
    assert.equal(JSON.parse(ctx.outputs.digests).api, lock.images.find((i) => i.name === 'api')!.ref);
    assert.match(ctx.summaries[0], /\| web \|.*sha256:/);
    options.client.close();
  });

  test('re-running with nothing changed writes the same lock, byte for byte', async () => {
    const before = fs.readFileSync(lockFile);
    const ctx = createTestContext();
    const options = pushOptions(ctx, undefined, { buildRecordPath: recordPath, additionalTags: ['latest'], composeFile: path.join(FIXTURE, 'docker-compose.yml'), env, lockFile });
    await pushWithDigest(options, ctx);
    options.client.close();
    assert.deepEqual(fs.readFileSync(lockFile), before);
  });
});

for (const mode of ['htpasswd', 'token'] as const) {
  describe(`push to a registry with ${mode === 'token' ? 'Bearer token' : 'Basic'} auth`, () => {
    test('the lock digest equals what skopeo reads from the registry', async () => {
      const registry = mode === 'token' ? bearer : basic;
      const ctx = createTestContext();
      await buildAndTag(buildOptions({ imageName: `${registry.host}/shop/single`, tags: ['7'] }), ctx);
      const options = pushOptions(ctx, registry, { buildRecordPath: ctx.outputs.buildRecord });
      const { lock } = await pushWithDigest(options, ctx);
      options.client.close();
      const digest = await skopeoDigest(`${registry.host}/shop/single:7`, { registry: registry.host, username: registry.username!, password: registry.password! });
      assert.equal(lock.images[0].digest, digest);
      assert.ok(ctx.secrets.has(registry.password!), 'the password was registered as a secret');
      assert.ok(!ctx.logs.join('\n').includes(registry.password!), 'the password appears nowhere in the log');
      if (mode === 'token') assert.ok((registry.tokenRequests?.() ?? 0) > 0, 'the Bearer flow ran');
    });

    test('a wrong password fails cleanly, naming the registry', async () => {
      const registry = mode === 'token' ? bearer : basic;
      const ctx = createTestContext();
      await buildAndTag(buildOptions({ imageName: `${registry.host}/shop/denied`, tags: ['1'] }), ctx);
      const options = pushOptions(ctx, { ...registry, password: 'wrong-Pa55!' }, { buildRecordPath: ctx.outputs.buildRecord });
      await assert.rejects(pushWithDigest(options, ctx), new RegExp(`authentication failed for ${registry.host.replace(/\./g, '\\.')}`));
      options.client.close();
      assert.ok(!ctx.logs.join('\n').includes('wrong-Pa55!'));
    });
  });
}

test('a registry answering 429 with Retry-After, then 503, still gets the push', async () => {
  const proxy = await startFaultProxy(anon.host, [
    { status: 429, headers: { 'Retry-After': '1' }, times: 1, match: (req) => req.method === 'PUT' && /\/manifests\//.test(req.url ?? '') },
    { status: 503, times: 1, match: (req) => req.method === 'PUT' && /\/manifests\//.test(req.url ?? '') },
  ]);
  try {
    const ctx = createTestContext();
    await buildAndTag(buildOptions({ imageName: `${proxy.host}/shop/flaky`, tags: ['1'] }), ctx);
    const options = pushOptions(ctx, undefined, { buildRecordPath: ctx.outputs.buildRecord });
    const { lock } = await pushWithDigest(options, ctx);
    options.client.close();
    assert.equal(proxy.remaining(), 0, 'both faults were served');
    assert.ok(proxy.log().some((r) => r.injected && r.status === 429));
    assert.equal(lock.images[0].digest, await skopeoDigest(`${anon.host}/shop/flaky:1`));
  } finally {
    await proxy.stop();
  }
});

// The current engine gives up on a 500 at once, so our attempts run out within seconds; Docker
// 20.10 retries each layer itself for about 50 s, so there the time limit ends it (256 s before).
test('a registry answering 500 to everything: the push ends within registryTimeoutSeconds, naming the registry', { timeout: 60_000 }, async () => {
  const proxy = await startFaultProxy(anon.host, [{ status: 500, times: Infinity }]);
  try {
    const ctx = createTestContext();
    const ref = `${proxy.host}/shop/failing-registry:1`;
    await docker.getImage(BASE_IMAGE).tag({ repo: `${proxy.host}/shop/failing-registry`, tag: '1' });
    const options = pushOptions(ctx, undefined, { images: [ref], registryTimeoutSeconds: 5 });
    await assert.rejects(pushWithDigest(options, ctx), (err: Error) => {
      const host = proxy.host.replace(/\./g, '\\.');
      assert.match(
        err.message,
        new RegExp(`^Pushing ${host}/shop/failing-registry:1 failed( after 5 attempts: |: it did not get through to the registry ${host} within 5 s \\(registryTimeoutSeconds; )`),
      );
      // Docker 20.10 retries a 500 itself and, within 5 s, has only said that it is retrying.
      assert.match(err.message, /500 Internal Server Error|the engine's last word: '[^']*Retrying in/, 'says what the registry answered, or what the engine last said');
      assert.match(err.message, new RegExp(`Check that the registry (${host} )?is`), 'says what to do');
      return true;
    });
    options.client.close();
    assert.ok(proxy.requests() > 0, 'the engine did reach the (failing) registry');
  } finally {
    await proxy.stop();
  }
});

describe('bad input gets a clear error', () => {
  test('a failing RUN step names the image and the engine message', async () => {
    const dir = fs.mkdtempSync(path.join(work, 'fail-'));
    fs.writeFileSync(path.join(dir, 'Dockerfile'), 'FROM outer-loop/busybox:test\nRUN echo about to fail && exit 3\n');
    await assert.rejects(
      buildAndTag(buildOptions({ imageName: 'localhost:5000/shop/broken', dockerfile: path.join(dir, 'Dockerfile'), buildContext: dir }), createTestContext()),
      /Building 'broken' failed: .*(exit code: 3|non-zero code: 3)/,
    );
  });

  test('missing Dockerfile, invalid tag, compose file with nothing to build, image not built', async () => {
    await assert.rejects(buildAndTag(buildOptions({ imageName: 'localhost:5000/x', dockerfile: path.join(work, 'Nope') }), createTestContext()), /Dockerfile '.*Nope' does not exist/);
    await assert.rejects(buildAndTag(buildOptions({ imageName: 'localhost:5000/x', tags: ['bad tag'] }), createTestContext()), /Input 'tags'/);
    const compose = path.join(work, 'third-party-only.yml');
    fs.writeFileSync(compose, 'services:\n  db:\n    image: postgres:16\n');
    await assert.rejects(buildAndTag(buildOptions({ composeFile: compose }), createTestContext()), /no service with a 'build:' section/);
    const ctx = createTestContext();
    await assert.rejects(pushWithDigest(pushOptions(ctx, undefined, { images: [`${anon.host}/never/built:1`] }), ctx), /not on this Docker engine/);
    await assert.rejects(pushWithDigest(pushOptions(ctx, undefined, { images: [`${anon.host}/x:1`], additionalTags: ['-bad'] }), ctx), /Input 'additionalTags'/);
  });

  test('an unreachable registry is retried, then named in a clear error', async () => {
    const ctx = createTestContext();
    await docker.getImage('outer-loop/busybox:test').tag({ repo: '127.0.0.1:9/shop/nowhere', tag: '1' });
    await assert.rejects(
      pushWithDigest(pushOptions(ctx, undefined, { images: ['127.0.0.1:9/shop/nowhere:1'], pushAttempts: 2 }), ctx),
      /Pushing 127\.0\.0\.1:9\/shop\/nowhere:1 failed after 2 attempts: .*connection refused.*Check that the registry 127\.0\.0\.1:9 is reachable/,
    );
    assert.ok(ctx.logs.some((l) => /attempt 2 of 2/.test(l)), 'the push was retried');
  });
});
