// Reproducible builds (BuildAndTag's default): the image timestamps come from the commit time of
// the build's commit (SOURCE_DATE_EPOCH). On the current engine (BuildKit with the containerd
// store rewrites layer timestamps) a rebuild of the commit without cache gives the same digest and
// a byte-identical lock, also on a fresh engine; on Docker 20.10 only the labels and log say so.
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import type Dockerode from 'dockerode';
import { createCredentialSource } from '../../tasks/lib/auth';
import { buildAndTag, BuildAndTagOptions } from '../../tasks/lib/build';
import { pushWithDigest } from '../../tasks/lib/push';
import { RegistryClient } from '../../tasks/lib/registry/client';
import { BASE_IMAGE } from '../support/base-image';
import { startReleasePeers } from '../support/compose-deploy';
import { createTestContext } from '../support/context';
import { startEngine, TestEngine } from '../support/engine';
import { buildOptions } from '../support/images';
import type { TestRegistry } from '../support/registry';
import { stackFromEnv } from '../support/stack';
import { pushWithDigestDefaults } from '../support/task-defaults';

const COMMIT_DATE = '2026-06-01T12:00:00Z';
const EPOCH = Date.parse(COMMIT_DATE) / 1000;
const current = stackFromEnv() === 'current';

let engine: TestEngine;
let docker: Dockerode;
let registry: TestRegistry;
let commit: string;
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'col-repro-'));
const repo = path.join(work, 'repo');

before(async () => {
  ({ engine, docker, registry } = await startReleasePeers('none'));
  fs.mkdirSync(path.join(repo, 'app'), { recursive: true });
  // A RUN step makes files with the time of the build: only a timestamp rewrite makes its layer repeatable.
  fs.writeFileSync(path.join(repo, 'app', 'Dockerfile'), `FROM ${BASE_IMAGE}\nRUN mkdir /data && touch /data/built\nCOPY hello.txt /hello.txt\n`);
  fs.writeFileSync(path.join(repo, 'app', 'Dockerfile.scratch'), 'FROM scratch\nCOPY hello.txt /hello.txt\n');
  fs.writeFileSync(path.join(repo, 'app', 'hello.txt'), 'hello\n');
  const git = (...args: string[]) => execFileSync('git', args, { cwd: repo, encoding: 'utf8', env: { ...process.env, GIT_AUTHOR_DATE: COMMIT_DATE, GIT_COMMITTER_DATE: COMMIT_DATE, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@example.com', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@example.com' } }).trim();
  git('init', '-q');
  git('add', '.');
  git('commit', '-q', '-m', 'app');
  commit = git('rev-parse', 'HEAD');
});

after(async () => {
  await registry?.stop();
  await engine?.stop();
  fs.rmSync(work, { recursive: true, force: true });
});

function options(on: Dockerode, over: Partial<BuildAndTagOptions> = {}): BuildAndTagOptions {
  return buildOptions(on, {
    dockerfile: path.join(repo, 'app', 'Dockerfile'),
    buildContext: path.join(repo, 'app'),
    imageName: `${registry.host}/repro/app`,
    tags: ['1'],
    noCache: true,
    reproducible: true,
    addPipelineLabels: true,
    sourcesDirectory: repo,
    pipeline: { buildNumber: '20260601.1', commit },
    buildRecordPath: path.join(work, `record-${Math.random().toString(36).slice(2)}.json`),
    env: {},
    ...over,
  });
}

async function lockOf(on: Dockerode, recordPath: string): Promise<Buffer> {
  const ctx = createTestContext();
  const credentials = createCredentialSource({ setSecret: () => undefined, dockerConfigDir: path.join(work, 'no-docker-config') });
  const lockFile = path.join(work, `lock-${Math.random().toString(36).slice(2)}.json`);
  await pushWithDigest({ engine: async () => on, client: new RegistryClient({ credentials, log: ctx, setSecret: () => undefined }), credentials, images: [], buildRecordPath: recordPath, additionalTags: [], lockFile, publishArtifact: false, artifactName: 'image-lock', ...pushWithDigestDefaults(), pipeline: { buildNumber: '20260601.1', commit } }, ctx);
  return fs.readFileSync(lockFile);
}

test('a rebuild of the commit, without cache, gives the same digest and a byte-identical lock; the timestamps are the commit time', async () => {
  const first = options(docker);
  const ctx = createTestContext();
  const a = await buildAndTag(first, ctx);
  const second = options(docker);
  const b = await buildAndTag(second, createTestContext());

  const inspect = await docker.getImage(a.images[0].imageId).inspect();
  assert.equal(inspect.Config.Labels['org.opencontainers.image.created'], new Date(EPOCH * 1000).toISOString(), 'the created label is the commit time');
  assert.ok(ctx.logs.some((l) => l.includes(`SOURCE_DATE_EPOCH=${EPOCH}`)), 'the log says where the timestamps come from');
  if (current) {
    assert.equal(a.images[0].imageId, b.images[0].imageId, 'same image, built twice without cache');
    assert.equal(new Date(inspect.Created).toISOString(), new Date(EPOCH * 1000).toISOString(), 'the config time is the commit time');
    const history = await docker.getImage(a.images[0].imageId).history();
    assert.ok(history.slice(0, 2).every((h: { Created: number }) => h.Created === EPOCH), 'the steps of this build are dated at the commit');
    assert.deepEqual(await lockOf(docker, first.buildRecordPath), await lockOf(docker, second.buildRecordPath), 'the locks of the two builds are the same bytes');
  } else {
    // Docker 20.10's BuildKit (0.8) knows no SOURCE_DATE_EPOCH: the digest changes, and the log says why.
    assert.notEqual(a.images[0].imageId, b.images[0].imageId);
    assert.ok(ctx.logs.some((l) => /cannot rewrite layer file timestamps/.test(l)));
  }
});

test('the same commit built on a fresh engine gives the same digest (current stack), and reproducible off takes the clock', async () => {
  const scratch = { dockerfile: path.join(repo, 'app', 'Dockerfile.scratch'), imageName: `${registry.host}/repro/scratch` };
  const here = await buildAndTag(options(docker, scratch), createTestContext());
  const fresh = await startEngine({ stack: stackFromEnv() ?? 'legacy', dir: path.join(work, 'fresh-engine'), bridge: false });
  try {
    const there = await buildAndTag(options(fresh.docker, scratch), createTestContext());
    if (current) assert.equal(there.images[0].imageId, here.images[0].imageId, 'another engine, with nothing cached, builds the same image');
  } finally {
    await fresh.stop();
  }
  if (current) {
    // Through buildx (an image index of two platforms): the same rewrite, the same index digest.
    const index = { ...scratch, imageName: `${registry.host}/repro/index`, platform: 'linux/amd64,linux/arm64' };
    const [one, two] = [await buildAndTag(options(docker, index), createTestContext()), await buildAndTag(options(docker, index), createTestContext())];
    assert.equal(one.images[0].imageId, two.images[0].imageId, 'a two-platform index built twice without cache is the same');
  }
  const clock = await buildAndTag(options(docker, { ...scratch, reproducible: false }), createTestContext());
  const created = (await docker.getImage(clock.images[0].imageId).inspect()).Config.Labels['org.opencontainers.image.created'];
  assert.ok(Date.parse(created) > Date.now() - 10 * 60_000, `reproducible off: the created label is now, not the commit (${created})`);
});
