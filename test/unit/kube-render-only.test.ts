// KubernetesDeploy with renderOnly: rendered (converted or read), pinned by the lock, published and
// the outputs set, with no connection at all and nothing contacted; services of a compose profile
// are not converted (as `docker compose up` does not start them).
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, test } from 'node:test';
import { KubernetesDeployOptions, kubernetesDeploy } from '../../tasks/lib/kube';
import { createTestContext } from '../support/context';
import { D, baseLock, renderOnlyOptions } from '../support/kube-deploy';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'col-kube-render-'));
after(() => fs.rmSync(work, { recursive: true, force: true }));

const app = path.join(work, 'docker-compose.yml');
fs.writeFileSync(
  app,
  [
    'services:',
    '  web:',
    '    image: registry.example.com/shop/web:1.0',
    '    ports: ["80:8080"]',
    '  api:',
    '    image: registry.example.com/shop/api:1.0',
    '  db:',
    '    image: postgres:16',
    '  tests:',
    '    image: registry.example.com/shop/tests:1.0',
    '    profiles: [test]',
    '',
  ].join('\n'),
);

const options = (over: Partial<KubernetesDeployOptions> = {}) => renderOnlyOptions({ composeFiles: [app], baseDir: work, ...over });

test('renderOnly without a connection: pinned manifests written, published and set as outputs; nothing contacted', async () => {
  const ctx = createTestContext({ 'Build.ArtifactStagingDirectory': path.join(work, 'staging') });
  const result = await kubernetesDeploy(options(), ctx);

  assert.equal(result.renderedManifests, path.join(work, 'staging', 'kubernetes-deploy', 'shop-review-manifests.yaml'));
  assert.deepEqual(ctx.artifacts, [{ name: 'kubernetes-manifests', path: result.renderedManifests }]);
  assert.equal(ctx.outputs.renderedManifests, result.renderedManifests);
  assert.deepEqual(JSON.parse(ctx.outputs.deployedDigests), {
    web: `registry.example.com/shop/web@${D('1')}`,
    api: `registry.example.com/shop/api@${D('2')}`,
    db: `docker.io/library/postgres@${D('5')}`,
  });
  assert.equal(ctx.outputs.rolledBack, 'false');
  assert.deepEqual(result.applied, []);

  const text = fs.readFileSync(result.renderedManifests, 'utf8');
  const images = [...text.matchAll(/image: (\S+)/g)].map((m) => m[1]);
  assert.deepEqual(images.sort(), [`docker.io/library/postgres@${D('5')}`, `registry.example.com/shop/api@${D('2')}`, `registry.example.com/shop/web@${D('1')}`]);
  assert.doesNotMatch(text, /tests/, 'the service of profile "test" is not converted');

  const log = ctx.logs.join('\n');
  assert.match(log, /Not converted \(profile not active\): tests/);
  assert.match(log, /Rendered only \(renderOnly\): .*no cluster was contacted and nothing was applied/);
  assert.match(ctx.summaries.join('\n'), /### KubernetesDeploy: shop-review \(render only\)/);
});

test('renderOnly never resolves the connection it is given; manifests are pinned as well', async () => {
  fs.writeFileSync(path.join(work, 'app.yaml'), 'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers:\n      - name: web\n        image: registry.example.com/shop/web:1.0\n');
  const ctx = createTestContext();
  const kubeconfig = async () => {
    throw new Error('the cluster was contacted');
  };
  const result = await kubernetesDeploy(options({ kubeconfig, source: 'manifests', composeFiles: [], manifests: ['app.yaml'], renderedManifests: path.join(work, 'out', 'm.yaml'), publishArtifact: false }), ctx);
  assert.match(fs.readFileSync(result.renderedManifests, 'utf8'), new RegExp(`image: registry\\.example\\.com/shop/web@${D('1')}`));
  assert.deepEqual(ctx.artifacts, []);
  assert.equal(ctx.outputs.rolledBack, 'false');
});

test('without renderOnly a connection is required; an image the lock cannot pin still fails', async () => {
  const ctx = createTestContext();
  await assert.rejects(kubernetesDeploy(options({ renderOnly: false }), ctx), /no cluster connection was given\. Choose one, or set renderOnly: true/);
  assert.equal(ctx.outputs.rolledBack, 'false');
  const noDb = { ...baseLock, images: baseLock.images.filter((i) => i.name !== 'db') };
  await assert.rejects(kubernetesDeploy(options({ lock: noDb }), createTestContext()), /not in the image lock \(input 'lockFile'\)[\s\S]*postgres:16/);
});

test('manifestsArtifactName: a name Azure Pipelines refuses is refused by name', async () => {
  await assert.rejects(kubernetesDeploy(options({ artifactName: '../../../tmp/x' }), createTestContext()), /Input 'manifestsArtifactName': '\.\.\/\.\.\/\.\.\/tmp\/x' is not a valid artifact name/);
});
