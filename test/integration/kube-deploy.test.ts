// KubernetesDeploy against the test API server (test/support/kube-api.ts), for what a real API
// server cannot be made to do on demand: 429 with Retry-After and 5xx answers, watches that end
// or expire mid-rollout, a controller that observes late, pod logs without a kubelet, and a record
// of every request (watched, not polled; nothing sent before a refusal). The scenarios a real
// server can run are in kube-scenarios.test.ts (on both backends) and kube-cluster.test.ts.
import { strict as assert } from 'node:assert';
import { after, before, describe, test } from 'node:test';
import { DeploymentFailedError, KubernetesDeployOptions, kubernetesDeploy } from '../../tasks/lib/kube';
import { KubeApiError, KubeClient } from '../../tasks/lib/kube/client';
import { TestContext, createTestContext } from '../support/context';
import { KubeApiServer, kubeconfigFor, startKubeApi } from '../support/kube-api';
import { D, baseLock, deployOptions, lockWithWeb, resolveKubeconfig, webManifestDir } from '../support/kube-deploy';

const TOKEN = 'kube-token-0123456789abcdef';
/** The storefront with a 5-second progress deadline (the double's seconds are 100 ms). */
const manifestDir = (replicas = 2) => webManifestDir({ replicas, progressDeadlineSeconds: 5 });

let api: KubeApiServer;
let namespaceCounter = 0;
before(async () => {
  api = await startKubeApi({ tokens: { [TOKEN]: 'deployer', 'other-token': 'intern' }, stepMs: 10, secondMs: 100, deny: (r) => r.user === 'intern' && r.verb === 'patch' && r.resource === 'deployments' });
});
after(async () => {
  await api?.stop();
});

function options(overrides: Partial<KubernetesDeployOptions> & { token?: string } = {}): KubernetesDeployOptions {
  const { token, ...rest } = overrides;
  return deployOptions(resolveKubeconfig(kubeconfigFor(api, { token: token ?? TOKEN })), { namespace: `ns${++namespaceCounter}`, rolloutTimeoutSeconds: 20, ...rest });
}

const webPods = (ns: string) => api.list('v1', 'Pod', ns).filter((p) => p.metadata.labels?.app === 'web');

describe('KubernetesDeploy against the test API server: what only a double can do', () => {
  test('a crashing release is rolled back to the previous ReplicaSet\'s template, with the last log lines', async () => {
    const dir = manifestDir(2);
    const ns = 'rollback';
    await kubernetesDeploy(options({ baseDir: dir, namespace: ns }), createTestContext());
    api.behave(D('c'), { kind: 'CrashLoopBackOff', logs: ['booting shop web', 'reading config', 'panic: DATABASE_URL is not set'] });
    const ctx = createTestContext();
    await assert.rejects(kubernetesDeploy(options({ baseDir: dir, namespace: ns, lock: lockWithWeb(D('c')) }), ctx), (err: Error) => {
      assert.ok(err instanceof DeploymentFailedError);
      assert.match(err.message, /CrashLoopBackOff/);
      assert.match(err.message, /\| panic: DATABASE_URL is not set/);
      assert.match(err.message, /Rolled back Deployment rollback\/web to revision 1; the previous revision is running again/);
      assert.equal(err.result.rolledBack, true);
      return true;
    });
    const web = api.get('apps/v1', 'Deployment', ns, 'web')!;
    assert.equal(web.spec.template.spec.containers[0].image, `registry.example.com/shop/web@${D('1')}`);
    assert.equal(web.metadata.annotations['deployment.kubernetes.io/revision'], '3', 'the old ReplicaSet becomes revision 3, as kubectl rollout undo does');
    const sets = api.list('apps/v1', 'ReplicaSet', ns);
    assert.equal(sets.length, 2, 'the previous ReplicaSet was reused, not copied');
    assert.ok(webPods(ns).every((p) => p.spec.containers[0].image.endsWith(D('1'))));
    assert.equal(web.metadata.managedFields.length, 1, 'the rollback is applied as the same field manager, so the next deployment does not conflict');
    // The next good release deploys cleanly after the rollback.
    const next = await kubernetesDeploy(options({ baseDir: dir, namespace: ns, lock: lockWithWeb(D('d')) }), createTestContext());
    assert.equal(next.rolledBack, false);
  });

  test('a brand-new workload that fails has nothing to roll back to, and says so', async () => {
    api.behave(D('e'), { kind: 'Unschedulable' });
    await assert.rejects(kubernetesDeploy(options({ lock: lockWithWeb(D('e')) }), createTestContext()), (err: Error) => {
      assert.match(err.message, /Unschedulable — 0\/2 nodes are available: 2 Insufficient cpu/);
      assert.match(err.message, /Nothing was rolled back:\n\s+Deployment ns\d+\/web was created by this deployment; there is no previous revision/);
      assert.equal((err as DeploymentFailedError).result.rolledBack, false);
      return true;
    });
  });

  test('judgement waits for observedGeneration; closed and expired watches are resumed', async () => {
    const dir = manifestDir(1);
    const ns = 'observe';
    await kubernetesDeploy(options({ baseDir: dir, namespace: ns }), createTestContext());
    // The controller sees the new spec late: the old status ("complete") must not count.
    api.behave(/web@sha256:4{64}/, { kind: 'ImagePullBackOff' });
    api.observeDelayMs = 400;
    try {
      await assert.rejects(kubernetesDeploy(options({ baseDir: dir, namespace: ns, lock: lockWithWeb(D('4')), rollbackOnFailure: false }), createTestContext()), /exceeded its progress deadline/);
    } finally {
      api.observeDelayMs = 0;
    }
    // Watches the server ends (and a compacted history) are resumed with a fresh GET.
    const closer = setInterval(() => api.closeWatches(), 30);
    const compactor = setTimeout(() => api.compact(), 45);
    try {
      const result = await kubernetesDeploy(options({ baseDir: manifestDir(3), namespace: ns, lock: lockWithWeb(D('5')) }), createTestContext());
      assert.equal(result.rolledBack, false);
    } finally {
      clearInterval(closer);
      clearTimeout(compactor);
    }
  });
  test('the rollout is watched, not polled', async () => {
    const ns = 'watched';
    const first = api.requests.length;
    // The controller observes late, so the rollout is never done by the GET before the watch (on a
    // loaded machine it could be, and then no watch is needed).
    api.observeDelayMs = 300;
    try {
      await kubernetesDeploy(options({ baseDir: manifestDir(3), namespace: ns }), createTestContext());
    } finally {
      api.observeDelayMs = 0;
    }
    const during = api.requests.slice(first).filter((r) => r.path === `/apis/apps/v1/namespaces/${ns}/deployments` || r.path === `/apis/apps/v1/namespaces/${ns}/deployments/web`);
    assert.equal(during.filter((r) => r.query.watch === '1').length, 1, 'one watch stream for the whole rollout');
    assert.ok(during.filter((r) => r.method === 'GET' && r.query.watch !== '1').length <= 3, 'the promotion diff\'s list, a GET before the apply and one before the watch');
  });

  test('429 with Retry-After and 503 are retried after the wait the server asks for; a persistent 500 fails naming the request', async () => {
    const ns = 'overloaded';
    const isApply = (r: { method: string; path: string }) => r.method === 'PATCH' && r.path === `/apis/apps/v1/namespaces/${ns}/deployments/web`;
    api.fault({ match: isApply, status: 429, retryAfterSeconds: 1 });
    api.fault({ match: (r) => r.method === 'GET' && r.path === `/apis/apps/v1/namespaces/${ns}/deployments/web` && r.query.watch !== '1', status: 503 });
    const started = Date.now();
    const first = api.requests.length;
    const result = await kubernetesDeploy(options({ namespace: ns, client: { retryDelayMs: 10, attempts: 3, timeoutMs: 5000 } }), createTestContext());
    assert.equal(result.rolledBack, false);
    assert.ok(Date.now() - started >= 1000, 'Retry-After: 1 was honoured');
    const applies = api.requests.slice(first).filter(isApply);
    assert.deepEqual(applies.map((r) => r.status), [429, 201], 'refused once, then created');
    assert.equal(api.get('apps/v1', 'Deployment', ns, 'web')!.status.availableReplicas, 2);

    api.fault({ match: isApply, status: 500, times: Infinity });
    try {
      await assert.rejects(kubernetesDeploy(options({ namespace: ns, lock: lockWithWeb(D('2')), client: { retryDelayMs: 10, attempts: 3, timeoutMs: 5000 } }), createTestContext()), (err: Error) => {
        assert.match(err.message, /Deployment overloaded\/web/);
        assert.match(err.message, /500/);
        return true;
      });
    } finally {
      api.fault({ match: isApply, status: 500, times: 0 });
    }
  });

  test('the client retries by the one rule: 408, 502 and a lasting 500 again, 501, 403 and 404 never; a watch opens again within its own length, not a request\'s deadline', async () => {
    const client = new KubeClient(resolveKubeconfig(kubeconfigFor(api, { token: TOKEN })), { setSecret: () => undefined, retryDelayMs: 10, attempts: 3, deadlineMs: 300 });
    const path = '/api/v1/namespaces';
    const isList = (r: { method: string; path: string; query: Record<string, string> }) => r.method === 'GET' && r.path.startsWith(path) && r.query.watch !== '1';
    /** What the client made of a GET of `target` (the status it ended with) and the statuses it was sent. */
    const get = async (target: string, fault?: { status: number; times?: number }) => {
      if (fault) api.fault({ match: isList, ...fault });
      const first = api.requests.length;
      const status = await client.request('GET', target).then((res) => res.status, (err: KubeApiError) => err.status);
      return { status, sent: api.requests.slice(first).filter(isList).map((r) => r.status) };
    };
    try {
      assert.deepEqual(await get(path, { status: 408 }), { status: 200, sent: [408, 200] });
      assert.deepEqual(await get(path, { status: 502 }), { status: 200, sent: [502, 200] });
      assert.deepEqual(await get(path, { status: 500, times: 3 }), { status: 500, sent: [500, 500, 500] }, 'every attempt, then the last answer');
      assert.deepEqual(await get(path, { status: 501 }), { status: 501, sent: [501] });
      assert.deepEqual(await get(path, { status: 403 }), { status: 403, sent: [403] });
      assert.deepEqual(await get(`${path}/no-such-namespace`), { status: 404, sent: [404] });

      const isWatch = (r: { path: string; query: Record<string, string> }) => r.path === path && r.query.watch === '1';
      api.fault({ match: isWatch, status: 503 });
      const first = api.requests.length;
      const started = Date.now();
      assert.equal(await client.watch(path, {}, () => false, 1500), 'timeout');
      assert.ok(Date.now() - started >= 1500, 'the watch ran its whole length, past the 300 ms deadline of a request');
      assert.deepEqual(api.requests.slice(first).filter(isWatch).map((r) => r.status), [503, 200]);
    } finally {
      client.close();
    }
  });
});

describe('KubernetesDeploy cancelled by the agent', () => {
  /** Deploys, and cancels the job (as runTask does on SIGTERM) shortly after the group `when` starts. */
  async function cancelled(o: KubernetesDeployOptions, when: RegExp): Promise<{ error: Error; ctx: TestContext; afterCancelMs: number }> {
    const ctx = createTestContext();
    let cancelledAt = 0;
    const group = ctx.group;
    ctx.group = async (title, fn) => {
      if (!cancelledAt && when.test(title)) {
        setTimeout(() => {
          cancelledAt = Date.now();
          ctx.abort('KubernetesDeploy was cancelled (SIGTERM).');
        }, 300);
      }
      return group(title, fn);
    };
    const error = await kubernetesDeploy(o, ctx).then(
      () => assert.fail(`the cancelled deployment succeeded:\n${ctx.logs.join('\n')}`),
      (err: Error) => err,
    );
    assert.ok(cancelledAt > 0, `no group matched ${when}:\n${ctx.logs.join('\n')}`);
    return { error, ctx, afterCancelMs: Date.now() - cancelledAt };
  }

  test('a cancel during the rollout wait rolls the Deployment back to the previous revision in the grace time, and says its rollout was not waited for', async () => {
    const dir = webManifestDir({ replicas: 2, progressDeadlineSeconds: 600 });
    const ns = 'cancelwait';
    await kubernetesDeploy(options({ baseDir: dir, namespace: ns }), createTestContext());
    api.behave(D('f'), { kind: 'NeverReady' });
    const { error, ctx, afterCancelMs } = await cancelled(options({ baseDir: dir, namespace: ns, lock: lockWithWeb(D('f')) }), /^Wait for 1 rollout/);
    assert.match(error.message, /The job was cancelled during the rollout wait in namespace 'cancelwait'/);
    assert.match(error.message, /Rolled back Deployment cancelwait\/web to revision 1; not waited for \(a cancelled task has no time for it\): kubectl rollout status deployment\/web -n cancelwait/);
    assert.ok(afterCancelMs < 10_000, `the task ended ${afterCancelMs} ms after the cancel`);
    assert.equal(ctx.outputs.rolledBack, 'true');
    const web = api.get('apps/v1', 'Deployment', ns, 'web')!;
    assert.equal(web.spec.template.spec.containers[0].image, `registry.example.com/shop/web@${D('1')}`, 'the previous template is applied again');
  });

  test('a cancel during a canary\'s rollout wait removes the canary and baseline; the stable Deployment is untouched', async () => {
    const dir = webManifestDir({ replicas: 2, progressDeadlineSeconds: 600 });
    const ns = 'cancelcanary';
    await kubernetesDeploy(options({ baseDir: dir, namespace: ns }), createTestContext());
    api.behave(D('8'), { kind: 'NeverReady' });
    const { error, ctx } = await cancelled(options({ baseDir: dir, namespace: ns, lock: lockWithWeb(D('8')), strategy: 'canary', canaryPercentage: 50 }), /^Wait for 2 rollout/);
    assert.match(error.message, /The job was cancelled during the canary's rollout wait in namespace 'cancelcanary'; the stable workloads were not changed/);
    assert.match(error.message, /The canary was removed \(Deployment web-canary, Deployment web-baseline\)/);
    assert.equal(ctx.outputs.rolledBack, 'true');
    assert.deepEqual(api.list('apps/v1', 'Deployment', ns).map((d) => d.metadata.name), ['web']);
    assert.equal(api.get('apps/v1', 'Deployment', ns, 'web')!.spec.template.spec.containers[0].image, `registry.example.com/shop/web@${D('1')}`);
  });

  test('a cancel with rollbackOnFailure off leaves the new revision and says how to undo it by hand', async () => {
    const dir = webManifestDir({ replicas: 1, progressDeadlineSeconds: 600 });
    const ns = 'cancelleft';
    await kubernetesDeploy(options({ baseDir: dir, namespace: ns }), createTestContext());
    api.behave(D('9'), { kind: 'NeverReady' });
    const { error, ctx } = await cancelled(options({ baseDir: dir, namespace: ns, lock: lockWithWeb(D('9')), rollbackOnFailure: false }), /^Wait for 1 rollout/);
    assert.match(error.message, /Nothing was rolled back \(rollbackOnFailure is false\): what was applied is left as it is, not rolled out/);
    assert.match(error.message, /Roll back by hand: kubectl rollout undo deployment\/web -n cancelleft/);
    assert.equal(ctx.outputs.rolledBack, 'false');
    assert.equal(api.get('apps/v1', 'Deployment', ns, 'web')!.spec.template.spec.containers[0].image, `registry.example.com/shop/web@${D('9')}`);
  });
});

describe('bad input and refusals', () => {
  test('403: the message says which permission was missing', async () => {
    await assert.rejects(kubernetesDeploy(options({ token: 'other-token' }), createTestContext()), (err: Error) => {
      assert.match(err.message, /forbade server-side apply of Deployment ns\d+\/web \(403 Forbidden\)/);
      assert.match(err.message, /User "intern" cannot patch resource "deployments" in API group "apps" in the namespace "ns\d+"/);
      assert.match(err.message, /Grant this permission to the account of Input 'kubernetesServiceConnection'/);
      return true;
    });
  });

  test('an unreachable server fails quickly with what to check', async () => {
    const config = resolveKubeconfig(kubeconfigFor(api, { token: TOKEN }).replace(api.url, 'https://127.0.0.1:9'));
    const started = Date.now();
    await assert.rejects(kubernetesDeploy(options({ kubeconfig: async () => config }), createTestContext()), /Cannot reach the Kubernetes API server at https:\/\/127\.0\.0\.1:9 .*ECONNREFUSED.*Check the server URL of Input 'kubernetesServiceConnection'/);
    assert.ok(Date.now() - started < 3000);
  });

  test('an untrusted server certificate is refused; the right CA is accepted', async () => {
    const text = kubeconfigFor(api, { token: TOKEN }).replace(/certificate-authority-data: .*/, '');
    const config = resolveKubeconfig(text);
    await assert.rejects(kubernetesDeploy(options({ kubeconfig: async () => config }), createTestContext()), /TLS certificate was not accepted/);
  });

  test('an image missing from the lock fails before connecting', async () => {
    const lock = structuredClone(baseLock);
    lock.images = lock.images.filter((i) => i.name !== 'web');
    const before = api.requests.length;
    await assert.rejects(kubernetesDeploy(options({ lock }), createTestContext()), /1 image\(s\) are not in the image lock \(input 'lockFile'\)[\s\S]*Deployment web, container 'web': registry\.example\.com\/shop\/web:1\.0/);
    assert.equal(api.requests.length, before, 'the cluster was not contacted');
  });

  test('inputs are bounded', async () => {
    await assert.rejects(kubernetesDeploy(options({ rolloutTimeoutSeconds: 0 }), createTestContext()), /Input 'rolloutTimeoutSeconds' must be from 1 to 21600/);
    await assert.rejects(kubernetesDeploy(options({ strategy: 'canary', canaryPercentage: 0 }), createTestContext()), /Input 'canaryPercentage'/);
    await assert.rejects(kubernetesDeploy(options({ action: 'promote' }), createTestContext()), /'promote' needs strategy 'canary'/);
    await assert.rejects(kubernetesDeploy(options({ namespace: 'Bad_NS' }), createTestContext()), /Input 'namespace': 'Bad_NS' is not a valid namespace name/);
  });
});
