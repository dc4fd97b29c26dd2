#!/usr/bin/env node
// Builds the test tools pinned in test/tools/versions.json (Compose v2, a current dockerd,
// containerd 2, ...) from Go modules, or from a small committed Go module of ours (`dir`, such as
// the reference oracle), into a cache outside the repo:
//   ${COL_TOOLS_DIR:-~/.cache/container-outer-loop/tools}/<name>-<version>/<binary>
// Idempotent: a tool whose folder holds a stamp of the same spec is not rebuilt, so a second run
// with everything built takes milliseconds. Tools build in parallel; a failure names the tool and
// version and exits non-zero. Test tools only: the product stays TypeScript.
//
//   node scripts/test-tools.mjs            build what is missing, print where each tool is
//   node scripts/test-tools.mjs compose    only the named tools
// It also links docker CLI plugins (Compose v2) into the system plugin folder (installPlugins).
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const spec = JSON.parse(fs.readFileSync(path.join(root, 'test/tools/versions.json'), 'utf8'));
const toolsDir = process.env.COL_TOOLS_DIR ?? path.join(os.homedir(), '.cache/container-outer-loop/tools');

/** The folder a tool's binaries are (or will be) built into. */
function toolFolder(name) {
  const tool = spec.tools[name];
  if (!tool) throw new Error(`no test tool named ${name} in test/tools/versions.json`);
  return path.join(toolsDir, `${name}-${tool.version}`);
}

function stampOf(name) {
  const tool = spec.tools[name];
  // A tool built from a committed folder is rebuilt when any of its files changes.
  return JSON.stringify({ go: spec.go, ...tool, ...(tool.dir ? { files: hashOfDir(path.join(root, tool.dir)) } : {}) });
}

/** sha256 over the names and contents of every file under `dir`, in a fixed order. */
function hashOfDir(dir) {
  const hash = createHash('sha256');
  const files = fs.readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile());
  for (const file of files.map((e) => path.relative(dir, path.join(e.parentPath, e.name))).sort()) {
    hash.update(`${file}\0`).update(fs.readFileSync(path.join(dir, file))).update('\0');
  }
  return hash.digest('hex');
}

/** The committed go.mod `file` must require the module and version versions.json pins for the tool. */
function checkPinned(file, text, tool) {
  if (!new RegExp(`^require ${tool.module} ${tool.version}$`, 'm').test(text)) {
    throw new Error(`${file} must require ${tool.module} ${tool.version}, as test/tools/versions.json pins it`);
  }
}

function isBuilt(name) {
  const folder = toolFolder(name);
  try {
    return (
      fs.readFileSync(path.join(folder, '.stamp'), 'utf8') === stampOf(name) &&
      Object.keys(spec.tools[name].binaries).every((b) => fs.existsSync(path.join(folder, b)))
    );
  } catch {
    return false;
  }
}

function run(cmd, args, opts, logFile) {
  return new Promise((resolve, reject) => {
    const out = fs.openSync(logFile, 'a');
    const child = spawn(cmd, args, { ...opts, stdio: ['ignore', out, out] });
    child.on('error', reject);
    child.on('close', (code) => {
      fs.closeSync(out);
      if (code === 0) resolve();
      else reject(new Error(`${cmd} ${args.join(' ')} exited ${code}`));
    });
  });
}

/**
 * The exclude and replace lines of the tool's own go.mod, which a wrapper module must repeat.
 * Replacements with local folders (`=> ../api`) mean nothing outside the tool's repository and are
 * dropped: the tool's require lines must then name real versions of those modules. Where they do
 * not (k8s.io/kubernetes requires its staging modules at v0.0.0), the tool names a committed
 * wrapper go.mod (`gomod`) that repeats those replacements at published versions.
 */
function directivesOf(goModText) {
  const kept = [];
  const lines = goModText.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (/^(exclude|replace)\s*\($/.test(line)) {
      const block = [line];
      while (i + 1 < lines.length && lines[++i] !== ')') block.push(lines[i]);
      block.push(')');
      kept.push(...block);
    } else if (/^(exclude|replace)\s/.test(line)) {
      kept.push(line);
    }
  }
  const isLocal = (l) => /=>\s*\.{1,2}\//.test(l);
  for (const l of kept.filter(isLocal)) {
    const module = l.replace(/^replace\s+/, '').trim().split(/\s+/)[0];
    if (new RegExp(`^\\s*(require\\s+)?${module.replace(/[.]/g, '\\.')}\\s+v0\\.0\\.0`, 'm').test(goModText)) {
      throw new Error(`its go.mod requires ${module} at v0.0.0 and replaces it with a local folder; give the tool a committed wrapper go.mod ("gomod") that replaces it with a published version`);
    }
  }
  return kept.filter((l) => !isLocal(l));
}

async function build(name) {
  const tool = spec.tools[name];
  const folder = toolFolder(name);
  const work = `${folder}.build`;
  fs.rmSync(work, { recursive: true, force: true });
  fs.mkdirSync(work, { recursive: true });
  const log = path.join(work, 'build.log');
  const env = {
    ...process.env,
    GOTOOLCHAIN: `go${spec.go}+auto`,
    GOFLAGS: '-mod=mod',
    CGO_ENABLED: tool.cgo ? '1' : '0',
  };
  const go = (args) => run('go', args, { cwd: work, env }, log);
  if (tool.dir) {
    // Our own module (go.mod, go.sum, its packages): built from a copy, so the build writes nothing
    // into the repository.
    fs.cpSync(path.join(root, tool.dir), work, { recursive: true });
    const goMod = path.join(tool.dir, 'go.mod');
    const committed = fs.readFileSync(path.join(root, goMod), 'utf8');
    checkPinned(goMod, committed, tool);
    fs.writeFileSync(path.join(work, 'go.mod'), committed.replace(/^go .*$/m, `go ${spec.go}`));
  } else if (tool.gomod) {
    const committed = fs.readFileSync(path.join(root, tool.gomod), 'utf8');
    checkPinned(tool.gomod, committed, tool);
    // The toolchain is the one versions.json pins, whatever the committed file says.
    fs.writeFileSync(path.join(work, 'go.mod'), committed.replace(/^go .*$/m, `go ${spec.go}`));
  } else {
    fs.writeFileSync(path.join(work, 'go.mod'), `module col-test-tools/${name}\n\ngo ${spec.go}\n`);
  }
  // `go mod download -json` says where the tool's own go.mod is in the module cache.
  const downloaded = tool.dir ? undefined : await new Promise((resolve, reject) => {
    const child = spawn('go', ['mod', 'download', '-json', `${tool.module}@${tool.version}`], { cwd: work, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => fs.appendFileSync(log, d));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`go mod download ${tool.module}@${tool.version} exited ${code}: ${out.slice(-400)}`))));
  });
  if (!tool.gomod && !tool.dir) {
    const ownGoMod = fs.readFileSync(downloaded.GoMod, 'utf8');
    fs.appendFileSync(
      path.join(work, 'go.mod'),
      `\nrequire ${tool.module} ${tool.version}\n\n${directivesOf(ownGoMod).join('\n')}\n`,
    );
  }
  const bin = path.join(work, 'bin');
  for (const [binary, pkg] of Object.entries(tool.binaries)) {
    // In a committed module, packages are folders of it; its go.mod already requires what it uses.
    const importPath = tool.dir ? (pkg ? `./${pkg}` : '.') : pkg ? `${tool.module}/${pkg}` : tool.module;
    if (!tool.dir) await go(['get', `${importPath}@${tool.version}`]);
    const args = ['build', '-trimpath', '-o', path.join(bin, binary)];
    if (tool.tags) args.push('-tags', tool.tags);
    args.push('-ldflags', `-s -w ${tool.ldflags ?? ''}`.trim(), importPath);
    await go(args);
  }
  fs.rmSync(folder, { recursive: true, force: true });
  fs.renameSync(bin, folder);
  fs.writeFileSync(path.join(folder, '.stamp'), stampOf(name));
  fs.rmSync(work, { recursive: true, force: true });
}

/** Builds the named tools (all by default) that are missing; returns {name: folder}. */
export async function ensureTools(names = Object.keys(spec.tools), log = (m) => console.error(m)) {
  const missing = names.filter((n) => !isBuilt(n));
  const failures = [];
  await Promise.all(
    missing.map(async (name) => {
      const { module, version } = spec.tools[name];
      const started = Date.now();
      log(`test-tools: building ${name} (${module}@${version}) ...`);
      try {
        await build(name);
        log(`test-tools: built ${name} ${version} in ${Math.round((Date.now() - started) / 1000)} s`);
      } catch (err) {
        const logFile = path.join(`${toolFolder(name)}.build`, 'build.log');
        let tail = '';
        try {
          tail = fs.readFileSync(logFile, 'utf8').split('\n').slice(-30).join('\n');
        } catch {
          /* no log yet */
        }
        failures.push(`test tool ${name} ${module}@${version} failed to build: ${err.message}\n${tail}\n(log: ${logFile})`);
      }
    }),
  );
  if (failures.length > 0) throw new Error(failures.join('\n\n'));
  return Object.fromEntries(names.map((n) => [n, toolFolder(n)]));
}

/**
 * Links each tool's `plugin` (a docker CLI plugin, such as Compose v2) into the system plugin
 * folder, where the agent's docker CLI finds it whatever DOCKER_CONFIG says. Replaces only a link
 * of ours (into the tools folder); anything else there is left alone, with a warning.
 */
export function installPlugins(log = (m) => console.error(m)) {
  for (const [name, tool] of Object.entries(spec.tools)) {
    if (!tool.plugin || !isBuilt(name)) continue;
    const target = path.join(toolFolder(name), path.basename(tool.plugin));
    let current;
    try {
      current = fs.readlinkSync(tool.plugin);
    } catch (err) {
      if (err.code === 'EINVAL') {
        log(`test-tools: ${tool.plugin} is not ours (not a link into ${toolsDir}); leaving it`);
        continue;
      }
    }
    if (current === target) continue;
    if (current !== undefined && !current.startsWith(toolsDir)) {
      log(`test-tools: ${tool.plugin} links to ${current}, not ours; leaving it`);
      continue;
    }
    fs.mkdirSync(path.dirname(tool.plugin), { recursive: true });
    fs.rmSync(tool.plugin, { force: true });
    fs.symlinkSync(target, tool.plugin);
    log(`test-tools: linked ${tool.plugin} -> ${target}`);
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const names = process.argv.slice(2);
  const started = Date.now();
  ensureTools(names.length > 0 ? names : undefined)
    .then((folders) => {
      installPlugins();
      for (const [name, folder] of Object.entries(folders)) console.error(`test-tools: ${name} ready in ${folder}`);
      console.error(`test-tools: done in ${Date.now() - started} ms`);
    })
    .catch((err) => {
      console.error(err.message);
      process.exit(1);
    });
}
