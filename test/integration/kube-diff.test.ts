// KubernetesDeploy's promotion diff: what the namespace runs (read through the API server of the
// test double, test/support/kube-api.ts) against the lock, with the commit ranges read from the
// images' config blobs in a real registry (CNCF Distribution, htpasswd). The images are written
// to the registry through its HTTP API (a config blob with the OCI labels, a manifest, and for one
// release an OCI index of two platforms): nothing has to run them, the double's kubelet is simulated.
import { strict as assert } from 'node:assert';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createCredentialSource } from '../../tasks/lib/auth';
import type { EndpointInfo } from '../../tasks/lib/context';
import { KubernetesDeployOptions, kubernetesDeploy } from '../../tasks/lib/kube';
import { KubeClient } from '../../tasks/lib/kube/client';
import { runningWorkloads } from '../../tasks/lib/kube/running';
import type { ImageLock } from '../../tasks/lib/lock/types';
import { parseReference } from '../../tasks/lib/reference';
import { RegistryClient } from '../../tasks/lib/registry/client';
import { MEDIA_TYPES } from '../../tasks/lib/registry/manifest';
import { createTestContext } from '../support/context';
import { KubeApiServer, kubeconfigFor, startKubeApi } from '../support/kube-api';
import { deployOptions, resolveKubeconfig, webManifestDir } from '../support/kube-deploy';
import { startRegistry, TestRegistry } from '../support/registry';

const TOKEN = 'kube-diff-token-0123456789abcdef';
/** An account that may not touch CronJobs. */
const LIMITED_TOKEN = 'kube-diff-limited-0123456789abcd';
const SOURCE = 'https://contoso@dev.azure.com/contoso/Shop/_git/shop';
const PAGE = 'https://dev.azure.com/contoso/Shop/_git/shop';
const COMMIT_A = 'a1'.repeat(20);
const COMMIT_B = 'b2'.repeat(20);

let api: KubeApiServer;
let registry: TestRegistry;
const images: Record<'webA' | 'webB' | 'apiA' | 'shipper', string> = { webA: '', webB: '', apiA: '', shipper: '' };

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** Writes one blob or manifest to the registry through the distribution API (Basic auth). */
async function put(repo: string, body: Buffer, manifest?: { reference: string; mediaType: string }): Promise<string> {
  const auth = `Basic ${Buffer.from(`${registry.username}:${registry.password}`).toString('base64')}`;
  const digest = sha256(body);
  if (manifest) {
    const res = await fetch(`${registry.url}/v2/${repo}/manifests/${manifest.reference}`, { method: 'PUT', headers: { Authorization: auth, 'Content-Type': manifest.mediaType }, body });
    assert.equal(res.status, 201, `PUT manifest ${repo}: ${await res.text()}`);
    return digest;
  }
  const start = await fetch(`${registry.url}/v2/${repo}/blobs/uploads/`, { method: 'POST', headers: { Authorization: auth } });
  assert.equal(start.status, 202, `POST upload ${repo}`);
  const location = new URL(start.headers.get('location')!, registry.url);
  location.searchParams.set('digest', digest);
  const done = await fetch(location, { method: 'PUT', headers: { Authorization: auth, 'Content-Type': 'application/octet-stream' }, body });
  assert.equal(done.status, 201, `PUT blob ${repo}: ${await done.text()}`);
  return digest;
}

/** An image of one layer whose config carries `labels`; returns the manifest's digest. */
async function pushImage(repo: string, tag: string, labels: Record<string, string>, platform = { os: 'linux', architecture: 'amd64' }): Promise<string> {
  const layer = Buffer.from(`layer of ${repo} ${JSON.stringify(labels)} ${platform.architecture}`);
  const layerDigest = await put(repo, layer);
  const config = Buffer.from(JSON.stringify({ ...platform, config: { Labels: labels, Cmd: ['serve'] }, rootfs: { type: 'layers', diff_ids: [layerDigest] } }));
  const configDigest = await put(repo, config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.ociManifest,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layerDigest, size: layer.length }],
    }),
  );
  return put(repo, manifest, { reference: tag, mediaType: MEDIA_TYPES.ociManifest });
}

/** A two-platform OCI index (amd64 and arm64) with the same labels on both. */
async function pushIndex(repo: string, tag: string, labels: Record<string, string>): Promise<string> {
  const platforms = [{ os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'arm64' }];
  const entries = [];
  for (const p of platforms) {
    const digest = await pushImage(repo, `${tag}-${p.architecture}`, labels, p);
    entries.push({ mediaType: MEDIA_TYPES.ociManifest, digest, size: 0, platform: p });
  }
  // Sizes of the entries are not checked by the registry; the client ignores them.
  const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPES.ociIndex, manifests: entries }));
  return put(repo, index, { reference: tag, mediaType: MEDIA_TYPES.ociIndex });
}

function endpoint(): EndpointInfo {
  return { id: 'reg', input: 'createPullSecretFrom', url: registry.url, scheme: 'UsernamePassword', auth: { username: registry.username!, password: registry.password! }, data: { registry: registry.url } };
}

function lock(web: string): ImageLock {
  const entry = (name: string, repo: string, digest: string) => ({ name, repository: `${registry.host}/${repo}`, tags: ['1.0'], digest, ref: `${registry.host}/${repo}@${digest}`, source: 'built' as const, platforms: ['linux/amd64'] });
  return {
    schemaVersion: 1,
    createdAt: '2026-12-01T00:00:00.000Z',
    images: [entry('web', 'shop/web', web), entry('api', 'shop/api', images.apiA), entry('shipper', 'third-party/shipper', images.shipper)],
  };
}

/** The storefront (one container) and an api Deployment whose pod has two containers. */
function manifests(): string {
  const dir = webManifestDir({
    replicas: 1,
    extra: `---
apiVersion: apps/v1
kind: Deployment
metadata: {name: api}
spec:
  replicas: 1
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec:
      containers:
        - {name: api, image: ${registry.host}/shop/api:1.0}
        - {name: shipper, image: ${registry.host}/third-party/shipper:1.0}
`,
  });
  const file = path.join(dir, 'web.yaml');
  fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace('registry.example.com/shop/web:1.0', `${registry.host}/shop/web:1.0`));
  return dir;
}

let dir: string;
const NS = 'promo';
function options(overrides: Partial<KubernetesDeployOptions> & { token?: string } = {}): KubernetesDeployOptions {
  const { token, ...rest } = overrides;
  return deployOptions(resolveKubeconfig(kubeconfigFor(api, { token: token ?? TOKEN })), {
    namespace: NS,
    baseDir: dir,
    rolloutTimeoutSeconds: 20,
    registryCredentials: createCredentialSource({ endpoint: endpoint(), setSecret: () => undefined, useDockerConfig: false }),
    ...rest,
  });
}

before(async () => {
  [api, registry] = await Promise.all([startKubeApi({ tokens: { [TOKEN]: 'deployer', [LIMITED_TOKEN]: 'limited' }, stepMs: 10, secondMs: 100, deny: (r) => r.user === 'limited' && r.resource === 'cronjobs' }), startRegistry('htpasswd')]);
  const labels = (commit: string) => ({ 'org.opencontainers.image.revision': commit, 'org.opencontainers.image.source': SOURCE });
  images.webA = await pushImage('shop/web', 'a', labels(COMMIT_A));
  images.webB = await pushIndex('shop/web', 'b', labels(COMMIT_B));
  images.apiA = await pushImage('shop/api', 'a', labels(COMMIT_A));
  images.shipper = await pushImage('third-party/shipper', '1.0', {});
  dir = manifests();
});

after(async () => {
  await Promise.all([api?.stop(), registry?.stop()]);
});

const patches = () => api.requests.filter((r) => r.method === 'PATCH' || r.method === 'POST' || r.method === 'PUT' || r.method === 'DELETE').length;
const webImage = () => api.get('apps/v1', 'Deployment', NS, 'web')!.spec.template.spec.containers[0].image as string;

describe('KubernetesDeploy: the promotion diff', () => {
  test('the registry client reads an image\'s labels from its config blob, through an index too', async () => {
    const client = new RegistryClient({ credentials: createCredentialSource({ endpoint: endpoint(), setSecret: () => undefined, useDockerConfig: false }) });
    try {
      assert.equal((await client.imageLabels(parseReference(`${registry.host}/shop/web@${images.webA}`)))['org.opencontainers.image.revision'], COMMIT_A);
      assert.equal((await client.imageLabels(parseReference(`${registry.host}/shop/web@${images.webB}`)))['org.opencontainers.image.revision'], COMMIT_B);
      assert.equal((await client.imageLabels(parseReference(`${registry.host}/shop/web:b`), { platform: 'linux/arm64' }))['org.opencontainers.image.source'], SOURCE);
      assert.deepEqual(await client.imageLabels(parseReference(`${registry.host}/third-party/shipper:1.0`)), {});
      await assert.rejects(client.imageLabels(parseReference(`${registry.host}/shop/web@sha256:${'0'.repeat(64)}`)), /was not found in 127\.0\.0\.1:\d+/);
    } finally {
      client.close();
    }
  });

  test('a first deploy adds every workload container', async () => {
    const ctx = createTestContext();
    const result = await kubernetesDeploy(options({ lock: lock(images.webA) }), ctx);
    assert.deepEqual(JSON.parse(ctx.outputs.changedServices), ['api/api', 'api/shipper', 'web']);
    assert.deepEqual(result.diff!.services.map((s) => s.state), ['added', 'added', 'added']);
    assert.equal(result.diff!.services.find((s) => s.service === 'web')!.link, `${PAGE}/commit/${COMMIT_A}`);
    assert.equal(webImage(), `${registry.host}/shop/web@${images.webA}`);
  });

  test('the reader of what runs: each workload container with the digest its template pins', async () => {
    const client = new KubeClient(resolveKubeconfig(kubeconfigFor(api, { token: TOKEN })), { setSecret: () => undefined, log: createTestContext(), signal: new AbortController().signal });
    try {
      const running = await runningWorkloads(client, NS);
      assert.deepEqual(running.map((r) => [r.service, r.digests]), [['api/api', [images.apiA]], ['api/shipper', [images.shipper]], ['web', [images.webA]]]);
    } finally {
      client.close();
    }
  });

  test('diffOnly: the release that changes web shows its commit range (an Azure Repos compare link) and applies nothing', async () => {
    const before = patches();
    const ctx = createTestContext();
    const result = await kubernetesDeploy(options({ lock: lock(images.webB), diffOnly: true }), ctx);
    assert.match(result.skipped ?? '', /diffOnly is true/);
    assert.deepEqual(JSON.parse(ctx.outputs.changedServices), ['web']);
    const web = result.diff!.services.find((s) => s.service === 'web')!;
    assert.deepEqual([web.state, web.digestsNow, web.digestNext], ['changed', [images.webA], images.webB]);
    assert.deepEqual([web.revisionNow, web.revisionNext], [COMMIT_A, COMMIT_B]);
    assert.equal(web.link, `${PAGE}/branchCompare?baseVersion=GC${COMMIT_A}&targetVersion=GC${COMMIT_B}&_a=commits`);
    assert.deepEqual(result.diff!.services.filter((s) => s.service !== 'web').map((s) => s.state), ['unchanged', 'unchanged']);
    assert.match(ctx.summaries.join('\n'), /### KubernetesDeploy: what the release changes in promo[\s\S]*\| web \| changed \|/);
    assert.equal(ctx.outputs.deployedDigests, '{}');
    assert.equal(patches(), before, 'nothing was applied, created or deleted');
    assert.equal(webImage(), `${registry.host}/shop/web@${images.webA}`);
  });

  test('deployIfUnchanged: false skips the release that changes nothing; the one that changes web is applied', async () => {
    const before = patches();
    const ctx = createTestContext();
    const skipped = await kubernetesDeploy(options({ lock: lock(images.webA), deployIfUnchanged: false }), ctx);
    assert.match(skipped.skipped ?? '', /changes nothing .* deployIfUnchanged is false/);
    assert.deepEqual(JSON.parse(ctx.outputs.changedServices), []);
    assert.ok(ctx.logs.some((l) => /Nothing was applied to namespace 'promo'\./.test(l)));
    assert.equal(patches(), before);

    const deploy = createTestContext();
    const result = await kubernetesDeploy(options({ lock: lock(images.webB), deployIfUnchanged: false }), deploy);
    assert.equal(result.skipped, undefined);
    assert.deepEqual(JSON.parse(deploy.outputs.changedServices), ['web']);
    assert.equal(webImage(), `${registry.host}/shop/web@${images.webB}`);
    assert.ok(result.imageChecks.length > 0 && result.imageChecks.every((c) => c.ok === true));
  });

  test('an image whose config blob the registry corrupts is refused by the client; the diff warns and shows its commit as unknown', async () => {
    const labels = { 'org.opencontainers.image.revision': COMMIT_B, 'org.opencontainers.image.source': SOURCE };
    const digest = await pushImage('shop/api', 'tampered', labels);
    const manifest = await (await fetch(`${registry.url}/v2/shop/api/manifests/${digest}`, { headers: { Authorization: `Basic ${Buffer.from(`${registry.username}:${registry.password}`).toString('base64')}`, Accept: MEDIA_TYPES.ociManifest } })).json() as { config: { digest: string } };
    const hex = manifest.config.digest.slice('sha256:'.length);
    const data = path.join(registry.storageDir, 'docker', 'registry', 'v2', 'blobs', 'sha256', hex.slice(0, 2), hex, 'data');
    fs.writeFileSync(data, fs.readFileSync(data, 'utf8').replace(COMMIT_B, COMMIT_A));
    const ctx = createTestContext();
    const release = lock(images.webB);
    release.images = release.images.map((i) => (i.name === 'api' ? { ...i, digest, ref: `${i.repository}@${digest}` } : i));
    const result = await kubernetesDeploy(options({ lock: release, diffOnly: true }), ctx);
    const apiRow = result.diff!.services.find((s) => s.service === 'api/api')!;
    assert.deepEqual([apiRow.state, apiRow.revisionNow, apiRow.revisionNext], ['changed', COMMIT_A, undefined]);
    assert.ok(ctx.logs.some((l) => new RegExp(`^WARNING: Promotion diff: the labels of .*/shop/api@${digest} could not be read .*does not hash to ${manifest.config.digest}`).test(l)));
  });

  test('an account that may not list a kind still gets the diff of the others, with a warning', async () => {
    const ctx = createTestContext();
    const result = await kubernetesDeploy(options({ token: LIMITED_TOKEN, lock: lock(images.webA), diffOnly: true }), ctx);
    assert.deepEqual(JSON.parse(ctx.outputs.changedServices), ['web']);
    assert.equal(result.diff!.services.find((s) => s.service === 'web')!.state, 'changed');
    assert.ok(ctx.logs.includes("WARNING: Promotion diff: the account may not list CronJobs in 'promo' (403); a CronJob of the release is shown as added."));
  });

  test('renderOnly and diffOnly together are refused', async () => {
    await assert.rejects(kubernetesDeploy(options({ renderOnly: true, diffOnly: true }), createTestContext()), /Inputs 'renderOnly' and 'diffOnly' cannot both be true/);
  });
});
