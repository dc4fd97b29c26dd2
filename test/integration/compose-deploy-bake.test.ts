// ComposeDeploy's bake window and notification on a real engine: a release whose container passes the
// health gate and dies 5 s later is caught by the window and rolled back to the last good release; a
// container that keeps restarting too; a smoke test URL that answers 500 fails the deploy; a cancel
// during the window rolls back in the agent's grace time; a webhook on loopback receives one JSON
// POST per deploy, and a webhook answering 500 is only a warning.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type Dockerode from 'dockerode';
import { createCredentialSource } from '../../tasks/lib/auth';
import { composeDeploy, ComposeDeployOptions } from '../../tasks/lib/compose-deploy';
import { projectContainers } from '../../tasks/lib/compose/containers';
import type { ImageLock } from '../../tasks/lib/lock/types';
import { localDeploy, pushThirdPartyImage, startReleasePeers } from '../support/compose-deploy';
import { createTestContext, TestContext } from '../support/context';
import { removeComposeProject, TestEngine } from '../support/engine';
import type { TestRegistry } from '../support/registry';

const RUN = `cdb${process.pid.toString(36)}${Math.random().toString(36).slice(2, 6)}`; // unique per run: the engine is shared
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'col-cd-bake-'));

let engine: TestEngine;
let docker: Dockerode;
let registry: TestRegistry;
let digest: string;
const projects = new Set<string>();

/** The webhook and the smoke test target: /hook records and answers 200, /hook-500 answers 500, /smoke answers `smokeStatus`. */
let server: http.Server;
let base: string;
let smokeStatus = 200;
const hooks: { path: string; body: Record<string, any> }[] = [];

const app = path.join(work, 'docker-compose.yml');
/** The release that passes the gate, then dies 5 s later. */
const diesAfter5s = path.join(work, 'dies.yml');
/** A release that restarts (restart: on-failure) 2 s after each start. */
const restarts = path.join(work, 'restarts.yml');

before(async () => {
  ({ engine, docker, registry } = await startReleasePeers('none'));
  digest = await pushThirdPartyImage(docker, registry);
  fs.writeFileSync(app, 'services:\n  app:\n    image: ${REGISTRY}/third-party/busybox:1.0\n    command: ["sh", "-c", "echo app up; exec sleep 3600"]\n    restart: "no"\n    stop_signal: SIGKILL\n');
  fs.writeFileSync(diesAfter5s, 'services:\n  app:\n    command: ["sh", "-c", "echo app up; sleep 5; echo fatal: lost the database; exit 1"]\n');
  fs.writeFileSync(restarts, 'services:\n  app:\n    command: ["sh", "-c", "echo app up; sleep 2; exit 2"]\n    restart: on-failure\n');
  server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.url?.startsWith('/hook')) {
        hooks.push({ path: req.url, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) });
        res.writeHead(req.url === '/hook-500' ? 500 : 200).end();
      } else res.writeHead(smokeStatus, { 'Content-Type': 'text/plain' }).end(smokeStatus === 200 ? 'ok' : 'the cart service is down');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  for (const project of projects) await removeComposeProject(docker, project).catch(() => undefined);
  await new Promise<void>((resolve) => server?.close(() => resolve()));
  await registry?.stop();
  await engine?.stop();
  fs.rmSync(work, { recursive: true, force: true });
});

function lock(buildNumber: string): ImageLock {
  const repository = `${registry.host}/third-party/busybox`;
  return { schemaVersion: 1, createdAt: new Date().toISOString(), buildNumber, images: [{ name: 'app', repository, tags: ['1.0'], digest, ref: `${repository}@${digest}`, source: 'resolved', platforms: ['linux/amd64'] }] };
}

function options(environmentName: string, buildNumber: string, over: Partial<ComposeDeployOptions> = {}): ComposeDeployOptions {
  projects.add(`${RUN}-${environmentName}`);
  return {
    composeFiles: [app],
    environmentName,
    repositoryName: RUN,
    lock: lock(buildNumber),
    lockName: 'lock.json',
    variables: { REGISTRY: registry.host },
    ...localDeploy(engine),
    credentials: createCredentialSource({ setSecret: () => undefined, useDockerConfig: false }),
    ...over,
  };
}

/** The app container's command and state. */
async function appContainer(project: string): Promise<{ status: string; command: string }[]> {
  const out = [];
  for (const s of await projectContainers(docker, project)) {
    const info = await docker.getContainer(s.id).inspect();
    out.push({ status: s.status, command: (info.Config.Cmd ?? []).join(' ') });
  }
  return out;
}
const GOOD = 'sh -c echo app up; exec sleep 3600';

/** An override whose container runs fine, saying which build it is. */
function healthyBuild(build: string): string {
  const file = path.join(work, `build-${build}.yml`);
  fs.writeFileSync(file, `services:\n  app:\n    command: ["sh", "-c", "echo build ${build}; exec sleep 3600"]\n`);
  return file;
}

describe('ComposeDeploy bake window', () => {
  test('build 1 with a 3 s window and a webhook: passes, is kept as the last good release; the webhook gets the JSON payload', async () => {
    hooks.length = 0;
    const ctx = createTestContext({ 'System.CollectionUri': 'https://dev.azure.com/contoso/', 'System.TeamProject': 'shop', 'Build.BuildId': '900' });
    const started = Date.now();
    await composeDeploy(options('bake', '1', { bakeSeconds: 3, notify: { url: `${base}/hook`, format: 'json' } }), ctx);
    assert.ok(Date.now() - started >= 3_000, 'the window was waited for');
    assert.match(ctx.logs.join('\n'), /Bake window passed: 3 s without a failure\./);
    assert.deepEqual(await appContainer(`${RUN}-bake`), [{ status: 'running', command: GOOD }]);
    assert.equal(hooks.length, 1, 'one POST per deploy');
    assert.deepEqual(hooks[0], {
      path: '/hook',
      body: {
        schemaVersion: 1,
        task: 'ComposeDeploy',
        environment: 'bake',
        result: 'succeeded',
        rolledBack: false,
        buildNumber: '1',
        runUrl: 'https://dev.azure.com/contoso/shop/_build/results?buildId=900',
        services: [{ service: 'app', repository: `${registry.host}/third-party/busybox`, newDigest: digest, changed: true }],
      },
    });
    assert.ok(ctx.secrets.has(`${base}/hook`), 'the webhook URL is a secret');
    assert.ok(!ctx.logs.join('\n').includes(`${base}/hook`), 'and never printed');
  });

  test('build 2, whose container dies 5 s after the gate passed: the window catches it and rolls back to build 1; the webhook hears "failed, rolled back"', async () => {
    hooks.length = 0;
    const ctx = createTestContext();
    const started = Date.now();
    await assert.rejects(composeDeploy(options('bake', '2', { composeFiles: [app, diesAfter5s], bakeSeconds: 30, notify: { url: `${base}/hook`, format: 'json' } }), ctx), (err: Error) => {
      assert.match(err.message, /^Deploying build 2 to bake \(project '.*-bake' on .*\) failed: The bake window failed (\d+\.\d) s into its 30 s: \S+-bake[-_]app[-_]1 \(service app\) exited with code 1\./);
      const at = Number(/failed (\d+\.\d) s into/.exec(err.message)![1]);
      assert.ok(at >= 4 && at < 9, `caught ${at} s into the window (the container dies 5 s after it started)`);
      assert.match(err.message, /last log lines:\n\s+app up\n\s+fatal: lost the database/);
      assert.match(err.message, /Rolled back to the previous release \(build 1, deployed .*\): its services passed the health gate/);
      return true;
    });
    assert.ok(Date.now() - started < 25_000, 'the window ended at the failure, not at its 30 s');
    assert.match(ctx.logs.join('\n'), /Health gate passed/, 'the gate had passed: the window caught it');
    assert.equal(ctx.outputs.rolledBack, 'true');
    assert.deepEqual(await appContainer(`${RUN}-bake`), [{ status: 'running', command: GOOD }], 'build 1 runs again');
    assert.equal(hooks.length, 1);
    const body = hooks[0].body;
    assert.equal(body.result, 'failed');
    assert.equal(body.rolledBack, true);
    assert.match(body.message, /The bake window failed \d+\.\d s into its 30 s: .* exited with code 1/);
    assert.deepEqual(body.services, [{ service: 'app', repository: `${registry.host}/third-party/busybox`, oldDigest: digest, newDigest: digest, changed: false }]);
  });

  test('a container that restarts (restart: on-failure) fails the window too', async () => {
    const ctx = createTestContext();
    await assert.rejects(composeDeploy(options('bake', '3', { composeFiles: [app, restarts], bakeSeconds: 20 }), ctx), (err: Error) => {
      assert.match(err.message, /The bake window failed \d+\.\d s into its 20 s: \S+ \(service app\) keeps restarting \(\d+ restart\(s\)(, exit code 2)?\)/);
      assert.match(err.message, /Rolled back to the previous release \(build 1/);
      return true;
    });
    assert.deepEqual(await appContainer(`${RUN}-bake`), [{ status: 'running', command: GOOD }]);
  });

  test('a smoke test URL that answers 500 fails the deploy (no window needed) and rolls it back', async () => {
    smokeStatus = 500;
    const ctx = createTestContext();
    try {
      await assert.rejects(composeDeploy(options('bake', '4', { composeFiles: [app, healthyBuild('4')], smokeTestUrl: `${base}/smoke?key=s3cr3t` }), ctx), (err: Error) => {
        assert.match(err.message, /failed: The smoke test failed: the smoke test GET http:\/\/127\.0\.0\.1:\d+\/smoke answered 500 \(the cart service is down\), not 2xx/);
        assert.doesNotMatch(err.message, /s3cr3t/, 'the query is not printed');
        assert.match(err.message, /Rolled back to the previous release \(build 1/);
        return true;
      });
    } finally {
      smokeStatus = 200;
    }
    assert.equal(ctx.outputs.rolledBack, 'true');
  });

  test('a cancel during the window stops it at once and rolls back in the grace time', async () => {
    const ctx: TestContext = createTestContext();
    let cancelledAt = 0;
    const group = ctx.group;
    ctx.group = async (title, fn) => {
      if (/^Bake window/.test(title)) {
        setTimeout(() => {
          cancelledAt = Date.now();
          ctx.abort('ComposeDeploy was cancelled (SIGTERM).');
        }, 1_000);
      }
      return group(title, fn);
    };
    await assert.rejects(composeDeploy(options('bake', '5', { composeFiles: [app, healthyBuild('5')], bakeSeconds: 600 }), ctx), (err: Error) => {
      assert.match(err.message, /The job was cancelled while deploying build 5 to bake/);
      assert.match(err.message, /Rolled back to the previous release \(build 1, .*not health-gated/s);
      return true;
    });
    assert.ok(cancelledAt > 0 && Date.now() - cancelledAt < 10_000, `the task ended ${Date.now() - cancelledAt} ms after the cancel`);
    assert.deepEqual(await appContainer(`${RUN}-bake`), [{ status: 'running', command: GOOD }]);
  });

  test('a webhook that answers 500 is only a warning: the deploy succeeds', async () => {
    hooks.length = 0;
    const ctx = createTestContext();
    const result = await composeDeploy(options('bake', '6', { notify: { url: `${base}/hook-500`, format: 'teams' } }), ctx);
    assert.equal(result.rolledBack, false);
    assert.equal(hooks.length, 3, 'three attempts in all');
    assert.equal(hooks[0].body.type, 'message', 'a Teams message');
    assert.ok(ctx.logs.includes("WARNING: The notification could not be delivered: the notifyUrl webhook answered 500 after 3 attempts. The deploy's result is not changed by it."));
  });
});
