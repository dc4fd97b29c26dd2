// ComposeDeploy's traceability on a real engine: four builds of an app image (each its own digest,
// pushed to a private registry), deployed one after the other next to a third-party service that
// never changes. Every container carries the trace labels (run URL, build number, commit, lock
// digest); the unchanged service keeps its container and its labels; a re-deploy of the same build
// recreates nothing; the host keeps keepReleases releases and drops older ones; rollbackTo an older
// build redeploys it, gated and verified, and an unknown build number lists the kept ones.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type Dockerode from 'dockerode';
import { createCredentialSource } from '../../tasks/lib/auth';
import { composeDeploy, ComposeDeployOptions } from '../../tasks/lib/compose-deploy';
import { projectContainers } from '../../tasks/lib/compose/containers';
import { readLock } from '../../tasks/lib/lock/file';
import type { ImageLock } from '../../tasks/lib/lock/types';
import { COMPOSE_TRACE_LABELS, lockFileDigest } from '../../tasks/lib/release/trace';
import { BASE_IMAGE } from '../support/base-image';
import { localDeploy, pushThirdPartyImage, startReleasePeers } from '../support/compose-deploy';
import { createTestContext } from '../support/context';
import { removeComposeProject, TestEngine } from '../support/engine';
import { tagAndPush } from '../support/images';
import type { TestRegistry } from '../support/registry';

const RUN = `cdtr${process.pid.toString(36)}${Math.random().toString(36).slice(2, 6)}`; // unique per run: the engine is shared
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'col-cd-trace-'));
const PROJECT = `${RUN}-qa`;
const COMMIT = (n: number) => `${String(n).repeat(8)}${'abcdef01'.repeat(4)}`;
const runVariables = (buildId: string) => ({ 'System.CollectionUri': 'https://dev.azure.com/contoso/', 'System.TeamProject': 'Shop App', 'Build.BuildId': buildId, 'Build.BuildNumber': `deploy-${buildId}` });
const runUrl = (buildId: string) => `https://dev.azure.com/contoso/Shop%20App/_build/results?buildId=${buildId}`;

let engine: TestEngine;
let docker: Dockerode;
let registry: TestRegistry;
let sideDigest: string;
/** Build number → its lock file and the app image's digest. */
const builds: Record<string, { lockFile: string; digest: string }> = {};
const app = path.join(work, 'docker-compose.yml');

before(async () => {
  ({ engine, docker, registry } = await startReleasePeers('none'));
  sideDigest = await pushThirdPartyImage(docker, registry);
  fs.writeFileSync(
    app,
    [
      'services:',
      '  app:',
      '    image: ${REGISTRY}/shop/app:${TAG:-dev}',
      '    command: ["sh", "-c", "exec sleep 3600"]',
      '    labels: {team: shop}',
      '    restart: "no"',
      '    stop_signal: SIGKILL',
      '  side:',
      '    image: ${REGISTRY}/third-party/busybox:1.0',
      '    command: ["sh", "-c", "exec sleep 3600"]',
      '    restart: "no"',
      '    stop_signal: SIGKILL',
      '',
    ].join('\n'),
  );
  // Four builds of the app: the base image with a label of its own, so each has its own digest.
  for (let n = 1; n <= 4; n++) {
    const build = `b${n}`;
    const helper = await docker.createContainer({ Image: BASE_IMAGE, Cmd: ['true'] });
    const committed = (await helper.commit({ changes: `LABEL build=${build}` })) as { Id: string };
    await helper.remove({ force: true });
    const repository = `${registry.host}/shop/app`;
    const digest = await tagAndPush(docker, committed.Id, `${repository}:${build}`);
    const lock: ImageLock = {
      schemaVersion: 1,
      createdAt: new Date().toISOString(),
      buildNumber: build,
      buildId: String(700 + n),
      commit: COMMIT(n),
      pipeline: { definition: 'shop-ci', runId: String(700 + n), project: 'Shop App', collectionUri: 'https://dev.azure.com/contoso/' },
      images: [
        { name: 'app', repository, tags: [build], digest, ref: `${repository}@${digest}`, source: 'built', platforms: ['linux/amd64'] },
        { name: 'side', repository: `${registry.host}/third-party/busybox`, tags: ['1.0'], digest: sideDigest, ref: `${registry.host}/third-party/busybox@${sideDigest}`, source: 'resolved', platforms: ['linux/amd64'] },
      ],
    };
    const lockFile = path.join(work, `lock-${build}.json`);
    fs.writeFileSync(lockFile, `${JSON.stringify(lock, null, 2)}\n`);
    builds[build] = { lockFile, digest };
  }
});

after(async () => {
  await removeComposeProject(docker, PROJECT).catch(() => undefined);
  await registry?.stop();
  await engine?.stop();
  fs.rmSync(work, { recursive: true, force: true });
});

function options(build: string, over: Partial<ComposeDeployOptions> = {}): ComposeDeployOptions {
  const { lockFile } = builds[build];
  return {
    composeFiles: [app],
    environmentName: 'qa',
    repositoryName: RUN,
    lock: readLock(lockFile),
    lockName: lockFile,
    lockDigest: lockFileDigest(lockFile),
    variables: { REGISTRY: registry.host, TAG: build },
    ...localDeploy(engine),
    credentials: createCredentialSource({ setSecret: () => undefined, useDockerConfig: false }),
    ...over,
  };
}

interface Running {
  id: string;
  image: string;
  labels: Record<string, string>;
}

/** service → its container: id, the image it was created from, its labels. */
async function running(): Promise<Record<string, Running>> {
  const out: Record<string, Running> = {};
  for (const s of await projectContainers(docker, PROJECT)) {
    assert.equal(s.status, 'running', `${s.name} runs`);
    const info = await docker.getContainer(s.id).inspect();
    assert.equal(out[s.service], undefined, `one container of ${s.service}`);
    out[s.service] = { id: s.id, image: s.configImage, labels: info.Config.Labels ?? {} };
  }
  return out;
}

/** The trace labels a container of `build`, deployed by run `buildId`, carries. */
function traceOf(build: string, buildId: string): Record<string, string> {
  return {
    [COMPOSE_TRACE_LABELS.runUrl]: runUrl(buildId),
    [COMPOSE_TRACE_LABELS.buildNumber]: build,
    [COMPOSE_TRACE_LABELS.commit]: COMMIT(Number(build.slice(1))),
    [COMPOSE_TRACE_LABELS.lockDigest]: lockFileDigest(builds[build].lockFile),
  };
}
const traceLabels = (labels: Record<string, string>) => Object.fromEntries(Object.entries(labels).filter(([k]) => k.startsWith('dev.azure.pipelines.outer-loop.')));

describe('ComposeDeploy traceability and history', () => {
  let sideId = '';

  test('b1: every container carries the run URL, build number, commit and lock digest; the summary links the run that built the app', async () => {
    const ctx = createTestContext(runVariables('901'));
    await composeDeploy(options('b1', { keepReleases: 3 }), ctx);
    const now = await running();
    assert.deepEqual(traceLabels(now.app.labels), traceOf('b1', '901'));
    assert.deepEqual(traceLabels(now.side.labels), traceOf('b1', '901'));
    assert.equal(now.app.labels.team, 'shop', 'the service\'s own labels stay');
    assert.match(fs.readFileSync(ctx.outputs.renderedComposeFile, 'utf8'), /dev\.azure\.pipelines\.outer-loop\.run-url: https:\/\/dev\.azure\.com\/contoso\/Shop%20App\/_build\/results\?buildId=901/);
    const summary = ctx.summaries.join('\n');
    assert.match(summary, new RegExp(`\\| app \\| \`${registry.host.replace(/\./g, '\\.')}/shop/app@${builds.b1.digest}\` \\| \\[shop-ci b1\\]\\(https://dev\\.azure\\.com/contoso/Shop%20App/_build/results\\?buildId=701\\) \\|`));
    assert.match(summary, /\| side \| .* \| resolved from `1\.0` \(not built by the pipeline\) \|/);
    sideId = now.side.id;
  });

  test('b2: the app is recreated with run 902\'s labels; the unchanged side service keeps its container and the labels of b1', async () => {
    await composeDeploy(options('b2', { keepReleases: 3 }), createTestContext(runVariables('902')));
    const now = await running();
    assert.equal(now.app.image, `${registry.host}/shop/app@${builds.b2.digest}`);
    assert.deepEqual(traceLabels(now.app.labels), traceOf('b2', '902'));
    assert.equal(now.side.id, sideId, 'side was not recreated');
    assert.deepEqual(traceLabels(now.side.labels), traceOf('b1', '901'), 'its labels name the deploy that created it');
  });

  test('b2 again from another run: no container is recreated, the labels stay', async () => {
    const before = await running();
    await composeDeploy(options('b2', { keepReleases: 3 }), createTestContext(runVariables('903')));
    const now = await running();
    assert.deepEqual(now, before);
  });

  test('keepReleases: 3: after b3 and b4 the host keeps b4, b3, b2 and has dropped b1; rollbackTo b1 fails listing them', async () => {
    await composeDeploy(options('b3', { keepReleases: 3 }), createTestContext(runVariables('904')));
    const ctx = createTestContext(runVariables('905'));
    await composeDeploy(options('b4', { keepReleases: 3 }), ctx);
    assert.match(ctx.logs.join('\n'), /Kept on the target for a rollback \(keepReleases: 3\): build b4 \(deployed [^)]+\), build b3 \(deployed [^)]+\), build b2 \(deployed [^)]+\)\.$/m);
    const failing = createTestContext(runVariables('906'));
    await assert.rejects(composeDeploy(options('b4', { keepReleases: 3, rollbackTo: 'b1' }), failing), (err: Error) => {
      assert.match(err.message, /^Input 'rollbackTo': build 'b1' is not among the releases of '.*-qa' kept on .*: the host keeps build b4 \(deployed .*\), build b3 \(deployed .*\), build b2 \(deployed .*\)\. Give one of their build numbers\.$/);
      return true;
    });
    assert.equal((await running()).app.image, `${registry.host}/shop/app@${builds.b4.digest}`, 'b4 still runs');
  });

  test('rollbackTo b2 (no lock given): redeployed as it was kept, gated and verified; it becomes the newest kept release', async () => {
    const ctx = createTestContext(runVariables('907'));
    const result = await composeDeploy(options('b4', { keepReleases: 3, lock: undefined, lockName: undefined, lockDigest: undefined, rollbackTo: 'b2' }), ctx);
    const now = await running();
    assert.equal(now.app.image, `${registry.host}/shop/app@${builds.b2.digest}`);
    assert.deepEqual(traceLabels(now.app.labels), traceOf('b2', '902'), 'the labels of the deploy that first released it');
    assert.deepEqual(result.deployedDigests, { app: `${registry.host}/shop/app@${builds.b2.digest}`, side: `${registry.host}/third-party/busybox@${sideDigest}` });
    assert.deepEqual(
      result.rows.map((r) => [r.service, r.digest, r.verified]),
      [
        ['app', builds.b2.digest, true],
        ['side', sideDigest, true],
      ],
      'each running digest verified against the kept release',
    );
    const log = ctx.logs.join('\n');
    assert.match(log, /rollbackTo: redeploying build b2 \(deployed [^)]+\) as it was kept/);
    assert.match(log, /Health gate passed/);
    assert.match(log, /Kept on the target for a rollback \(keepReleases: 3\): build b2 \(deployed [^)]+\), build b4 \(deployed [^)]+\), build b3 \(deployed [^)]+\)\.$/m);
    const summary = ctx.summaries.join('\n');
    assert.match(summary, /### ComposeDeploy: qa — build b2 redeployed \(rollbackTo\)/);
    assert.match(summary, /\[shop-ci b2\]\(https:\/\/dev\.azure\.com\/contoso\/Shop%20App\/_build\/results\?buildId=702\)/);
  });
});
