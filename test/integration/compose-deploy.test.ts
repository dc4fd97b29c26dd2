// ComposeDeploy against a real engine and a real registry: the fixture app (test/fixtures/compose-deploy)
// is built and pushed three times with the project's own BuildAndTag and PushWithDigest libraries
// (v1, v2, and a v2 whose healthcheck fails), each push writing an image lock; then deployed to
// several environments on the local engine, over SSH (a private sshd on loopback) and over TCP+TLS
// (a mutual-TLS endpoint in front of the engine), and once as the bundled task, the way the agent runs it.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type Dockerode from 'dockerode';
import { parse as parseYaml } from 'yaml';
import { createCredentialSource } from '../../tasks/lib/auth';
import { composeDeploy, ComposeDeployOptions } from '../../tasks/lib/compose-deploy';
import { Demultiplexer, projectContainers } from '../../tasks/lib/compose/containers';
import { readLock } from '../../tasks/lib/lock/file';
import type { ImageLock } from '../../tasks/lib/lock/types';
import { parseReference, repositoryName } from '../../tasks/lib/reference';
import { runBundledTask } from '../support/agent';
import { startEngineWithBaseImage } from '../support/base-image';
import type { EndpointInfo } from '../../tasks/lib/context';
import { buildAndLock, pushThirdPartyImage, registryEndpoint } from '../support/compose-deploy';
import { createTestContext, TestContext } from '../support/context';
import { startDevOpsDouble, DevOpsDouble } from '../support/devops-double';
import { expectedComposeDisplay } from '../support/stack';
import { removeComposeProject, TestEngine } from '../support/engine';
import { startRegistry, TestRegistry } from '../support/registry';
import { SshHost, startSshHost } from '../support/ssh-host';
import { startTlsEngine, TlsEngine } from '../support/tls-engine';
import { composeDeployDefaults } from '../support/task-defaults';

const FIXTURE = path.join(__dirname, '..', 'fixtures', 'compose-deploy');
const RUN = `cdt${process.pid.toString(36)}${Math.random().toString(36).slice(2, 6)}`; // unique per run: the engine is shared

let engine: TestEngine;
let docker: Dockerode;
let registry: TestRegistry;
let ssh: SshHost;
let tlsEngine: TlsEngine;
let devops: DevOpsDouble;
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'col-cd-'));
const locks: Record<'v1' | 'v2' | 'bad', string> = { v1: '', v2: '', bad: '' };
const projects = new Set<string>();

/** Builds the web image with this version and pushes it (and the third-party worker image); returns the lock. */
async function release(version: string, healthy: boolean): Promise<string> {
  return buildAndLock(docker, registry, {
    composeFile: path.join(FIXTURE, 'docker-compose.yml'),
    version,
    dir: work,
    buildId: '1',
    commit: '0123456789abcdef0123456789abcdef01234567',
    build: { services: ['web'], buildArgs: { VERSION: version, HEALTHY: String(healthy) } },
  });
}

before(async () => {
  engine = await startEngineWithBaseImage();
  docker = engine.docker;
  [registry, ssh, tlsEngine] = await Promise.all([startRegistry('htpasswd'), startSshHost(), startTlsEngine(engine.dockerHost.replace(/^unix:\/\//, ''))]);
  // The third-party image the worker uses, pushed under a tag that PushWithDigest resolves.
  await pushThirdPartyImage(docker, registry);
  locks.v1 = await release('v1', true);
  locks.v2 = await release('v2', true);
  locks.bad = await release('v3-broken', false);
  // The target must pull the web images (with credentials): remove them from the engine.
  for (const file of Object.values(locks)) {
    const web = readLock(file).images.find((i) => i.name === 'web')!;
    await docker.getImage(web.imageId!).remove({ force: true }).catch(() => undefined);
  }
  devops = await startDevOpsDouble({
    definitions: [{ id: 12, name: 'shop-ci' }],
    builds: [{ id: 501, definitionId: 12, buildNumber: 'v2', result: 'succeeded', finishTime: '2026-11-22T10:00:00Z', artifacts: { 'image-lock': { 'image-lock.json': fs.readFileSync(locks.v2, 'utf8') } } }],
  });
});

after(async () => {
  for (const project of projects) await removeComposeProject(docker, project).catch(() => undefined);
  await Promise.all([registry?.stop(), ssh?.stop(), tlsEngine?.stop(), devops?.stop()]);
  await engine?.stop();
  fs.rmSync(work, { recursive: true, force: true });
});

function options(environmentName: string, lockFile: string, over: Partial<ComposeDeployOptions> = {}, ctx?: TestContext): ComposeDeployOptions {
  const c = ctx ?? createTestContext();
  const files = [path.join(FIXTURE, 'docker-compose.yml')];
  const override = path.join(FIXTURE, `docker-compose.${environmentName}.yml`);
  if (fs.existsSync(override)) files.push(override);
  projects.add(`${RUN}-${environmentName}`);
  return {
    composeFiles: files,
    environmentName,
    repositoryName: RUN,
    lock: readLock(lockFile),
    lockName: lockFile,
    variables: { REGISTRY: registry.host, GREETING: `hi ${environmentName}` },
    profiles: [],
    target: { type: 'local', dockerHost: engine.dockerHost },
    credentials: createCredentialSource({ endpoint: registryEndpoint(registry), setSecret: (s) => c.setSecret(s), dockerConfigDir: path.join(work, 'no-config') }),
    waitTimeoutSeconds: 60,
    publishRenderedFile: true,
    env: { PATH: process.env.PATH },
    ...composeDeployDefaults(),
    ...over,
  };
}

interface Running {
  service: string;
  id: string;
  status: string;
  health?: string;
  digest?: string;
}

async function running(project: string): Promise<Running[]> {
  const states = await projectContainers(docker, project);
  const out: Running[] = [];
  for (const s of states) {
    const repoDigests = (await docker.getImage(s.imageId).inspect()).RepoDigests ?? [];
    const digest = repoDigests.map((r) => parseReference(r)).find((r) => repositoryName(r).includes(s.service === 'web' ? '/shop/web' : '/third-party/busybox'))?.digest;
    out.push({ service: s.service, id: s.id, status: s.status, health: s.health, digest });
  }
  return out;
}

function lockDigest(file: string, name: string): string {
  return readLock(file).images.find((i) => i.name === name)!.digest;
}

/** The page the web container serves (through exec, so it works whatever the network). */
async function webPage(project: string): Promise<string> {
  const web = (await projectContainers(docker, project)).find((s) => s.service === 'web')!;
  const exec = await docker.getContainer(web.id).exec({ Cmd: ['wget', '-q', '-O', '-', 'http://127.0.0.1:8080/'], AttachStdout: true, AttachStderr: true });
  const stream = await exec.start({ hijack: true, stdin: false });
  const chunks: Buffer[] = [];
  await new Promise<void>((resolve, reject) => {
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => resolve());
    stream.on('error', reject);
  });
  const out: Buffer[] = [];
  new Demultiplexer((c) => out.push(c)).push(Buffer.concat(chunks));
  return Buffer.concat(out).toString('utf8').trim();
}

function assertRunsLock(rows: Running[], lockFile: string, workers = 1): void {
  const web = rows.filter((r) => r.service === 'web');
  const worker = rows.filter((r) => r.service === 'worker');
  assert.equal(web.length, 1);
  assert.equal(worker.length, workers);
  assert.equal(web[0].health, 'healthy');
  assert.equal(web[0].digest, lockDigest(lockFile, 'web'), 'web runs the digest of the lock');
  for (const w of worker) {
    assert.equal(w.status, 'running');
    assert.equal(w.digest, lockDigest(lockFile, 'worker'), 'the worker runs the resolved third-party digest');
  }
}

describe('ComposeDeploy on the local engine', () => {
  let stagingIds: string[] = [];

  test('v1 to qa and to staging: healthy, digests verified, rendered file pinned, outputs set', async () => {
    for (const env of ['qa', 'staging']) {
      const ctx = createTestContext();
      const result = await composeDeploy(options(env, locks.v1, {}, ctx), ctx);
      assert.equal(result.project, `${RUN}-${env}`);
      // The stack's Compose, found as on an agent (v2 through the system plugin folder, with the task's empty DOCKER_CONFIG).
      assert.match(ctx.logs.find((l) => l.startsWith('Compose: '))?.slice('Compose: '.length) ?? '(not logged)', expectedComposeDisplay());
      assert.equal(result.rolledBack, false);
      assert.equal(ctx.outputs.rolledBack, 'false');
      assertRunsLock(await running(result.project), locks.v1, env === 'staging' ? 2 : 1);
      assert.equal(await webPage(result.project), 'shop web v1');

      const rendered = parseYaml(fs.readFileSync(ctx.outputs.renderedComposeFile, 'utf8')) as { services: Record<string, Record<string, unknown>> };
      for (const [name, service] of Object.entries(rendered.services)) {
        assert.match(String(service.image), /@sha256:[a-f0-9]{64}$/, `${name} is pinned by digest in the rendered file`);
        assert.equal(service.build, undefined, 'build: is dropped');
      }
      assert.equal(rendered.services.web.restart, 'no', 'a quoted "no" stays a string');
      assert.deepEqual(JSON.parse(ctx.outputs.deployedDigests), { web: readLock(locks.v1).images.find((i) => i.name === 'web')!.ref, worker: readLock(locks.v1).images.find((i) => i.name === 'worker')!.ref });
      assert.deepEqual(ctx.artifacts, [{ name: `rendered-compose-${env}`, path: ctx.outputs.renderedComposeFile }]);
      assert.match(ctx.summaries.join('\n'), /\| web \|.*sha256:[a-f0-9]{64}.*matches the lock/);
      assert.ok(ctx.secrets.has(registry.password!), 'the registry password was registered as a secret');
      assert.ok(!ctx.logs.join('\n').includes(registry.password!), 'and never printed');
      if (env === 'staging') stagingIds = (await running(result.project)).map((r) => r.id).sort();
    }
  });

  test('a v3 whose healthcheck fails rolls qa back to v1: v1 digests run, the task fails, rolledBack is true', async () => {
    const ctx = createTestContext();
    await assert.rejects(composeDeploy(options('qa', locks.bad, { waitTimeoutSeconds: 30 }, ctx), ctx), (err: Error) => {
      assert.match(err.message, /build v3-broken to qa .* failed: The health gate failed: .*web.* is unhealthy/s);
      assert.match(err.message, /last health checks: exit 1/);
      assert.match(err.message, /Rolled back to the previous release \(build v1/);
      return true;
    });
    assert.equal(ctx.outputs.rolledBack, 'true');
    assert.equal(JSON.parse(ctx.outputs.deployedDigests).web, readLock(locks.v1).images.find((i) => i.name === 'web')!.ref);
    assertRunsLock(await running(`${RUN}-qa`), locks.v1);
    assert.equal(await webPage(`${RUN}-qa`), 'shop web v1');
    assert.match(ctx.summaries.join('\n'), /rolled back/);
  });

  test('v2 to qa; staging keeps running v1, its containers untouched', async () => {
    const ctx = createTestContext();
    const result = await composeDeploy(options('qa', locks.v2, {}, ctx), ctx);
    assertRunsLock(await running(result.project), locks.v2);
    assert.equal(await webPage(result.project), 'shop web v2');
    const staging = await running(`${RUN}-staging`);
    assertRunsLock(staging, locks.v1, 2);
    assert.deepEqual(staging.map((r) => r.id).sort(), stagingIds, 'deploying qa did not recreate staging');
  });

  test('the same release again changes nothing: no container is recreated', async () => {
    const before = (await running(`${RUN}-qa`)).map((r) => r.id).sort();
    const ctx = createTestContext();
    await composeDeploy(options('qa', locks.v2, {}, ctx), ctx);
    assert.deepEqual((await running(`${RUN}-qa`)).map((r) => r.id).sort(), before);
  });

  test('a container that exits fails the gate with its logs; with no earlier release the task says it leaves it as it is', async () => {
    const file = path.join(work, 'exits.yml');
    fs.writeFileSync(file, 'services:\n  worker:\n    image: ${REGISTRY}/third-party/busybox:1.0\n    command: ["sh", "-c", "echo the database is unreachable; echo \'##vso[task.complete result=Succeeded]\'; exit 3"]\n');
    const ctx = createTestContext();
    await assert.rejects(composeDeploy(options('exits', locks.v1, { composeFiles: [file] }, ctx), ctx), (err: Error) => {
      assert.match(err.message, /worker.* exited with code 3/);
      assert.match(err.message, /last log lines:\n\s+the database is unreachable/);
      assert.doesNotMatch(err.message, /##vso\[/, 'container output cannot inject logging commands');
      assert.match(err.message, /no earlier good release of '.*-exits' on this host to roll back to/);
      return true;
    });
    assert.equal(ctx.outputs.rolledBack, 'false');
  });

  test('an image missing from the lock, or an unreachable host, fails before anything is deployed', async () => {
    const partial = path.join(work, 'lock-web-only.json');
    const lock = readLock(locks.v2) as ImageLock;
    fs.writeFileSync(partial, JSON.stringify({ ...lock, images: lock.images.filter((i) => i.name === 'web') }));
    const ctx = createTestContext();
    await assert.rejects(composeDeploy(options('nolock', partial, {}, ctx), ctx), /Input 'allowUnpinned'.*worker \(127\.0\.0\.1:\d+\/third-party\/busybox:1\.0\)/);
    assert.equal((await running(`${RUN}-nolock`)).length, 0);
    const ctx2 = createTestContext();
    await assert.rejects(composeDeploy(options('gone', locks.v1, { target: { type: 'local', dockerHost: `unix://${path.join(work, 'nothing.sock')}` } }, ctx2), ctx2), /Docker engine at the local engine .*nothing\.sock.* did not answer: the socket does not exist/);
  });
});

describe('ComposeDeploy cancelled by the agent', () => {
  // web's healthcheck fails inside an hour-long start period, so the gate waits: time for a cancel.
  const gateWaits = () => {
    const file = path.join(work, 'gate-waits.yml');
    fs.writeFileSync(file, 'services:\n  web:\n    healthcheck:\n      test: ["CMD", "false"]\n      interval: 1s\n      start_period: 1h\n');
    return [path.join(FIXTURE, 'docker-compose.yml'), file];
  };
  /** Deploys, and cancels the job (as runTask does on SIGTERM) at the first log line that matches `when`. */
  async function cancelled(o: ComposeDeployOptions, ctx: TestContext, when: RegExp): Promise<{ error: Error; afterCancelMs: number }> {
    let cancelledAt = 0;
    const info = ctx.info;
    ctx.info = (line) => {
      info(line);
      if (!cancelledAt && when.test(line)) {
        cancelledAt = Date.now();
        ctx.abort('ComposeDeploy was cancelled (SIGTERM).');
      }
    };
    const error = await composeDeploy(o, ctx).then(
      () => assert.fail(`the cancelled deployment succeeded:\n${ctx.logs.join('\n')}`),
      (err: Error) => err,
    );
    assert.ok(cancelledAt > 0, `no log line matched ${when}:\n${ctx.logs.join('\n')}`);
    return { error, afterCancelMs: Date.now() - cancelledAt };
  }

  test('a cancel during the health gate rolls back to the last good release in the agent\'s grace time; the log says it was not gated', async () => {
    await composeDeploy(options('cancel', locks.v1), createTestContext());
    const ctx = createTestContext();
    const { error, afterCancelMs } = await cancelled(options('cancel', locks.v2, { composeFiles: gateWaits() }, ctx), ctx, /^Waiting for web/);
    assert.match(error.message, /The job was cancelled while deploying build v2 to cancel \(project '.*-cancel'/);
    assert.match(error.message, /Rolled back to the previous release \(build v1, .*not health-gated.*docker compose -p .*-cancel ps/s);
    assert.ok(afterCancelMs < 10_000, `the task ended ${afterCancelMs} ms after the cancel`);
    assert.equal(ctx.outputs.rolledBack, 'true');
    assert.equal(JSON.parse(ctx.outputs.deployedDigests).web, readLock(locks.v1).images.find((i) => i.name === 'web')!.ref);
    const web = (await running(`${RUN}-cancel`)).filter((r) => r.service === 'web');
    assert.deepEqual(web.map((w) => [w.status, w.digest]), [['running', lockDigest(locks.v1, 'web')]], 'v1 runs again');
  });

  test('a cancel during compose up rolls back the same way', async () => {
    const ctx = createTestContext();
    // The first line Compose prints about web: its container is being replaced.
    const { error, afterCancelMs } = await cancelled(options('cancel', locks.v2, { composeFiles: gateWaits() }, ctx), ctx, /Container \S*-cancel-web-1|\S*-cancel_web_1/); // Compose v2 / v1
    assert.match(error.message, /The job was cancelled while deploying build v2/);
    assert.match(error.message, /Rolled back to the previous release \(build v1/);
    assert.ok(afterCancelMs < 10_000, `the task ended ${afterCancelMs} ms after the cancel`);
    const web = (await running(`${RUN}-cancel`)).filter((r) => r.service === 'web');
    assert.deepEqual(web.map((w) => [w.status, w.digest]), [['running', lockDigest(locks.v1, 'web')]], 'v1 runs again');
  });

  test('a rollback that cannot finish in the grace time (the new web takes 30 s to stop) says what may run and how to roll back by hand', async () => {
    await composeDeploy(options('cancel-slow', locks.v1), createTestContext());
    const slowStop = path.join(work, 'slow-stop.yml');
    fs.writeFileSync(slowStop, 'services:\n  web:\n    stop_signal: SIGWINCH\n    stop_grace_period: 30s\n');
    const ctx = createTestContext();
    const { error, afterCancelMs } = await cancelled(options('cancel-slow', locks.v2, { composeFiles: [...gateWaits(), slowStop] }, ctx), ctx, /^Waiting for web/);
    assert.match(error.message, /The job was cancelled while deploying build v2/);
    assert.match(error.message, /The rollback to the previous release \(build v1, .*\) did not finish \(.* up did not finish within [\d.]+ s\): '.*-cancel-slow' may run parts of both releases/);
    assert.match(error.message, /Roll back by hand on the host: docker run --rm -v outer-loop-release-.*-cancel-slow:\/release busybox cat \/release\/current\.yml > last-good\.yml && docker compose -p .*-cancel-slow -f last-good\.yml up -d --remove-orphans/);
    assert.ok(afterCancelMs < 10_000, `the task ended ${afterCancelMs} ms after the cancel`);
    assert.equal(ctx.outputs.rolledBack, 'false');
  });

  test('a cancel with no earlier release (or rollbackOnFailure off) leaves the new release and says how to remove it or roll back by hand', async () => {
    const ctx = createTestContext();
    const { error } = await cancelled(options('cancel-first', locks.v2, { composeFiles: gateWaits() }, ctx), ctx, /^Waiting for web/);
    assert.match(error.message, /Nothing was rolled back \(there is no earlier good release of '.*-cancel-first' on this host to roll back to\): the new release is left as it is/);
    assert.match(error.message, /Remove it by hand: docker compose -p .*-cancel-first down/);
    assert.equal(ctx.outputs.rolledBack, 'false');
    assert.equal((await running(`${RUN}-cancel-first`)).filter((r) => r.service === 'web').length, 1, 'the new release is left');

    const off = createTestContext();
    const left = await cancelled(options('cancel', locks.v2, { composeFiles: gateWaits(), rollbackOnFailure: false }, off), off, /^Waiting for web/);
    assert.match(left.error.message, /Nothing was rolled back \(rollbackOnFailure is off\)/);
    assert.match(left.error.message, /Roll back by hand on the host: docker run --rm -v outer-loop-release-.*-cancel:\/release busybox cat \/release\/current\.yml > last-good\.yml && docker compose -p .*-cancel -f last-good\.yml up -d --remove-orphans/);
    const web = (await running(`${RUN}-cancel`)).filter((r) => r.service === 'web');
    assert.deepEqual(web.map((w) => w.digest), [lockDigest(locks.v2, 'web')], 'v2 is left running');
  });
});

describe('ComposeDeploy to remote hosts', () => {
  const sshEndpoint = (key: string): EndpointInfo => ({ id: 'ssh', input: 'sshEndpoint', url: '', scheme: 'UsernamePassword', auth: { username: ssh.user }, data: { host: ssh.host, port: String(ssh.port), privatekey: key } });
  const tlsEndpoint = (c: { ca: string; cert: string; key: string }): EndpointInfo => ({ id: 'tls', input: 'dockerHostEndpoint', url: tlsEngine.url, scheme: 'Certificate', auth: { cacert: c.ca, cert: c.cert, key: c.key }, data: {} });

  test('over SSH (sshd on loopback, key auth, host key checked): deployed, gated and verified through the tunnel', async () => {
    const ctx = createTestContext();
    const result = await composeDeploy(
      options('sshqa', locks.v1, { target: { type: 'ssh', sshEndpoint: sshEndpoint(ssh.privateKey), remoteDockerSocket: engine.dockerHost.replace(/^unix:\/\//, ''), sshHostKey: ssh.hostKeyFingerprint } }, ctx),
      ctx,
    );
    assertRunsLock(await running(result.project), locks.v1);
    assert.match(ctx.logs.join('\n'), /Target: ssh:\/\/.*@127\.0\.0\.1:\d+/);
    assert.ok(ctx.secrets.has(ssh.privateKey.split('\n')[1]), 'each line of the private key is registered as a secret');
    assert.ok(!ctx.logs.join('\n').includes('PRIVATE KEY'), 'and never printed');
    assert.deepEqual(fs.readdirSync(ctx.tempDir).filter((f) => f.startsWith('col-deploy-ssh-')), [], 'the tunnel socket folder is removed');
  });

  test('a rejected SSH key, or the wrong host key, fails naming the input; nothing deployed', async () => {
    const socket = engine.dockerHost.replace(/^unix:\/\//, '');
    let ctx = createTestContext();
    await assert.rejects(composeDeploy(options('sshbad', locks.v1, { target: { type: 'ssh', sshEndpoint: sshEndpoint(ssh.rejectedKey), remoteDockerSocket: socket } }, ctx), ctx), /Input 'sshEndpoint': ssh:\/\/.* rejected the private key of user/);
    ctx = createTestContext();
    const wrong = 'SHA256:' + 'A'.repeat(43);
    await assert.rejects(composeDeploy(options('sshbad', locks.v1, { target: { type: 'ssh', sshEndpoint: sshEndpoint(ssh.privateKey), remoteDockerSocket: socket, sshHostKey: wrong } }, ctx), ctx), /Input 'sshHostKey': .* presented the host key SHA256:/);
    assert.equal((await running(`${RUN}-sshbad`)).length, 0);
  });

  test('over TCP+TLS (mutual TLS, test CA): deployed and verified; the certificate folder is removed', async () => {
    const ctx = createTestContext();
    const result = await composeDeploy(options('tlsqa', locks.v2, { target: { type: 'tls', dockerHostEndpoint: tlsEndpoint(tlsEngine.client) } }, ctx), ctx);
    assertRunsLock(await running(result.project), locks.v2);
    assert.match(ctx.logs.join('\n'), /Target: tcp:\/\/127\.0\.0\.1:\d+ \(TLS\)/);
    assert.ok(ctx.secrets.has(tlsEngine.client.key.split('\n')[1]), 'each line of the client key is a secret');
    assert.deepEqual(fs.readdirSync(ctx.tempDir).filter((f) => f.startsWith('col-deploy-tls-')), []);
  });

  test('a client certificate the engine does not trust, or a CA that did not sign the engine, fails clearly', async () => {
    let ctx = createTestContext();
    const refusedBefore = tlsEngine.refused();
    await assert.rejects(composeDeploy(options('tlsbad', locks.v2, { target: { type: 'tls', dockerHostEndpoint: tlsEndpoint({ ...tlsEngine.client, cert: tlsEngine.rogue.cert, key: tlsEngine.rogue.key }) } }, ctx), ctx), /tcp:\/\/127\.0\.0\.1:\d+ \(TLS\) did not answer/);
    assert.ok(tlsEngine.refused() > refusedBefore, 'the engine refused the handshake');
    ctx = createTestContext();
    await assert.rejects(composeDeploy(options('tlsbad', locks.v2, { target: { type: 'tls', dockerHostEndpoint: tlsEndpoint({ ...tlsEngine.client, ca: tlsEngine.rogue.ca }) } }, ctx), ctx), /TLS failed: .*certificate/);
    assert.equal((await running(`${RUN}-tlsbad`)).length, 0);
  });
});

describe('ComposeDeploy as the agent runs it (bundled task)', () => {
  test('in a deployment job the downloaded image-lock artifact is the default lock', async () => {
    const workspace = fs.mkdtempSync(path.join(work, 'pipeline-'));
    fs.mkdirSync(path.join(workspace, 'image-lock'));
    fs.copyFileSync(locks.v1, path.join(workspace, 'image-lock', 'image-lock.json'));
    const run = await runBundledTask('compose-deploy', {
      inputs: { composeFiles: path.join(FIXTURE, 'docker-compose.yml'), environmentName: 'ws', variables: `REGISTRY=${registry.host}`, dockerHostType: 'local' },
      variables: { 'Pipeline.Workspace': workspace },
      env: { DOCKER_HOST: `unix://${path.join(workspace, 'no-engine.sock')}` },
    });
    assert.equal(run.result, 'Failed');
    assert.match(run.visible, new RegExp(`Image lock: ${workspace.replace(/[/.]/g, '\\$&')}/image-lock/image-lock\\.json`));
    assert.match(run.visible, /web: 127\.0\.0\.1:\d+\/shop\/web@sha256:/, 'rendered with the lock');
    assert.match(run.visible, /did not answer: the socket does not exist/);
  });

  test('lock fetched from another run, registry credentials only in the pull request: no docker config written, none given to Compose', async () => {
    const home = fs.mkdtempSync(path.join(work, 'home-'));
    const spyLog = path.join(work, 'compose-spy.log');
    // A wrapper that records what Compose is given (its docker config folder and environment), then runs it.
    const spy = path.join(work, 'docker-compose-spy');
    fs.writeFileSync(
      spy,
      `#!/bin/sh\n{ echo "ARGS: $*"; echo "DOCKER_CONFIG=$DOCKER_CONFIG"; ls -A "$DOCKER_CONFIG" 2>/dev/null | sed 's/^/CONFIG-FILE: /'; env | sed 's/^/ENV: /'; } >> ${spyLog}\nexec docker-compose "$@"\n`,
      { mode: 0o755 },
    );
    projects.add(`${RUN}-agent`);
    const run = await runBundledTask('compose-deploy', {
      inputs: {
        composeFiles: path.join(FIXTURE, 'docker-compose.yml'),
        environmentName: 'agent',
        projectName: `${RUN}-Agent`,
        lockFromBuild: 'shop-ci',
        variables: `REGISTRY=${registry.host}`,
        containerRegistry: 'REG',
        containerRegistryType: 'dockerRegistry',
        dockerHostType: 'local',
        waitTimeoutSeconds: '60',
        dockerComposePath: spy,
      },
      endpoints: [{ id: 'REG', url: registry.url, scheme: 'UsernamePassword', parameters: { username: registry.username!, password: registry.password! } }],
      variables: { 'System.CollectionUri': devops.collectionUri, 'System.TeamProject': 'shop' },
      env: { HOME: home, DOCKER_HOST: engine.dockerHost, SECRET_SYSTEM_ACCESSTOKEN: devops.token },
      timeoutMs: 120_000,
    });
    assert.equal(run.result, 'Succeeded', run.output);
    assert.match(run.visible, /projectName': '.*-Agent' is not a valid compose project name; using '.*-agent'/);
    assertRunsLock(await running(`${RUN}-agent`), locks.v2);
    assert.equal(run.variables.rolledBack, 'false');
    assert.equal(JSON.parse(run.variables.deployedDigests).web, readLock(locks.v2).images.find((i) => i.name === 'web')!.ref);
    assert.ok(!run.visible.includes(registry.password!), 'the registry password never shows');
    // task-lib echoes a secret variable it is asked for in a debug line; the agent masks that one (it
    // passes System.AccessToken as a secret variable). Nothing else may show the token.
    const tokenLines = run.visible.split('\n').filter((l) => l.includes(devops.token) && !l.startsWith('##vso[task.debug]System.AccessToken='));
    assert.deepEqual(tokenLines, [], 'the access token never shows');
    const spied = fs.readFileSync(spyLog, 'utf8');
    assert.match(spied, /ARGS: .*-p .*-agent .* up -d --no-build --remove-orphans/);
    assert.doesNotMatch(spied, /CONFIG-FILE:/, 'Compose got an empty docker config folder');
    assert.ok(!spied.includes(registry.password!), 'no password reached Compose (arguments or environment)');
    assert.doesNotMatch(spied, /ENV: (COMPOSE_|INPUT_|ENDPOINT_|SYSTEM_ACCESSTOKEN)/, 'Compose gets a clean environment');
    assert.ok(!fs.existsSync(path.join(home, '.docker', 'config.json')), "the agent user's docker config was not written");
    const configDir = /DOCKER_CONFIG=(.*)/.exec(spied)![1];
    assert.ok(!fs.existsSync(configDir), 'the private docker config folder is removed');
    // The engine (the target) stores nothing either: its user's docker config does not know the registry.
    const engineConfig = path.join(os.homedir(), '.docker', 'config.json');
    assert.ok(!fs.existsSync(engineConfig) || !fs.readFileSync(engineConfig, 'utf8').includes(registry.host), 'no credentials for the registry on the target host');
  });
});
