import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import * as tar from 'tar-stream';
import { packBuildContext } from '../../tasks/lib/docker/context';
import { IgnoreMatcher, parseDockerignore } from '../../tasks/lib/docker/ignore';
import { ReadablePaths } from '../../tasks/lib/readable-paths';
import { decodeBuildKitTrace, followStream, isRegistryAuthFailure, pushedDigest } from '../../tasks/lib/docker/stream';
import { Readable } from 'node:stream';

function tree(files: Record<string, string>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'col-ctx-'));
  for (const [name, body] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), body);
  }
  return dir;
}

async function entries(stream: Readable): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const extract = tar.extract();
  extract.on('entry', (header, body, next) => {
    const chunks: Buffer[] = [];
    body.on('data', (c: unknown) => chunks.push(c as Buffer));
    body.on('end', () => {
      if (header.type === 'file') out.set(header.name, Buffer.concat(chunks).toString());
      next();
    });
  });
  await new Promise((resolve, reject) => {
    extract.on('finish', () => resolve(undefined));
    extract.on('error', reject);
    stream.pipe(extract);
  });
  return out;
}

test('.dockerignore follows Docker: last match wins, ** spans folders, exceptions', () => {
  const m = new IgnoreMatcher(parseDockerignore('# comment\nnode_modules\n**/*.log\n!keep.log\n/secret.txt\ndocs/*\n!docs/README.md\n'));
  assert.equal(m.ignores('node_modules/x/y.js'), true);
  assert.equal(m.ignores('a/b/c.log'), true);
  assert.equal(m.ignores('keep.log'), false);
  assert.equal(m.ignores('secret.txt'), true);
  assert.equal(m.ignores('sub/secret.txt'), false);
  assert.equal(m.ignores('docs/guide.md'), true);
  assert.equal(m.ignores('docs/README.md'), false);
  assert.equal(m.ignores('src/index.ts'), false);
});

test('the context tar honours .dockerignore but always carries the Dockerfile', async () => {
  const dir = tree({ Dockerfile: 'FROM x', '.dockerignore': 'Dockerfile\n*.secret\nbuild/\n', 'app.js': 'ok', 'a.secret': 'no', 'build/out.bin': 'no' });
  const ctx = await packBuildContext(dir, path.join(dir, 'Dockerfile'), { readable: new ReadablePaths(dir, []) });
  const files = await entries(ctx.tar);
  assert.equal(ctx.dockerfile, 'Dockerfile');
  assert.deepEqual([...files.keys()].sort(), ['.dockerignore', 'Dockerfile', 'app.js']);
});

test('<Dockerfile>.dockerignore wins, and a Dockerfile outside the context is added', async () => {
  const dir = tree({ 'ctx/app.js': 'ok', 'ctx/skip.txt': 'x', 'ctx/.dockerignore': 'app.js\n', 'docker/api.Dockerfile': 'FROM y', 'docker/api.Dockerfile.dockerignore': 'skip.txt\n' });
  const ctx = await packBuildContext(path.join(dir, 'ctx'), path.join(dir, 'docker/api.Dockerfile'), { readable: new ReadablePaths(dir, []) });
  const files = await entries(ctx.tar);
  assert.equal(files.get(ctx.dockerfile), 'FROM y');
  assert.equal(files.has('app.js'), true);
  assert.equal(files.has('skip.txt'), false);
});

test('missing context or Dockerfile is an error naming the path', async () => {
  const dir = tree({ 'x.txt': '' });
  const readable = new ReadablePaths(dir, []);
  await assert.rejects(packBuildContext(path.join(dir, 'nope'), path.join(dir, 'Dockerfile'), { readable }), /build context '.*nope' is not a folder/);
  await assert.rejects(packBuildContext(dir, path.join(dir, 'Dockerfile'), { readable }), /Dockerfile '.*Dockerfile' does not exist/);
});

test('stream errors inside a 200 response become DockerError with the engine message', async () => {
  const lines = ['{"stream":"Step 1/2 : FROM x\\n"}', '{"errorDetail":{"message":"The command \'/bin/sh -c exit 3\' returned a non-zero code: 3"},"error":"..."}', ''];
  const seen: string[] = [];
  await assert.rejects(followStream(Readable.from([lines.join('\n')]), 'Building api', { onLine: (l) => seen.push(l) }), /Building api failed: The command .* returned a non-zero code: 3/);
  assert.deepEqual(seen, ['Step 1/2 : FROM x']);
  let digest = '';
  await followStream(Readable.from(['{"status":"latest: digest: sha256:ab size: 1"}\n{"aux":{"Tag":"latest","Digest":"sha256:ab', 'c","Size":1}}\n']), 'Pushing', {
    onEvent: (e) => {
      if (e.aux && typeof e.aux === 'object' && 'Digest' in e.aux) digest = String(e.aux.Digest);
    },
  });
  assert.equal(digest, 'sha256:abc', 'a JSON line split across chunks is joined');
  assert.deepEqual(decodeBuildKitTrace(''), []);
});

test('the pushed digest comes from aux (classic store) or the status line (containerd store), for the pushed tag only', () => {
  const digest = `sha256:${'a'.repeat(64)}`;
  assert.equal(pushedDigest({ aux: { Tag: '7', Digest: digest, Size: 405 } }, '7'), digest);
  assert.equal(pushedDigest({ status: `7: digest: ${digest} size: 405` }, '7'), digest);
  assert.equal(pushedDigest({ status: `latest: digest: ${digest} size: 405` }, '7'), undefined);
  assert.equal(pushedDigest({ status: 'Pushed', id: 'a2e4346735cb' }, '7'), undefined);
  assert.equal(pushedDigest({ status: `7: digest: sha256:short size: 1` }, '7'), undefined);
});

test('a refused login is told apart from a registry whose port holds the digits 401', () => {
  assert.equal(isRegistryAuthFailure('unauthorized: authentication required'), true);
  assert.equal(isRegistryAuthFailure('received unexpected HTTP status: 401 Unauthorized'), true);
  assert.equal(isRegistryAuthFailure('Pushing 127.0.0.1:40197/shop/app:1 failed: toomanyrequests: 429'), false);
});
