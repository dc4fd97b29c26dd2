// SOURCE_DATE_EPOCH for reproducible builds: the commit time from git, an explicit variable first,
// a warning (never a failure) without either.
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, test } from 'node:test';
import { sourceDateEpoch } from '../../tasks/lib/build/source-date';
import { buildQuery } from '../../tasks/lib/docker/build';
import { ReadablePaths } from '../../tasks/lib/readable-paths';
import { createTestContext } from '../support/context';

const repo = fs.mkdtempSync(path.join(os.tmpdir(), 'col-sde-'));
after(() => fs.rmSync(repo, { recursive: true, force: true }));

test('the commit time of the commit named, from git; an explicit SOURCE_DATE_EPOCH wins; a bad one is refused', () => {
  const env = { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@e', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@e' };
  execFileSync('git', ['init', '-q'], { cwd: repo });
  execFileSync('git', ['commit', '-q', '--allow-empty', '-m', 'one'], { cwd: repo, env: { ...env, GIT_COMMITTER_DATE: '2026-01-02T03:04:05Z' } });
  const first = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: repo, encoding: 'utf8' }).trim();
  execFileSync('git', ['commit', '-q', '--allow-empty', '-m', 'two'], { cwd: repo, env: { ...env, GIT_COMMITTER_DATE: '2026-05-06T07:08:09Z' } });
  const ctx = createTestContext();
  assert.equal(sourceDateEpoch({ commit: first, sourcesDirectory: repo, env: {} }, ctx), Date.parse('2026-01-02T03:04:05Z') / 1000);
  assert.equal(sourceDateEpoch({ sourcesDirectory: repo, env: {} }, ctx), Date.parse('2026-05-06T07:08:09Z') / 1000, 'HEAD when no commit is named');
  assert.equal(sourceDateEpoch({ commit: first, sourcesDirectory: repo, env: { SOURCE_DATE_EPOCH: '1700000000' } }, ctx), 1700000000);
  assert.throws(() => sourceDateEpoch({ env: { SOURCE_DATE_EPOCH: 'yesterday' } }, ctx), /SOURCE_DATE_EPOCH must be whole seconds/);
  assert.deepEqual(ctx.logs, []);
});

test('no git repository or an unknown commit: a warning that says what to do, and the clock', () => {
  const ctx = createTestContext();
  assert.equal(sourceDateEpoch({ commit: 'f'.repeat(40), sourcesDirectory: repo, env: {} }, ctx), undefined);
  assert.equal(sourceDateEpoch({ env: {} }, ctx), undefined);
  assert.equal(ctx.logs.length, 2);
  assert.match(ctx.logs[0], /^WARNING: No commit time for commit ffffffffffff .*Set SOURCE_DATE_EPOCH, or turn reproducible off/);
});

test('the /build query: SOURCE_DATE_EPOCH as a build arg (a build arg of the same name wins), the timestamp rewrite only where the engine has it', () => {
  const spec = { title: 'x', context: repo, dockerfile: path.join(repo, 'Dockerfile'), readable: new ReadablePaths(repo, []), tags: ['x:1'], buildArgs: {}, labels: {}, pull: false, noCache: false, cacheFrom: [], extraHosts: [], ulimits: [], secrets: [], ssh: [], platforms: [], cacheTo: [], sourceDateEpoch: 1700000000 };
  const rewriting = buildQuery(spec, 'Dockerfile', true, true);
  assert.deepEqual(rewriting.buildargs, { SOURCE_DATE_EPOCH: '1700000000' });
  assert.deepEqual(JSON.parse(String(rewriting.outputs)), [{ Type: 'moby', Attrs: { 'rewrite-timestamp': 'true', unpack: 'false' } }]);
  assert.equal(buildQuery(spec, 'Dockerfile', true, false).outputs, undefined);
  assert.deepEqual(buildQuery({ ...spec, buildArgs: { SOURCE_DATE_EPOCH: '1' } }, 'Dockerfile', true, true).buildargs, { SOURCE_DATE_EPOCH: '1' });
  assert.equal(buildQuery({ ...spec, sourceDateEpoch: undefined }, 'Dockerfile', true, true).outputs, undefined);
});
