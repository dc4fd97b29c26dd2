// The KubernetesDeploy scenarios both Kubernetes backends can run, run on both with the same
// assertions, so the test double (test/support/kube-api.ts) and the real control plane
// (test/support/kube-cluster.ts) must agree: server-side apply and conflicts, rollouts, rollback,
// digest verification, canary, pull secrets, Jobs and StatefulSets, refusals.
// Failing pods come from a label in the release's pod template (col.test/behaviour), which the
// double and the real control plane's kwok stages both read; `col.test/image-id` makes the pods
// report another image than the one they were given.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DeploymentFailedError, KubernetesDeployOptions, kubernetesDeploy } from '../../tasks/lib/kube';
import { ApplyConflictError } from '../../tasks/lib/kube/apply';
import type { ResolvedKubeconfig } from '../../tasks/lib/kube/kubeconfig';
import { createTestContext } from '../support/context';
import { KubeApiServer, kubeconfigFor, startKubeApi } from '../support/kube-api';
import { startKubeCluster } from '../support/kube-cluster';
import { D, KUBE_FIXTURES as FIXTURES, WEB, baseLock, deployOptions, lockWithWeb, resolveKubeconfig, testNamespace, webManifestDir } from '../support/kube-deploy';

type Obj = Record<string, any>;

/** What a scenario needs of a backend: a connection, reads, and another field manager's write. */
interface Backend {
  name: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  kubeconfig(token?: string): ResolvedKubeconfig;
  get(kind: Kind, ns: string, name: string): Obj | undefined;
  list(kind: Kind, ns: string): Obj[];
  /** `manager` sets the Deployment's replicas (a field our manager owns). */
  scaleAs(manager: string, ns: string, name: string, replicas: number): void;
}

const KINDS = {
  Deployment: ['apps/v1', 'deployments.apps'],
  ReplicaSet: ['apps/v1', 'replicasets.apps'],
  StatefulSet: ['apps/v1', 'statefulsets.apps'],
  Job: ['batch/v1', 'jobs.batch'],
  Pod: ['v1', 'pods'],
  Secret: ['v1', 'secrets'],
  Service: ['v1', 'services'],
} as const;
type Kind = keyof typeof KINDS;


function doubleBackend(): Backend {
  let api: KubeApiServer;
  const token = 'kube-token-0123456789abcdef';
  return {
    name: 'the test double',
    async start() {
      api = await startKubeApi({ tokens: { [token]: 'deployer' }, stepMs: 10, secondMs: 100 });
    },
    stop: async () => api?.stop(),
    kubeconfig: (t = token) => resolveKubeconfig(kubeconfigFor(api, { token: t })),
    get: (kind, ns, name) => api.get(KINDS[kind][0], kind, ns, name),
    list: (kind, ns) => api.list(KINDS[kind][0], kind, ns),
    scaleAs: (manager, ns, name, replicas) =>
      void api.update('apps/v1', 'Deployment', ns, name, manager, (o) => {
        o.spec.replicas = replicas;
      }),
  };
}

function clusterBackend(): Backend {
  let cluster: Awaited<ReturnType<typeof startKubeCluster>>;
  const getJson = (args: string[]) => {
    const r = cluster.kubectl(['get', '-o', 'json', '--show-managed-fields', ...args], { allowFailure: true });
    if (r.status !== 0 && /NotFound/.test(r.stderr)) return undefined;
    if (r.status !== 0) throw new Error(r.stderr);
    return JSON.parse(r.stdout);
  };
  return {
    name: 'the real control plane',
    async start() {
      cluster = await startKubeCluster();
    },
    stop: async () => undefined, // kept for the rest of the run (scripts/test.mjs stops it)
    kubeconfig: (t) => resolveKubeconfig(cluster.kubeconfig(t ? { token: t } : cluster.admin)),
    get: (kind, ns, name) => getJson([KINDS[kind][1], name, '-n', ns]),
    list: (kind, ns) => getJson([KINDS[kind][1], '-n', ns]).items,
    scaleAs: (manager, ns, name, replicas) =>
      void cluster.kubectl(['apply', '--server-side', `--field-manager=${manager}`, '--force-conflicts', '-n', ns, '-f', '-'], {
        input: JSON.stringify({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name }, spec: { replicas } }),
      }),
  };
}

for (const backend of [doubleBackend(), clusterBackend()]) {
  describe(`KubernetesDeploy scenarios on ${backend.name}`, () => {
    before(() => backend.start());
    after(() => backend.stop());
    const options = (overrides: Partial<KubernetesDeployOptions> & { token?: string } = {}): KubernetesDeployOptions => {
      const { token, ...rest } = overrides;
      return deployOptions(backend.kubeconfig(token), { namespace: testNamespace('ns'), ...rest });
    };
    const webPods = (ns: string) => backend.list('Pod', ns).filter((p) => p.metadata.labels?.app === 'web');
    const image = (o: Obj | undefined) => o?.spec.template.spec.containers[0].image;

    test('a field another manager owns is a conflict that names it; forceConflicts takes it over', async () => {
      const dir = webManifestDir();
      const ns = testNamespace('conflict');
      await kubernetesDeploy(options({ baseDir: dir, namespace: ns }), createTestContext());
      backend.scaleAs('ops-team', ns, 'web', 5);
      await assert.rejects(kubernetesDeploy(options({ baseDir: dir, namespace: ns }), createTestContext()), (err: Error) => {
        assert.ok(err instanceof ApplyConflictError, err.message);
        assert.deepEqual(err.managers, ['ops-team']);
        assert.deepEqual(err.fields, ['.spec.replicas']);
        assert.match(err.message, /conflicts with field manager 'ops-team'/);
        assert.match(err.message, /\.spec\.replicas: conflict with "ops-team"/);
        assert.match(err.message, /forceConflicts: true/);
        return true;
      });
      assert.equal(backend.get('Deployment', ns, 'web')!.spec.replicas, 5, 'the refused apply changed nothing');
      await kubernetesDeploy(options({ baseDir: dir, namespace: ns, forceConflicts: true }), createTestContext());
      const web = backend.get('Deployment', ns, 'web')!;
      assert.equal(web.spec.replicas, 2);
      const ops = web.metadata.managedFields.find((m: Obj) => m.manager === 'ops-team');
      assert.ok(!ops?.fieldsV1?.['f:spec']?.['f:replicas'], 'ops-team no longer owns .spec.replicas');
    });

    test('a re-apply with nothing changed bumps no generation', async () => {
      const dir = webManifestDir();
      const ns = testNamespace('same');
      await kubernetesDeploy(options({ baseDir: dir, namespace: ns }), createTestContext());
      const before = backend.get('Deployment', ns, 'web')!;
      await kubernetesDeploy(options({ baseDir: dir, namespace: ns }), createTestContext());
      const after = backend.get('Deployment', ns, 'web')!;
      assert.equal(after.metadata.generation, before.metadata.generation);
      assert.equal(backend.list('ReplicaSet', ns).length, 1);
    });

    test('the promotion diff reads what the namespace runs: added, then unchanged (skipped with deployIfUnchanged false), then changed; diffOnly applies nothing', async () => {
      const dir = webManifestDir();
      const ns = testNamespace('diff');
      const changed = (ctx: { outputs: Record<string, string> }) => JSON.parse(ctx.outputs.changedServices) as string[];
      const first = createTestContext();
      await kubernetesDeploy(options({ baseDir: dir, namespace: ns }), first);
      assert.deepEqual(changed(first), ['web'], 'a first release adds web');
      const deployed = backend.get('Deployment', ns, 'web')!;
      const same = createTestContext();
      await kubernetesDeploy(options({ baseDir: dir, namespace: ns, deployIfUnchanged: false }), same);
      assert.deepEqual(changed(same), [], 'the same release changes nothing');
      assert.ok(same.logs.some((l) => /changes nothing/.test(l)), same.logs.join('\n'));
      const only = createTestContext();
      await kubernetesDeploy(options({ baseDir: dir, namespace: ns, lock: lockWithWeb(D('8')), diffOnly: true }), only);
      assert.deepEqual(changed(only), ['web'], 'another digest of web changes it');
      const after = backend.get('Deployment', ns, 'web')!;
      assert.equal(after.metadata.generation, deployed.metadata.generation, 'diffOnly applied nothing');
      assert.equal(image(after), image(deployed));
    });

    test('every applied object carries the trace annotations on its own metadata, not on the pod template; they change only with the object', async () => {
      const dir = webManifestDir();
      const ns = testNamespace('trace');
      const run = (buildId: string) => createTestContext({ 'System.CollectionUri': 'https://dev.azure.com/contoso/', 'System.TeamProject': 'Shop App', 'Build.BuildId': buildId });
      const trace = (buildId: string, lock = baseLock) => ({
        'container-outer-loop/run-url': `https://dev.azure.com/contoso/Shop%20App/_build/results?buildId=${buildId}`,
        'container-outer-loop/build-number': lock.buildNumber,
        'container-outer-loop/lock-digest': `sha256:lock-of-${buildId}`,
      });
      const ours = (o: Obj | undefined) => Object.fromEntries(Object.entries(o?.metadata.annotations ?? {}).filter(([k]) => k.startsWith('container-outer-loop/') && k !== 'container-outer-loop/content-digest'));
      await kubernetesDeploy(options({ baseDir: dir, namespace: ns, lockDigest: 'sha256:lock-of-901' }), run('901'));
      const first = backend.get('Deployment', ns, 'web')!;
      assert.deepEqual(ours(first), trace('901'));
      assert.deepEqual(ours(backend.get('Service', ns, 'web')), trace('901'));
      assert.deepEqual(ours(first.spec.template), {}, 'not on the pod template: it would roll the pods out on every run');
      const pods = webPods(ns).map((p) => p.metadata.name).sort();
      for (const p of webPods(ns)) assert.deepEqual(ours(p), {});

      // The next run deploys the same release: nothing changes, not even the generation.
      await kubernetesDeploy(options({ baseDir: dir, namespace: ns, lockDigest: 'sha256:lock-of-902' }), run('902'));
      const same = backend.get('Deployment', ns, 'web')!;
      assert.deepEqual(ours(same), trace('901'), 'the annotations name the deploy that last changed it');
      assert.equal(same.metadata.generation, first.metadata.generation);
      assert.deepEqual(webPods(ns).map((p) => p.metadata.name).sort(), pods, 'no pod was replaced');

      // A release that changes the Deployment: its annotations are this run's; the unchanged Service keeps its own.
      const lock = lockWithWeb(D('7'));
      await kubernetesDeploy(options({ baseDir: dir, namespace: ns, lock, lockDigest: 'sha256:lock-of-903' }), run('903'));
      const changed = backend.get('Deployment', ns, 'web')!;
      assert.deepEqual(ours(changed), trace('903', lock));
      assert.deepEqual(ours(backend.get('Service', ns, 'web')), trace('901'));
      assert.equal(image(changed), `${WEB}@${D('7')}`);
    });

    test("a release whose pods never become Ready fails at the progress deadline, with the pods' reasons; the old pods keep serving", async () => {
      const ns = testNamespace('stuck');
      await kubernetesDeploy(options({ baseDir: webManifestDir({ progressDeadlineSeconds: 4 }), namespace: ns }), createTestContext());
      const broken = webManifestDir({ progressDeadlineSeconds: 4, podLabels: { 'col.test/behaviour': 'never-ready' } });
      await assert.rejects(kubernetesDeploy(options({ baseDir: broken, namespace: ns, lock: lockWithWeb(D('a')), rollbackOnFailure: false }), createTestContext()), (err: Error) => {
        assert.ok(err instanceof DeploymentFailedError, err.message);
        assert.match(err.message, /deployment "web" exceeded its progress deadline/);
        assert.match(err.message, /pod web-[\w-]+, container web: NotReady — running, never Ready \(ContainersNotReady/);
        assert.match(err.message, /rollbackOnFailure is false/);
        assert.equal(err.result.rolledBack, false);
        return true;
      });
      const web = backend.get('Deployment', ns, 'web')!;
      assert.ok(web.status.conditions.some((c: Obj) => c.type === 'Progressing' && c.reason === 'ProgressDeadlineExceeded'));
      assert.ok(webPods(ns).some((p) => p.spec.containers[0].image.endsWith(D('1')) && p.status.phase === 'Running'), 'the previous ReplicaSet still serves');
    });

    test('a pull that never succeeds is named with the image', async () => {
      const ns = testNamespace('pull-fails');
      const broken = webManifestDir({ replicas: 1, progressDeadlineSeconds: 4, podLabels: { 'col.test/behaviour': 'image-pull-backoff' } });
      await assert.rejects(kubernetesDeploy(options({ baseDir: broken, namespace: ns, rollbackOnFailure: false }), createTestContext()), (err: Error) => {
        assert.match(err.message, new RegExp(`ImagePullBackOff — Back-off pulling image "${WEB.replace(/\./g, '\\.')}@sha256:1{64}"`));
        return true;
      });
    });

    test('rolloutTimeoutSeconds bounds a rollout the controller would wait on for ten minutes', async () => {
      const broken = webManifestDir({ replicas: 1, podLabels: { 'col.test/behaviour': 'never-ready' } });
      await assert.rejects(kubernetesDeploy(options({ baseDir: broken, rolloutTimeoutSeconds: 2, rollbackOnFailure: false }), createTestContext()), (err: Error) => {
        assert.match(err.message, /not rolled out within rolloutTimeoutSeconds \(2 s\)/);
        assert.match(err.message, /0 of 1 updated replicas are available/);
        assert.match(err.message, /container web: NotReady — running, never Ready/);
        return true;
      });
    });

    test('a crashing release is rolled back to the previous ReplicaSet revision; the task still fails; the next release deploys', async () => {
      const ns = testNamespace('rollback');
      await kubernetesDeploy(options({ namespace: ns }), createTestContext());
      const crashing = webManifestDir({ progressDeadlineSeconds: 4, podLabels: { 'col.test/behaviour': 'crash-loop' } });
      await assert.rejects(kubernetesDeploy(options({ baseDir: crashing, namespace: ns, lock: lockWithWeb(D('c')) }), createTestContext()), (err: Error) => {
        assert.ok(err instanceof DeploymentFailedError, err.message);
        assert.match(err.message, /CrashLoopBackOff — back-off 10s restarting failed container=web/);
        assert.match(err.message, /last exit code 1 \(Error\)/);
        assert.match(err.message, /Rolled back Deployment .*\/web to revision 1; the previous revision is running again/);
        assert.equal(err.result.rolledBack, true);
        return true;
      });
      const web = backend.get('Deployment', ns, 'web')!;
      assert.equal(image(web), `${WEB}@${D('1')}`);
      assert.equal(web.spec.template.metadata.labels['col.test/behaviour'], undefined, 'the old template runs again');
      assert.equal(web.metadata.annotations['deployment.kubernetes.io/revision'], '3', 'the old ReplicaSet became revision 3, as kubectl rollout undo makes it');
      assert.equal(backend.list('ReplicaSet', ns).length, 2, 'the previous ReplicaSet was reused, not copied');
      assert.deepEqual(
        web.metadata.managedFields.filter((m: Obj) => m.operation === 'Apply').map((m: Obj) => m.manager),
        ['container-outer-loop'],
        'the rollback is applied as the same field manager, so the next deployment does not conflict',
      );
      const next = await kubernetesDeploy(options({ namespace: ns, lock: lockWithWeb(D('d')) }), createTestContext());
      assert.equal(next.rolledBack, false);
      assert.equal(image(backend.get('Deployment', ns, 'web')), `${WEB}@${D('d')}`);
    });

    test('running pods whose imageID carries another digest fail verification and are rolled back', async () => {
      const ns = testNamespace('verify');
      await kubernetesDeploy(options({ baseDir: webManifestDir({ replicas: 1 }), namespace: ns }), createTestContext());
      const swapped = webManifestDir({ replicas: 1, podAnnotations: { 'col.test/image-id': `${WEB}@${D('0')}` } });
      await assert.rejects(kubernetesDeploy(options({ baseDir: swapped, namespace: ns, lock: lockWithWeb(D('f')) }), createTestContext()), (err: Error) => {
        assert.match(err.message, /Running pods do not carry the pinned digests/);
        assert.match(err.message, new RegExp(`runs registry\\.example\\.com/shop/web@${D('0')}, expected ${D('f')}`));
        assert.match(err.message, /Rolled back Deployment .*\/web to revision 1/);
        return true;
      });
      assert.equal(image(backend.get('Deployment', ns, 'web')), `${WEB}@${D('1')}`);
    });

    test('canary: deploy runs -canary and -baseline beside stable; promote; reject; a failing canary is removed', async () => {
      const dir = webManifestDir({ replicas: 4 });
      const ns = testNamespace('canary');
      await kubernetesDeploy(options({ baseDir: dir, namespace: ns }), createTestContext());
      const stableGeneration = backend.get('Deployment', ns, 'web')!.metadata.generation;
      const canary = (action: 'deploy' | 'promote' | 'reject', digest: string, baseDir = dir) =>
        kubernetesDeploy(options({ baseDir, namespace: ns, strategy: 'canary', action, canaryPercentage: 25, lock: lockWithWeb(digest) }), createTestContext());
      const names = () => backend.list('Deployment', ns).map((d) => d.metadata.name).sort();

      const deployed = await canary('deploy', D('7'));
      assert.deepEqual(deployed.applied.sort(), [`Deployment ${ns}/web-baseline`, `Deployment ${ns}/web-canary`, `Service ${ns}/web`]);
      assert.deepEqual(names(), ['web', 'web-baseline', 'web-canary']);
      assert.equal(image(backend.get('Deployment', ns, 'web-canary')), `${WEB}@${D('7')}`);
      assert.equal(image(backend.get('Deployment', ns, 'web-baseline')), `${WEB}@${D('1')}`);
      assert.equal(backend.get('Deployment', ns, 'web-canary')!.spec.replicas, 1);
      assert.equal(backend.get('Deployment', ns, 'web-canary')!.spec.template.metadata.labels['container-outer-loop/variant'], 'canary');
      assert.equal(backend.get('Deployment', ns, 'web')!.metadata.generation, stableGeneration, 'stable is untouched');
      assert.equal(webPods(ns).filter((p) => p.status.phase === 'Running').length, 6, 'the Service selects stable, baseline and canary pods');

      await canary('promote', D('7'));
      assert.deepEqual(names(), ['web']);
      assert.equal(image(backend.get('Deployment', ns, 'web')), `${WEB}@${D('7')}`);

      await canary('deploy', D('8'));
      assert.deepEqual(names(), ['web', 'web-baseline', 'web-canary']);
      await canary('reject', D('8'));
      assert.deepEqual(names(), ['web']);
      assert.equal(image(backend.get('Deployment', ns, 'web')), `${WEB}@${D('7')}`, 'reject leaves stable alone');

      const crashing = webManifestDir({ replicas: 4, progressDeadlineSeconds: 4, podLabels: { 'col.test/behaviour': 'crash-loop' } });
      await assert.rejects(canary('deploy', D('9'), crashing), (err: Error) => {
        assert.match(err.message, /The canary was removed/);
        assert.equal((err as DeploymentFailedError).result.rolledBack, true);
        return true;
      });
      assert.deepEqual(names(), ['web']);
    });

    test('createPullSecretFrom: a dockerconfigjson Secret through the API, added to every pod', async () => {
      const ns = testNamespace('pull');
      const ctx = createTestContext();
      await kubernetesDeploy(
        options({
          namespace: ns,
          imagePullSecrets: ['existing-secret'],
          pullSecret: { name: 'shop-registry', registry: 'registry.example.com', server: 'registry.example.com', input: 'createPullSecretFrom', getCredential: async () => ({ username: 'puller', password: 'pull-pa55word-xyz' }) },
        }),
        ctx,
      );
      const secret = backend.get('Secret', ns, 'shop-registry')!;
      assert.equal(secret.type, 'kubernetes.io/dockerconfigjson');
      const config = JSON.parse(Buffer.from(secret.data['.dockerconfigjson'], 'base64').toString('utf8'));
      assert.deepEqual(config.auths['registry.example.com'], { username: 'puller', password: 'pull-pa55word-xyz', auth: Buffer.from('puller:pull-pa55word-xyz').toString('base64') });
      assert.ok(ctx.secrets.has('pull-pa55word-xyz') && ctx.secrets.has(secret.data['.dockerconfigjson']), 'the password and every encoding of it are masked');
      assert.deepEqual(backend.get('Deployment', ns, 'web')!.spec.template.spec.imagePullSecrets, [{ name: 'existing-secret' }, { name: 'shop-registry' }]);
      for (const pod of webPods(ns)) assert.deepEqual(pod.spec.imagePullSecrets, [{ name: 'existing-secret' }, { name: 'shop-registry' }]);
    });

    test('a Job whose template changes is replaced (its template is immutable) and run to completion', async () => {
      const ns = testNamespace('jobs');
      const out = fs.mkdtempSync(path.join(os.tmpdir(), 'col-kjob-'));
      const compose = { source: 'compose' as const, composeFiles: [path.join(FIXTURES, 'compose', 'docker-compose.yml')], env: {}, namespace: ns, baseDir: path.join(FIXTURES, 'compose'), renderedManifests: path.join(out, 'rendered.yaml') };
      await kubernetesDeploy(options(compose), createTestContext());
      const first = backend.get('Job', ns, 'migrate')!;
      const lock = structuredClone(baseLock);
      const apiImage = lock.images.find((i) => i.name === 'api')!;
      apiImage.digest = `sha256:${'0123'.repeat(16)}`;
      apiImage.ref = `${apiImage.repository}@${apiImage.digest}`;
      const ctx = createTestContext();
      await kubernetesDeploy(options({ ...compose, lock }), ctx);
      const second = backend.get('Job', ns, 'migrate')!;
      assert.notEqual(second.metadata.uid, first.metadata.uid);
      assert.equal(second.spec.template.spec.containers[0].image, `registry.example.com/shop/api@sha256:${'0123'.repeat(16)}`);
      assert.ok(second.status.conditions.some((c: Obj) => c.type === 'Complete' && c.status === 'True'));
      assert.ok(ctx.logs.some((l) => l.includes('the template of a Job cannot change; deleting the old Job')));
    });

    test('a StatefulSet that fails is rolled back to the template that ran before', async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'col-ksts-'));
      const statefulSet = (labels: Record<string, string>) =>
        `apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: db}\nspec:\n  replicas: 2\n  serviceName: db\n  selector: {matchLabels: {app: db}}\n  template:\n    metadata: {labels: ${JSON.stringify({ app: 'db', ...labels })}}\n    spec:\n      containers: [{name: db, image: "${WEB}:1.0"}]\n`;
      fs.writeFileSync(path.join(dir, 'db.yaml'), statefulSet({}));
      const ns = testNamespace('sts');
      await kubernetesDeploy(options({ baseDir: dir, namespace: ns }), createTestContext());
      fs.writeFileSync(path.join(dir, 'db.yaml'), statefulSet({ 'col.test/behaviour': 'crash-loop' }));
      await assert.rejects(kubernetesDeploy(options({ baseDir: dir, namespace: ns, lock: lockWithWeb(D('c')), rolloutTimeoutSeconds: 4 }), createTestContext()), (err: Error) => {
        assert.match(err.message, /StatefulSet .*\/db: not rolled out within rolloutTimeoutSeconds/);
        assert.match(err.message, /CrashLoopBackOff/);
        assert.match(err.message, /Rolled back StatefulSet .*\/db to generation 1; the previous revision is running again/);
        return true;
      });
      const db = backend.get('StatefulSet', ns, 'db')!;
      assert.equal(db.spec.template.spec.containers[0].image, `${WEB}@${D('1')}`);
      assert.equal(db.status.readyReplicas, 2);
    });

    test('a kind the cluster does not know fails from discovery before anything is applied', async () => {
      const ns = testNamespace('unknown');
      const dir = webManifestDir({ replicas: 1, extra: '---\napiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n' });
      await assert.rejects(kubernetesDeploy(options({ baseDir: dir, namespace: ns }), createTestContext()), /The cluster does not serve apiVersion 'example\.com\/v1' for kind 'Widget' \(manifest 'web\.yaml', document 3\)/);
      assert.equal(backend.get('Deployment', ns, 'web'), undefined, 'nothing was applied');
      const removed = webManifestDir({ replicas: 1 });
      fs.writeFileSync(path.join(removed, 'web.yaml'), fs.readFileSync(path.join(removed, 'web.yaml'), 'utf8').replace('apiVersion: apps/v1', 'apiVersion: extensions/v1beta1'));
      await assert.rejects(kubernetesDeploy(options({ baseDir: removed, namespace: ns }), createTestContext()), /Deployment moved to 'apps\/v1'; 'extensions\/v1beta1' was removed/);
      const typo = webManifestDir({ replicas: 1, extra: '---\napiVersion: apps/v1\nkind: Deploymnet\nmetadata: {name: x}\n' });
      await assert.rejects(kubernetesDeploy(options({ baseDir: typo, namespace: ns }), createTestContext()), /does not know kind 'Deploymnet' in apiVersion 'apps\/v1'/);
    });

    test('a missing namespace fails unless createNamespace; wrong credentials are a 401 naming the input', async () => {
      await assert.rejects(kubernetesDeploy(options({ namespace: 'nowhere', createNamespace: false }), createTestContext()), /Input 'namespace': namespace 'nowhere' does not exist in the cluster\. Create it, or set createNamespace: true/);
      await assert.rejects(kubernetesDeploy(options({ token: 'wrong-token' }), createTestContext()), /refused the credentials of Input 'kubernetesServiceConnection' \(401 Unauthorized\)/);
    });
  });
}
