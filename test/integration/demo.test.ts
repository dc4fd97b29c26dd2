// The example pipeline, end to end with the local runner: build → test → push → QA → staging, and
// the Kubernetes stage that renders pinned manifests without a cluster.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import { test } from 'node:test';
import { runDemo } from '../../scripts/demo';
import { pinnedVersion, stackFromEnv } from '../support/stack';

// On the legacy pass: the quick start (`npm run demo`: no engine is running here, so the private
// Debian engine, with the Compose the machine has: v1 only, in that pass). On the current pass:
// `npm run demo -- --stack current --kubernetes`, with the pipeline's Kubernetes QA and staging
// stages deploying to the local control plane.
const current = stackFromEnv() === 'current';

test(`npm run demo${current ? ' -- --stack current --kubernetes' : ''}: the digests in the lock are the digests running in qa and staging${current ? ', and in Kubernetes' : ''}`, async () => {
  const lines: string[] = [];
  const result = await runDemo({ keep: false, stack: current ? 'current' : undefined, kubernetes: current, out: (l) => lines.push(l) });
  const log = lines.join('\n');
  assert.equal(result.ok, true, log);
  const said = lines.find((l) => l.startsWith('Docker engine: ')) ?? '(nothing said)';
  if (current) assert.match(said, new RegExp(`\\(private current engine, started for the demo\\): Docker 29.*containerd image store\\. Compose: docker compose ${pinnedVersion('compose').slice(1).replace(/\./g, '\\.')}$`));
  else assert.match(said, /\(private legacy engine, started for the demo\): Docker 20\.10\.\d+.*classic image store\. Compose: docker-compose 1\.29\.\d+$/);
  for (const service of ['web', 'api', 'cache']) {
    assert.match(result.lockDigests[service] ?? '', /^sha256:[a-f0-9]{64}$/, service);
    assert.equal(result.running.qa[service], result.lockDigests[service], `qa ${service}`);
    assert.equal(result.running.staging[service], result.lockDigests[service], `staging ${service}`);
    if (current) {
      assert.equal(result.running['kubernetes-qa']?.[service], result.lockDigests[service], `kubernetes-qa ${service}`);
      assert.equal(result.running['kubernetes-staging']?.[service], result.lockDigests[service], `kubernetes-staging ${service}`);
    }
  }
  assert.equal(Object.keys(result.running).length, current ? 4 : 2, `environments: ${Object.keys(result.running).join(', ')}`);
  // The Kubernetes stage (renderOnly): every image of the lock that a plain `compose up` starts is in
  // the manifests as repository@digest, no image by tag; the test runner (profile 'test') is not.
  const manifests = Object.values(result.kubernetesManifests).join('\n');
  assert.ok(manifests, `no kubernetes-manifests artifact\n${log}`);
  const images = [...manifests.matchAll(/^\s*-?\s*image: (\S+)/gm)].map((m) => m[1].replace(/^["']|["']$/g, ''));
  const expected = (result.lock?.images ?? []).filter((i) => i.name !== 'tests').map((i) => `${i.repository}@${i.digest}`);
  assert.deepEqual([...new Set(images)].sort(), expected.sort(), 'the manifests run exactly the lock\'s digests');
  assert.deepEqual(expected.length, 3, 'web, api and cache (built, built, resolved)');
  for (const image of images) assert.doesNotMatch(image, /^[^@]*:[\w][\w.-]{0,127}$/, `${image} is a reference by tag`);
  assert.ok(result.lock?.images.some((i) => i.name === 'tests'), 'the lock has the test runner, built and pushed');
  assert.doesNotMatch(manifests, /shop\/tests/, 'the profile service is not deployed');
  const report = fs.readFileSync(result.reportFile, 'utf8');
  assert.match(report, /\| Shop integration tests \| 3 \| 0 \| 0 \|/);
  assert.match(report, /\| qa \| QA \| Succeeded \|/);
  assert.match(report, /\| staging \| Staging \| Succeeded \|/);
  // The staging stage shows its promotion diff (diffOnly) before it deploys: QA runs the release, staging does not yet.
  assert.match(report, /## Summary from What this release changes in staging[\s\S]*?The release (changes|changes nothing)/);
  assert.match(report, /\| Kubernetes \| render_kubernetes \| Convert, pin by digest and publish the manifests \| Succeeded/);
  if (current) assert.match(report, /\| kubernetes-staging \| KubernetesStaging \| Succeeded \| web: `[^`]+@sha256:/);
  else assert.match(lines.join('\n'), /Stage Kubernetes QA — skipped/);
});
