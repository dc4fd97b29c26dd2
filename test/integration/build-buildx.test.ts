// BuildAndTag's buildx backend on a real engine: what the Engine API's /build cannot express.
// Current stack (containerd image store, buildx v0.38.2 as a CLI plugin):
//   - a compose service with build.platforms linux/amd64 + linux/arm64 is ONE build giving one image
//     index, tagged in the engine; PushWithDigest pushes the whole index, and the lock records the
//     index digest and each platform's manifest digest, as skopeo --raw reads them from the registry;
//     a build secret and our own SSH agent reach its RUN steps, the secret never on buildx's command line;
//   - cache reuse: a build exports its cache to a registry that wants a password (cacheTo
//     type=registry,mode=max), then a FRESH engine (a second private dockerd with its own data root)
//     builds the same with cacheFrom from that registry, and its log shows the RUN steps CACHED.
//   There is no QEMU here, so no RUN step runs for the foreign platform: the Dockerfiles use the
//   cross-build pattern (FROM --platform=$BUILDPLATFORM … then FROM scratch + COPY --from).
// Legacy stack (Docker 20.10, classic store; no CLI plugins): the errors before anything is built.
import { strict as assert } from 'node:assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type Dockerode from 'dockerode';
import { extract } from 'tar-stream';
import { createCredentialSource } from '../../tasks/lib/auth';
import { followStream } from '../../tasks/lib/docker/stream';
import { buildAndTag, BuildAndTagOptions } from '../../tasks/lib/build';
import { readLock } from '../../tasks/lib/lock/file';
import { pushWithDigest } from '../../tasks/lib/push';
import { RegistryClient } from '../../tasks/lib/registry/client';
import { BASE_IMAGE, startEngineWithBaseImage } from '../support/base-image';
import { createTestContext, TestContext } from '../support/context';
import { startEngine, TestEngine } from '../support/engine';
import { buildOptions, cachedBuildSteps, writeProject } from '../support/images';
import { startRegistry, TestRegistry } from '../support/registry';
import { skopeoConfig, skopeoRaw } from '../support/skopeo';
import { stackFromEnv } from '../support/stack';
import { pushWithDigestDefaults } from '../support/task-defaults';

const stack = stackFromEnv();
let engine: TestEngine;
let docker: Dockerode;
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'col-buildx-'));
const SECRET = `token-${createHash('sha256').update(String(Math.random())).digest('hex').slice(0, 20)}`;

/** Builds once per target platform on the build platform (no QEMU needed), then copies into an empty image of the target platform. */
const CROSS_BUILD = `FROM --platform=$BUILDPLATFORM ${BASE_IMAGE} AS build
ARG TARGETPLATFORM
RUN --mount=type=secret,id=token,required=true sha256sum /run/secrets/token | cut -d' ' -f1 > /token-sha
RUN --mount=type=ssh,required=true test -S "$SSH_AUTH_SOCK" && echo "agent reached" > /ssh
RUN echo "built for $TARGETPLATFORM" > /platform
FROM scratch
COPY --from=build /platform /token-sha /ssh /
`;

before(async () => {
  engine = await startEngineWithBaseImage();
  docker = engine.docker;
});

after(async () => {
  await engine?.stop();
  fs.rmSync(work, { recursive: true, force: true });
});

const project = (name: string, files: Record<string, string>) => writeProject(work, name, files);

function sshKey(): string {
  const file = path.join(work, `key-${Math.random().toString(36).slice(2)}`);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', file]);
  return fs.readFileSync(file, 'utf8');
}

/** A password registry's credentials, as a service connection gives them. */
function credentialsFor(registry: TestRegistry, ctx: TestContext) {
  const endpoint = { id: 'reg', input: 'containerRegistry', url: `http://${registry.host}`, scheme: 'UsernamePassword', auth: { username: registry.username!, password: registry.password! }, data: { registry: `http://${registry.host}` } };
  return createCredentialSource({ endpoint, setSecret: (s) => ctx.setSecret(s), useDockerConfig: false });
}

/** A file of an image (of the engine's platform), read from a container made from it and never started. */
async function fileOf(image: string, file: string): Promise<string> {
  const container = await docker.createContainer({ Image: image, Cmd: ['none'] });
  try {
    const tar = (await container.getArchive({ path: file })) as NodeJS.ReadableStream;
    const untar = extract();
    let text = '';
    untar.on('entry', (_header, stream, next) => {
      stream.on('data', (c: unknown) => (text += String(c)));
      stream.on('end', next);
    });
    await new Promise<void>((resolve, reject) => {
      untar.on('finish', resolve);
      untar.on('error', reject);
      tar.pipe(untar);
    });
    return text.trim();
  } finally {
    await container.remove({ force: true });
  }
}

/** The manifests of an image in the containerd store (GET /images/NAME/json?manifests=1, API 1.48+). */
function imageManifests(image: string): Promise<{ Descriptor: { platform?: { architecture: string } } }[]> {
  const modem = (docker as unknown as { modem: { dial(o: object, cb: (err: Error | null, data: unknown) => void): void } }).modem;
  return new Promise((resolve, reject) =>
    modem.dial({ path: `/images/${image}/json?`, method: 'GET', options: { manifests: true }, statusCodes: { 200: true } }, (err, data) => (err ? reject(err) : resolve((data as { Manifests?: [] }).Manifests ?? []))),
  );
}


if (stack === 'current') {
  describe('a two-platform image: one build, one index, pushed whole, locked per platform', () => {
    let registry: TestRegistry;
    before(async () => {
      registry = await startRegistry('htpasswd');
    });
    after(async () => registry?.stop());

    test('compose build.platforms [linux/amd64, linux/arm64] gives one image index in the engine; the lock holds the index and each platform as the registry has them', async () => {
      const image = `${registry.host}/buildx/multi`;
      const dir = project('multi', {
        'compose.yaml': `services:\n  app:\n    image: ${image}\n    build:\n      context: .\n      platforms: [linux/amd64, linux/arm64]\n      secrets: [token]\nsecrets:\n  token:\n    environment: BUILD_TOKEN\n`,
        Dockerfile: CROSS_BUILD,
      });
      const ctx = createTestContext();
      const record = await buildAndTag(
        buildOptions(docker, { composeFile: path.join(dir, 'compose.yaml'), tags: ['1.0'], buildRecordPath: path.join(dir, 'record.json'), env: { BUILD_TOKEN: SECRET }, sshKey: { privateKey: sshKey(), what: 'test key' }, noCache: true }),
        ctx,
      );
      const log = ctx.logs.join('\n');
      assert.match(log, /app builds with github\.com\/docker\/buildx v0\.38\.2[^:]*: 2 platforms \(linux\/amd64, linux\/arm64\) make one image index/);
      assert.match(log, /--platform linux\/amd64,linux\/arm64/, 'one build for both platforms');
      assert.match(log, /--secret id=token,env=COL_BUILD_SECRET_0/);
      assert.ok(!log.includes(SECRET), 'the secret is not in the log (nor on the command line the log shows)');
      assert.match(log, /\[linux\/amd64->arm64 build 4\/4\] RUN echo "built for linux\/arm64"/, 'the arm64 image was cross-built on the amd64 build platform');

      // The engine holds the index under the tag; the build record has its digest.
      const inspect = await docker.getImage(`${image}:1.0`).inspect();
      assert.equal(record.images[0].imageId, inspect.Id);
      const engineManifests = await imageManifests(`${image}:1.0`);
      assert.deepEqual(engineManifests.map((m) => m.Descriptor.platform?.architecture).sort(), ['amd64', 'arm64'], "the engine's store has both platforms");
      assert.equal(await fileOf(`${image}:1.0`, '/platform'), 'built for linux/amd64');
      assert.equal(await fileOf(`${image}:1.0`, '/token-sha'), createHash('sha256').update(SECRET).digest('hex'), 'the RUN step read the secret');
      assert.equal(await fileOf(`${image}:1.0`, '/ssh'), 'agent reached', "our key's agent was served on a socket to the RUN step");

      // PushWithDigest pushes the index; the lock records it and each platform.
      const push = createTestContext();
      const credentials = credentialsFor(registry, push);
      const lockFile = path.join(dir, 'image-lock.json');
      await pushWithDigest(
        { engine: async () => docker, client: new RegistryClient({ credentials, log: push, setSecret: (s) => push.setSecret(s) }), credentials, buildRecordPath: path.join(dir, 'record.json'), images: [], additionalTags: [], lockFile, publishArtifact: false, artifactName: 'image-lock', ...pushWithDigestDefaults(), pipeline: {} },
        push,
      );
      const auth = { registry: registry.host, username: registry.username!, password: registry.password! };
      const raw = await skopeoRaw(`${image}:1.0`, auth);
      const index = JSON.parse(raw) as { mediaType: string; manifests: { digest: string; platform: { os: string; architecture: string } }[] };
      assert.equal(index.mediaType, 'application/vnd.oci.image.index.v1+json');
      assert.deepEqual(index.manifests.map((m) => `${m.platform.os}/${m.platform.architecture}`).sort(), ['linux/amd64', 'linux/arm64'], 'both manifests, no attestation');
      const [locked] = readLock(lockFile).images;
      assert.equal(locked.digest, `sha256:${createHash('sha256').update(raw).digest('hex')}`, "the lock's digest is the index's");
      assert.equal(locked.ref, `${image}@${locked.digest}`);
      assert.equal(locked.digest, inspect.Id, 'the pushed index is the image built');
      assert.equal(locked.mediaType, index.mediaType);
      assert.deepEqual(locked.platforms, ['linux/amd64', 'linux/arm64']);
      assert.deepEqual(locked.platformDigests, Object.fromEntries(index.manifests.map((m) => [`${m.platform.os}/${m.platform.architecture}`, m.digest]).sort()));
      for (const [platform, digest] of Object.entries(locked.platformDigests ?? {})) {
        const config = await skopeoConfig(`${image}@${digest}`, auth);
        assert.equal(`${config.os}/${config.architecture}`, platform, `the registry's ${platform} manifest is an image of that platform`);
      }
      assert.match(fs.readFileSync(lockFile, 'utf8'), /"platformDigests": \{\n\s+"linux\/amd64": "sha256:[a-f0-9]{64}",\n\s+"linux\/arm64": "sha256:[a-f0-9]{64}"\n\s+\}/, 'sorted keys');
    });
  });

  describe('cache reuse from a registry on a fresh engine', () => {
    let registry: TestRegistry;
    let fresh: TestEngine | undefined;
    const freshDir = fs.mkdtempSync('/tmp/col-bx-');
    before(async () => {
      registry = await startRegistry('htpasswd');
    });
    after(async () => {
      await registry?.stop();
      await fresh?.stop();
      const bridge = fs.existsSync(path.join(freshDir, 'network.json')) ? (JSON.parse(fs.readFileSync(path.join(freshDir, 'network.json'), 'utf8')) as { bridge: string }).bridge : undefined;
      if (bridge) spawnSync('ip', ['link', 'del', bridge]);
      spawnSync('rm', ['-rf', freshDir]);
    });

    test('a build exports its cache (type=registry,mode=max) with the registry password in a private docker config; a fresh engine building with cacheFrom reuses every RUN step', async () => {
      const cacheRef = `${registry.host}/buildx/cache:main`;
      const dir = project('cached', {
        Dockerfile: `FROM --platform=$BUILDPLATFORM ${BASE_IMAGE} AS build\nRUN echo one > /one && sleep 1\nRUN echo two > /two && sleep 1\nFROM scratch\nCOPY --from=build /one /two /\n`,
      });
      const options = (d: Dockerode, over: Partial<BuildAndTagOptions>, ctx: TestContext): BuildAndTagOptions =>
        buildOptions(d, { dockerfile: path.join(dir, 'Dockerfile'), buildContext: dir, imageName: 'buildx/cached', tags: ['1'], buildRecordPath: path.join(dir, `record-${Math.random()}.json`), credentials: credentialsFor(registry, ctx), ...over });

      const first = createTestContext();
      await buildAndTag(options(docker, { cacheTo: [`type=registry,ref=${cacheRef},mode=max`], noCache: true }, first), first);
      assert.match(first.logs.join('\n'), /cacheTo exports a build cache/);
      assert.deepEqual(cachedBuildSteps(first.logs), [], 'the first build ran every step');
      assert.ok(first.secrets.has(registry.password!), 'the password is registered for masking');
      assert.ok(!first.logs.join('\n').includes(registry.password!), 'and never printed (nor on the command line)');
      const cacheManifest = JSON.parse(await skopeoRaw(cacheRef, { registry: registry.host, username: registry.username!, password: registry.password! })) as { layers: unknown[] };
      assert.ok(cacheManifest.layers.length >= 3, 'the cache holds the build stage layers (mode=max)');

      fresh = await startEngine({ stack: 'current', dir: freshDir });
      // The same base image (saved and loaded, so its digest and the cache keys built on it are the same); nothing else.
      await followStream((await fresh.docker.loadImage((await docker.getImage(BASE_IMAGE).get()) as NodeJS.ReadableStream)) as NodeJS.ReadableStream, 'Loading the base image');
      assert.deepEqual((await fresh.docker.listImages()).flatMap((i) => i.RepoTags ?? []), [BASE_IMAGE], 'a fresh engine: the base image only');
      const second = createTestContext();
      await buildAndTag(options(fresh.docker, { cacheFrom: [`type=registry,ref=${cacheRef}`] }, second), second);
      const log = second.logs.join('\n');
      assert.match(log, /importing cache manifest from 127\.0\.0\.1:\d+\/buildx\/cache:main/);
      // Both RUN steps come from the registry cache. The final COPY usually does too, but BuildKit
      // sometimes copies again (one bench run in three did), so it is not required.
      const cached = cachedBuildSteps(second.logs);
      assert.ok(cached.includes('RUN echo one > /one && sleep 1') && cached.includes('RUN echo two > /two && sleep 1'), `both RUN steps CACHED (cached: ${cached.join('; ')})`);
    });
  });
}

if (stack === 'legacy') {
  describe('an engine with the classic image store, and an agent without buildx', () => {
    const dir = project('legacy', { Dockerfile: `FROM ${BASE_IMAGE}\nRUN echo hi > /hi\n` });
    const options = (over: Partial<BuildAndTagOptions>): BuildAndTagOptions =>
      buildOptions(docker, { dockerfile: path.join(dir, 'Dockerfile'), buildContext: dir, imageName: 'buildx/legacy', tags: ['1'], buildRecordPath: path.join(dir, 'record.json'), ...over });
    const nothingBuilt = async (ctx: TestContext) => {
      await assert.rejects(docker.getImage('buildx/legacy:1').inspect(), /no such image|404/i);
      assert.ok(!ctx.logs.some((l) => /^#\d+ /.test(l)), 'no build step ran');
      assert.ok(!fs.existsSync(path.join(dir, 'record.json')));
    };

    test('several platforms are refused before building, saying what to enable; never a first-platform build', async () => {
      const ctx = createTestContext();
      await assert.rejects(buildAndTag(options({ platform: 'linux/amd64,linux/arm64' }), ctx), (err: Error) => {
        assert.match(err.message, /^Building 'legacy': an image index of 2 platforms \(linux\/amd64, linux\/arm64\) needs the engine's containerd image store/);
        assert.match(err.message, /daemon\.json with "features": \{"containerd-snapshotter": true\} \(Docker 24 or newer\)/);
        return true;
      });
      await nothingBuilt(ctx);
    });

    test('a registry cache export is refused the same way', async () => {
      const ctx = createTestContext();
      await assert.rejects(buildAndTag(options({ cacheTo: ['type=registry,ref=127.0.0.1:5000/x/cache:1'] }), ctx), /a type=registry cache export needs the engine's containerd image store/);
      await nothingBuilt(ctx);
    });

    test('an inline cache export needs buildx, which this agent does not have: the error says to install the docker-buildx-plugin', async () => {
      const ctx = createTestContext();
      await assert.rejects(buildAndTag(options({ cacheTo: ['type=inline'] }), ctx), /^DockerError: Building 'legacy' needs docker buildx \(cacheTo exports a build cache\), which this agent does not have .*Install the docker-buildx-plugin package/);
      await nothingBuilt(ctx);
    });
  });
}
