#!/usr/bin/env node
// Bundles every tasks/<task>/index.ts into dist/tasks/<task>/index.js: one minified CommonJS file per
// task, with task.json (version stamped from package.json), icon.png and the files the bundled code
// reads from beside itself at run time. Usage: node scripts/bundle.mjs [--root DIR] [--quiet]
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import * as esbuild from 'esbuild';
import { REPO_ROOT, discoverTasks, formatBytes, isMain, packageVersion, resolveRoot } from './tasks.mjs';

// ssh2 (dockerode → docker-modem → ssh2) tries `require('cpu-features')` and
// `require('./crypto/build/Release/sshcrypto.node')` inside try/catch and works without them.
export const EXTERNALS = ['cpu-features', '*.node'];

const TASK_LIB = 'azure-pipelines-task-lib';

/**
 * Files that bundled packages read relative to their own __dirname. In a bundle __dirname is the
 * task folder, so `copy` puts them there when the bundle holds one of the `readers` (matched
 * against esbuild's input paths); the readers' __dirname uses are then accounted for.
 */
const RUNTIME_ASSETS = [{ readers: [`node_modules/${TASK_LIB}/`], copy: copyTaskLibResources }];

// __dirname uses that are known to be unreachable from our tasks (pagent.exe is Windows Pageant, only on request).
const KNOWN_DIRNAME_USES = [
  'node_modules/ssh2/lib/agent.js',
  'node_modules/ssh2/lib/protocol/crypto/poly1305.js', // emscripten shim; the wasm is inlined
  'node_modules/q/q.js', // only in doc comments
];

// dockerode's BuildKit session (grpc-js, .proto files read at run time) and progress decoder
// (protobufjs) are never reached: BuildAndTag opens its own session (tasks/lib/docker/session.ts)
// and decodes progress itself. Every task gets stubs for them, about 400 KB less.
const STUB = "module.exports = new Proxy({}, { get() { throw new Error('dockerode BuildKit helpers are not bundled (scripts/bundle.mjs)'); } });";
const withoutDockerodeBuildKit = {
  name: 'without-dockerode-buildkit',
  setup(build) {
    const fromDockerode = (args) => args.importer.replace(/\\/g, '/').includes('node_modules/dockerode/lib/');
    build.onResolve({ filter: /^\.\/(session|buildkit)$/ }, (args) => (fromDockerode(args) ? { path: args.path, namespace: 'stub' } : undefined));
    build.onResolve({ filter: /^protobufjs$/ }, (args) => ({ path: args.path, namespace: 'stub' }));
    build.onLoad({ filter: /.*/, namespace: 'stub' }, () => ({ contents: STUB, loader: 'js' }));
  },
};

/** Bundles every task under `root`; returns one row per task. Throws with every problem listed. */
export async function bundleTasks({ root = REPO_ROOT, log = console.log } = {}) {
  const version = packageVersion(root);
  const tasks = discoverTasks(root);
  const distTasks = path.join(root, 'dist', 'tasks');
  fs.rmSync(distTasks, { recursive: true, force: true });
  fs.mkdirSync(distTasks, { recursive: true });
  if (tasks.length === 0) {
    log(`No tasks found under ${path.join(root, 'tasks')} (a task is a folder with task.json).`);
    return [];
  }

  const problems = [];
  const rows = [];
  for (const task of tasks) {
    const outDir = path.join(distTasks, task.folder);
    if (!fs.existsSync(task.entry)) {
      problems.push(`${task.folder}: no index.ts beside task.json`);
      continue;
    }
    const built = await esbuild
        .build({
          entryPoints: [task.entry],
          outfile: path.join(outDir, 'index.js'),
          bundle: true,
          platform: 'node',
          target: 'node20',
          format: 'cjs',
          minify: true,
          keepNames: true,
          sourcemap: false,
          legalComments: 'none',
          external: EXTERNALS,
          // Lets throwaway roots outside the repo (tests) resolve packages from the repo's node_modules.
          nodePaths: [path.join(REPO_ROOT, 'node_modules')],
          metafile: true,
          logLevel: 'silent',
          plugins: [withoutDockerodeBuildKit],
        })
        .then((result) => ({ result, inputs: Object.keys(result.metafile.inputs).map((p) => p.replace(/\\/g, '/')) }))
      .catch((err) => {
        problems.push(`${task.folder}: esbuild failed:\n${(err.errors ?? [err]).map((e) => `  ${e.text ?? e.message}${e.location ? ` (${e.location.file}:${e.location.line})` : ''}`).join('\n')}`);
        return undefined;
      });
    if (!built) continue;

    const { inputs } = built;
    problems.push(...checkTaskLibCopies(task.folder, inputs));
    problems.push(...checkDirnameUses(task.folder, inputs, root));

    writeTaskJson(task, outDir, version);
    copyIcon(task, outDir, problems);
    for (const asset of RUNTIME_ASSETS) {
      if (inputs.some((p) => asset.readers.some((r) => p.includes(r)))) asset.copy(outDir);
    }

    const code = fs.readFileSync(path.join(outDir, 'index.js'));
    rows.push({
      task: task.folder,
      bytes: code.length,
      gzipBytes: zlib.gzipSync(code, { level: 9 }).length,
      folderBytes: folderSize(outDir),
      modules: inputs.length,
    });
  }

  if (rows.length) printTable(rows, log);
  if (problems.length) {
    const err = new Error(`Bundling failed:\n${problems.map((p) => `- ${p}`).join('\n')}`);
    err.problems = problems;
    throw err;
  }
  return rows;
}

// Two copies of task-lib break its shared state (variables, secrets, loc strings): exactly one.
function checkTaskLibCopies(folder, inputs) {
  const copies = new Set();
  for (const p of inputs) {
    const i = p.lastIndexOf(`node_modules/${TASK_LIB}/`);
    if (i >= 0) copies.add(p.slice(0, i + `node_modules/${TASK_LIB}`.length));
  }
  if (copies.size === 1) return [];
  if (copies.size === 0) return [`${folder}: the bundle does not include ${TASK_LIB}; the entry must report through runTask (tasks/lib/pipeline)`];
  return [`${folder}: the bundle includes ${copies.size} copies of ${TASK_LIB} (${[...copies].join(', ')}); dedupe with npm dedupe`];
}

// A new dependency that reads files relative to __dirname would break only in the bundle: catch it here.
function checkDirnameUses(folder, inputs, root) {
  const problems = [];
  for (const p of inputs) {
    if (!p.includes('node_modules/') || !/\.[cm]?js$/.test(p)) continue;
    if (KNOWN_DIRNAME_USES.some((k) => p.endsWith(k))) continue;
    if (RUNTIME_ASSETS.some((a) => a.readers.some((r) => p.includes(r)))) continue;
    const file = path.isAbsolute(p) ? p : path.join(root, p);
    const text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
    if (/\b__dirname\b|\b__filename\b/.test(text)) {
      problems.push(`${folder}: ${p} uses __dirname/__filename; copy what it reads beside the bundle (RUNTIME_ASSETS in scripts/bundle.mjs) or list it as unreachable`);
    }
  }
  return problems;
}

function writeTaskJson(task, outDir, version) {
  const json = JSON.parse(fs.readFileSync(task.taskJsonPath, 'utf8'));
  json.version = { Major: version.Major, Minor: version.Minor, Patch: version.Patch };
  fs.writeFileSync(path.join(outDir, 'task.json'), `${JSON.stringify(json, null, 2)}\n`);
}

function copyIcon(task, outDir, problems) {
  const icon = path.join(task.dir, 'icon.png');
  if (fs.existsSync(icon)) fs.copyFileSync(icon, path.join(outDir, 'icon.png'));
  else problems.push(`${task.folder}: tasks/${task.folder}/icon.png is missing (the task picker shows it)`);
}

/**
 * task-lib 5 embeds its messages, with every translation, in lib-resource.js (bundled). Older
 * versions call setResourcePath(__dirname/lib.json) and read Strings/resources.resjson/<culture>/
 * beside it, so lib.json always goes beside the bundle, and Strings/ too when nothing is embedded.
 */
function copyTaskLibResources(outDir) {
  const libDir = path.join(REPO_ROOT, 'node_modules', TASK_LIB);
  fs.copyFileSync(path.join(libDir, 'lib.json'), path.join(outDir, 'lib.json'));
  if (!fs.existsSync(path.join(libDir, 'lib-resource.js')) && fs.existsSync(path.join(libDir, 'Strings'))) {
    fs.cpSync(path.join(libDir, 'Strings'), path.join(outDir, 'Strings'), { recursive: true });
  }
}

function folderSize(dir) {
  let total = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    total += entry.isDirectory() ? folderSize(p) : fs.statSync(p).size;
  }
  return total;
}

function printTable(rows, log) {
  const header = ['task', 'index.js', 'gzip -9', 'folder', 'modules'];
  const lines = rows.map((r) => [r.task, formatBytes(r.bytes), formatBytes(r.gzipBytes), formatBytes(r.folderBytes), String(r.modules)]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  const fmt = (cells) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  log(fmt(header));
  log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const l of lines) log(fmt(l));
}

if (isMain(import.meta.url)) {
  const argv = process.argv.slice(2);
  const quiet = argv.includes('--quiet');
  try {
    const root = resolveRoot(argv);
    const rows = await bundleTasks({ root, log: quiet ? () => {} : console.log });
    if (!quiet) console.log(`Bundled ${rows.length} task(s) into ${path.join(root, 'dist', 'tasks')}`);
  } catch (err) {
    console.error(err instanceof Error ? err.message : String(err));
    process.exit(1);
  }
}
