// KubernetesDeploy against a real control plane (test/support/kube-cluster.ts): etcd,
// kube-apiserver, kube-controller-manager and kube-scheduler built from k8s.io/kubernetes, with
// kwok playing the kubelet on three nodes. kubectl is the oracle: it reads back what the task did,
// makes the conflicts, and dry-runs what the task rendered. The test double
// (test/support/kube-api.ts, kube-deploy.test.ts) stays for the faults a real server does not make
// on demand: 429, 5xx, watches dropped mid-rollout.
//
// Pods are sent down failure paths by a label in their template (col.test/behaviour, see
// test/support/kwok-stages.yaml): a new release that carries it never becomes Ready, or crashes.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { before, describe, test } from 'node:test';
import { DeploymentFailedError, KubernetesDeployOptions, kubernetesDeploy } from '../../tasks/lib/kube';
import { ApplyConflictError } from '../../tasks/lib/kube/apply';
import { parseKubeconfig } from '../../tasks/lib/kube/kubeconfig';
import { readLock } from '../../tasks/lib/lock/file';
import type { ImageLock } from '../../tasks/lib/lock/types';
import { runBundledTask } from '../support/agent';
import { createTestContext } from '../support/context';
import { DEPLOYER_NAMESPACE, KubeCluster, startKubeCluster } from '../support/kube-cluster';

const FIXTURES = path.join(__dirname, '..', 'fixtures', 'kube');
const baseLock = readLock(path.join(FIXTURES, 'lock.json'));
const D = (n: string) => `sha256:${n.repeat(64)}`;
const WEB = 'registry.example.com/shop/web';

let cluster: KubeCluster;
before(async () => {
  cluster = await startKubeCluster();
});

let counter = 0;
/** A namespace of its own for each test (the cluster outlives a single run of this file). */
const namespace = (name: string) => `${name}-${process.pid.toString(36)}-${++counter}`;

function lockWithWeb(digest: string): ImageLock {
  const lock = structuredClone(baseLock);
  const web = lock.images.find((i) => i.name === 'web')!;
  web.digest = digest;
  web.ref = `${web.repository}@${digest}`;
  return lock;
}

/** The storefront Deployment and its Service; `podLabels`/`podAnnotations` go on the pod template. */
function manifestDir(o: { replicas?: number; progressDeadlineSeconds?: number; podLabels?: Record<string, string>; podAnnotations?: Record<string, string>; extra?: string } = {}): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'col-kcluster-'));
  const labels = JSON.stringify({ app: 'web', ...o.podLabels });
  fs.writeFileSync(
    path.join(dir, 'web.yaml'),
    `# the storefront
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: ${o.replicas ?? 2}
  progressDeadlineSeconds: ${o.progressDeadlineSeconds ?? 600}
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: ${labels}
      annotations: ${JSON.stringify(o.podAnnotations ?? {})}
    spec:
      containers:
        - name: web
          image: ${WEB}:1.0
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
${o.extra ?? ''}`,
  );
  return dir;
}

type Credentials = { token: string } | { cert: string; key: string } | { exec: Record<string, unknown> };

function options(overrides: Partial<KubernetesDeployOptions> & { credentials?: Credentials } = {}): KubernetesDeployOptions {
  const { credentials, ...rest } = overrides;
  const config = parseKubeconfig(cluster.kubeconfig(credentials ?? cluster.admin), { source: "Input 'kubernetesServiceConnection'", setSecret: () => undefined });
  const dir = rest.baseDir ?? manifestDir();
  return {
    kubeconfig: async () => config,
    namespace: namespace('ns'),
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
    rolloutTimeoutSeconds: 60,
    rollbackOnFailure: true,
    fieldManager: 'container-outer-loop',
    forceConflicts: false,
    renderedManifests: path.join(dir, 'out', 'rendered.yaml'),
    publishArtifact: true,
    artifactName: 'kubernetes-manifests',
    logTailLines: 5,
    ...rest,
  };
}

const get = (kind: string, ns: string, name?: string) => cluster.get([kind, ...(name ? [name] : []), '-n', ns]);
const generations = (ns: string) =>
  Object.fromEntries((get('deployments,statefulsets,daemonsets,services', ns).items as any[]).map((o) => [`${o.kind}/${o.metadata.name}`, o.metadata.generation ?? o.metadata.resourceVersion]));

describe('KubernetesDeploy on a real control plane', () => {
  test('the example app: compose → converted → pinned → applied → rolled out → verified; kubectl agrees', async () => {
    const ns = namespace('shop');
    const ctx = createTestContext();
    const compose = { source: 'compose' as const, composeFiles: [path.join(FIXTURES, 'compose', 'docker-compose.yml')], env: {}, namespace: ns, baseDir: path.join(FIXTURES, 'compose'), renderedManifests: path.join(ctx.tempDir, 'rendered.yaml') };
    const result = await kubernetesDeploy(options(compose), ctx);
    assert.equal(result.rolledBack, false);

    const web = get('deployment', ns, 'web');
    assert.equal(web.spec.template.spec.containers[0].image, `${WEB}@${D('1')}`);
    assert.equal(web.status.observedGeneration, web.metadata.generation);
    assert.equal(web.status.updatedReplicas, web.spec.replicas);
    assert.equal(web.status.availableReplicas, web.spec.replicas);
    const db = get('statefulset', ns, 'db');
    assert.equal(db.spec.template.spec.containers[0].image, `docker.io/library/postgres@${D('5')}`);
    assert.equal(db.status.readyReplicas, db.spec.replicas);
    assert.equal(get('daemonset', ns, 'agent').status.numberAvailable, 3, 'one pod on each of the three nodes');
    assert.ok(get('job', ns, 'migrate').status.conditions.some((c: any) => c.type === 'Complete' && c.status === 'True'));
    // The running pods' imageIDs (as the kubelet reports them) were checked against the lock.
    const pods = get('pods', ns).items as any[];
    const running = pods.filter((p) => p.status.phase === 'Running');
    assert.ok(running.length >= 5, `${running.length} pods running`);
    for (const pod of running) for (const s of pod.status.containerStatuses) assert.match(s.imageID, /@sha256:[0-9a-f]{64}$/);
    assert.ok(result.imageChecks.length >= running.length && result.imageChecks.every((c) => c.ok === true));
    // Server-side apply as our field manager: it owns the image; the controllers own only status.
    const spec = web.metadata.managedFields.find((m: any) => m.manager === 'container-outer-loop' && m.operation === 'Apply');
    assert.ok(spec.fieldsV1['f:spec']['f:template']['f:spec']['f:containers']['k:{"name":"web"}']['f:image']);
    assert.ok(web.metadata.managedFields.every((m: any) => m.manager === 'container-outer-loop' || m.subresource === 'status'));
    // The API server accepts the rendered set as it stands.
    const dryRun = cluster.kubectl(['apply', '--server-side', '--dry-run=server', '--field-manager=container-outer-loop', '-n', ns, '-f', result.renderedManifests], { allowFailure: true });
    assert.equal(dryRun.status, 0, dryRun.stderr);
    // Applying the same release again changes nothing: no generation moves.
    const before = generations(ns);
    const again = await kubernetesDeploy(options(compose), createTestContext());
    assert.equal(again.rolledBack, false);
    assert.deepEqual(generations(ns), before);
  });

  test('a field another manager owns is a conflict that names it; forceConflicts takes it over', async () => {
    const dir = manifestDir({ replicas: 2 });
    const ns = namespace('conflict');
    await kubernetesDeploy(options({ baseDir: dir, namespace: ns }), createTestContext());
    cluster.kubectl(['apply', '--server-side', '--field-manager=ops-team', '--force-conflicts', '-n', ns, '-f', '-'], {
      input: JSON.stringify({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web' }, spec: { replicas: 5 } }),
    });
    await assert.rejects(kubernetesDeploy(options({ baseDir: dir, namespace: ns }), createTestContext()), (err: Error) => {
      assert.ok(err instanceof ApplyConflictError, err.message);
      assert.deepEqual(err.managers, ['ops-team']);
      assert.deepEqual(err.fields, ['.spec.replicas']);
      assert.match(err.message, /conflicts with field manager 'ops-team'/);
      assert.match(err.message, /forceConflicts: true/);
      return true;
    });
    assert.equal(get('deployment', ns, 'web').spec.replicas, 5, 'the refused apply changed nothing');
    await kubernetesDeploy(options({ baseDir: dir, namespace: ns, forceConflicts: true }), createTestContext());
    const web = get('deployment', ns, 'web');
    assert.equal(web.spec.replicas, 2);
    const ops = web.metadata.managedFields.find((m: any) => m.manager === 'ops-team');
    assert.ok(!ops?.fieldsV1?.['f:spec']?.['f:replicas'], 'ops-team no longer owns .spec.replicas');
  });

  test('a CRD installed by the test: its custom resource is applied; an unknown kind is refused before anything is applied', async () => {
    const group = `widgets${process.pid}.example.com`;
    cluster.kubectl(['apply', '-f', '-'], {
      input: JSON.stringify({
        apiVersion: 'apiextensions.k8s.io/v1',
        kind: 'CustomResourceDefinition',
        metadata: { name: `widgets.${group}` },
        spec: {
          group,
          scope: 'Namespaced',
          names: { plural: 'widgets', singular: 'widget', kind: 'Widget' },
          versions: [{ name: 'v1', served: true, storage: true, schema: { openAPIV3Schema: { type: 'object', properties: { spec: { type: 'object', properties: { size: { type: 'integer' } } } } } } }],
        },
      }),
    });
    cluster.kubectl(['wait', '--for=condition=Established', '--timeout=30s', `crd/widgets.${group}`]);
    const ns = namespace('crd');
    const widget = `---\napiVersion: ${group}/v1\nkind: Widget\nmetadata: {name: w}\nspec: {size: 3}\n`;
    await kubernetesDeploy(options({ baseDir: manifestDir({ extra: widget }), namespace: ns }), createTestContext());
    const w = cluster.get(['widgets.' + group, 'w', '-n', ns]);
    assert.equal(w.spec.size, 3);
    assert.ok(w.metadata.managedFields.some((m: any) => m.manager === 'container-outer-loop'));

    const other = namespace('unknown');
    const gadget = `---\napiVersion: ${group}/v1\nkind: Gadget\nmetadata: {name: g}\n`;
    await assert.rejects(kubernetesDeploy(options({ baseDir: manifestDir({ extra: gadget }), namespace: other }), createTestContext()), /does not know kind 'Gadget'/);
    const gone = cluster.kubectl(['get', 'deployment', 'web', '-n', other], { allowFailure: true });
    assert.notEqual(gone.status, 0, 'nothing was applied');
  });

  test('createNamespace and the pull secret go through the API; every pod gets the secret', async () => {
    const ns = namespace('pull');
    const ctx = createTestContext();
    await kubernetesDeploy(
      options({
        namespace: ns,
        pullSecret: { name: 'shop-registry', registry: 'registry.example.com', server: 'registry.example.com', input: 'createPullSecretFrom', getCredential: async () => ({ username: 'puller', password: 'pull-pa55word-xyz' }) },
      }),
      ctx,
    );
    assert.equal(cluster.get(['namespace', ns]).status.phase, 'Active');
    const secret = get('secret', ns, 'shop-registry');
    assert.equal(secret.type, 'kubernetes.io/dockerconfigjson');
    const config = JSON.parse(Buffer.from(secret.data['.dockerconfigjson'], 'base64').toString('utf8'));
    assert.equal(config.auths['registry.example.com'].password, 'pull-pa55word-xyz');
    for (const pod of get('pods', ns).items as any[]) assert.deepEqual(pod.spec.imagePullSecrets, [{ name: 'shop-registry' }]);
  });
});

describe('rollouts and rollback with the real controllers', () => {
  test('a release whose pods never become Ready fails at the progress deadline, with the pods\' reasons; the old pods keep serving', async () => {
    const ns = namespace('stuck');
    await kubernetesDeploy(options({ baseDir: manifestDir({ progressDeadlineSeconds: 4 }), namespace: ns }), createTestContext());
    const broken = manifestDir({ progressDeadlineSeconds: 4, podLabels: { 'col.test/behaviour': 'never-ready' } });
    await assert.rejects(kubernetesDeploy(options({ baseDir: broken, namespace: ns, lock: lockWithWeb(D('a')), rollbackOnFailure: false }), createTestContext()), (err: Error) => {
      assert.ok(err instanceof DeploymentFailedError, err.message);
      assert.match(err.message, /deployment "web" exceeded its progress deadline/);
      assert.match(err.message, /pod web-[\w-]+, container web: NotReady — running, never Ready \(ContainersNotReady: containers with unready status: \[web/);
      assert.match(err.message, /rollbackOnFailure is false/);
      return true;
    });
    const web = get('deployment', ns, 'web');
    assert.ok(web.status.conditions.some((c: any) => c.type === 'Progressing' && c.reason === 'ProgressDeadlineExceeded'), 'the controller says so too');
    const oldPods = (get('pods', ns).items as any[]).filter((p) => p.spec.containers[0].image.endsWith(D('1')) && p.status.phase === 'Running');
    assert.ok(oldPods.length >= 1, 'the previous ReplicaSet still serves');
  });

  test('rolloutTimeoutSeconds bounds a rollout the controller would wait on for ten minutes', async () => {
    const ns = namespace('timeout');
    const broken = manifestDir({ replicas: 1, progressDeadlineSeconds: 600, podLabels: { 'col.test/behaviour': 'never-ready' } });
    const started = Date.now();
    await assert.rejects(kubernetesDeploy(options({ baseDir: broken, namespace: ns, rolloutTimeoutSeconds: 3, rollbackOnFailure: false }), createTestContext()), (err: Error) => {
      assert.match(err.message, /not rolled out within rolloutTimeoutSeconds \(3 s\)/);
      assert.match(err.message, /0 of 1 updated replicas are available/);
      assert.match(err.message, /container web: NotReady — running, never Ready/);
      return true;
    });
    assert.ok(Date.now() - started < 30_000);
  });

  test('a crashing release is rolled back to the previous ReplicaSet revision; the task still fails', async () => {
    const ns = namespace('rollback');
    await kubernetesDeploy(options({ namespace: ns }), createTestContext());
    const crashing = manifestDir({ progressDeadlineSeconds: 5, podLabels: { 'col.test/behaviour': 'crash-loop' } });
    await assert.rejects(kubernetesDeploy(options({ baseDir: crashing, namespace: ns, lock: lockWithWeb(D('c')), rolloutTimeoutSeconds: 20 }), createTestContext()), (err: Error) => {
      assert.ok(err instanceof DeploymentFailedError, err.message);
      assert.match(err.message, /CrashLoopBackOff/);
      assert.match(err.message, /Rolled back Deployment .*\/web to revision 1/);
      assert.equal(err.result.rolledBack, true);
      return true;
    });
    const web = get('deployment', ns, 'web');
    assert.equal(web.spec.template.spec.containers[0].image, `${WEB}@${D('1')}`);
    assert.equal(web.spec.template.metadata.labels['col.test/behaviour'], undefined, 'the old template runs again');
    assert.equal(web.metadata.annotations['deployment.kubernetes.io/revision'], '3', 'the controller made the old ReplicaSet revision 3, as kubectl rollout undo does');
    assert.equal(get('replicasets', ns).items.length, 2, 'the previous ReplicaSet was reused');
    const history = cluster.kubectl(['rollout', 'history', 'deployment/web', '-n', ns]).stdout;
    assert.match(history, /^2\s/m);
    assert.match(history, /^3\s/m);
  });

  test('running pods whose imageID carries another digest fail verification and are rolled back', async () => {
    const ns = namespace('verify');
    await kubernetesDeploy(options({ baseDir: manifestDir({ replicas: 1 }), namespace: ns }), createTestContext());
    const swapped = manifestDir({ replicas: 1, podAnnotations: { 'col.test/image-id': `${WEB}@${D('0')}` } });
    await assert.rejects(kubernetesDeploy(options({ baseDir: swapped, namespace: ns, lock: lockWithWeb(D('f')) }), createTestContext()), (err: Error) => {
      assert.match(err.message, /Running pods do not carry the pinned digests/);
      assert.match(err.message, new RegExp(`runs registry\\.example\\.com/shop/web@${D('0')}, expected ${D('f')}`));
      assert.match(err.message, /Rolled back Deployment .*\/web to revision 1/);
      return true;
    });
  });

  test('canary: deploy, promote and reject, each checked with kubectl', async () => {
    const dir = manifestDir({ replicas: 4 });
    const ns = namespace('canary');
    await kubernetesDeploy(options({ baseDir: dir, namespace: ns }), createTestContext());
    const stableGeneration = get('deployment', ns, 'web').metadata.generation;
    const canary = (action: 'deploy' | 'promote' | 'reject', digest: string) =>
      kubernetesDeploy(options({ baseDir: dir, namespace: ns, strategy: 'canary', action, canaryPercentage: 25, lock: lockWithWeb(digest) }), createTestContext());
    const names = () => (get('deployments', ns).items as any[]).map((d) => d.metadata.name).sort();

    await canary('deploy', D('7'));
    assert.deepEqual(names(), ['web', 'web-baseline', 'web-canary']);
    assert.equal(get('deployment', ns, 'web-canary').spec.template.spec.containers[0].image, `${WEB}@${D('7')}`);
    assert.equal(get('deployment', ns, 'web-baseline').spec.template.spec.containers[0].image, `${WEB}@${D('1')}`);
    assert.equal(get('deployment', ns, 'web-canary').status.availableReplicas, 1);
    assert.equal(get('deployment', ns, 'web').metadata.generation, stableGeneration, 'stable is untouched');
    const endpoints = cluster.get(['endpointslices', '-n', ns, '-l', 'kubernetes.io/service-name=web']).items as any[];
    assert.equal(endpoints.flatMap((s) => s.endpoints ?? []).length, 6, 'the Service selects stable, baseline and canary pods');

    await canary('promote', D('7'));
    assert.deepEqual(names(), ['web']);
    assert.equal(get('deployment', ns, 'web').spec.template.spec.containers[0].image, `${WEB}@${D('7')}`);

    await canary('deploy', D('8'));
    assert.deepEqual(names(), ['web', 'web-baseline', 'web-canary']);
    await canary('reject', D('8'));
    assert.deepEqual(names(), ['web']);
    assert.equal(get('deployment', ns, 'web').spec.template.spec.containers[0].image, `${WEB}@${D('7')}`, 'reject leaves stable alone');
  });
});

describe('identities: RBAC and authentication against the real API server', () => {
  test('the namespace-scoped deployer deploys into its namespace, and is forbidden elsewhere with the verb, resource and namespace named', async () => {
    const deployer = { token: cluster.deployerToken };
    const result = await kubernetesDeploy(options({ credentials: deployer, namespace: DEPLOYER_NAMESPACE, createNamespace: false }), createTestContext());
    assert.equal(result.rolledBack, false);
    assert.equal(get('deployment', DEPLOYER_NAMESPACE, 'web').status.availableReplicas, 2);

    cluster.kubectl(['create', 'namespace', 'col-elsewhere'], { allowFailure: true });
    await assert.rejects(kubernetesDeploy(options({ credentials: deployer, namespace: 'col-elsewhere', createNamespace: false }), createTestContext()), (err: Error) => {
      assert.match(err.message, /403 Forbidden/);
      assert.match(err.message, /User "system:serviceaccount:col-deployer:deployer" cannot \w+ resource "\w+"/);
      assert.match(err.message, /in the namespace "col-elsewhere"/);
      return true;
    });
    const fresh = namespace('not-allowed');
    await assert.rejects(kubernetesDeploy(options({ credentials: deployer, namespace: fresh, createNamespace: true }), createTestContext()), (err: Error) => {
      assert.match(err.message, /403 Forbidden/);
      assert.match(err.message, /cannot (create|get|patch) resource "namespaces"/);
      return true;
    });
    assert.notEqual(cluster.kubectl(['get', 'namespace', fresh], { allowFailure: true }).status, 0, 'no namespace was made');
  });

  test('the bundled task with the deployer\'s ServiceAccount connection and System.Debug=true: deployed, and the token shows nowhere', async () => {
    const work = fs.mkdtempSync(path.join(os.tmpdir(), 'col-kcluster-task-'));
    fs.cpSync(manifestDir(), path.join(work, 'k8s'), { recursive: true });
    fs.copyFileSync(path.join(FIXTURES, 'lock.json'), path.join(work, 'image-lock.json'));
    const run = await runBundledTask('kubernetes-deploy', {
      inputs: { connectionType: 'kubernetesServiceConnection', kubernetesServiceConnection: 'K8S-DEPLOYER', namespace: DEPLOYER_NAMESPACE, source: 'manifests', manifests: 'k8s/*.yaml', lockFile: path.join(work, 'image-lock.json'), rolloutTimeoutSeconds: '60' },
      endpoints: [
        {
          id: 'K8S-DEPLOYER',
          url: cluster.url,
          scheme: 'Token',
          parameters: { apitoken: Buffer.from(cluster.deployerToken).toString('base64'), serviceAccountCertificate: Buffer.from(cluster.caPem).toString('base64'), isCreatedFromSecretYaml: 'true' },
          data: { authorizationType: 'ServiceAccount' },
        },
      ],
      cwd: work,
      variables: { 'System.Debug': 'true' },
      timeoutMs: 120_000,
    });
    assert.equal(run.result, 'Succeeded', run.visible);
    assert.match(run.visible, /##\[debug\]|DEBUG/i, 'debug output is on');
    assert.ok(!run.visible.includes(cluster.deployerToken), 'the token is masked');
    assert.ok(!run.visible.includes(Buffer.from(cluster.deployerToken).toString('base64')), 'the base64 token is masked');
    for (const part of cluster.deployerToken.split('.')) assert.ok(!run.visible.includes(part), 'no part of the JWT shows');
  });

  test('client certificates, tokens and an exec plugin all authenticate', async () => {
    const plugin = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'col-kexec-')), 'token-plugin.sh');
    fs.writeFileSync(plugin, `#!/bin/sh\nprintf '%s' '${JSON.stringify({ apiVersion: 'client.authentication.k8s.io/v1', kind: 'ExecCredential', status: { token: cluster.deployerToken } })}'\n`, { mode: 0o700 });
    const identities: [string, Credentials][] = [
      ['client certificate', cluster.admin],
      ['token', { token: cluster.deployerToken }],
      ['exec plugin', { exec: { apiVersion: 'client.authentication.k8s.io/v1', command: plugin, interactiveMode: 'Never' } }],
    ];
    for (const [what, credentials] of identities) {
      const result = await kubernetesDeploy(options({ credentials, namespace: DEPLOYER_NAMESPACE, createNamespace: false, baseDir: manifestDir({ replicas: 1 }) }), createTestContext());
      assert.equal(result.rolledBack, false, what);
    }
    await assert.rejects(kubernetesDeploy(options({ credentials: { token: 'not-a-token' }, namespace: DEPLOYER_NAMESPACE, createNamespace: false }), createTestContext()), /refused the credentials of Input 'kubernetesServiceConnection' \(401 Unauthorized\)/);
  });
});
