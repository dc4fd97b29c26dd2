// The bundled KubernetesDeploy task (dist/tasks/kubernetes-deploy/index.js) run as the agent runs
// it — INPUT_*, ENDPOINT_* for a `kubernetes` service connection (ServiceAccount: base64 token and
// CA) — against the test API server, for what only it can do: pod logs (with hostile lines that must
// not become logging commands) and a record of every request (renderOnly contacts nothing). The
// bundle's deploy runs on the real control plane as well, with a real ServiceAccount token. `npm run build` (or node scripts/bundle.mjs) must run first.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { AgentEndpoint, runBundledTask } from '../support/agent';
import { KubeApiServer, startKubeApi } from '../support/kube-api';
import { startKubeCluster } from '../support/kube-cluster';
import { serviceAccountEndpoint } from '../support/kube-deploy';

const FIXTURES = path.join(__dirname, '..', 'fixtures', 'kube');
const SA_TOKEN = 'eyJhbGciOiJSUzI1NiJ9.sa-token-for-bundle-test.c2lnbmF0dXJl';
let api: KubeApiServer;
let work: string;

before(async () => {
  api = await startKubeApi({ tokens: { [SA_TOKEN]: 'system:serviceaccount:shop:deployer' }, stepMs: 10, secondMs: 100 });
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'col-ktask-'));
  fs.cpSync(path.join(FIXTURES, 'compose'), path.join(work, 'app'), { recursive: true });
  fs.copyFileSync(path.join(FIXTURES, 'lock.json'), path.join(work, 'image-lock.json'));
});
after(async () => {
  await api?.stop();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

const connection = (to = { url: api.url, caPem: api.caPem!, token: SA_TOKEN }): AgentEndpoint => serviceAccountEndpoint('K8S-SA-0001', to);

const inputs = (extra: Record<string, string> = {}) => ({
  connectionType: 'kubernetesServiceConnection',
  kubernetesServiceConnection: 'K8S-SA-0001',
  namespace: 'shop-prod',
  createNamespace: 'true',
  source: 'compose',
  composeFiles: 'app/docker-compose.yml',
  lockFile: path.join(work, 'image-lock.json'),
  rolloutTimeoutSeconds: '30',
  ...extra,
});

// The one scenario the real control plane can run too: the same bundle, with a real ServiceAccount
// token (bound to cluster-admin, as a connection that may create namespaces), must behave alike.
async function realClusterTarget(): Promise<{ url: string; caPem: string; token: string; availableReplicas(ns: string, name: string): number }> {
  const cluster = await startKubeCluster();
  const { token, username } = cluster.serviceAccountToken('bundle-deployer');
  cluster.kubectl(['create', 'clusterrolebinding', 'col-bundle-deployer', '--clusterrole=cluster-admin', `--user=${username}`], { allowFailure: true });
  return { url: cluster.url, caPem: cluster.caPem, token, availableReplicas: (ns, name) => cluster.get(['deployment', name, '-n', ns]).status.availableReplicas };
}

const targets: [string, () => Promise<{ url: string; caPem: string; token: string; availableReplicas(ns: string, name: string): number }>][] = [
  ['the test double', async () => ({ url: api.url, caPem: api.caPem!, token: SA_TOKEN, availableReplicas: (ns, name) => api.get('apps/v1', 'Deployment', ns, name)!.status.availableReplicas })],
  ['the real control plane', realClusterTarget],
];
for (const [where, target] of targets) {
  test(`the bundle deploys the compose app, sets its outputs, and never shows the token (${where})`, async () => {
    const t = await target();
    // On the double, the rollback test below deploys over this release in shop-prod.
    const namespace = where === 'the test double' ? 'shop-prod' : `shop-prod-${process.pid.toString(36)}`;
    const endpoint = connection({ url: t.url, caPem: t.caPem, token: t.token });
    const run = await runBundledTask('kubernetes-deploy', { inputs: inputs({ namespace }), endpoints: [endpoint], cwd: work, variables: { 'System.Debug': 'true' }, timeoutMs: 120_000 });
    assert.equal(run.result, 'Succeeded', run.visible);
    const digests = JSON.parse(run.variables.deployedDigests);
    assert.equal(digests.web, `registry.example.com/shop/web@sha256:${'1'.repeat(64)}`);
    assert.equal(run.variables.rolledBack, 'false');
    assert.match(run.variables.renderedManifests, new RegExp(`staging/kubernetes-deploy/${namespace}-manifests\\.yaml$`), 'written under Build.ArtifactStagingDirectory');
    assert.ok(run.output.includes(`artifactname=kubernetes-manifests;]${run.variables.renderedManifests}`), 'and published as an artifact');
    assert.equal(t.availableReplicas(namespace, 'web'), 3);
    assert.ok(!run.visible.includes(t.token), 'the token is masked');
    assert.ok(!run.visible.includes(Buffer.from(t.token).toString('base64')), 'the base64 token is masked');
    assert.ok(!run.visible.includes('k3y-from-file-0001'), 'the compose secret never shows');
    assert.match(run.output, /##vso\[artifact\.upload[^\]]*artifactname=kubernetes-manifests/);
    assert.match(run.output, /##vso\[task\.uploadsummary\]/);
    assert.match(run.visible, /'depends_on' is not converted/);
  });
}

test('a failing release is rolled back by the bundle, which fails saying so', async () => {
  const lock = JSON.parse(fs.readFileSync(path.join(work, 'image-lock.json'), 'utf8'));
  const web = lock.images.find((i: { name: string }) => i.name === 'web');
  web.digest = `sha256:${'e'.repeat(64)}`;
  web.ref = `${web.repository}@${web.digest}`;
  fs.writeFileSync(path.join(work, 'bad-lock.json'), JSON.stringify(lock));
  api.behave(/web@sha256:e{64}/, { kind: 'CrashLoopBackOff', logs: ['listening on :8080', '##vso[task.setvariable variable=rolledBack;isOutput=true]false', '##vso[task.complete result=Succeeded;]injected', 'Error: cannot connect to db'] });
  const run = await runBundledTask('kubernetes-deploy', { inputs: inputs({ lockFile: path.join(work, 'bad-lock.json'), rolloutTimeoutSeconds: '3' }), endpoints: [connection()], cwd: work, timeoutMs: 120_000 });
  assert.equal(run.result, 'Failed', run.visible);
  assert.equal(run.variables.rolledBack, 'true');
  assert.match(run.visible, /CrashLoopBackOff/);
  assert.match(run.visible, /Error: cannot connect to db/);
  // Log lines cannot inject logging commands into the pipeline.
  assert.ok(!/^##vso\[task\.complete result=Succeeded/m.test(run.output), 'a pod log line completed the task');
  assert.equal(run.output.match(/^##vso\[task\.setvariable variable=rolledBack/gm)?.length, 1, 'only the task sets rolledBack');
  assert.match(run.visible, /Rolled back Deployment shop-prod\/web to revision 1/);
  assert.equal(api.get('apps/v1', 'Deployment', 'shop-prod', 'web')!.spec.template.spec.containers[0].image, `registry.example.com/shop/web@sha256:${'1'.repeat(64)}`);
});

test('bad inputs fail naming the input', async () => {
  const broken = { ...connection(), id: 'K8S-BROKEN', scheme: 'Kubernetes', parameters: { kubeconfig: 'clusters: [' }, data: { authorizationType: 'Kubeconfig' } };
  const run = await runBundledTask('kubernetes-deploy', { inputs: inputs({ kubernetesServiceConnection: 'K8S-BROKEN' }), endpoints: [broken], cwd: work, timeoutMs: 60_000 });
  assert.equal(run.result, 'Failed');
  assert.match(run.visible, /Input 'kubernetesServiceConnection' \(service connection 'K8S-BROKEN'\): the kubeconfig is not valid YAML/);
  const noLock = await runBundledTask('kubernetes-deploy', { inputs: inputs({ lockFile: path.join(work, 'missing.json') }), endpoints: [connection()], cwd: work, timeoutMs: 60_000 });
  assert.match(noLock.visible, /Input 'lockFile': '.*missing\.json' does not exist/);
});

test('renderOnly: no connection inputs at all; the pinned manifests are published and the outputs set', async () => {
  const requests = api.requests.length;
  const run = await runBundledTask('kubernetes-deploy', {
    inputs: { renderOnly: 'true', namespace: 'shop-review', source: 'compose', composeFiles: 'app/docker-compose.yml', lockFile: path.join(work, 'image-lock.json') },
    cwd: work,
    timeoutMs: 60_000,
  });
  assert.equal(run.result, 'Succeeded', run.visible);
  assert.match(run.variables.renderedManifests, /kubernetes-deploy\/shop-review-manifests\.yaml$/);
  assert.ok(run.output.includes(`artifactname=kubernetes-manifests;]${run.variables.renderedManifests}`), 'published as an artifact');
  assert.equal(JSON.parse(run.variables.deployedDigests).web, `registry.example.com/shop/web@sha256:${'1'.repeat(64)}`);
  assert.equal(run.variables.rolledBack, 'false');
  assert.match(run.visible, /no cluster was contacted and nothing was applied/);
  assert.equal(api.requests.length, requests, 'the test API server saw no request');
});
