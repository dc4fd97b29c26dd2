// The drift report's comparison (tasks/lib/release/drift.ts) and the rules by which the readers tell
// the deploy tasks' own containers from those started by hand.
import { strict as assert } from 'node:assert';
import { describe, test } from 'node:test';
import type { KubeObject } from '../../tasks/lib/kube/objects';
import type { ImageLock } from '../../tasks/lib/lock/types';
import { checkDriftInputs, compareDrift, concludeDrift, DriftError, driftMarkdown, ExpectedImage, expectedFromLock, RunningContainer } from '../../tasks/lib/release/drift';
import { composeStartedByHand } from '../../tasks/lib/release/drift-compose';
import { appliedBy, expectedFromObjects } from '../../tasks/lib/release/drift-kube';

const D1 = `sha256:${'1'.repeat(64)}`;
const D2 = `sha256:${'2'.repeat(64)}`;
const D3 = `sha256:${'3'.repeat(64)}`;
const WEB = 'registry.example:5000/shop/web';
const CACHE = 'registry.example:5000/third-party/cache';

const expected: ExpectedImage[] = [
  { service: 'web', repository: WEB, digest: D1 },
  { service: 'cache', repository: CACHE, digest: D2 },
];

function running(over: Partial<RunningContainer> & { name: string }): RunningContainer {
  return { service: 'web', repository: WEB, digest: D1, restarts: 0, state: 'running (healthy)', ...over };
}

const ok = [running({ name: 'shop-prod-web-1' }), running({ name: 'shop-prod-cache-1', service: 'cache', repository: CACHE, digest: D2, state: 'running' })];

describe('compareDrift', () => {
  test('an environment that runs exactly the lock has no drift', () => {
    const report = compareDrift(expected, ok, { maxRestarts: 0 });
    assert.deepEqual(report.differences, []);
    assert.deepEqual(
      report.rows.map((r) => [r.service, r.name, r.kinds.length]),
      [
        ['cache', 'shop-prod-cache-1', 0],
        ['web', 'shop-prod-web-1', 0],
      ],
    );
  });

  test('every replica is compared; a missing service is one difference', () => {
    const report = compareDrift(expected, [running({ name: 'shop-prod-web-1' }), running({ name: 'shop-prod-web-2', digest: D3 })], { maxRestarts: 0 });
    assert.deepEqual(
      report.differences.map((d) => [d.kind, d.service, d.name]),
      [
        ['digest', 'web', 'shop-prod-web-2'],
        ['missing', 'cache', undefined],
      ],
    );
    assert.match(report.differences[0].message, new RegExp(`runs ${D3}, not the lock's ${D1}`));
    assert.match(report.differences[1].message, /cache is not running: the lock has registry\.example:5000\/third-party\/cache@sha256:2{64}/);
  });

  test('a container of another image in a service, one with no registry digest, and one of no service', () => {
    const report = compareDrift(
      expected,
      [
        ...ok,
        running({ name: 'shop-prod-web-2', repository: 'registry.example:5000/shop/other' }),
        running({ name: 'shop-prod-web-3', digest: undefined }),
        running({ name: 'sidecar', service: undefined, repository: 'busybox', digest: undefined }),
        running({ name: 'shop-prod-debug-1', service: 'debug' }),
      ],
      { maxRestarts: 0 },
    );
    assert.deepEqual(
      report.differences.map((d) => [d.kind, d.name]),
      [
        ['extra', 'shop-prod-debug-1'],
        ['digest', 'shop-prod-web-2'],
        ['digest', 'shop-prod-web-3'],
        ['extra', 'sidecar'],
      ],
    );
    assert.match(report.differences[0].message, /the lock has no service 'debug'/);
    assert.match(report.differences[1].message, /runs registry\.example:5000\/shop\/other, not the lock's registry\.example:5000\/shop\/web/);
    assert.match(report.differences[2].message, /an image with no registry digest/);
    assert.match(report.differences[3].message, /sidecar is not part of the release/);
  });

  test('started by hand, restarts above maxRestarts, and not serving are each a difference of their own', () => {
    const rows = [running({ name: 'shop-prod-web-1', byHand: 'it lacks the labels Compose gives', restarts: 3, down: 'its healthcheck fails' }), ok[1]];
    assert.deepEqual(
      compareDrift(expected, rows, { maxRestarts: 2 }).differences.map((d) => d.kind),
      ['by-hand', 'restarts', 'down'],
    );
    assert.deepEqual(
      compareDrift(expected, rows, { maxRestarts: 3 }).differences.map((d) => d.kind),
      ['by-hand', 'down'],
      'restarts up to maxRestarts are allowed',
    );
  });

  test('pods: a workload with two containers is matched by container name', () => {
    const pods: ExpectedImage[] = [
      { service: 'web', container: 'web', repository: WEB, digest: D1 },
      { service: 'web', container: 'proxy', repository: CACHE, digest: D2 },
    ];
    const report = compareDrift(
      pods,
      [
        running({ name: 'web-5d9-abc/web', container: 'web' }),
        running({ name: 'web-5d9-abc/proxy', container: 'proxy', repository: CACHE, digest: D3 }),
      ],
      { maxRestarts: 0 },
    );
    assert.deepEqual(
      report.differences.map((d) => [d.kind, d.name]),
      [['digest', 'web-5d9-abc/proxy']],
    );
  });

  test("a Job's or CronJob's image is compared when its pods run, and not missing when they do not", () => {
    const job: ExpectedImage = { service: 'migrate', container: 'migrate', repository: WEB, digest: D1, optional: true };
    assert.deepEqual(compareDrift([job], [], { maxRestarts: 0 }).differences, []);
    const ran = compareDrift([job], [running({ name: 'migrate-x/migrate', service: 'migrate', container: 'migrate', digest: D3 })], { maxRestarts: 0 });
    assert.deepEqual(ran.differences.map((d) => d.kind), ['digest']);
    const cron = { apiVersion: 'batch/v1', kind: 'CronJob', metadata: { name: 'nightly' }, spec: { jobTemplate: { spec: { template: { spec: { containers: [{ name: 'n', image: `${WEB}@${D1}` }] } } } } } } as KubeObject;
    assert.deepEqual(expectedFromObjects([cron]), [{ service: 'nightly', container: 'n', repository: WEB, digest: D1, optional: true }]);
  });

  test('an unpinned service (allowUnpinned) is checked for presence only', () => {
    const report = compareDrift([{ service: 'web', repository: WEB }], [running({ name: 'web-1', digest: D3 })], { maxRestarts: 0 });
    assert.deepEqual(report.differences, []);
  });

  test('expectedFromLock takes each image under its name, without the skipped ones', () => {
    const lock: ImageLock = {
      schemaVersion: 1,
      createdAt: '2026-01-01T00:00:00.000Z',
      images: [
        { name: 'web', repository: WEB, tags: ['1'], digest: D1, ref: `${WEB}@${D1}`, source: 'built', platforms: ['linux/amd64'] },
        { name: 'tests', repository: 'registry.example:5000/shop/tests', tags: ['1'], digest: D3, ref: `registry.example:5000/shop/tests@${D3}`, source: 'built', platforms: ['linux/amd64'] },
      ],
    };
    assert.deepEqual(expectedFromLock(lock, ['tests']), [{ service: 'web', repository: WEB, digest: D1 }]);
  });
});

describe('the report', () => {
  const outcome = { title: 'ComposeDeploy verify: prod', where: "Project 'shop-prod' on the local engine", lockName: 'image-lock.json', failOnDrift: true };

  test('the table has one row per container, the drift in words', () => {
    const report = compareDrift(expected, [running({ name: 'shop-prod-web-1', digest: D3, byHand: 'x' })], { maxRestarts: 0 });
    const md = driftMarkdown(report, outcome, { maxRestarts: 0 });
    assert.match(md, /^### ComposeDeploy verify: prod$/m);
    assert.match(md, /\*\*Drift:\*\* 3 differences from the image lock\./);
    assert.match(md, /\| web \| shop-prod-web-1 \| `111111111111` \| `333333333333` \| running \(healthy\) \| 0 \| ❌ other image, started by hand \|/);
    assert.match(md, /\| cache \| — \| `222222222222` \| — \| not running \| — \| ❌ missing \|/);
    assert.match(driftMarkdown(compareDrift(expected, ok, { maxRestarts: 0 }), outcome, { maxRestarts: 0 }), /\*\*No drift:\*\*/);
  });

  test('failOnDrift throws with every difference; without it each is a warning', () => {
    const report = compareDrift(expected, [ok[0]], { maxRestarts: 0 });
    const logs: string[] = [];
    const log = { info: (m: string) => logs.push(m), warn: (m: string) => logs.push(`WARNING: ${m}`) };
    assert.throws(() => concludeDrift(report, outcome, log), (err: Error) => err instanceof DriftError && /differs from the image lock in 1 way:\n {2}cache is not running/.test(err.message));
    concludeDrift(report, { ...outcome, failOnDrift: false }, log);
    assert.ok(logs.some((l) => /^WARNING: Drift: cache is not running/.test(l)));
    assert.ok(logs.some((l) => /failOnDrift is false/.test(l)));
  });

  test('maxRestarts must be a whole number from 0', () => {
    assert.throws(() => checkDriftInputs({ maxRestarts: -1 }), /Input 'maxRestarts' must be a whole number from 0 to 1000, not -1/);
    assert.throws(() => checkDriftInputs({ maxRestarts: 1.5 }), /Input 'maxRestarts'/);
    checkDriftInputs({ maxRestarts: 0 });
  });
});

describe('whose containers', () => {
  const compose = {
    'com.docker.compose.project': 'shop-prod',
    'com.docker.compose.service': 'web',
    'com.docker.compose.oneoff': 'False',
    'com.docker.compose.config-hash': 'abc',
    'com.docker.compose.container-number': '1',
    'com.docker.compose.project.config_files': '/agent/_temp/outer-loop/compose-deploy/shop-prod.compose.yml',
  };

  test('ComposeDeploy: compose up of the rendered file (or the rollback file) is ours; anything else was started by hand', () => {
    assert.equal(composeStartedByHand(compose, 'shop-prod'), undefined);
    assert.equal(composeStartedByHand({ ...compose, 'com.docker.compose.project.config_files': '/tmp/x/shop-prod.rollback.compose.yml' }, 'shop-prod'), undefined);
    assert.match(composeStartedByHand({ ...compose, 'com.docker.compose.oneoff': 'True' }, 'shop-prod') ?? '', /one-off container/);
    const byRun = { 'com.docker.compose.project': 'shop-prod', 'com.docker.compose.service': 'web' };
    assert.match(composeStartedByHand(byRun, 'shop-prod') ?? '', /not those Compose gives the containers it creates \(com\.docker\.compose\.config-hash, com\.docker\.compose\.container-number, com\.docker\.compose\.project\.config_files\)/);
    assert.match(composeStartedByHand({ ...compose, 'com.docker.compose.project.config_files': '/home/me/docker-compose.yml' }, 'shop-prod') ?? '', /Compose created it from \/home\/me\/docker-compose\.yml, not from the file ComposeDeploy rendered \(shop-prod\.compose\.yml\)/);
  });

  test('Kubernetes: applied by the field manager, and the images each rendered workload pins', () => {
    const applied = { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web', managedFields: [{ manager: 'container-outer-loop', operation: 'Apply' }] } } as KubeObject;
    assert.equal(appliedBy(applied, 'container-outer-loop'), true);
    assert.equal(appliedBy({ ...applied, metadata: { name: 'web', managedFields: [{ manager: 'kubectl-create', operation: 'Update' }] } }, 'container-outer-loop'), false);
    const deployment = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'web' },
      spec: { template: { spec: { initContainers: [{ name: 'init', image: `${CACHE}@${D2}` }], containers: [{ name: 'web', image: `${WEB}@${D1}` }] } } },
    } as KubeObject;
    const service = { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web' } } as KubeObject;
    assert.deepEqual(expectedFromObjects([deployment, service]), [
      { service: 'web', container: 'init', repository: CACHE, digest: D2 },
      { service: 'web', container: 'web', repository: WEB, digest: D1 },
    ]);
  });
});
