// Test results: copied out of the (stopped) test container through the Engine API archive endpoint
// (GET /containers/{id}/archive), so it works against a remote engine where a bind mount would not;
// extracted safely into a local folder; counted; published with ##vso[results.publish].
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import type Dockerode from 'dockerode';
import type * as tarStream from 'tar-stream';
import type { TaskContext } from '../context';
import { DockerError } from '../errors';
import { lazyRequire } from '../lazy';
import { countTests, MalformedXmlError, ResultsFormat, TestCounts } from './xml-count';

const tar = lazyRequire<typeof tarStream>(() => require('tar-stream'));

/** Refuse archives larger than this (a runaway results folder must not fill the agent's disk). */
export const MAX_RESULTS_BYTES = 1024 * 1024 * 1024;
/** Result files larger than this are published but not counted. */
const MAX_COUNTED_FILE_BYTES = 256 * 1024 * 1024;

export interface CopyOutcome {
  /** Files written, relative to the destination. */
  files: string[];
  /** Why nothing was copied, when nothing was. */
  missing?: string;
}

/**
 * Copies the folder `containerPath` of `container` into `destination` (its contents, not the folder
 * itself). Only regular files and folders are written; entries that would land outside
 * `destination`, links and devices are skipped.
 */
export async function copyResultsOut(docker: Dockerode, containerId: string, containerPath: string, destination: string, ctx: TaskContext): Promise<CopyOutcome> {
  let archive: Readable;
  try {
    archive = (await docker.getContainer(containerId).getArchive({ path: containerPath })) as unknown as Readable;
  } catch (err) {
    const status = (err as { statusCode?: number }).statusCode;
    if (status === 404) return { files: [], missing: `'${containerPath}' does not exist in the test container` };
    throw new DockerError(`Could not copy '${containerPath}' out of the test container: ${(err as Error).message}`, { cause: err });
  }
  fs.mkdirSync(destination, { recursive: true });
  const root = path.resolve(destination);
  const files: string[] = [];
  let total = 0;
  let skipped = 0;
  await new Promise<void>((resolve, reject) => {
    const extract = tar().extract();
    extract.on('entry', (header, stream, next) => {
      // The archive holds the folder itself as its first component (`results/junit.xml`).
      const parts = header.name.split('/').filter((p) => p && p !== '.');
      const rel = parts.slice(1).join('/');
      const target = path.resolve(root, rel);
      const inside = target === root || target.startsWith(root + path.sep);
      const drain = () => {
        stream.on('end', () => next());
        stream.resume();
      };
      if (!inside || parts.some((p) => p === '..')) {
        skipped++;
        return drain();
      }
      if (header.type === 'directory') {
        fs.mkdirSync(target, { recursive: true });
        return drain();
      }
      if (header.type !== 'file' && header.type !== 'contiguous-file') {
        skipped++;
        return drain();
      }
      total += header.size ?? 0;
      if (total > MAX_RESULTS_BYTES) {
        stream.resume();
        extract.destroy(new DockerError(`The results folder '${containerPath}' is larger than ${MAX_RESULTS_BYTES / 1024 / 1024} MB; write fewer or smaller files.`));
        return;
      }
      if (rel === '') {
        // resultsPath named a file rather than a folder: keep its name.
        const file = path.join(root, parts[0]);
        files.push(parts[0]);
        return writeEntry(stream, file, next, (e) => extract.destroy(e));
      }
      fs.mkdirSync(path.dirname(target), { recursive: true });
      files.push(rel);
      writeEntry(stream, target, next, (e) => extract.destroy(e));
    });
    extract.on('finish', resolve);
    extract.on('error', reject);
    archive.on('error', reject);
    archive.pipe(extract);
  });
  if (skipped > 0) ctx.warn(`${skipped} entr${skipped === 1 ? 'y' : 'ies'} of '${containerPath}' (links, devices or paths outside the folder) were not copied.`);
  return { files: files.sort() };
}

/** A tar-stream entry (a streamx Readable); typed loosely because streamx's types are not node's. */
interface EntryStream {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  on(event: string, fn: (...args: any[]) => void): unknown;
  pause(): unknown;
  resume(): unknown;
}

/** Writes one tar entry to `file` with back-pressure (tar-stream's entries are streamx streams). */
function writeEntry(stream: EntryStream, file: string, next: () => void, fail: (err: Error) => void): void {
  const out = fs.createWriteStream(file, { mode: 0o644 });
  out.on('error', fail);
  out.on('drain', () => stream.resume());
  out.on('finish', () => next());
  stream.on('data', (chunk: Buffer) => {
    if (!out.write(chunk)) stream.pause();
  });
  stream.on('end', () => out.end());
  stream.on('error', (err: Error) => fail(err));
}

export interface ResultsSummary extends TestCounts {
  /** Result files (absolute) that were counted and are published. */
  files: string[];
  /** Files skipped because they were malformed. */
  malformed: string[];
}

/** The result files of `format` among `files` (or in the folder `files`): .trx for VSTest, .xml otherwise. */
export function resultFiles(files: string | string[], format: ResultsFormat): string[] {
  const ext = format === 'VSTest' ? '.trx' : '.xml';
  const all: string[] = [];
  const walk = (dir: string) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.isFile()) all.push(full);
    }
  };
  if (typeof files === 'string') {
    if (fs.existsSync(files)) walk(files);
  } else all.push(...files);
  return all.filter((f) => f.toLowerCase().endsWith(ext)).sort();
}

/** Counts every result file; malformed ones are reported as warnings and left out. */
export function summarizeResults(files: string[], format: ResultsFormat, ctx: TaskContext): ResultsSummary {
  const summary: ResultsSummary = { passed: 0, failed: 0, skipped: 0, files: [], malformed: [] };
  for (const file of files) {
    const size = fs.statSync(file).size;
    if (size > MAX_COUNTED_FILE_BYTES) {
      ctx.warn(`${path.basename(file)} is ${Math.round(size / 1024 / 1024)} MB; it is published but its tests are not counted here.`);
      summary.files.push(file);
      continue;
    }
    let counts: TestCounts;
    try {
      counts = countTests(fs.readFileSync(file, 'utf8'), format);
    } catch (err) {
      if (!(err instanceof MalformedXmlError)) throw err;
      ctx.warn(`Test results file '${path.basename(file)}' is not well-formed XML (${err.message}); it is not published. The exit code still decides the outcome.`);
      summary.malformed.push(file);
      continue;
    }
    if (counts.passed + counts.failed + counts.skipped === 0) {
      ctx.warn(`Test results file '${path.basename(file)}' has no ${format} test cases. Is testResultsFormat right?`);
    }
    summary.passed += counts.passed;
    summary.failed += counts.failed;
    summary.skipped += counts.skipped;
    summary.files.push(file);
  }
  return summary;
}
