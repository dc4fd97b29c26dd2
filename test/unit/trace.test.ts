// Traceability (tasks/lib/release/trace.ts, compose-deploy/trace.ts, the kept releases of
// compose-deploy/store.ts, KubernetesDeploy's annotations): the trace values of a run, the labels
// a compose service is deployed with (the run's for a new or changed service, the kept release's for
// one that is unchanged, so Compose recreates nothing for them), the rendered file labelled as
// Compose v2 reads it, the releases a host keeps, the annotations of a Kubernetes object (this
// run's, or the live ones when its content did not change), and the summary's links to the run that
// built each image.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadCompose } from '../../tasks/lib/compose/load';
import { renderCompose, withServiceLabels } from '../../tasks/lib/compose/render';
import { renderedServices, serviceTraceLabels } from '../../tasks/lib/compose-deploy/trace';
import { keptReleases, StoredRelease } from '../../tasks/lib/compose-deploy/store';
import { kubernetesDeploy } from '../../tasks/lib/kube';
import type { KubeObject } from '../../tasks/lib/kube/objects';
import { CONTENT_DIGEST_ANNOTATION, annotateForTrace, contentDigest } from '../../tasks/lib/kube/trace';
import type { ImageLock } from '../../tasks/lib/lock/types';
import { runUrl } from '../../tasks/lib/context';
import { COMPOSE_TRACE_LABELS, KUBE_TRACE_ANNOTATIONS, buildRunUrl, lockFileDigest, provenanceTable, releaseTrace, traceEntries } from '../../tasks/lib/release/trace';
import { composeConfig } from '../support/compose-oracle';
import { createTestContext } from '../support/context';
import { baseLock, renderOnlyOptions } from '../support/kube-deploy';
import { composeV2Binary } from '../support/stack';
import { kubernetesDeployDefaults } from '../support/task-defaults';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'col-trace-'));
after(() => fs.rmSync(work, { recursive: true, force: true }));

const D = (c: string) => `sha256:${c.repeat(64)}`;
const RUN_VARIABLES = {
  'System.CollectionUri': 'https://dev.azure.com/contoso/',
  'System.TeamProject': 'Shop App',
  'Build.BuildId': '812',
  'Build.BuildNumber': '20261202.4',
  'Build.SourceVersion': 'feedfacefeedfacefeedfacefeedfacefeedface',
};
const lock: ImageLock = {
  schemaVersion: 1,
  createdAt: '2026-12-01T10:00:00.000Z',
  buildNumber: '20261201.7',
  buildId: '790',
  commit: '0123456789abcdef0123456789abcdef01234567',
  pipeline: { definition: 'shop-ci', runId: '790', project: 'Shop App', collectionUri: 'https://dev.azure.com/contoso/' },
  images: [
    { name: 'web', repository: 'registry.example.com/shop/web', tags: ['20261201.7'], digest: D('1'), ref: `registry.example.com/shop/web@${D('1')}`, source: 'built', platforms: ['linux/amd64'] },
    { name: 'cache', repository: 'docker.io/library/redis', tags: ['7'], digest: D('2'), ref: `docker.io/library/redis@${D('2')}`, source: 'resolved', platforms: ['linux/amd64'] },
  ],
};

describe('the trace of a run', () => {
  test('the run URL is the one the notification links; build and commit are the lock\'s; the lock digest is the sha256 of its bytes', () => {
    const file = path.join(work, 'lock.json');
    fs.writeFileSync(file, 'abc');
    // sha256("abc"), the FIPS 180-2 test vector
    assert.equal(lockFileDigest(file), 'sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    const ctx = createTestContext(RUN_VARIABLES);
    const trace = releaseTrace(ctx, lock, 'sha256:abc');
    assert.deepEqual(trace, {
      runUrl: 'https://dev.azure.com/contoso/Shop%20App/_build/results?buildId=812',
      buildNumber: '20261201.7',
      commit: '0123456789abcdef0123456789abcdef01234567',
      lockDigest: 'sha256:abc',
    });
    assert.equal(trace.runUrl, runUrl({ collectionUri: RUN_VARIABLES['System.CollectionUri'], project: 'Shop App', buildId: '812' }));
    assert.deepEqual(traceEntries(trace, COMPOSE_TRACE_LABELS), {
      'dev.azure.pipelines.outer-loop.run-url': trace.runUrl,
      'dev.azure.pipelines.outer-loop.build-number': '20261201.7',
      'dev.azure.pipelines.outer-loop.commit': '0123456789abcdef0123456789abcdef01234567',
      'dev.azure.pipelines.outer-loop.lock-digest': 'sha256:abc',
    });
  });

  test('without a lock the run\'s own build and commit are used; outside a pipeline, what is not known is left out', () => {
    assert.deepEqual(traceEntries(releaseTrace(createTestContext(RUN_VARIABLES), undefined, undefined), KUBE_TRACE_ANNOTATIONS), {
      'container-outer-loop/run-url': 'https://dev.azure.com/contoso/Shop%20App/_build/results?buildId=812',
      'container-outer-loop/build-number': '20261202.4',
      'container-outer-loop/commit': 'feedfacefeedfacefeedfacefeedfacefeedface',
    });
    assert.deepEqual(traceEntries(releaseTrace(createTestContext(), undefined, undefined), KUBE_TRACE_ANNOTATIONS), {});
  });

  test('the summary links the run that built each image; a resolved image names its tag', () => {
    assert.equal(buildRunUrl(lock), 'https://dev.azure.com/contoso/Shop%20App/_build/results?buildId=790');
    const table = provenanceTable(lock, [
      { service: 'web', image: `registry.example.com/shop/web@${D('1')}` },
      { service: 'cache', image: `docker.io/library/redis@${D('2')}` },
      { service: 'side', image: 'busybox:1' },
    ]);
    assert.match(table, /\| web \| `registry\.example\.com\/shop\/web@sha256:1{64}` \| \[shop-ci 20261201\.7\]\(https:\/\/dev\.azure\.com\/contoso\/Shop%20App\/_build\/results\?buildId=790\) \|/);
    assert.match(table, /\| cache \| .* \| resolved from `7` \(not built by the pipeline\) \|/);
    assert.match(table, /\| side \| `busybox:1` \| not from the image lock \|/);
    const { pipeline: _p, buildId: _b, ...anonymous } = lock;
    assert.match(provenanceTable(anonymous, [{ service: 'web', image: `registry.example.com/shop/web@${D('1')}` }]), /\| web \| .* \| 20261201\.7 \(the lock does not name the run\) \|/);
  });
});

describe('trace labels of compose services', () => {
  let composeBin: string;
  before(async () => {
    composeBin = await composeV2Binary();
  });

  function render(dir: string, text: string) {
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'docker-compose.yml'), text);
    return renderCompose(loadCompose([path.join(dir, 'docker-compose.yml')], { env: {} }), { lock, allowUnpinned: true, header: ['Rendered for the test.'] });
  }
  const app = (webCommand: string) =>
    [
      '# the shop',
      'services:',
      '  web:',
      '    image: registry.example.com/shop/web:20261201.7',
      `    command: ${webCommand}`,
      '    labels: ["team=shop", "price=$$5"]',
      '  cache:',
      '    image: redis:7',
      '    labels: {tier: cache}',
      '  side:',
      '    image: busybox:1',
      '',
    ].join('\n');
  const labels = traceEntries({ runUrl: 'https://dev.azure.com/contoso/Shop%20App/_build/results?buildId=812', buildNumber: '20261201.7', lockDigest: 'sha256:abc' }, COMPOSE_TRACE_LABELS);

  test('the labelled file keeps its comments and other labels, and Compose v2 reads the trace labels on every service', async () => {
    const dir = path.join(work, 'labelled');
    const rendered = render(dir, app('["serve"]'));
    const labelled = withServiceLabels(rendered, serviceTraceLabels(rendered.model, undefined, labels));
    assert.match(labelled.text, /^# Rendered for the test\./);
    assert.match(labelled.text, /# the shop/);
    const file = path.join(dir, 'rendered.yml');
    fs.writeFileSync(file, labelled.text);
    const oracle = await composeConfig(composeBin, dir, ['rendered.yml'], {});
    assert.ok(oracle.ok, oracle.stderr);
    const services = (oracle.data as { services: Record<string, { labels: Record<string, string> }> }).services;
    // `config` prints a literal $ escaped again, as `$$`.
    assert.deepEqual(services.web.labels, { team: 'shop', price: '$$5', ...labels });
    assert.deepEqual(services.cache.labels, { tier: 'cache', ...labels });
    assert.deepEqual(services.side.labels, labels);
  });

  test('a service the kept release deployed with the same definition keeps its labels; a changed or new one gets this run\'s', () => {
    const first = render(path.join(work, 'first'), app('["serve"]'));
    const kept = withServiceLabels(first, serviceTraceLabels(first.model, undefined, labels)).text;
    // The next run: web's command changes, cache and side do not; a service is added.
    const next = render(path.join(work, 'next'), `${app('["serve", "--fast"]')}  queue:\n    image: busybox:1\n`);
    const nextLabels = traceEntries({ runUrl: 'https://dev.azure.com/contoso/Shop%20App/_build/results?buildId=813', buildNumber: '20261202.1' }, COMPOSE_TRACE_LABELS);
    const chosen = serviceTraceLabels(next.model, renderedServices(kept, 'the kept release'), nextLabels);
    assert.deepEqual(chosen, { web: nextLabels, cache: labels, side: labels, queue: nextLabels });
    // A kept release written before the trace labels (none on its services): this run's, once.
    assert.deepEqual(serviceTraceLabels(next.model, renderedServices(first.text, 'the kept release'), nextLabels).cache, nextLabels);
  });
});

describe('the releases a host keeps', () => {
  const release = (buildNumber: string | undefined, n: number): StoredRelease => ({
    rendered: `# release ${n}\n`,
    meta: { project: 'shop-qa', environment: 'qa', deployedAt: `2026-12-0${n}T00:00:00.000Z`, buildNumber, images: {} },
  });
  test('the newest first, at most keepReleases of them; a build deployed again is listed once, as the newest', () => {
    let history: StoredRelease[] = [];
    for (let n = 1; n <= 4; n++) history = keptReleases(history, release(`b${n}`, n), 3);
    assert.deepEqual(history.map((r) => r.meta.buildNumber), ['b4', 'b3', 'b2']);
    history = keptReleases(history, release('b2', 5), 3);
    assert.deepEqual(history.map((r) => [r.meta.buildNumber, r.meta.deployedAt.slice(0, 10)]), [['b2', '2026-12-05'], ['b4', '2026-12-04'], ['b3', '2026-12-03']]);
    // Releases without a build number are all kept (none can be named by rollbackTo).
    history = keptReleases(keptReleases(history, release(undefined, 6), 5), release(undefined, 7), 5);
    assert.equal(history.length, 5);
    assert.deepEqual(keptReleases(history, release('b9', 8), 1).map((r) => r.meta.buildNumber), ['b9']);
  });
});

describe('trace annotations of Kubernetes objects', () => {
  const trace = traceEntries({ runUrl: runUrl({ collectionUri: 'https://dev.azure.com/contoso/', project: 'Shop App', buildId: '812' }), buildNumber: '20261201.7', lockDigest: 'sha256:abc' }, KUBE_TRACE_ANNOTATIONS);
  const next = traceEntries({ runUrl: runUrl({ collectionUri: 'https://dev.azure.com/contoso/', project: 'Shop App', buildId: '813' }), buildNumber: '20261201.7' }, KUBE_TRACE_ANNOTATIONS);
  const deployment = (image: string): KubeObject => ({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'web', namespace: 'shop', annotations: { owner: 'shop' } },
    spec: { selector: { matchLabels: { app: 'web' } }, template: { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'web', image }] } } },
  });

  test('a new object gets this run\'s, on its own metadata (its other annotations kept, its pod template untouched), with its content digest', () => {
    const obj = deployment(`registry.example.com/shop/web@${D('1')}`);
    annotateForTrace(obj, undefined, trace);
    assert.deepEqual(obj.metadata.annotations, { owner: 'shop', ...trace, [CONTENT_DIGEST_ANNOTATION]: contentDigest(deployment(`registry.example.com/shop/web@${D('1')}`)) });
    assert.equal((obj.spec as any).template.metadata.annotations, undefined);
    assert.equal(contentDigest(obj), obj.metadata.annotations![CONTENT_DIGEST_ANNOTATION], 'the digest leaves the trace annotations out');
  });

  test('an object the namespace holds with the same content keeps the live trace, so its apply changes nothing; a changed one gets this run\'s', () => {
    const live = deployment(`registry.example.com/shop/web@${D('1')}`);
    annotateForTrace(live, undefined, trace);
    const same = deployment(`registry.example.com/shop/web@${D('1')}`);
    annotateForTrace(same, live, next);
    assert.deepEqual(same.metadata.annotations, live.metadata.annotations);
    const changed = deployment(`registry.example.com/shop/web@${D('2')}`);
    annotateForTrace(changed, live, next);
    assert.deepEqual(Object.fromEntries(Object.entries(changed.metadata.annotations!).filter(([k]) => k !== CONTENT_DIGEST_ANNOTATION)), { owner: 'shop', ...next });
    assert.notEqual(changed.metadata.annotations![CONTENT_DIGEST_ANNOTATION], live.metadata.annotations![CONTENT_DIGEST_ANNOTATION]);
    // A live object from before the trace annotations (none on it): this run's.
    const old = deployment(`registry.example.com/shop/web@${D('1')}`);
    annotateForTrace(old, deployment(`registry.example.com/shop/web@${D('1')}`), next);
    assert.equal(old.metadata.annotations!['container-outer-loop/run-url'], next['container-outer-loop/run-url']);
    // Outside a pipeline, with no lock digest and no build number, nothing is added.
    const bare = deployment('x');
    annotateForTrace(bare, undefined, {});
    assert.deepEqual(bare.metadata.annotations, { owner: 'shop' });
  });

  test('renderOnly: the artifact carries no trace annotations (they are added at apply time); the summary links the run that built each image', async () => {
    const app = path.join(work, 'kube-compose.yml');
    fs.writeFileSync(app, 'services:\n  web:\n    image: registry.example.com/shop/web:1.0\n    ports: ["80:8080"]\n  db:\n    image: postgres:16\n');
    const lockWithRun: ImageLock = { ...baseLock, pipeline: { definition: 'shop-ci', runId: '700', project: 'Shop App', collectionUri: 'https://dev.azure.com/contoso/' } };
    const ctx = createTestContext(RUN_VARIABLES);
    const options = renderOnlyOptions({ composeFiles: [app], baseDir: work, lock: lockWithRun, lockDigest: 'sha256:abc', publishArtifact: false, renderedManifests: path.join(work, 'k8s-out', 'm.yaml') });
    const result = await kubernetesDeploy(options, ctx);
    assert.doesNotMatch(fs.readFileSync(result.renderedManifests, 'utf8'), /container-outer-loop\/(run-url|lock-digest|content-digest)/);
    const summary = ctx.summaries.join('\n');
    assert.match(summary, /\| web \| `registry\.example\.com\/shop\/web@sha256:1{64}` \| \[shop-ci 20261122\.1\]\(https:\/\/dev\.azure\.com\/contoso\/Shop%20App\/_build\/results\?buildId=700\) \|/);
    assert.match(summary, /\| db \| .* \| resolved from `16` \(not built by the pipeline\) \|/);
  });
});
