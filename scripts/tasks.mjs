// Shared by the build scripts: where the project root is and which task folders are tasks.
// A folder under tasks/ is a task once it has a task.json; `lib` is the shared library, never a task.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository these scripts live in (node_modules is found from here). */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/**
 * The project root to work on: `--root DIR`, else OUTER_LOOP_ROOT, else the repository.
 * A root holds package.json and tasks/; dist/ is written under it. Tests point it at a temp dir.
 */
export function resolveRoot(argv = process.argv.slice(2), env = process.env) {
  const i = argv.indexOf('--root');
  if (i >= 0) {
    if (!argv[i + 1]) throw new Error('--root needs a directory');
    return path.resolve(argv[i + 1]);
  }
  return path.resolve(env.OUTER_LOOP_ROOT || REPO_ROOT);
}

/** Task folders under `<root>/tasks` that have a task.json, sorted by folder name. */
export function discoverTasks(root) {
  const tasksDir = path.join(root, 'tasks');
  if (!fs.existsSync(tasksDir)) return [];
  return fs
    .readdirSync(tasksDir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && d.name !== 'lib' && fs.existsSync(path.join(tasksDir, d.name, 'task.json')))
    .map((d) => ({
      folder: d.name,
      dir: path.join(tasksDir, d.name),
      taskJsonPath: path.join(tasksDir, d.name, 'task.json'),
      entry: path.join(tasksDir, d.name, 'index.ts'),
    }))
    .sort((a, b) => a.folder.localeCompare(b.folder));
}

/** `build-and-tag` → `BuildAndTag`: the task name a folder implies. */
export function pascalFromFolder(folder) {
  return folder
    .split(/[-_]+/)
    .filter(Boolean)
    .map((part) => part[0].toUpperCase() + part.slice(1))
    .join('');
}

/** package.json's version as task.json wants it. Pre-release suffixes are not allowed in task versions. */
export function packageVersion(root) {
  const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
  const m = /^(\d+)\.(\d+)\.(\d+)$/.exec(String(pkg.version ?? ''));
  if (!m) throw new Error(`package.json version '${pkg.version}' is not MAJOR.MINOR.PATCH; task versions need plain numbers.`);
  return { text: pkg.version, Major: Number(m[1]), Minor: Number(m[2]), Patch: Number(m[3]) };
}

/** True when the module at `url` is the script node was started with. */
export function isMain(url) {
  return process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(url);
}

export function formatBytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(2)} MB`;
}
