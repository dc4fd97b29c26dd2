// KubernetesDeploy against the test API server (test/support/kube-api.ts), which follows the real
// API's semantics: discovery, server-side apply with managed fields and conflicts, generation and
// observedGeneration, a controller that makes ReplicaSets and pods, Deployment conditions
// (ProgressDeadlineExceeded), watch streams, 401/403. No live cluster is involved.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ApplyConflictError } from '../../tasks/lib/kube/apply';
import { DeploymentFailedError, KubernetesDeployOptions, kubernetesDeploy } from '../../tasks/lib/kube';
import { parseKubeconfig } from '../../tasks/lib/kube/kubeconfig';
import { readLock } from '../../tasks/lib/lock/file';
import type { ImageLock } from '../../tasks/lib/lock/types';
import { createTestContext } from '../support/context';
import { KubeApiServer, kubeconfigFor, startKubeApi } from '../support/kube-api';

const FIXTURES = path.join(__dirname, '..', 'fixtures', 'kube');
const TOKEN = 'kube-token-0123456789abcdef';
const baseLock = readLock(path.join(FIXTURES, 'lock.json'));
const D = (n: string) => `sha256:${n.repeat(64)}`;

/** The fixture lock with the web image at another digest (a new release). */
function lockWithWeb(digest: string): ImageLock {
  const lock = structuredClone(baseLock);
  const web = lock.images.find((i) => i.name === 'web')!;
  web.digest = digest;
  web.ref = `${web.repository}@${digest}`;
  return lock;
}

function manifestDir(replicas = 2, extra = '', progressDeadlineSeconds = 5): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'col-kdeploy-'));
  fs.writeFileSync(
    path.join(dir, 'web.yaml'),
    `# the storefront
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: ${replicas}
  progressDeadlineSeconds: ${progressDeadlineSeconds}
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: web
          image: registry.example.com/shop/web:1.0
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
${extra}`,
  );
  return dir;
}

let api: KubeApiServer;
let namespaceCounter = 0;
before(async () => {
  api = await startKubeApi({ tokens: { [TOKEN]: 'deployer', 'other-token': 'intern' }, stepMs: 10, secondMs: 100, deny: (r) => r.user === 'intern' && r.verb === 'patch' && r.resource === 'deployments' });
});
after(async () => {
  await api?.stop();
});

function options(overrides: Partial<KubernetesDeployOptions> & { token?: string } = {}): KubernetesDeployOptions {
  const text = kubeconfigFor(api, { token: overrides.token ?? TOKEN });
  const config = parseKubeconfig(text, { source: "Input 'kubernetesServiceConnection'", setSecret: () => undefined });
  const dir = overrides.baseDir ?? manifestDir();
  return {
    kubeconfig: async () => config,
    namespace: `ns${++namespaceCounter}`,
    createNamespace: true,
    source: 'manifests',
    manifests: ['*.yaml'],
    baseDir: dir,
    lock: baseLock,
    lockInput: 'lockFile',
    allowUnpinned: false,
    imagePullSecrets: [],
    strategy: 'rolling',
    canaryPercentage: 25,
    action: 'deploy',
    rolloutTimeoutSeconds: 20,
    rollbackOnFailure: true,
    fieldManager: 'container-outer-loop',
    forceConflicts: false,
    renderedManifests: path.join(dir, 'out', 'rendered.yaml'),
    publishArtifact: true,
    artifactName: 'kubernetes-manifests',
    logTailLines: 5,
    client: { retryDelayMs: 10, attempts: 2, timeoutMs: 5000 },
    ...overrides,
  };
}

const webPods = (ns: string) => api.list('v1', 'Pod', ns).filter((p) => p.metadata.labels?.app === 'web');

describe('KubernetesDeploy against the test API server', () => {
  test('compose source: converted, pinned, applied, rolled out, digests verified', async () => {
    const ctx = createTestContext();
    const opts = options({ source: 'compose', composeFiles: [path.join(FIXTURES, 'compose', 'docker-compose.yml')], env: {}, namespace: 'shop-qa', baseDir: path.join(FIXTURES, 'compose'), renderedManifests: path.join(ctx.tempDir, 'rendered.yaml') });
    const result = await kubernetesDeploy(opts, ctx);
    assert.equal(result.rolledBack, false);
    assert.equal(result.applied.length, 16);
    // Every workload exists and runs the lock's digests.
    const web = api.get('apps/v1', 'Deployment', 'shop-qa', 'web')!;
    assert.equal(web.spec.template.spec.containers[0].image, `registry.example.com/shop/web@${D('1')}`);
    assert.equal(web.status.observedGeneration, web.metadata.generation);
    assert.equal(web.status.availableReplicas, 3);
    const db = api.get('apps/v1', 'StatefulSet', 'shop-qa', 'db')!;
    assert.equal(db.spec.template.spec.containers[0].image, `docker.io/library/postgres@${D('5')}`);
    assert.equal(db.status.readyReplicas, 1);
    assert.equal(api.get('apps/v1', 'DaemonSet', 'shop-qa', 'agent')!.status.numberAvailable, 2);
    assert.ok(api.get('batch/v1', 'Job', 'shop-qa', 'migrate')!.status.conditions.some((c: any) => c.type === 'Complete' && c.status === 'True'));
    assert.equal(api.get('batch/v1', 'CronJob', 'shop-qa', 'report')!.spec.jobTemplate.spec.template.spec.containers[0].image, `registry.example.com/shop/api@${D('2')}`);
    assert.ok(api.get('networking.k8s.io/v1', 'Ingress', 'shop-qa', 'web'));
    assert.ok(api.get('autoscaling/v2', 'HorizontalPodAutoscaler', 'shop-qa', 'worker'));
    // imageIDs of the running pods were checked against the digests.
    assert.ok(result.imageChecks.length >= 3 + 2 + 1 + 1, `checked ${result.imageChecks.length}`);
    assert.ok(result.imageChecks.every((c) => c.ok === true));
    // Server-side apply with our field manager.
    const managers = web.metadata.managedFields.map((m: any) => `${m.manager}/${m.operation}`);
    assert.deepEqual(managers, ['container-outer-loop/Apply']);
    assert.ok(web.metadata.managedFields[0].fieldsV1['f:spec']['f:template']['f:spec']['f:containers']['k:{"name":"web"}']['f:image']);
    // Outputs, artifact, summary.
    assert.deepEqual(result.deployedDigests.web, `registry.example.com/shop/web@${D('1')}`);
    assert.equal(result.deployedDigests.worker, `registry.example.com/shop/worker@${D('3')}`);
    const rendered = fs.readFileSync(result.renderedManifests, 'utf8');
    assert.ok(!/image: [^\n@]+:[\w.-]+\n/.test(rendered.replace(/image: .*@sha256:[0-9a-f]{64}/g, '')), 'every image in the rendered manifests carries a digest');
    assert.ok(!rendered.includes(Buffer.from('k3y-from-file-0001\n').toString('base64')), 'Secret data is redacted in the artifact');
    assert.ok(ctx.secrets.has('k3y-from-file-0001'), 'the Secret value is registered for masking');
    assert.deepEqual(ctx.artifacts, [{ name: 'kubernetes-manifests', path: result.renderedManifests }]);
    assert.match(ctx.summaries[0], /Deployed: every workload rolled out and runs the pinned digests/);
    assert.ok(ctx.logs.some((l) => l.includes("'depends_on' is not converted")));
    // The API saw server-side apply requests only (no PUT/POST of workloads).
    const patches = api.requests.filter((r) => r.method === 'PATCH' && r.path.includes('/namespaces/shop-qa/'));
    assert.ok(patches.length >= 16 && patches.every((r) => r.contentType === 'application/apply-patch+yaml' && r.query.fieldManager === 'container-outer-loop'));
  });

  test('a stuck rollout fails with each pod\'s reason once the progress deadline passes', async () => {
    const dir = manifestDir(2);
    const ns = 'stuck';
    await kubernetesDeploy(options({ baseDir: dir, namespace: ns }), createTestContext());
    api.behave(D('a'), { kind: 'ImagePullBackOff' });
    const ctx = createTestContext();
    const started = Date.now();
    const firstRequest = api.requests.length;
    await assert.rejects(kubernetesDeploy(options({ baseDir: dir, namespace: ns, lock: lockWithWeb(D('a')), rollbackOnFailure: false }), ctx), (err: Error) => {
      assert.ok(err instanceof DeploymentFailedError);
      assert.match(err.message, /deployment "web" exceeded its progress deadline/);
      assert.match(err.message, /ImagePullBackOff — Back-off pulling image "registry\.example\.com\/shop\/web@sha256:a{64}"/);
      assert.match(err.message, /rollbackOnFailure is false/);
      assert.equal(err.result.rolledBack, false);
      return true;
    });
    assert.ok(Date.now() - started < 10_000, 'the progress deadline ends the wait, not the rollout timeout');
    // Watched, not polled: one watch stream and a single GET of the Deployment while waiting.
    const during = api.requests.slice(firstRequest).filter((r) => r.path === `/apis/apps/v1/namespaces/${ns}/deployments` || r.path === `/apis/apps/v1/namespaces/${ns}/deployments/web`);
    assert.equal(during.filter((r) => r.query.watch === '1').length, 1);
    assert.equal(during.filter((r) => r.method === 'GET' && r.query.watch !== '1').length, 2, 'one GET before the apply (previous revision), one before the watch');
    // Old pods keep serving: the old ReplicaSet was not scaled down.
    assert.equal(webPods(ns).filter((p) => p.spec.containers[0].image.endsWith(D('1')) && p.status.phase === 'Running').length, 2);
  });

  test('a rollout that never completes is bounded by rolloutTimeoutSeconds', async () => {
    const dir = manifestDir(1, '', 600);
    api.behave(D('b'), { kind: 'NeverReady' });
    const started = Date.now();
    await assert.rejects(kubernetesDeploy(options({ baseDir: dir, lock: lockWithWeb(D('b')), rolloutTimeoutSeconds: 1, rollbackOnFailure: false }), createTestContext()), (err: Error) => {
      assert.match(err.message, /not rolled out within rolloutTimeoutSeconds \(1 s\)/);
      assert.match(err.message, /0 of 1 updated replicas are available/);
      return true;
    });
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 1000 && elapsed < 5000, `waited ${elapsed} ms`);
  });

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

  test('running pods whose imageID carries another digest fail verification and are rolled back', async () => {
    const dir = manifestDir(1);
    const ns = 'verify';
    await kubernetesDeploy(options({ baseDir: dir, namespace: ns }), createTestContext());
    const original = api.imageIdFor;
    api.imageIdFor = (image) => (image.includes(D('f')) ? `registry.example.com/shop/web@${D('0')}` : original(image));
    try {
      await assert.rejects(kubernetesDeploy(options({ baseDir: dir, namespace: ns, lock: lockWithWeb(D('f')) }), createTestContext()), (err: Error) => {
        assert.match(err.message, /Running pods do not carry the pinned digests/);
        assert.match(err.message, new RegExp(`runs registry\\.example\\.com/shop/web@${D('0')}, expected ${D('f')}`));
        assert.match(err.message, /Rolled back Deployment verify\/web to revision 1/);
        return true;
      });
    } finally {
      api.imageIdFor = original;
    }
  });

  test('a conflict names the owning field manager; forceConflicts takes the field over', async () => {
    const dir = manifestDir(2);
    const ns = 'conflict';
    await kubernetesDeploy(options({ baseDir: dir, namespace: ns }), createTestContext());
    api.update('apps/v1', 'Deployment', ns, 'web', 'kubectl-scale', (o) => {
      o.spec.replicas = 5;
    });
    await assert.rejects(kubernetesDeploy(options({ baseDir: dir, namespace: ns }), createTestContext()), (err: Error) => {
      assert.ok(err instanceof ApplyConflictError, err.message);
      assert.deepEqual(err.managers, ['kubectl-scale']);
      assert.deepEqual(err.fields, ['.spec.replicas']);
      assert.match(err.message, /conflicts with field manager 'kubectl-scale'/);
      assert.match(err.message, /\.spec\.replicas: conflict with "kubectl-scale" using apps\/v1/);
      assert.match(err.message, /forceConflicts: true/);
      return true;
    });
    assert.equal(api.get('apps/v1', 'Deployment', ns, 'web')!.spec.replicas, 5, 'nothing was changed by the refused apply');
    await kubernetesDeploy(options({ baseDir: dir, namespace: ns, forceConflicts: true }), createTestContext());
    const web = api.get('apps/v1', 'Deployment', ns, 'web')!;
    assert.equal(web.spec.replicas, 2);
    const scale = web.metadata.managedFields.find((m: any) => m.manager === 'kubectl-scale');
    assert.ok(!scale || !scale.fieldsV1['f:spec']?.['f:replicas'], 'kubectl-scale no longer owns .spec.replicas');
  });

  test('canary: deploy runs -canary and -baseline beside the stable Deployment; promote and reject', async () => {
    const dir = manifestDir(4);
    const ns = 'canary';
    await kubernetesDeploy(options({ baseDir: dir, namespace: ns }), createTestContext());
    const stableBefore = api.get('apps/v1', 'Deployment', ns, 'web')!;
    // deploy
    const ctx = createTestContext();
    const deployed = await kubernetesDeploy(options({ baseDir: dir, namespace: ns, strategy: 'canary', action: 'deploy', canaryPercentage: 25, lock: lockWithWeb(D('7')) }), ctx);
    assert.deepEqual(deployed.applied.sort(), ['Deployment canary/web-baseline', 'Deployment canary/web-canary', 'Service canary/web']);
    const canary = api.get('apps/v1', 'Deployment', ns, 'web-canary')!;
    const baseline = api.get('apps/v1', 'Deployment', ns, 'web-baseline')!;
    assert.equal(canary.spec.replicas, 1);
    assert.equal(baseline.spec.replicas, 1);
    assert.equal(canary.spec.template.spec.containers[0].image, `registry.example.com/shop/web@${D('7')}`);
    assert.equal(baseline.spec.template.spec.containers[0].image, `registry.example.com/shop/web@${D('1')}`);
    assert.equal(canary.spec.template.metadata.labels['container-outer-loop/variant'], 'canary');
    assert.equal(canary.spec.template.metadata.labels.app, 'web', 'the Service selects canary pods too');
    assert.equal(api.get('apps/v1', 'Deployment', ns, 'web')!.metadata.generation, stableBefore.metadata.generation, 'the stable Deployment is untouched');
    assert.equal(webPods(ns).length, 6);
    assert.match(ctx.summaries[0], /Canary deployed at 25%/);
    // promote
    const promoted = await kubernetesDeploy(options({ baseDir: dir, namespace: ns, strategy: 'canary', action: 'promote', lock: lockWithWeb(D('7')) }), createTestContext());
    assert.equal(promoted.rolledBack, false);
    assert.equal(api.get('apps/v1', 'Deployment', ns, 'web')!.spec.template.spec.containers[0].image, `registry.example.com/shop/web@${D('7')}`);
    assert.equal(api.get('apps/v1', 'Deployment', ns, 'web-canary'), undefined);
    assert.equal(api.get('apps/v1', 'Deployment', ns, 'web-baseline'), undefined);
    // reject a second canary
    await kubernetesDeploy(options({ baseDir: dir, namespace: ns, strategy: 'canary', action: 'deploy', lock: lockWithWeb(D('8')) }), createTestContext());
    assert.ok(api.get('apps/v1', 'Deployment', ns, 'web-canary'));
    const rctx = createTestContext();
    await kubernetesDeploy(options({ baseDir: dir, namespace: ns, strategy: 'canary', action: 'reject', lock: lockWithWeb(D('8')) }), rctx);
    assert.equal(api.get('apps/v1', 'Deployment', ns, 'web-canary'), undefined);
    assert.equal(api.get('apps/v1', 'Deployment', ns, 'web-baseline'), undefined);
    assert.equal(api.get('apps/v1', 'Deployment', ns, 'web')!.spec.template.spec.containers[0].image, `registry.example.com/shop/web@${D('7')}`, 'reject leaves stable alone');
    assert.ok(rctx.logs.some((l) => l.includes('Removed Deployment web-canary, Deployment web-baseline')));
    // A failing canary is removed when rollbackOnFailure is on.
    api.behave(D('9'), { kind: 'CrashLoopBackOff' });
    await assert.rejects(kubernetesDeploy(options({ baseDir: dir, namespace: ns, strategy: 'canary', action: 'deploy', lock: lockWithWeb(D('9')) }), createTestContext()), (err: Error) => {
      assert.match(err.message, /The canary was removed/);
      assert.equal((err as DeploymentFailedError).result.rolledBack, true);
      return true;
    });
    assert.equal(api.get('apps/v1', 'Deployment', ns, 'web-canary'), undefined);
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
});

describe('pull secrets, Jobs, StatefulSets', () => {
  test('createPullSecretFrom: a dockerconfigjson Secret through the API, added to every pod', async () => {
    const ctx = createTestContext();
    const ns = 'pull';
    await kubernetesDeploy(
      options({
        namespace: ns,
        imagePullSecrets: ['existing-secret'],
        pullSecret: { name: 'shop-registry', registry: 'registry.example.com', server: 'registry.example.com', input: 'createPullSecretFrom', getCredential: async () => ({ username: 'puller', password: 'pull-pa55word-xyz' }) },
      }),
      ctx,
    );
    const secret = api.get('v1', 'Secret', ns, 'shop-registry')!;
    assert.equal(secret.type, 'kubernetes.io/dockerconfigjson');
    const config = JSON.parse(Buffer.from(secret.data['.dockerconfigjson'], 'base64').toString('utf8'));
    assert.deepEqual(config.auths['registry.example.com'], { username: 'puller', password: 'pull-pa55word-xyz', auth: Buffer.from('puller:pull-pa55word-xyz').toString('base64') });
    assert.ok(ctx.secrets.has('pull-pa55word-xyz') && ctx.secrets.has(secret.data['.dockerconfigjson']), 'the password and every encoding of it are masked');
    assert.deepEqual(api.get('apps/v1', 'Deployment', ns, 'web')!.spec.template.spec.imagePullSecrets, [{ name: 'existing-secret' }, { name: 'shop-registry' }]);
  });

  test('a Job whose template changes is replaced (its template is immutable) and run to completion', async () => {
    const ns = 'jobs';
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'col-kjob-'));
    const compose = { source: 'compose' as const, composeFiles: [path.join(FIXTURES, 'compose', 'docker-compose.yml')], env: {}, namespace: ns, baseDir: path.join(FIXTURES, 'compose'), renderedManifests: path.join(out, 'rendered.yaml') };
    await kubernetesDeploy(options(compose), createTestContext());
    const first = api.get('batch/v1', 'Job', ns, 'migrate')!;
    const lock = structuredClone(baseLock);
    const apiImage = lock.images.find((i) => i.name === 'api')!;
    apiImage.digest = `sha256:${'0123'.repeat(16)}`;
    apiImage.ref = `${apiImage.repository}@${apiImage.digest}`;
    const ctx = createTestContext();
    await kubernetesDeploy(options({ ...compose, lock }), ctx);
    const second = api.get('batch/v1', 'Job', ns, 'migrate')!;
    assert.notEqual(second.metadata.uid, first.metadata.uid);
    assert.equal(second.spec.template.spec.containers[0].image, `registry.example.com/shop/api@sha256:${'0123'.repeat(16)}`);
    assert.ok(second.status.conditions.some((c: any) => c.type === 'Complete' && c.status === 'True'));
    assert.ok(ctx.logs.some((l) => l.includes('the template of a Job cannot change; deleting the old Job')));
  });

  test('a StatefulSet that fails is rolled back to the template that ran before', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'col-ksts-'));
    fs.writeFileSync(
      path.join(dir, 'db.yaml'),
      'apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: db}\nspec:\n  replicas: 2\n  serviceName: db\n  selector: {matchLabels: {app: db}}\n  template:\n    metadata: {labels: {app: db}}\n    spec:\n      containers: [{name: db, image: "registry.example.com/shop/web:1.0"}]\n',
    );
    const ns = 'sts';
    await kubernetesDeploy(options({ baseDir: dir, namespace: ns }), createTestContext());
    api.behave(/web@sha256:c{64}/, { kind: 'CrashLoopBackOff', logs: ['db: corrupt WAL'] });
    await assert.rejects(kubernetesDeploy(options({ baseDir: dir, namespace: ns, lock: lockWithWeb(D('c')), rolloutTimeoutSeconds: 2 }), createTestContext()), (err: Error) => {
      assert.match(err.message, /StatefulSet sts\/db: not rolled out within rolloutTimeoutSeconds/);
      assert.match(err.message, /db: corrupt WAL/);
      assert.match(err.message, /Rolled back StatefulSet sts\/db to generation 1; the previous revision is running again/);
      return true;
    });
    const db = api.get('apps/v1', 'StatefulSet', ns, 'db')!;
    assert.equal(db.spec.template.spec.containers[0].image, `registry.example.com/shop/web@${D('1')}`);
    assert.equal(db.status.readyReplicas, 2);
  });
});

describe('bad input and refusals', () => {
  test('a kind the cluster does not know fails from discovery before anything is applied', async () => {
    const dir = manifestDir(1, '---\napiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n');
    const before = api.requests.length;
    await assert.rejects(kubernetesDeploy(options({ baseDir: dir }), createTestContext()), /The cluster does not serve apiVersion 'example\.com\/v1' for kind 'Widget' \(manifest 'web\.yaml', document 3\)/);
    assert.ok(!api.requests.slice(before).some((r) => r.method === 'PATCH'), 'nothing was applied');
    const old = manifestDir(1).replace(/$/, '');
    fs.writeFileSync(path.join(old, 'web.yaml'), fs.readFileSync(path.join(old, 'web.yaml'), 'utf8').replace('apiVersion: apps/v1', 'apiVersion: extensions/v1beta1'));
    await assert.rejects(kubernetesDeploy(options({ baseDir: old }), createTestContext()), /Deployment moved to 'apps\/v1'; 'extensions\/v1beta1' was removed/);
    const typo = manifestDir(1, '---\napiVersion: apps/v1\nkind: Deploymnet\nmetadata: {name: x}\n');
    await assert.rejects(kubernetesDeploy(options({ baseDir: typo }), createTestContext()), /does not know kind 'Deploymnet' in apiVersion 'apps\/v1'/);
  });

  test('a missing namespace fails unless createNamespace', async () => {
    await assert.rejects(kubernetesDeploy(options({ namespace: 'nowhere', createNamespace: false }), createTestContext()), /Input 'namespace': namespace 'nowhere' does not exist in the cluster\. Create it, or set createNamespace: true/);
  });

  test('401: the credentials are refused, naming the connection input', async () => {
    await assert.rejects(kubernetesDeploy(options({ token: 'wrong-token' }), createTestContext()), /refused the credentials of Input 'kubernetesServiceConnection' \(401 Unauthorized\)/);
  });

  test('403: the message says which permission was missing', async () => {
    await assert.rejects(kubernetesDeploy(options({ token: 'other-token' }), createTestContext()), (err: Error) => {
      assert.match(err.message, /forbade server-side apply of Deployment ns\d+\/web \(403 Forbidden\)/);
      assert.match(err.message, /User "intern" cannot patch resource "deployments" in API group "apps" in the namespace "ns\d+"/);
      assert.match(err.message, /Grant this permission to the account of Input 'kubernetesServiceConnection'/);
      return true;
    });
  });

  test('an unreachable server fails quickly with what to check', async () => {
    const config = parseKubeconfig(kubeconfigFor(api, { token: TOKEN }).replace(api.url, 'https://127.0.0.1:9'), { source: "Input 'kubernetesServiceConnection'", setSecret: () => undefined });
    const started = Date.now();
    await assert.rejects(kubernetesDeploy(options({ kubeconfig: async () => config }), createTestContext()), /Cannot reach the Kubernetes API server at https:\/\/127\.0\.0\.1:9 .*ECONNREFUSED.*Check the server URL of Input 'kubernetesServiceConnection'/);
    assert.ok(Date.now() - started < 3000);
  });

  test('an untrusted server certificate is refused; the right CA is accepted', async () => {
    const text = kubeconfigFor(api, { token: TOKEN }).replace(/certificate-authority-data: .*/, '');
    const config = parseKubeconfig(text, { source: "Input 'kubernetesServiceConnection'", setSecret: () => undefined });
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
