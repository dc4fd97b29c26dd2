// KubernetesDeploy against a real control plane (test/support/kube-cluster.ts): etcd,
// kube-apiserver, kube-controller-manager and kube-scheduler built from k8s.io/kubernetes, with
// kwok playing the kubelet on three nodes. kubectl is the oracle: it reads back what the task did
// and dry-runs what the task rendered. Here: what only a real server shows (the example app end to
// end, a CRD, RBAC with a real ServiceAccount). The scenarios the test double can run too are in
// kube-scenarios.test.ts and kube-auth.test.ts, on both.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { before, describe, test } from 'node:test';
import { KubernetesDeployOptions, kubernetesDeploy } from '../../tasks/lib/kube';
import { runBundledTask } from '../support/agent';
import { createTestContext } from '../support/context';
import { DEPLOYER_NAMESPACE, KubeCluster, startKubeCluster } from '../support/kube-cluster';
import { D, KUBE_FIXTURES as FIXTURES, WEB, deployOptions, resolveKubeconfig, serviceAccountEndpoint, testNamespace, webManifestDir } from '../support/kube-deploy';

let cluster: KubeCluster;
before(async () => {
  cluster = await startKubeCluster();
});

type Credentials = { token: string } | { cert: string; key: string } | { exec: Record<string, unknown> };

function options(overrides: Partial<KubernetesDeployOptions> & { credentials?: Credentials } = {}): KubernetesDeployOptions {
  const { credentials, ...rest } = overrides;
  return deployOptions(resolveKubeconfig(cluster.kubeconfig(credentials ?? cluster.admin)), { namespace: testNamespace('ns'), ...rest });
}

const get = (kind: string, ns: string, name?: string) => cluster.get([kind, ...(name ? [name] : []), '-n', ns]);
const generations = (ns: string) =>
  Object.fromEntries((get('deployments,statefulsets,daemonsets,services', ns).items as any[]).map((o) => [`${o.kind}/${o.metadata.name}`, o.metadata.generation ?? o.metadata.resourceVersion]));

describe('KubernetesDeploy on a real control plane', () => {
  test('the example app: compose → converted → pinned → applied → rolled out → verified; kubectl agrees', async () => {
    const ns = testNamespace('shop');
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
    const ns = testNamespace('crd');
    const widget = `---\napiVersion: ${group}/v1\nkind: Widget\nmetadata: {name: w}\nspec: {size: 3}\n`;
    await kubernetesDeploy(options({ baseDir: webManifestDir({ extra: widget }), namespace: ns }), createTestContext());
    const w = cluster.get(['widgets.' + group, 'w', '-n', ns]);
    assert.equal(w.spec.size, 3);
    assert.ok(w.metadata.managedFields.some((m: any) => m.manager === 'container-outer-loop'));

    const other = testNamespace('unknown');
    const gadget = `---\napiVersion: ${group}/v1\nkind: Gadget\nmetadata: {name: g}\n`;
    await assert.rejects(kubernetesDeploy(options({ baseDir: webManifestDir({ extra: gadget }), namespace: other }), createTestContext()), /does not know kind 'Gadget'/);
    const gone = cluster.kubectl(['get', 'deployment', 'web', '-n', other], { allowFailure: true });
    assert.notEqual(gone.status, 0, 'nothing was applied');
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
    const fresh = testNamespace('not-allowed');
    await assert.rejects(kubernetesDeploy(options({ credentials: deployer, namespace: fresh, createNamespace: true }), createTestContext()), (err: Error) => {
      assert.match(err.message, /403 Forbidden/);
      assert.match(err.message, /cannot (create|get|patch) resource "namespaces"/);
      return true;
    });
    assert.notEqual(cluster.kubectl(['get', 'namespace', fresh], { allowFailure: true }).status, 0, 'no namespace was made');
  });

  test('the bundled task with the deployer\'s ServiceAccount connection and System.Debug=true: deployed, and the token shows nowhere', async () => {
    const work = fs.mkdtempSync(path.join(os.tmpdir(), 'col-kcluster-task-'));
    fs.cpSync(webManifestDir(), path.join(work, 'k8s'), { recursive: true });
    fs.copyFileSync(path.join(FIXTURES, 'lock.json'), path.join(work, 'image-lock.json'));
    const run = await runBundledTask('kubernetes-deploy', {
      inputs: { connectionType: 'kubernetesServiceConnection', kubernetesServiceConnection: 'K8S-DEPLOYER', namespace: DEPLOYER_NAMESPACE, source: 'manifests', manifests: 'k8s/*.yaml', lockFile: path.join(work, 'image-lock.json'), rolloutTimeoutSeconds: '60' },
      endpoints: [serviceAccountEndpoint('K8S-DEPLOYER', { url: cluster.url, caPem: cluster.caPem, token: cluster.deployerToken })],
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
});
