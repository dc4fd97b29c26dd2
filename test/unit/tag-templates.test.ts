// The tags input's templates: filled from the agent variables and a real git repository's tags.
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, test } from 'node:test';
import { expandTagTemplates, gitTagOfCommit } from '../../tasks/lib/build/tag-templates';
import { InputError, InvalidReferenceError } from '../../tasks/lib/errors';
import { createTestContext } from '../support/context';

const SHA = '0123456789abcdef0123456789abcdef01234567';
const repo = fs.mkdtempSync(path.join(os.tmpdir(), 'col-tags-'));
after(() => fs.rmSync(repo, { recursive: true, force: true }));
const git = (...args: string[]) => execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.com', ...args], { cwd: repo, encoding: 'utf8' }).trim();

test('branch, sha7 and buildNumber come from the agent variables', () => {
  const ctx = createTestContext();
  const tags = expandTagTemplates(['{{branch}}', '{{sha7}}', 'b{{buildNumber}}', '{{ branch }}-{{sha7}}', 'latest'], { branch: 'refs/heads/feature/login', commit: SHA, buildNumber: '20240101.3' }, ctx, () => undefined);
  assert.deepEqual(tags, ['feature-login', '0123456', 'b20240101.3', 'feature-login-0123456', 'latest']);
  assert.deepEqual(expandTagTemplates(['{{branch}}'], { branch: 'refs/pull/42/merge' }, ctx, () => undefined), ['pr-42']);
});

test('semver, major and minor from refs/tags/v1.2.3; from git describe on the commit; left out with a warning without a version tag', () => {
  const ctx = createTestContext();
  assert.deepEqual(expandTagTemplates(['{{semver}}', '{{major}}', '{{major}}.{{minor}}', '{{sha7}}'], { branch: 'refs/tags/v1.2.3', commit: SHA }, ctx, () => assert.fail('the ref names the tag')), ['1.2.3', '1', '1.2', '0123456']);

  git('init', '-q');
  fs.writeFileSync(path.join(repo, 'a'), 'a');
  git('add', 'a');
  git('commit', '-qm', 'a');
  const commit = git('rev-parse', 'HEAD');
  const sources = { branch: 'refs/heads/main', commit, sourcesDirectory: repo };
  assert.equal(gitTagOfCommit(sources), undefined, 'no tag yet');
  const none = createTestContext();
  assert.deepEqual(expandTagTemplates(['{{semver}}', 'main'], sources, none), ['main']);
  assert.ok(none.logs.some((l) => /WARNING: The commit has no git tag, so tags with \{\{semver\}\}/.test(l)), none.logs.join('\n'));

  git('tag', 'v2.5.0-rc.1');
  const pre = createTestContext();
  assert.deepEqual(expandTagTemplates(['{{semver}}', '{{major}}', '{{major}}.{{minor}}'], sources, pre), ['2.5.0-rc.1']);
  assert.ok(pre.logs.some((l) => /'\{\{major\}\}' is left out: 2\.5\.0-rc\.1 is a pre-release/.test(l)));

  git('tag', '-a', 'v2.5.0', '-m', 'release');
  assert.equal(gitTagOfCommit(sources), 'v2.5.0');
  assert.deepEqual(expandTagTemplates(['{{semver}}', '{{major}}', '{{major}}.{{minor}}'], sources, createTestContext()), ['2.5.0', '2', '2.5']);

  const notVersion = createTestContext();
  assert.deepEqual(expandTagTemplates(['{{semver}}', 'x'], { branch: 'refs/tags/nightly' }, notVersion), ['x']);
  assert.ok(notVersion.logs.some((l) => /git tag 'nightly' is not a version/.test(l)));
});

test('an unknown template, a missing variable, and a template that gives an invalid tag are errors naming the input', () => {
  const ctx = createTestContext();
  assert.throws(() => expandTagTemplates(['{{date}}'], {}, ctx), (e: unknown) => e instanceof InputError && /^Input 'tags': '\{\{date\}\}' uses \{\{date\}\}, which is not a tag template\. Use \{\{branch\}\}/.test(e.message));
  assert.throws(() => expandTagTemplates(['{{sha7}}'], {}, ctx), /: Input 'tags': '\{\{sha7\}\}' uses \{\{sha7\}\}, but Build\.SourceVersion is not set/);
  assert.throws(() => expandTagTemplates(['{{branch}}'], { branch: 'refs/tags/v1.0.0' }, ctx), /the build is of refs\/tags\/v1\.0\.0, not of a branch/);
  assert.throws(() => expandTagTemplates(['{{buildNumber}}'], { buildNumber: 'Build #5' }, ctx), (e: unknown) => e instanceof InvalidReferenceError && /^Input 'tags': '\{\{buildNumber\}\}' gives 'Build #5'/.test(e.message));
  assert.throws(() => expandTagTemplates(['{{semver}}'], { branch: 'refs/tags/v1.0.0+build.7' }, ctx), /: Input 'tags': '\{\{semver\}\}' gives '1\.0\.0\+build\.7'/);
  assert.throws(() => expandTagTemplates(['-{{branch}}'], { branch: 'refs/heads/main' }, ctx), /: Input 'tags': '-\{\{branch\}\}' gives '-main'/);
  assert.throws(() => expandTagTemplates(['bad tag'], {}, ctx), /: Input 'tags': /);
});
