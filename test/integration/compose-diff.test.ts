// ComposeDeploy's promotion diff on a real engine with a real registry (htpasswd): three services
// (web and api built by the project's BuildAndTag at two commits, with the OCI revision and source
// labels; a third-party worker), pushed by PushWithDigest. The diff reads what the project runs
// through the Engine API and the labels from the registry's config blobs (nothing pulled).
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type Dockerode from 'dockerode';
import { createCredentialSource } from '../../tasks/lib/auth';
import { composeDeploy, ComposeDeployOptions } from '../../tasks/lib/compose-deploy';
import { runningServices } from '../../tasks/lib/compose-deploy/running';
import { projectContainers } from '../../tasks/lib/compose/containers';
import { readLock, writeLock } from '../../tasks/lib/lock/file';
import type { ImageLock } from '../../tasks/lib/lock/types';
import { buildAndLock, localDeploy, pushThirdPartyImage, registryEndpoint, startReleasePeers } from '../support/compose-deploy';
import { createTestContext } from '../support/context';
import { removeComposeProject, TestEngine } from '../support/engine';
import type { TestRegistry } from '../support/registry';

const COMPOSE_FILE = path.join(__dirname, '..', 'fixtures', 'compose-deploy', 'three-services.yml');
const RUN = `cdd${process.pid.toString(36)}${Math.random().toString(36).slice(2, 6)}`;
const SOURCE = 'https://github.com/contoso/shop.git';
const COMMIT_A = 'a1'.repeat(20);
const COMMIT_B = 'b2'.repeat(20);

let engine: TestEngine;
let docker: Dockerode;
let registry: TestRegistry;
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'col-cdd-'));
/** r1: web and api built at commit A. one: r1 with web rebuilt at commit B (api and worker as in r1). */
const locks = { r1: '', one: '' };
const project = `${RUN}-stage`;

/** Builds web and api at `commit` and pushes them with the worker's third-party image; returns the lock. */
async function release(version: string, commit: string): Promise<string> {
  return buildAndLock(docker, registry, { composeFile: COMPOSE_FILE, version, dir: work, buildId: '7', commit, build: { pipeline: { repositoryUri: SOURCE } } });
}

before(async () => {
  ({ engine, docker, registry } = await startReleasePeers('htpasswd'));
  await pushThirdPartyImage(docker, registry);
  locks.r1 = await release('r1', COMMIT_A);
  const r2 = readLock(await release('r2', COMMIT_B));
  const one = structuredClone(readLock(locks.r1)) as ImageLock;
  one.images = one.images.map((i) => (i.name === 'web' ? r2.images.find((n) => n.name === 'web')! : i));
  one.buildNumber = 'r2';
  locks.one = path.join(work, 'lock-one-change.json');
  writeLock(locks.one, one);
});

after(async () => {
  await removeComposeProject(docker, project).catch(() => undefined);
  await registry?.stop();
  await engine?.stop();
  fs.rmSync(work, { recursive: true, force: true });
});

function options(lockFile: string, over: Partial<ComposeDeployOptions> = {}): ComposeDeployOptions {
  return {
    composeFiles: [COMPOSE_FILE],
    environmentName: 'stage',
    repositoryName: RUN,
    lock: readLock(lockFile),
    lockName: lockFile,
    variables: { REGISTRY: registry.host },
    ...localDeploy(engine),
    credentials: createCredentialSource({ endpoint: registryEndpoint(registry), setSecret: () => undefined, dockerConfigDir: path.join(work, 'no-config') }),
    waitTimeoutSeconds: 60,
    ...over,
  };
}

const digestOf = (lockFile: string, name: string) => readLock(lockFile).images.find((i) => i.name === name)!.digest;
const containerIds = async () => (await projectContainers(docker, project)).map((c) => `${c.service} ${c.id}`).sort();

describe('ComposeDeploy: the promotion diff', () => {
  test('a first release adds every service; the summary links each image\'s commit', async () => {
    const ctx = createTestContext();
    const result = await composeDeploy(options(locks.r1), ctx);
    assert.equal(result.skipped, undefined);
    assert.deepEqual(JSON.parse(ctx.outputs.changedServices), ['api', 'web', 'worker']);
    assert.deepEqual(result.diff.services.map((s) => [s.service, s.state]), [['api', 'added'], ['web', 'added'], ['worker', 'added']]);
    const web = result.diff.services.find((s) => s.service === 'web')!;
    assert.equal(web.revisionNext, COMMIT_A, 'the revision label, read from the registry');
    assert.equal(web.link, `https://github.com/contoso/shop/commit/${COMMIT_A}`);
    assert.equal(result.diff.services.find((s) => s.service === 'worker')!.revisionNext, undefined, 'the third-party image has no revision label');
    const summary = ctx.summaries.join('\n');
    assert.match(summary, /### ComposeDeploy: what the release changes in stage/);
    assert.match(summary, /\| web \| added \| — \| `sha256:[a-f0-9]{12}` \| \[a1a1a1a1a1a1 \(new\)\]\(https:\/\/github\.com\/contoso\/shop\/commit\/(a1){20}\) \|/);
  });

  test('the reader of what runs: each service with the digest its containers run', async () => {
    const running = await runningServices(docker, project);
    assert.deepEqual(
      running.map((r) => [r.service, r.digests]),
      ['api', 'web', 'worker'].map((s) => [s, [digestOf(locks.r1, s)]]),
    );
  });

  test('diffOnly: a release that changes one of three services is shown with its commit range, and nothing is deployed', async () => {
    const before = await containerIds();
    const ctx = createTestContext();
    const result = await composeDeploy(options(locks.one, { diffOnly: true }), ctx);
    assert.match(result.skipped ?? '', /diffOnly is true/);
    assert.deepEqual(JSON.parse(ctx.outputs.changedServices), ['web']);
    const states = Object.fromEntries(result.diff.services.map((s) => [s.service, s]));
    assert.deepEqual([states.api.state, states.web.state, states.worker.state], ['unchanged', 'changed', 'unchanged']);
    assert.deepEqual(states.web.digestsNow, [digestOf(locks.r1, 'web')]);
    assert.equal(states.web.digestNext, digestOf(locks.one, 'web'));
    assert.deepEqual([states.web.revisionNow, states.web.revisionNext], [COMMIT_A, COMMIT_B]);
    assert.equal(states.web.link, `https://github.com/contoso/shop/compare/${COMMIT_A}...${COMMIT_B}`);
    assert.equal(states.api.link, `https://github.com/contoso/shop/commit/${COMMIT_A}`, 'unchanged: the one commit it runs');
    assert.match(ctx.summaries.join('\n'), new RegExp(`\\| web \\| changed \\| .* \\| \\[a1a1a1a1a1a1…b2b2b2b2b2b2\\]\\(https://github\\.com/contoso/shop/compare/${COMMIT_A}\\.\\.\\.${COMMIT_B}\\) \\|`));
    assert.ok(ctx.logs.some((l) => /diffOnly is true: the promotion diff is printed and nothing is deployed\. Project '.*-stage' .* was not touched\./.test(l)));
    assert.equal(ctx.outputs.deployedDigests, undefined, 'nothing deployed, no deployedDigests');
    assert.deepEqual(await containerIds(), before, 'no container was created, recreated or removed');
    assert.deepEqual((await runningServices(docker, project)).find((r) => r.service === 'web')!.digests, [digestOf(locks.r1, 'web')]);
  });

  test('deployIfUnchanged: false skips a release that changes nothing, saying so', async () => {
    const before = await containerIds();
    const ctx = createTestContext();
    const result = await composeDeploy(options(locks.r1, { deployIfUnchanged: false }), ctx);
    assert.match(result.skipped ?? '', /Skipped: the release changes nothing .* deployIfUnchanged is false/);
    assert.deepEqual(JSON.parse(ctx.outputs.changedServices), []);
    assert.ok(result.diff.services.every((s) => s.state === 'unchanged'));
    assert.match(ctx.summaries.join('\n'), /The release changes nothing: all 3 service\(s\) already run the lock's digests\./);
    assert.ok(!ctx.logs.some((l) => l.startsWith('GROUP Deploy to')), 'the deploy step did not start');
    assert.deepEqual(await containerIds(), before);
  });

  test('the release that changes web is deployed (deployIfUnchanged: false does not stop it); a diff afterwards shows nothing to change', async () => {
    const ctx = createTestContext();
    const result = await composeDeploy(options(locks.one, { deployIfUnchanged: false }), ctx);
    assert.equal(result.skipped, undefined);
    assert.deepEqual(JSON.parse(ctx.outputs.changedServices), ['web']);
    const running = Object.fromEntries((await runningServices(docker, project)).map((r) => [r.service, r.digests]));
    assert.deepEqual(running, { api: [digestOf(locks.one, 'api')], web: [digestOf(locks.one, 'web')], worker: [digestOf(locks.one, 'worker')] });
    assert.notEqual(digestOf(locks.one, 'web'), digestOf(locks.r1, 'web'));

    const again = createTestContext();
    const diff = (await composeDeploy(options(locks.one, { diffOnly: true }), again)).diff;
    assert.deepEqual(JSON.parse(again.outputs.changedServices), []);
    assert.equal(diff.services.find((s) => s.service === 'web')!.revisionNow, COMMIT_B);
  });

  test('a service left out of the release is removed; one the release brings is added', async () => {
    const file = path.join(path.dirname(COMPOSE_FILE), `three-services.${RUN}.yml`);
    // The same project without api, with a second worker: written beside the fixture so relative paths hold.
    fs.writeFileSync(file, fs.readFileSync(COMPOSE_FILE, 'utf8').replace(/\n  api:\n(    .*\n|      .*\n|        .*\n)+/, '\n').replace(/\n  worker:/, '\n  worker2:\n    image: ${REGISTRY}/third-party/busybox:1.0\n    command: ["sh", "-c", "exec sleep 3600"]\n  worker:'));
    try {
      const ctx = createTestContext();
      const result = await composeDeploy(options(locks.one, { composeFiles: [file], diffOnly: true }), ctx);
      assert.deepEqual(result.diff.services.map((s) => [s.service, s.state]), [['api', 'removed'], ['web', 'unchanged'], ['worker', 'unchanged'], ['worker2', 'added']]);
      assert.deepEqual(JSON.parse(ctx.outputs.changedServices), ['api', 'worker2']);
      assert.equal(result.diff.services[0].link, `https://github.com/contoso/shop/commit/${COMMIT_A}`);
    } finally {
      fs.rmSync(file, { force: true });
    }
  });
});
