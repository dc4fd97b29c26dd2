// ContainerizedTest's results on their way out of the container, without an engine: the archive
// the Engine API sends (a tar stream, built here with tar-stream) extracted into a local folder
// that may hold hostile links; and the ##vso[results.publish] commands made from the files.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { describe, test } from 'node:test';
import * as tar from 'tar-stream';
import { extractResults, MAX_PUBLISH_LINE_CHARS, publishBatches } from '../../tasks/lib/containerized-test/results';
import { createTestContext } from '../support/context';

function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'col-results-'));
}

type Entry = { name: string; type?: 'file' | 'directory' | 'symlink' | 'link'; content?: string; linkname?: string };

/** A tar stream shaped like GET /containers/{id}/archive?path=/results: the folder is the first component. */
function archive(entries: Entry[]): Readable {
  const pack = tar.pack();
  for (const e of entries) {
    const type = e.type ?? 'file';
    if (type === 'file') pack.entry({ name: e.name, type }, e.content ?? '');
    else pack.entry({ name: e.name, type, linkname: e.linkname });
  }
  pack.finalize();
  return pack as unknown as Readable;
}

describe('results extraction', () => {
  test('a symlink already in the results folder is not followed: nothing lands where it points, and the entry is named', async () => {
    const dest = tempDir();
    const outside = tempDir();
    fs.symlinkSync(outside, path.join(dest, 'reports'));
    fs.symlinkSync(path.join(outside, 'planted.xml'), path.join(dest, 'top.xml'));
    const ctx = createTestContext();
    const outcome = await extractResults(
      archive([
        { name: 'results', type: 'directory' },
        { name: 'results/reports', type: 'directory' },
        { name: 'results/reports/x.xml', content: '<testsuite/>' },
        { name: 'results/top.xml', content: '<testsuite/>' },
        { name: 'results/ok.xml', content: '<testsuite/>' },
      ]),
      '/results',
      dest,
      ctx,
    );
    assert.deepEqual(fs.readdirSync(outside), [], 'nothing is written through the links');
    assert.deepEqual(outcome.files, ['ok.xml']);
    assert.equal(fs.readFileSync(path.join(dest, 'ok.xml'), 'utf8'), '<testsuite/>');
    const warning = ctx.logs.find((l) => l.startsWith('WARNING:')) ?? '';
    assert.match(warning, /reports\/x\.xml/);
    assert.match(warning, /top\.xml/);
    assert.match(warning, /symbolic link/);
  });

  test('an existing hard link in the results folder is replaced, not written through', async () => {
    const dest = tempDir();
    const outside = tempDir();
    fs.writeFileSync(path.join(outside, 'victim'), 'original');
    fs.linkSync(path.join(outside, 'victim'), path.join(dest, 'a.xml'));
    const outcome = await extractResults(archive([{ name: 'results/a.xml', content: '<testsuite/>' }]), '/results', dest, createTestContext());
    assert.deepEqual(outcome.files, ['a.xml']);
    assert.equal(fs.readFileSync(path.join(outside, 'victim'), 'utf8'), 'original');
    assert.equal(fs.readFileSync(path.join(dest, 'a.xml'), 'utf8'), '<testsuite/>');
  });

  test('two hard-linked result files: both are copied; a link to a file not copied is named in the warning', async () => {
    const dest = tempDir();
    const ctx = createTestContext();
    const outcome = await extractResults(
      archive([
        { name: 'results/a.xml', content: '<testsuite name="a"/>' },
        { name: 'results/sub/b.xml', type: 'link', linkname: 'results/a.xml' },
        { name: 'results/c.xml', type: 'link', linkname: 'etc/shadow' },
        { name: 'results/d.xml', type: 'symlink', linkname: '/etc/passwd' },
      ]),
      '/results',
      dest,
      ctx,
    );
    assert.deepEqual(outcome.files, ['a.xml', 'sub/b.xml']);
    assert.equal(fs.readFileSync(path.join(dest, 'sub', 'b.xml'), 'utf8'), '<testsuite name="a"/>');
    const warning = ctx.logs.find((l) => l.startsWith('WARNING:')) ?? '';
    assert.match(warning, /^WARNING: 2 entries of '\/results' were not copied/);
    assert.match(warning, /c\.xml \(a hard link to 'etc\/shadow'/);
    assert.match(warning, /d\.xml \(a symbolic link\)/);
  });
});

describe('results publishing', () => {
  test('many files: several commands, each line bounded, every file once, in order', () => {
    const files = Array.from({ length: 20_000 }, (_, i) => `/agent/_work/_temp/results/suite-${String(i).padStart(6, '0')}.xml`);
    const batches = publishBatches(files, createTestContext());
    assert.ok(batches.length > 1);
    for (const batch of batches) assert.ok(batch.join(',').length <= MAX_PUBLISH_LINE_CHARS, `a batch of ${batch.join(',').length} characters`);
    assert.deepEqual(batches.flat(), files);
  });

  test('a comma in a file name is refused by name (the command separates files with commas and has no escape)', () => {
    const ctx = createTestContext();
    const batches = publishBatches(['/r/a.xml', '/r/b,c.xml', '/r/d.xml'], ctx);
    assert.deepEqual(batches, [['/r/a.xml', '/r/d.xml']]);
    assert.ok(ctx.logs.some((l) => l.startsWith('WARNING:') && l.includes("'/r/b,c.xml'") && l.includes('comma')), ctx.logs.join('\n'));
  });
});
