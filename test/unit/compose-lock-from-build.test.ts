// lockFromBuild against a double of the Azure DevOps Build REST API (azure-devops-node-api unchanged),
// and readLockInput, the deploy tasks' lock inputs (lockFile, lockFromBuild, the downloaded default).
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { lockFromBuild, readZip, extract } from '../../tasks/lib/lock/from-build';
import { readLock } from '../../tasks/lib/lock/file';
import type { TaskInputs } from '../../tasks/lib/pipeline';
import { readLockInput } from '../../tasks/lib/pipeline/lock-input';
import { inputDefault } from '../../tasks/lib/pipeline/task-json';
import composeDeployTask from '../../tasks/compose-deploy/task.json';
import { createTestContext } from '../support/context';
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

describe('readLockInput (ComposeDeploy and KubernetesDeploy)', () => {
  /** A stand-in for TaskInputs: unset inputs are undefined (or their task.json default). */
  const inputs = (values: Record<string, string>): Pick<TaskInputs, 'path' | 'string' | 'required'> => {
    const get = (name: string) => values[name] || inputDefault(composeDeployTask, name, () => undefined);
    return { string: get, path: get, required: (name) => get(name) as string };
  };
  const file = (name: string, content: string) => {
    const p = path.join(work, name);
    fs.writeFileSync(p, content);
    return p;
  };

  test('lockFile on disk; a missing lockFile names the input; a file that is not a lock says so', async () => {
    const given = file('given.json', lock('1.0', DIGEST('d')));
    const read = await readLockInput(inputs({ lockFile: given }), createTestContext());
    assert.deepEqual([read.lock?.buildNumber, read.input, read.source], ['1.0', 'lockFile', given]);
    await assert.rejects(readLockInput(inputs({ lockFile: path.join(work, 'nolock.json') }), createTestContext()), /Input 'lockFile': '.*nolock\.json' does not exist\. Download the image-lock artifact first, or set lockFromBuild/);
    await assert.rejects(readLockInput(inputs({ lockFile: file('bad-lock.json', '{"schemaVersion": 1}') }), createTestContext()), /is not a valid image lock: createdAt/);
  });

  test('lockFromBuild when lockFile is not on disk: fetched with the job token, named as the artifact of that run', async () => {
    const ctx = createTestContext({ 'System.CollectionUri': double.collectionUri, 'System.TeamProject': 'shop', 'System.AccessToken': double.token });
    const read = await readLockInput(inputs({ lockFile: path.join(work, 'not-downloaded.json'), lockFromBuild: 'shop-ci', lockFromBuildRun: '100' }), ctx);
    assert.deepEqual([read.lock?.buildNumber, read.input], ['20261120.1', 'lockFromBuild']);
    assert.match(read.source ?? '', /^artifact 'image-lock' of pipeline 'shop-ci' run 100 \(.*image-lock\.json\)$/);
    assert.ok(ctx.secrets.has(double.token));
  });

  test('nothing given: the image-lock artifact in $(Pipeline.Workspace), else no lock', async () => {
    const workspace = fs.mkdtempSync(path.join(work, 'ws-'));
    assert.deepEqual(await readLockInput(inputs({}), createTestContext({ 'Pipeline.Workspace': workspace })), { input: 'lockFile' });
    fs.mkdirSync(path.join(workspace, 'image-lock'));
    fs.writeFileSync(path.join(workspace, 'image-lock', 'image-lock.json'), lock('2.0', DIGEST('e')));
    const ctx = createTestContext({ 'Pipeline.Workspace': workspace });
    const read = await readLockInput(inputs({}), ctx);
    assert.equal(read.lock?.buildNumber, '2.0');
    assert.match(ctx.logs.join('\n'), /Image lock: .*image-lock\.json \(the image-lock artifact this job downloaded\)/);
  });
});
