#!/usr/bin/env node
// Packs dist/ into the .vsix with tfx (offline). Run after `node scripts/bundle.mjs` (`npm run package`
// does both). Usage: node scripts/package.mjs [--root DIR] [--publisher ID]
//
// The root vss-extension.json is the source of the extension's metadata. This script writes
// dist/vss-extension.json from it with
//   - `version` from package.json (the same version bundle.mjs stamps into every task.json);
//   - one `ms.vss-distributed-task.task` contribution per task folder present (discoverTasks), so a
//     new task is contributed without editing the manifest;
//   - paths relative to dist/ (the root manifest says dist/tasks/<task>, the packed one tasks/<task>);
// copies images/ and overview.md into dist/ and runs `tfx extension create --root dist`.
//
// Publisher: `container-outer-loop` is a placeholder. To publish, create a Marketplace publisher and
// either change `publisher` in vss-extension.json or pass `--publisher <id>` here.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { REPO_ROOT, discoverTasks, formatBytes, isMain, packageVersion, resolveRoot } from './tasks.mjs';

export const PLACEHOLDER_PUBLISHER = 'container-outer-loop';
const TASK_CONTRIBUTION = 'ms.vss-distributed-task.task';

/** The manifest tfx packs: the root manifest with version, task contributions and files filled in. */
export function packagedManifest(root, { publisher } = {}) {
  const manifest = JSON.parse(fs.readFileSync(path.join(root, 'vss-extension.json'), 'utf8'));
  const version = packageVersion(root);
  const tasks = discoverTasks(root);
  const contributions = (manifest.contributions ?? []).filter((c) => c.type !== TASK_CONTRIBUTION);
  for (const task of tasks) {
    const json = JSON.parse(fs.readFileSync(task.taskJsonPath, 'utf8'));
    contributions.push({
      id: task.folder,
      description: json.description ?? json.friendlyName,
      type: TASK_CONTRIBUTION,
      targets: ['ms.vss-distributed-task.tasks'],
      properties: { name: `tasks/${task.folder}` },
    });
  }
  return {
    ...manifest,
    ...(publisher ? { publisher } : {}),
    version: version.text,
    files: [{ path: 'tasks' }, { path: 'images', addressable: true }],
    contributions,
  };
}

/** Prepares dist/ and runs tfx. Returns { vsix, bytes, manifest }. Throws with a clear message. */
export function packageExtension({ root = REPO_ROOT, publisher, log = console.log } = {}) {
  const dist = path.join(root, 'dist');
  const tasks = discoverTasks(root);
  const missing = tasks.filter((t) => !fs.existsSync(path.join(dist, 'tasks', t.folder, 'index.js'))).map((t) => t.folder);
  if (tasks.length === 0) throw new Error(`No tasks under ${path.join(root, 'tasks')}; nothing to package.`);
  if (missing.length) throw new Error(`dist/tasks has no bundle for ${missing.join(', ')}; run \`npm run build\` (or node scripts/bundle.mjs) first.`);
  const version = packageVersion(root);
  for (const t of tasks) {
    const v = JSON.parse(fs.readFileSync(path.join(dist, 'tasks', t.folder, 'task.json'), 'utf8')).version ?? {};
    if (`${v.Major}.${v.Minor}.${v.Patch}` !== version.text) {
      throw new Error(`dist/tasks/${t.folder}/task.json has version ${v.Major}.${v.Minor}.${v.Patch}, package.json ${version.text}; run \`npm run build\`.`);
    }
  }
  // Task folders in dist/ that are no longer tasks must not be packed.
  for (const entry of fs.readdirSync(path.join(dist, 'tasks'), { withFileTypes: true })) {
    if (entry.isDirectory() && !tasks.some((t) => t.folder === entry.name)) {
      throw new Error(`dist/tasks/${entry.name} is not a task under tasks/ any more; run \`npm run build\` to rebuild dist/.`);
    }
  }

  const manifest = packagedManifest(root, { publisher });
  if (manifest.publisher === PLACEHOLDER_PUBLISHER) {
    log(`Note: publisher '${PLACEHOLDER_PUBLISHER}' is a placeholder; pass --publisher <id> (or edit vss-extension.json) to publish.`);
  }
  fs.rmSync(path.join(dist, 'images'), { recursive: true, force: true });
  fs.cpSync(path.join(root, 'images'), path.join(dist, 'images'), { recursive: true });
  const details = manifest.content?.details?.path;
  if (details) {
    fs.mkdirSync(path.dirname(path.join(dist, details)), { recursive: true });
    fs.copyFileSync(path.join(root, details), path.join(dist, details));
  }
  fs.writeFileSync(path.join(dist, 'vss-extension.json'), `${JSON.stringify(manifest, null, 2)}\n`);

  for (const f of fs.readdirSync(dist)) if (f.endsWith('.vsix')) fs.rmSync(path.join(dist, f));
  const vsix = path.join(dist, `${manifest.publisher}.${manifest.id}-${manifest.version}.vsix`);
  const tfx = path.join(REPO_ROOT, 'node_modules', '.bin', process.platform === 'win32' ? 'tfx.cmd' : 'tfx');
  if (!fs.existsSync(tfx)) throw new Error(`${tfx} not found; run \`npm ci\` (tfx-cli is a devDependency).`);
  const args = ['extension', 'create', '--root', dist, '--manifest-globs', 'vss-extension.json', '--output-path', vsix, '--no-prompt', '--no-color'];
  const result = spawnSync(tfx, args, {
    cwd: root,
    encoding: 'utf8',
    // tfx checks npm for a newer version of itself unless told not to; there is no network here.
    env: { ...process.env, NO_UPDATE_NOTIFIER: '1' },
    shell: process.platform === 'win32',
  });
  if (result.status !== 0 || !fs.existsSync(vsix)) {
    throw new Error(`tfx extension create failed (exit ${result.status ?? result.signal}):\n${`${result.stdout ?? ''}${result.stderr ?? ''}`.trim()}`);
  }
  const bytes = fs.statSync(vsix).size;
  log(`Packed ${tasks.length} task(s) (${tasks.map((t) => t.folder).join(', ')}) into ${path.relative(process.cwd(), vsix) || vsix}: ${formatBytes(bytes)} (${bytes} bytes)`);
  return { vsix, bytes, manifest };
}

if (isMain(import.meta.url)) {
  const argv = process.argv.slice(2);
  try {
    const i = argv.indexOf('--publisher');
    const publisher = i >= 0 ? argv[i + 1] : undefined;
    if (i >= 0 && !publisher) throw new Error('--publisher needs a publisher id');
    packageExtension({ root: resolveRoot(argv), publisher });
  } catch (err) {
    console.error(err instanceof Error ? err.message : String(err));
    process.exit(1);
  }
}
