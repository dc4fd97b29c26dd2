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
import { lazyRequire } from '../util/lazy';
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

/** Copies the folder `containerPath` of the test container into `destination` (its contents, not the folder itself). */
export async function copyResultsOut(docker: Dockerode, containerId: string, containerPath: string, destination: string, ctx: TaskContext): Promise<CopyOutcome> {
  let archive: Readable;
  try {
    archive = (await docker.getContainer(containerId).getArchive({ path: containerPath, abortSignal: ctx.signal } as { path: string })) as unknown as Readable;
  } catch (err) {
    const status = (err as { statusCode?: number }).statusCode;
    if (status === 404) return { files: [], missing: `'${containerPath}' does not exist in the test container` };
    throw new DockerError(`Could not copy '${containerPath}' out of the test container: ${(err as Error).message}`, { cause: err });
  }
  return extractResults(archive, containerPath, destination, ctx);
}

/** Entries named in the warning about what was not copied; the rest are counted. */
const MAX_NAMED_ENTRIES = 20;

/**
 * Extracts the archive of `containerPath` into `destination`. Only regular files, folders and hard
 * links to files already copied are written; links, devices and paths outside the folder are named
 * in one warning. Nothing is written through a link already in `destination` (committed in the
 * repository, or left by an earlier step): every folder on the way is checked with lstat and by its
 * real path, and files are created anew with O_EXCL | O_NOFOLLOW.
 */
export async function extractResults(archive: Readable, containerPath: string, destination: string, ctx: TaskContext): Promise<CopyOutcome> {
  fs.mkdirSync(destination, { recursive: true });
  const root = fs.realpathSync(destination);
  const files: string[] = [];
  // The file written for each archive name, for the hard links to it.
  const written = new Map<string, string>();
  const notCopied: string[] = [];
  let total = 0;
  try {
    await new Promise<void>((resolve, reject) => {
      const extract = tar().extract();
      extract.on('entry', (header, stream, next) => {
        // Destroying the extraction (a refusal, a failure) destroys the entry with the same error,
        // which the extraction reports already.
        stream.on('error', () => undefined);
        const drain = () => {
          stream.on('end', () => next());
          stream.resume();
        };
        // The archive holds the folder itself as its first component (`results/junit.xml`); when
        // resultsPath names a file, the archive holds just that file, which keeps its name.
        const parts = archivePath(header.name);
        const isFolder = header.type === 'directory';
        const relParts = parts.length === 1 && !isFolder ? parts : parts.slice(1);
        const rel = relParts.join('/');
        const skip = (why: string) => {
          notCopied.push(`${rel || header.name} (${why})`);
          drain();
        };
        if (parts.includes('..')) return skip('a path outside the folder');
        try {
          if (isFolder) {
            safeFolder(root, relParts);
            return drain();
          }
          if (header.type === 'link') {
            const source = written.get(archivePath(header.linkname ?? '').join('/'));
            if (!source) return skip(`a hard link to '${header.linkname}', which is not among the files copied`);
            total += fs.statSync(source).size;
            if (total > MAX_RESULTS_BYTES) return extract.destroy(tooLarge(containerPath));
            const file = newFile(root, relParts);
            fs.copyFileSync(source, file, fs.constants.COPYFILE_EXCL);
            files.push(rel);
            written.set(parts.join('/'), file);
            return drain();
          }
          if (header.type !== 'file' && header.type !== 'contiguous-file') return skip(header.type === 'symlink' ? 'a symbolic link' : `a ${header.type ?? 'special'} entry`);
          total += header.size ?? 0;
          if (total > MAX_RESULTS_BYTES) {
            stream.resume();
            return extract.destroy(tooLarge(containerPath));
          }
          const file = newFile(root, relParts);
          const fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | (fs.constants.O_NOFOLLOW ?? 0), 0o644);
          files.push(rel);
          written.set(parts.join('/'), file);
          writeEntry(stream, file, fd, next, (e) => extract.destroy(e));
        } catch (err) {
          if (!(err instanceof NotCopied)) return extract.destroy(err as Error);
          skip(err.message);
        }
      });
      extract.on('finish', resolve);
      extract.on('error', reject);
      archive.on('error', reject);
      archive.pipe(extract);
    });
  } finally {
    // A refused or failed extraction leaves the engine's archive stream open, and the engine keeps
    // the container busy (it cannot be removed) until the stream is closed.
    archive.destroy();
  }
  if (notCopied.length > 0) {
    const named = notCopied.slice(0, MAX_NAMED_ENTRIES).join('; ');
    const more = notCopied.length > MAX_NAMED_ENTRIES ? `; and ${notCopied.length - MAX_NAMED_ENTRIES} more` : '';
    ctx.warn(`${notCopied.length} entr${notCopied.length === 1 ? 'y' : 'ies'} of '${containerPath}' were not copied: ${named}${more}.`);
  }
  return { files: files.sort() };
}

/** Why one entry was not copied (a link or a file in the way); the extraction goes on. */
class NotCopied extends Error {}

function tooLarge(containerPath: string): DockerError {
  return new DockerError(`The results folder '${containerPath}' is larger than ${MAX_RESULTS_BYTES / 1024 / 1024} MB; write fewer or smaller files.`);
}

/** The components of a name in the archive, without empty and `.` ones. */
function archivePath(name: string): string[] {
  return name.split('/').filter((p) => p && p !== '.');
}

function lstatIfAny(file: string): fs.Stats | undefined {
  try {
    return fs.lstatSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** The folder `parts` under `root`, created one level at a time; a level that is a link or a file is refused. */
function safeFolder(root: string, parts: string[]): string {
  let folder = root;
  for (const part of parts) {
    folder = path.join(folder, part);
    const stat = lstatIfAny(folder);
    const rel = path.relative(root, folder);
    if (!stat) fs.mkdirSync(folder);
    else if (stat.isSymbolicLink()) throw new NotCopied(`'${rel}' is a symbolic link in the results folder`);
    else if (!stat.isDirectory()) throw new NotCopied(`'${rel}' is a file in the results folder`);
  }
  // The real path has the last word: it catches a folder replaced by a link after the check above.
  const real = fs.realpathSync(folder);
  if (real !== root && !real.startsWith(root + path.sep)) throw new NotCopied(`'${path.relative(root, folder)}' leads outside the results folder`);
  return real;
}

/**
 * The path for the file `parts` under `root`, with nothing in its place: an earlier file there (maybe
 * a hard link to a file elsewhere) is removed rather than written through; a link or folder is refused.
 */
function newFile(root: string, parts: string[]): string {
  const file = path.join(safeFolder(root, parts.slice(0, -1)), parts[parts.length - 1]);
  const stat = lstatIfAny(file);
  if (stat?.isSymbolicLink()) throw new NotCopied(`'${path.relative(root, file)}' is a symbolic link in the results folder`);
  if (stat?.isDirectory()) throw new NotCopied(`'${path.relative(root, file)}' is a folder in the results folder`);
  if (stat) fs.unlinkSync(file);
  return file;
}

/** A tar-stream entry (a streamx Readable); typed loosely because streamx's types are not node's. */
interface EntryStream {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  on(event: string, fn: (...args: any[]) => void): unknown;
  pause(): unknown;
  resume(): unknown;
}

/** Writes one tar entry to `file`, open as `fd`, with back-pressure (tar-stream's entries are streamx streams). */
function writeEntry(stream: EntryStream, file: string, fd: number, next: () => void, fail: (err: Error) => void): void {
  const out = fs.createWriteStream(file, { fd });
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

/**
 * Longest file list in one ##vso[results.publish] command: 100k result files would otherwise make
 * one line of megabytes. Each command becomes one test run.
 */
export const MAX_PUBLISH_LINE_CHARS = 64 * 1024;

/**
 * `files` in batches for ##vso[results.publish], each list at most MAX_PUBLISH_LINE_CHARS long. The
 * command separates files with commas and has no escape for one, so a path with a comma is left
 * out and named.
 */
export function publishBatches(files: string[], ctx: TaskContext): string[][] {
  const batches: string[][] = [];
  let batch: string[] = [];
  let length = 0;
  for (const file of files) {
    if (file.includes(',')) {
      ctx.warn(`Test results file '${file}' is not published: its path has a comma, which ##vso[results.publish] reads as a separator. Rename it.`);
      continue;
    }
    if (batch.length > 0 && length + 1 + file.length > MAX_PUBLISH_LINE_CHARS) {
      batches.push(batch);
      batch = [];
      length = 0;
    }
    length += (batch.length > 0 ? 1 : 0) + file.length;
    batch.push(file);
  }
  if (batch.length > 0) batches.push(batch);
  return batches;
}
