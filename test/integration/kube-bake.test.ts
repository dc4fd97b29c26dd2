// KubernetesDeploy's bake window and notification against the test API server
// (test/support/kube-api.ts), which can turn a rolled-out pod bad on demand: pods that start
// crash-looping, or are evicted, a few seconds after their rollout passed; and once on the real
// control plane, where a pod's status is patched as a kubelet reports a container restart. The window catches them
// and rolls back as a failed rollout does; a smoke test URL (a real HTTP server on loopback) that
// answers 503 does the same; a cancel during the window rolls back in the agent's grace time; the
// webhook (another server on loopback) hears each deploy.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DeploymentFailedError, KubernetesDeployOptions, kubernetesDeploy } from '../../tasks/lib/kube';
import { runBundledTask } from '../support/agent';
import { TestContext, createTestContext } from '../support/context';
import { KubeApiServer, kubeconfigFor, startKubeApi } from '../support/kube-api';
import { startKubeCluster } from '../support/kube-cluster';
import { D, KUBE_FIXTURES, WEB, deployOptions, lockWithWeb, resolveKubeconfig, serviceAccountEndpoint, webManifestDir } from '../support/kube-deploy';

const TOKEN = 'kube-token-bake-0123456789';
let api: KubeApiServer;

/** One server on loopback: /smoke answers `smokeStatus`, /hook records notifications. */
let server: http.Server;
let base: string;
let smokeStatus = 200;
const notifications: Record<string, any>[] = [];

before(async () => {
  api = await startKubeApi({ tokens: { [TOKEN]: 'deployer' }, stepMs: 10, secondMs: 100 });
  server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.url?.startsWith('/hook') && req.method === 'POST') {
        notifications.push(JSON.parse(Buffer.concat(chunks).toString('utf8')));
        res.writeHead(200).end('ok');
      } else if (req.url?.startsWith('/smoke')) {
        res.writeHead(smokeStatus, { 'Content-Type': 'text/plain' }).end(smokeStatus === 200 ? 'ok' : 'database unreachable');
      } else res.writeHead(404).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(async () => {
  await api?.stop();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

function options(namespace: string, overrides: Partial<KubernetesDeployOptions> = {}): KubernetesDeployOptions {
  return deployOptions(resolveKubeconfig(kubeconfigFor(api, { token: TOKEN })), { namespace, rolloutTimeoutSeconds: 20, ...overrides });
}

/** Runs `then` `afterMs` into the bake window (when its group starts). */
function duringBake(ctx: TestContext, afterMs: number, then: () => void): () => number {
  let openedAt = 0;
  const group = ctx.group;
  ctx.group = async (title, fn) => {
    if (!openedAt && /^Bake window/.test(title)) {
      openedAt = Date.now();
      setTimeout(then, afterMs);
    }
    return group(title, fn);
  };
  return () => openedAt;
}

const webImage = (ns: string) => api.get('apps/v1', 'Deployment', ns, 'web')!.spec.template.spec.containers[0].image;

describe('KubernetesDeploy bake window', () => {
  test('pods that start crash-looping 2 s into the window fail it; the Deployment is rolled back; the webhook hears it', async () => {
    const dir = webManifestDir({ replicas: 2 });
    const ns = 'bake-crash';
    await kubernetesDeploy(options(ns, { baseDir: dir }), createTestContext());
    notifications.length = 0;
    const ctx = createTestContext({ 'System.CollectionUri': 'https://dev.azure.com/contoso/', 'System.TeamProject': 'shop', 'Build.BuildId': '77' });
    const opened = duringBake(ctx, 2_000, () => api.behave(D('b'), { kind: 'CrashLoopBackOff', logs: ['serving', 'panic: cache connection lost'] }));
    const started = Date.now();
    await assert.rejects(kubernetesDeploy(options(ns, { baseDir: dir, lock: lockWithWeb(D('b')), bakeSeconds: 20, notify: { url: `${base}/hook`, format: 'json' } }), ctx), (err: Error) => {
      assert.ok(err instanceof DeploymentFailedError);
      assert.match(err.message, /^The bake window failed (\d+\.\d) s into its 20 s: pod web-\S+ of Deployment bake-crash\/web: container web restarted \(\d+ times?\)\./);
      const at = Number(/failed (\d+\.\d) s/.exec(err.message)![1]);
      assert.ok(at >= 2 && at < 5, `caught ${at} s into the window, soon after the crash at 2 s`);
      assert.match(err.message, /CrashLoopBackOff/);
      assert.match(err.message, /\| panic: cache connection lost/);
      assert.match(err.message, /Rolled back Deployment bake-crash\/web to revision 1; the previous revision is running again/);
      return true;
    });
    assert.ok(opened() > 0, 'the window was opened');
    assert.ok(Date.now() - started < 15_000, 'the window ended at the failure, not at its 20 s');
    assert.equal(ctx.outputs.rolledBack, 'true');
    assert.equal(webImage(ns), `${WEB}@${D('1')}`, 'the previous template runs again');
    assert.equal(notifications.length, 1, 'one notification per deploy');
    const n = notifications[0];
    assert.equal(n.task, 'KubernetesDeploy');
    assert.equal(n.environment, ns);
    assert.equal(n.result, 'failed');
    assert.equal(n.rolledBack, true);
    assert.equal(n.runUrl, 'https://dev.azure.com/contoso/shop/_build/results?buildId=77');
    assert.match(n.message, /^The bake window failed/);
    assert.deepEqual(n.services, [{ service: 'deployment/web/web', repository: WEB, oldDigest: D('1'), newDigest: D('b'), changed: true }]);
    assert.ok(ctx.secrets.has(`${base}/hook`), 'the webhook URL is a secret');
  });

  test('an evicted pod fails the window', async () => {
    const dir = webManifestDir({ replicas: 2 });
    const ns = 'bake-evict';
    await kubernetesDeploy(options(ns, { baseDir: dir }), createTestContext());
    const ctx = createTestContext();
    duringBake(ctx, 1_500, () => {
      const pod = api.list('v1', 'Pod', ns).find((p) => p.spec.containers[0].image.endsWith(D('c')) && !p.metadata.deletionTimestamp)!;
      api.update('v1', 'Pod', ns, pod.metadata.name, 'kubelet', (p) => {
        p.status = { ...p.status, phase: 'Failed', reason: 'Evicted', message: 'The node was low on resource: memory.' };
      });
    });
    await assert.rejects(kubernetesDeploy(options(ns, { baseDir: dir, lock: lockWithWeb(D('c')), bakeSeconds: 20 }), ctx), (err: Error) => {
      assert.match(err.message, /^The bake window failed \d+\.\d s into its 20 s: pod web-\S+ of Deployment bake-evict\/web: evicted \(The node was low on resource: memory\.\)/);
      assert.match(err.message, /Rolled back Deployment bake-evict\/web to revision 1/);
      return true;
    });
    assert.equal(webImage(ns), `${WEB}@${D('1')}`);
  });

  test('a window that passes: deployed, the log says so; the webhook hears "succeeded"', async () => {
    const dir = webManifestDir({ replicas: 2 });
    const ns = 'bake-pass';
    await kubernetesDeploy(options(ns, { baseDir: dir }), createTestContext());
    notifications.length = 0;
    smokeStatus = 200;
    const ctx = createTestContext();
    const started = Date.now();
    const result = await kubernetesDeploy(options(ns, { baseDir: dir, lock: lockWithWeb(D('d')), bakeSeconds: 3, smokeTestUrl: `${base}/smoke?token=abc`, notify: { url: `${base}/hook`, format: 'slack' } }), ctx);
    assert.ok(Date.now() - started >= 3_000, 'the whole window was waited for');
    assert.equal(result.rolledBack, false);
    assert.ok(ctx.logs.includes(`GROUP Bake window: 3 s watching the pods of Deployment bake-pass/web and ${base}/smoke`), 'the smoke URL is shown without its query');
    assert.match(ctx.logs.join('\n'), /Bake window passed: 3 s without a failure; the smoke test answered 2xx [12] times\./);
    assert.equal(webImage(ns), `${WEB}@${D('d')}`);
    assert.equal(notifications.length, 1);
    assert.match(notifications[0].text, /^KubernetesDeploy of build \S+ to bake-pass succeeded$/);
  });

  test('a canary whose pods start crash-looping in the window is removed; the stable Deployment is untouched', async () => {
    const dir = webManifestDir({ replicas: 2 });
    const ns = 'bake-canary';
    await kubernetesDeploy(options(ns, { baseDir: dir }), createTestContext());
    notifications.length = 0;
    const ctx = createTestContext();
    duringBake(ctx, 1_000, () => api.behave(D('7'), { kind: 'CrashLoopBackOff' }));
    await assert.rejects(kubernetesDeploy(options(ns, { baseDir: dir, lock: lockWithWeb(D('7')), strategy: 'canary', canaryPercentage: 50, bakeSeconds: 20, notify: { url: `${base}/hook`, format: 'json' } }), ctx), (err: Error) => {
      assert.match(err.message, /^The bake window failed \d+\.\d s into its 20 s: pod web-canary-\S+ of Deployment bake-canary\/web-canary: container web restarted/);
      assert.match(err.message, /The canary was removed \(Deployment web-canary, Deployment web-baseline\); the stable workloads were not changed/);
      return true;
    });
    assert.deepEqual(api.list('apps/v1', 'Deployment', ns).map((d) => d.metadata.name), ['web']);
    assert.equal(webImage(ns), `${WEB}@${D('1')}`);
    assert.equal(notifications[0].rolledBack, true);
    assert.deepEqual(notifications[0].services, [{ service: 'deployment/web/web', repository: WEB, oldDigest: D('1'), newDigest: D('7'), changed: true }]);
  });

  test('a smoke test URL that answers 503 fails the deploy and rolls it back', async () => {
    const dir = webManifestDir({ replicas: 1 });
    const ns = 'bake-smoke';
    await kubernetesDeploy(options(ns, { baseDir: dir }), createTestContext());
    smokeStatus = 503;
    try {
      await assert.rejects(kubernetesDeploy(options(ns, { baseDir: dir, lock: lockWithWeb(D('e')), smokeTestUrl: `${base}/smoke` }), createTestContext()), (err: Error) => {
        assert.match(err.message, /^The smoke test failed: the smoke test GET http:\/\/127\.0\.0\.1:\d+\/smoke answered 503 \(database unreachable\), not 2xx/);
        assert.match(err.message, /Rolled back Deployment bake-smoke\/web to revision 1/);
        return true;
      });
    } finally {
      smokeStatus = 200;
    }
    assert.equal(webImage(ns), `${WEB}@${D('1')}`);
  });

  test('a cancel during the window stops it at once and rolls back in the grace time', async () => {
    const dir = webManifestDir({ replicas: 2 });
    const ns = 'bake-cancel';
    await kubernetesDeploy(options(ns, { baseDir: dir }), createTestContext());
    const ctx = createTestContext();
    let cancelledAt = 0;
    duringBake(ctx, 1_000, () => {
      cancelledAt = Date.now();
      ctx.abort('KubernetesDeploy was cancelled (SIGTERM).');
    });
    await assert.rejects(kubernetesDeploy(options(ns, { baseDir: dir, lock: lockWithWeb(D('f')), bakeSeconds: 600 }), ctx), (err: Error) => {
      assert.match(err.message, /The job was cancelled during the bake window in namespace 'bake-cancel'/);
      assert.match(err.message, /Rolled back Deployment bake-cancel\/web to revision 1; not waited for/);
      return true;
    });
    assert.ok(cancelledAt > 0 && Date.now() - cancelledAt < 5_000, `ended ${Date.now() - cancelledAt} ms after the cancel`);
    assert.equal(webImage(ns), `${WEB}@${D('1')}`);
  });

  test('bad bake inputs are refused before the cluster is contacted', async () => {
    const before = api.requests.length;
    await assert.rejects(kubernetesDeploy(options('bake-bad', { bakeSeconds: 3601 }), createTestContext()), /Input 'bakeSeconds' must be a whole number from 0 to 3600, not 3601/);
    await assert.rejects(kubernetesDeploy(options('bake-bad', { smokeTestUrl: 'qa.shop.example.com/health' }), createTestContext()), /Input 'smokeTestUrl': 'qa\.shop\.example\.com\/health' is not an http:\/\/ or https:\/\/ URL/);
    assert.equal(api.requests.length, before);
  });
});

describe('the bundled KubernetesDeploy', () => {
  test('reads bakeSeconds, smokeTestUrl, notifyUrl and notifyFormat as the agent passes them; the webhook URL is a secret and never shows', async () => {
    const work = fs.mkdtempSync(path.join(os.tmpdir(), 'col-kbake-'));
    try {
      fs.cpSync(path.join(KUBE_FIXTURES, 'compose'), path.join(work, 'app'), { recursive: true });
      notifications.length = 0;
      smokeStatus = 200;
      const hook = `${base}/hook/T01/B02/k3yOfTheHook`;
      const run = await runBundledTask('kubernetes-deploy', {
        inputs: {
          connectionType: 'kubernetesServiceConnection',
          kubernetesServiceConnection: 'K8S-BAKE',
          namespace: 'shop-bake',
          createNamespace: 'true',
          source: 'compose',
          composeFiles: 'app/docker-compose.yml',
          lockFile: path.join(KUBE_FIXTURES, 'lock.json'),
          rolloutTimeoutSeconds: '30',
          bakeSeconds: '2',
          smokeTestUrl: `${base}/smoke`,
          notifyUrl: hook,
          notifyFormat: 'Slack',
        },
        endpoints: [serviceAccountEndpoint('K8S-BAKE', { url: api.url, caPem: api.caPem!, token: TOKEN })],
        cwd: work,
        variables: { 'System.Debug': 'true' },
        timeoutMs: 120_000,
      });
      assert.equal(run.result, 'Succeeded', run.visible);
      assert.match(run.visible, /Bake window passed: 2 s without a failure; the smoke test answered 2xx 2 times\./, 'at the start and at the end of the 2 s');
      assert.equal(notifications.length, 1);
      assert.match(notifications[0].text, /^KubernetesDeploy of build \S+ to shop-bake succeeded$/, 'notifyFormat is read whatever its case');
      assert.match(notifications[0].blocks[2].elements[0].text, /^<https:\/\/dev\.azure\.com\/outer-loop-tests\/shop\/_build\/results\?buildId=42\|Open the run>$/);
      assert.ok(run.output.includes(`##vso[task.setsecret]${hook}`), 'the webhook URL is registered as a secret');
      // task-lib echoes every input it reads in a debug line, before the task can register it; the
      // agent masks that one when the input comes from a secret variable (as the README says to).
      // Nothing else may show the URL.
      const shown = run.visible.split('\n').filter((l) => l.includes('k3yOfTheHook') && l !== `##vso[task.debug]notifyUrl=${hook}`);
      assert.deepEqual(shown, [], 'the webhook URL is never printed by the task, debug output included');
    } finally {
      fs.rmSync(work, { recursive: true, force: true });
    }
  });
});

describe('KubernetesDeploy bake window on the real control plane', () => {
  test('a container restart the kubelet reports after the rollout (a pods/status patch) fails the window; the Deployment is rolled back', async () => {
    const cluster = await startKubeCluster();
    const ns = `bake-real-${process.pid.toString(36)}`;
    const config = resolveKubeconfig(cluster.kubeconfig(cluster.admin));
    const dir = webManifestDir({ replicas: 2 });
    try {
      await kubernetesDeploy(deployOptions(config, { namespace: ns, baseDir: dir }), createTestContext());
      const ctx = createTestContext();
      duringBake(ctx, 1_500, () => {
        const pod = cluster.get(['pods', '-n', ns, '-l', 'app=web']).items.find((p: any) => p.spec.containers[0].image.endsWith(D('2')) && !p.metadata.deletionTimestamp);
        const restarted = { ...pod.status.containerStatuses[0], restartCount: 1, lastState: { terminated: { exitCode: 137, reason: 'OOMKilled', startedAt: pod.status.startTime, finishedAt: new Date().toISOString() } } };
        cluster.kubectl(['patch', 'pod', pod.metadata.name, '-n', ns, '--subresource=status', '--type=merge', '-p', JSON.stringify({ status: { containerStatuses: [restarted] } })]);
      });
      await assert.rejects(kubernetesDeploy(deployOptions(config, { namespace: ns, baseDir: dir, lock: lockWithWeb(D('2')), bakeSeconds: 30 }), ctx), (err: Error) => {
        assert.match(err.message, new RegExp(`^The bake window failed \\d+\\.\\d s into its 30 s: pod web-\\S+ of Deployment ${ns}/web: container web restarted \\(1 time\\)\\.`));
        assert.match(err.message, new RegExp(`Rolled back Deployment ${ns}/web to revision 1; the previous revision is running again`));
        return true;
      });
      assert.equal(cluster.get(['deployment', 'web', '-n', ns]).spec.template.spec.containers[0].image, `${WEB}@${D('1')}`, 'kubectl sees the previous template again');
    } finally {
      cluster.kubectl(['delete', 'namespace', ns, '--wait=false'], { allowFailure: true });
    }
  });
});
