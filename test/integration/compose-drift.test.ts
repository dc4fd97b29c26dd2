// ComposeDeploy's `mode: verify` (the drift report) and `container-outer-loop status` on a real engine
// and a real registry: the fixture app (test/fixtures/compose-deploy) is built and pushed once with
// the project's own BuildAndTag and PushWithDigest, deployed with ComposeDeploy, then changed by hand
// the ways an operator would, and each change must show as drift.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import type Dockerode from 'dockerode';
import { createCredentialSource } from '../../tasks/lib/auth';
import { composeDeploy } from '../../tasks/lib/compose-deploy';
import { composeVerify, ComposeVerifyOptions } from '../../tasks/lib/compose-deploy/drift';
import { projectContainers } from '../../tasks/lib/compose/containers';
import { readLock } from '../../tasks/lib/lock/file';
import { DriftError } from '../../tasks/lib/release/drift';
import { runStatus } from '../../runner/status';
import { runBundledTask } from '../support/agent';
import { BASE_IMAGE } from '../support/base-image';
import { buildAndLock, pushThirdPartyImage, registryEndpoint, startReleasePeers } from '../support/compose-deploy';
import { createTestContext } from '../support/context';
import { removeComposeProject, TestEngine } from '../support/engine';
import type { TestRegistry } from '../support/registry';
import { composeDeployDefaults } from '../support/task-defaults';

const FIXTURE = path.join(__dirname, '..', 'fixtures', 'compose-deploy');
const RUN = `drift${process.pid.toString(36)}${Math.random().toString(36).slice(2, 6)}`; // the engine is shared
const PROJECT = `${RUN}-prod`;

let engine: TestEngine;
let docker: Dockerode;
let registry: TestRegistry;
let lockFile: string;
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'col-drift-'));
const strays: string[] = [];

function credentials() {
  return createCredentialSource({ endpoint: registryEndpoint(registry), setSecret: () => {}, dockerConfigDir: path.join(work, 'no-config') });
}

const app = () => ({
  composeFiles: [path.join(FIXTURE, 'docker-compose.yml')],
  environmentName: 'prod',
  repositoryName: RUN,
  lock: readLock(lockFile),
  lockName: lockFile,
  variables: { REGISTRY: registry.host },
  profiles: [],
  target: { type: 'local' as const, dockerHost: engine.dockerHost },
  env: { PATH: process.env.PATH },
  ...composeDeployDefaults(),
});

function verifyOptions(over: Partial<ComposeVerifyOptions> = {}): ComposeVerifyOptions {
  return { ...app(), maxRestarts: 0, failOnDrift: true, ...over };
}

async function deploy(): Promise<void> {
  const ctx = createTestContext();
  await composeDeploy({ ...app(), credentials: credentials(), waitTimeoutSeconds: 60, rollbackOnFailure: false, removeOrphans: true, publishRenderedFile: false }, ctx);
}

async function container(service: string): Promise<Dockerode.ContainerInspectInfo> {
  const state = (await projectContainers(docker, PROJECT)).find((s) => s.service === service);
  assert.ok(state, `the project runs a ${service} container`);
  return docker.getContainer(state.id).inspect();
}

/** `docker run -d` of an image, with labels, into a network; removed after the tests. */
async function dockerRun(name: string, image: string, labels: Record<string, string>, network: string): Promise<void> {
  const c = await docker.createContainer({ name, Image: image, Cmd: ['sleep', '3600'], Labels: labels, HostConfig: { NetworkMode: network } });
  strays.push(c.id);
  await c.start();
}

before(async () => {
  ({ engine, docker, registry } = await startReleasePeers('htpasswd'));
  await pushThirdPartyImage(docker, registry);
  lockFile = await buildAndLock(docker, registry, {
    composeFile: path.join(FIXTURE, 'docker-compose.yml'),
    version: 'v1',
    dir: work,
    buildId: '1',
    build: { services: ['web'], buildArgs: { VERSION: 'v1', HEALTHY: 'true' }, addPipelineLabels: false },
  });
});

after(async () => {
  for (const id of strays) await docker.getContainer(id).remove({ force: true }).catch(() => undefined);
  await removeComposeProject(docker, PROJECT).catch(() => undefined);
  await registry?.stop();
  await engine?.stop();
  fs.rmSync(work, { recursive: true, force: true });
});

describe('ComposeDeploy mode verify', () => {
  beforeEach(async () => {
    // Each test starts from a fresh deployment of the lock.
    for (const id of strays.splice(0)) await docker.getContainer(id).remove({ force: true }).catch(() => undefined);
    await removeComposeProject(docker, PROJECT);
    await deploy();
  });

  test('right after a deployment: no drift, the table in the summary, driftCount 0; status says the same', async () => {
    const ctx = createTestContext();
    const report = await composeVerify(verifyOptions(), ctx);
    assert.deepEqual(report.differences, []);
    assert.deepEqual(report.rows.map((r) => r.service), ['web', 'worker']);
    const lock = readLock(lockFile);
    for (const r of report.rows) assert.equal(r.running, lock.images.find((i) => i.name === r.service)!.digest, `${r.service} runs the lock's digest`);
    assert.equal(ctx.outputs.driftCount, '0');
    assert.match(ctx.summaries.join('\n'), /### ComposeDeploy verify: prod/);
    assert.match(ctx.summaries.join('\n'), /\*\*No drift:\*\*/);
    assert.match(ctx.summaries.join('\n'), /\| web \| .+ \| ✅ none \|/);
    assert.ok(ctx.logs.some((l) => /No drift: Project '.+-prod' on the local engine/.test(l)));

    const lines: string[] = [];
    const status = await runStatus({ lockFile, host: engine.dockerHost, project: PROJECT, namespace: 'default', fieldManager: 'container-outer-loop', maxRestarts: 0, notDeployed: [] }, (l) => lines.push(l));
    assert.deepEqual(status.differences, []);
    assert.match(lines.join('\n'), /\*\*No drift:\*\* the environment runs exactly the image lock\./);
  });

  test('a container replaced by hand with another image, even with all its labels, is drift; the task fails and lists it', async () => {
    const web = await container('web');
    await docker.getContainer(web.Id).remove({ force: true });
    const network = Object.keys(web.NetworkSettings.Networks)[0];
    await dockerRun(web.Name.replace(/^\//, ''), `${registry.host}/third-party/busybox:1.0`, web.Config.Labels, network);

    const ctx = createTestContext();
    await assert.rejects(composeVerify(verifyOptions(), ctx), (err: Error) => {
      assert.ok(err instanceof DriftError);
      assert.match(err.message, /differs from the image lock in 1 way:/);
      assert.match(err.message, /\(service web\) runs .*\/third-party\/busybox, not the lock's .*\/shop\/web\./);
      return true;
    });
    assert.equal(ctx.outputs.driftCount, '1');
    assert.match(ctx.summaries.join('\n'), /\| web \| .+ \| ❌ other image \|/);
    assert.match(ctx.summaries.join('\n'), /\*\*Drift:\*\* 1 difference from the image lock\./);
  });

  test('a stray `docker run` into the project with its labels, and a container on its network without them, are drift', async () => {
    const web = await container('web');
    const network = Object.keys(web.NetworkSettings.Networks)[0];
    // The same image as the lock's web: only who started it tells it apart.
    await dockerRun(`${RUN}-stray`, web.Config.Image, { 'com.docker.compose.project': PROJECT, 'com.docker.compose.service': 'web' }, network);
    await dockerRun(`${RUN}-visitor`, BASE_IMAGE, {}, network);

    const ctx = createTestContext();
    await assert.rejects(composeVerify(verifyOptions(), ctx), (err: Error) => {
      assert.match(err.message, new RegExp(`${RUN}-stray \\(service web\\) was not started by the deploy: it carries the project's labels but not those Compose gives the containers it creates`));
      assert.match(err.message, new RegExp(`${RUN}-visitor is not part of the release`));
      assert.match(err.message, new RegExp(`${RUN}-visitor was not started by the deploy: it is attached to the project's network`));
      assert.doesNotMatch(err.message, /other image/);
      return true;
    });
    const stray = (await composeVerify(verifyOptions({ failOnDrift: false }), createTestContext())).rows.find((r) => r.name === `${RUN}-stray`)!;
    assert.deepEqual(stray.kinds, ['by-hand'], 'the stray runs the right digest: only who started it is wrong');
  });

  test('restarts above maxRestarts are drift; up to it they are not', async () => {
    const worker = await container('worker');
    await docker.getContainer(worker.Id).update({ RestartPolicy: { Name: 'always' } });
    // A crash: the process dies outside the engine's control, so the restart policy applies.
    process.kill(worker.State.Pid, 'SIGKILL');
    const deadline = Date.now() + 30_000;
    for (;;) {
      const now = await docker.getContainer(worker.Id).inspect();
      if (now.RestartCount >= 1 && now.State.Running) break;
      assert.ok(Date.now() < deadline, `the worker did not restart (RestartCount ${now.RestartCount}, ${now.State.Status})`);
      await new Promise((r) => setTimeout(r, 200));
    }
    await assert.rejects(composeVerify(verifyOptions(), createTestContext()), /worker[-_]1 \(service worker\) restarted 1 time\(s\), more than maxRestarts \(0\)\./);
    const report = await composeVerify(verifyOptions({ maxRestarts: 1 }), createTestContext());
    assert.deepEqual(report.differences, []);
    assert.equal(report.rows.find((r) => r.service === 'worker')?.restarts, 1);
  });

  test('failOnDrift false: a missing service is a warning only; status exits with the same report', async () => {
    await docker.getContainer((await container('worker')).Id).remove({ force: true });
    const ctx = createTestContext();
    const report = await composeVerify(verifyOptions({ failOnDrift: false }), ctx);
    assert.deepEqual(report.differences.map((d) => [d.kind, d.service]), [['missing', 'worker']]);
    assert.equal(ctx.outputs.driftCount, '1');
    assert.ok(ctx.logs.some((l) => /^WARNING: Drift: worker is not running: the lock has .*\/third-party\/busybox@sha256:[a-f0-9]{64} for it\./.test(l)));
    assert.match(ctx.summaries.join('\n'), /\| worker \| — \| `[a-f0-9]{12}` \| — \| not running \| — \| ❌ missing \|/);

    const lines: string[] = [];
    const status = await runStatus({ lockFile, host: engine.dockerHost, project: PROJECT, namespace: 'default', fieldManager: 'container-outer-loop', maxRestarts: 0, notDeployed: [] }, (l) => lines.push(l));
    assert.deepEqual(status.differences.map((d) => d.message), report.differences.map((d) => d.message));
    assert.match(lines.join('\n'), /- worker is not running/);
  });

  test('the bundled task, as the agent runs it: mode verify succeeds on the deployment, then fails on drift, deploying nothing', async () => {
    const inputs = { mode: 'verify', composeFiles: path.join(FIXTURE, 'docker-compose.yml'), environmentName: 'prod', projectName: PROJECT, lockFile, variables: `REGISTRY=${registry.host}`, dockerHostType: 'local' };
    const env = { DOCKER_HOST: engine.dockerHost };
    const clean = await runBundledTask('compose-deploy', { inputs, env, timeoutMs: 60_000 });
    assert.equal(clean.result, 'Succeeded', clean.output);
    assert.equal(clean.variables.driftCount, '0');
    assert.match(clean.visible, /No drift: Project '.+-prod' on the local engine/);
    assert.match(clean.output, /##vso\[task\.uploadsummary\]/);
    const worker = await container('worker');
    await docker.getContainer(worker.Id).remove({ force: true });
    const drifted = await runBundledTask('compose-deploy', { inputs, env, timeoutMs: 60_000 });
    assert.equal(drifted.result, 'Failed', drifted.output);
    assert.equal(drifted.variables.driftCount, '1');
    assert.match(drifted.visible, /worker is not running: the lock has .*third-party\/busybox@sha256:[a-f0-9]{64} for it\./);
    assert.deepEqual((await projectContainers(docker, PROJECT)).map((c) => c.service), ['web'], 'verify deployed nothing: the worker stays gone');
    const warned = await runBundledTask('compose-deploy', { inputs: { ...inputs, failOnDrift: 'false' }, env, timeoutMs: 60_000 });
    assert.equal(warned.result, 'Succeeded', warned.output);
    assert.match(warned.output, /##vso\[task\.issue type=warning;[^\]]*\]Drift: worker is not running/);
  });
});
