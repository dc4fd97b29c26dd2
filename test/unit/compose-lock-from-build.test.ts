// lockFromBuild against a double of the Azure DevOps Build REST API (azure-devops-node-api unchanged).
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { lockFromBuild, readZip, extract } from '../../tasks/lib/lock/from-build';
import { readLock } from '../../tasks/lib/lock/file';
import { DevOpsDouble, makeZip, startDevOpsDouble } from '../support/devops-double';

const DIGEST = (c: string) => `sha256:${c.repeat(64)}`;
function lock(buildNumber: string, digest: string): string {
  return JSON.stringify({
    schemaVersion: 1,
    createdAt: '2026-11-22T05:40:00.000Z',
    buildNumber,
    images: [{ name: 'web', repository: 'registry.example.com/shop/web', tags: [buildNumber], digest, ref: `registry.example.com/shop/web@${digest}`, source: 'built', platforms: ['linux/amd64'] }],
  });
}

let double: DevOpsDouble;
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'col-lfb-'));

before(async () => {
  double = await startDevOpsDouble({
    definitions: [
      { id: 7, name: 'shop-ci' },
      { id: 8, name: 'twin', path: '\\a' },
      { id: 9, name: 'twin', path: '\\b' },
      { id: 10, name: 'secret-ci', deny: true },
    ],
    builds: [
      { id: 100, definitionId: 7, buildNumber: '20261120.1', result: 'succeeded', finishTime: '2026-11-20T10:00:00Z', artifacts: { 'image-lock': { 'image-lock.json': lock('20261120.1', DIGEST('a')) } } },
      { id: 101, definitionId: 7, buildNumber: '20261121.1', result: 'succeeded', finishTime: '2026-11-21T10:00:00Z', sourceBranch: 'refs/heads/release', artifacts: { 'image-lock': { 'image-lock.json': lock('20261121.1', DIGEST('b')) }, other: { 'readme.txt': 'hi' } } },
      { id: 102, definitionId: 7, buildNumber: '20261122.1', result: 'failed', finishTime: '2026-11-22T10:00:00Z', artifacts: { 'image-lock': { 'image-lock.json': lock('20261122.1', DIGEST('c')) } } },
      { id: 200, definitionId: 8, buildNumber: 'x', result: 'succeeded', finishTime: '2026-11-22T10:00:00Z', artifacts: {} },
    ],
  });
});
after(async () => {
  await double?.stop();
  fs.rmSync(work, { recursive: true, force: true });
});

function base(over: Partial<Parameters<typeof lockFromBuild>[0]> = {}) {
  const secrets: string[] = [];
  return {
    secrets,
    options: { collectionUri: double.collectionUri, project: 'shop', pipeline: 'shop-ci', artifactName: 'image-lock', accessToken: double.token, destDir: fs.mkdtempSync(path.join(work, 'd-')), setSecret: (s: string) => void secrets.push(s), ...over },
  };
}

describe('lockFromBuild', () => {
  test('latest successful run by pipeline name: the lock of that run, token registered and not sent to the blob host', async () => {
    const { options, secrets } = base();
    const file = await lockFromBuild(options);
    assert.equal(file, path.join(options.destDir, 'image-lock.json'));
    const got = readLock(file);
    assert.equal(got.buildNumber, '20261121.1', 'the failed later run is skipped; the latest successful one is used');
    assert.equal(got.images[0].digest, DIGEST('b'));
    assert.ok(secrets.includes(double.token));
    const blob = double.requests.filter((r) => r.url.startsWith('blob:'));
    assert.ok(blob.length > 0, 'the artifact was fetched through the redirect');
    assert.ok(blob.every((r) => r.authorization === undefined), 'the token did not follow the redirect to another location');
  });

  test('a given run id, by pipeline id; a branch filter', async () => {
    assert.equal(readLock(await lockFromBuild(base({ pipeline: '7', runId: '100' }).options)).buildNumber, '20261120.1');
    assert.equal(readLock(await lockFromBuild(base({ branch: 'main' }).options)).buildNumber, '20261120.1');
    assert.equal(readLock(await lockFromBuild(base({ branch: 'refs/heads/release' }).options)).buildNumber, '20261121.1');
  });

  test('clear errors: unknown pipeline, twin names, run of another pipeline, missing artifact, no lock inside, bad token, 403, no token', async () => {
    await assert.rejects(lockFromBuild(base({ pipeline: 'nope' }).options), /no build pipeline named 'nope' in project 'shop'/);
    await assert.rejects(lockFromBuild(base({ pipeline: 'twin' }).options), /2 pipelines are named 'twin'.*id 8.*id 9/);
    await assert.rejects(lockFromBuild(base({ runId: '200' }).options), /run 200 belongs to pipeline 'twin'/);
    await assert.rejects(lockFromBuild(base({ runId: 'abc' }).options), /Input 'lockFromBuild'.*must be a number/);
    await assert.rejects(lockFromBuild(base({ artifactName: 'missing' }).options), /Input 'lockArtifactName'.*no artifact named 'missing'/);
    await assert.rejects(lockFromBuild(base({ artifactName: 'other' }).options), /has no image-lock\.json \(it holds: other\/readme\.txt\)/);
    await assert.rejects(lockFromBuild(base({ accessToken: 'wrong' }).options), /refused the job's access token.*401/);
    await assert.rejects(lockFromBuild(base({ pipeline: '10' }).options), /may not read the build pipeline.*403/);
    await assert.rejects(lockFromBuild(base({ accessToken: '' }).options), /System\.AccessToken/);
    await assert.rejects(lockFromBuild(base({ project: 'other' }).options), /404|project/);
  });

  test('the zip reader checks CRCs and reads stored entries', () => {
    const zip = makeZip({ 'a/image-lock.json': '{"x":1}', 'b.txt': 'hello' });
    const entries = readZip(zip, 'z');
    assert.deepEqual(entries.map((e) => e.name), ['a/image-lock.json', 'b.txt']);
    assert.equal(extract(zip, entries[1], 'z').toString(), 'hello');
    const corrupt = Buffer.from(zip);
    corrupt[35 + 'a/image-lock.json'.length] ^= 0xff; // inside the first deflated payload
    assert.throws(() => extract(corrupt, readZip(corrupt, 'z')[0], 'z'), /cannot be extracted/);
    assert.throws(() => readZip(Buffer.from('not a zip at all, really not'), 'z'), /not a readable zip/);
  });
});
