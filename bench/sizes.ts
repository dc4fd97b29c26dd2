// Figure 1: task bundle sizes (raw, gzip -9, raw deflate level 9 ≈ what a zip/.vsix stores) and
// the .vsix size. Bundles (scripts/bundle.mjs) and packages (scripts/package.mjs) when missing.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { discoverTasks } from '../scripts/tasks.mjs';
import { MissingPrerequisiteError, errorMessage, progress } from './util';

export const ROOT = path.resolve(__dirname, '..');
export const DIST = path.join(ROOT, 'dist');
export const DIST_TASKS = path.join(DIST, 'tasks');

/** Decimal units (1 MB = 1,000,000 bytes): the stricter reading of the targets. */
export const SIZE_TARGETS = {
  bundleRawBytes: 1_500_000,
  bundleZippedBytes: 400_000,
  vsixBytes: 3_000_000,
};

export interface BundleSize {
  task: string;
  indexRawBytes: number;
  indexGzip9Bytes: number;
  /** zlib.deflateRawSync level 9: what the .vsix (a zip) stores for the file. */
  indexZippedBytes: number;
  folderBytes: number;
  /** Sum of each file deflated at level 9 (the folder's share of a zip, without zip headers). */
  folderZippedBytes: number;
  folderFiles: number;
  meetsRawTarget: boolean;
  meetsZippedTarget: boolean;
}

export interface SizeReport {
  targets: typeof SIZE_TARGETS;
  /** How dist/ came to be: 'existing', or why bundle.mjs was run. */
  bundled: string;
  /** Task folders (tasks/<task>/task.json) without a dist/tasks/<task>/index.js. */
  tasksWithoutBundle: string[];
  tasks: BundleSize[];
  vsix: { file?: string; bytes?: number; packaged: string; meetsTarget?: boolean; error?: string; note?: string };
}

export function bundledTasks(): string[] {
  if (!fs.existsSync(DIST_TASKS)) return [];
  return fs
    .readdirSync(DIST_TASKS, { withFileTypes: true })
    .filter((d) => d.isDirectory() && fs.existsSync(path.join(DIST_TASKS, d.name, 'index.js')))
    .map((d) => d.name)
    .sort();
}

function runScript(script: string, args: string[], timeoutMs: number): { ok: boolean; output: string } {
  const out = spawnSync(process.execPath, [path.join(ROOT, 'scripts', script), ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: timeoutMs,
    maxBuffer: 32 * 1024 * 1024,
  });
  const output = `${out.stdout ?? ''}${out.stderr ?? ''}`.trim();
  if (out.error) return { ok: false, output: `${out.error.message}\n${output}`.trim() };
  if (out.status !== 0) return { ok: false, output: `exit ${out.status ?? out.signal}: ${output}` };
  return { ok: true, output };
}

/** Makes sure dist/tasks holds a bundle of every task (runs scripts/bundle.mjs --quiet otherwise). */
export function ensureBundles(force: boolean): { bundled: string; tasksWithoutBundle: string[] } {
  const wanted = discoverTasks(ROOT).map((t) => t.folder);
  const missing = () => wanted.filter((t) => !bundledTasks().includes(t));
  let reason: string | undefined;
  if (force) reason = 'forced (--rebuild)';
  else if (!fs.existsSync(DIST_TASKS)) reason = 'dist/tasks was missing';
  else if (missing().length > 0) reason = `no bundle for ${missing().join(', ')}`;
  if (!reason) return { bundled: 'existing', tasksWithoutBundle: [] };

  progress(`bundling (${reason}): node scripts/bundle.mjs --quiet`);
  const result = runScript('bundle.mjs', ['--quiet'], 300_000);
  const still = missing();
  if (bundledTasks().length === 0) {
    throw new MissingPrerequisiteError(
      `No bundled task under ${DIST_TASKS} and 'node scripts/bundle.mjs --quiet' did not make one${result.ok ? '' : `: ${result.output.slice(-2000)}`}. Run 'npm run build' and fix what it reports.`,
    );
  }
  return {
    bundled: result.ok ? `bundled now: ${reason}` : `bundle.mjs failed (${reason}): ${result.output.slice(-1000)}`,
    tasksWithoutBundle: still,
  };
}

function walk(dir: string): string[] {
  const files: string[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) files.push(...walk(full));
    else if (entry.isFile()) files.push(full);
  }
  return files;
}

export function measureBundle(task: string): BundleSize {
  const folder = path.join(DIST_TASKS, task);
  const index = fs.readFileSync(path.join(folder, 'index.js'));
  const gzip = zlib.gzipSync(index, { level: 9 }).length;
  const zipped = zlib.deflateRawSync(index, { level: 9 }).length;
  let folderBytes = 0;
  let folderZippedBytes = 0;
  const files = walk(folder);
  for (const file of files) {
    const content = fs.readFileSync(file);
    folderBytes += content.length;
    folderZippedBytes += Math.min(content.length, zlib.deflateRawSync(content, { level: 9 }).length); // zip stores when deflate does not help
  }
  return {
    task,
    indexRawBytes: index.length,
    indexGzip9Bytes: gzip,
    indexZippedBytes: zipped,
    folderBytes,
    folderZippedBytes,
    folderFiles: files.length,
    meetsRawTarget: index.length <= SIZE_TARGETS.bundleRawBytes,
    meetsZippedTarget: zipped <= SIZE_TARGETS.bundleZippedBytes,
  };
}

function findVsix(): { file: string; mtimeMs: number } | undefined {
  if (!fs.existsSync(DIST)) return undefined;
  return fs
    .readdirSync(DIST)
    .filter((f) => f.endsWith('.vsix'))
    .map((f) => ({ file: path.join(DIST, f), mtimeMs: fs.statSync(path.join(DIST, f)).mtimeMs }))
    .sort((a, b) => b.mtimeMs - a.mtimeMs)[0];
}

/**
 * The .vsix: the newest dist/*.vsix. Packs one with scripts/package.mjs when there is none, or
 * when it is older than the bundles (its size would describe other bundles). A packaging failure
 * is reported, not thrown.
 */
export function measureVsix(tasks: string[], force: boolean): SizeReport['vsix'] {
  const newestBundle = Math.max(0, ...tasks.map((t) => fs.statSync(path.join(DIST_TASKS, t, 'index.js')).mtimeMs));
  let found = findVsix();
  let packaged = 'existing';
  const reason = force ? 'forced (--rebuild)' : !found ? 'no dist/*.vsix' : found.mtimeMs < newestBundle ? 'the .vsix was older than the bundles' : undefined;
  if (reason) {
    progress(`packaging (${reason}): node scripts/package.mjs`);
    const result = runScript('package.mjs', [], 300_000);
    found = findVsix();
    if (!result.ok) {
      return {
        packaged: `package.mjs failed (${reason})`,
        error: result.output.slice(-2000),
        ...(found ? { file: path.relative(ROOT, found.file), bytes: fs.statSync(found.file).size, note: 'size of an older .vsix' } : {}),
      };
    }
    if (!found) return { packaged: `package.mjs ran (${reason})`, error: `scripts/package.mjs succeeded but left no .vsix in dist/: ${result.output.slice(-1000)}` };
    packaged = `packaged now: ${reason}`;
  }
  const bytes = fs.statSync(found!.file).size;
  return { file: path.relative(ROOT, found!.file), bytes, packaged, meetsTarget: bytes <= SIZE_TARGETS.vsixBytes };
}

export function measureSizes(force: boolean): SizeReport {
  const { bundled, tasksWithoutBundle } = ensureBundles(force);
  const tasks = bundledTasks();
  const sizes = tasks.map(measureBundle);
  let vsix: SizeReport['vsix'];
  try {
    vsix = measureVsix(tasks, force);
  } catch (err) {
    vsix = { packaged: 'failed', error: errorMessage(err) };
  }
  return { targets: SIZE_TARGETS, bundled, tasksWithoutBundle, tasks: sizes, vsix };
}
