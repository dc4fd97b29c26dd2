// task.json is the one source of the tasks' defaults. For every input of every task.json that has
// a defaultValue: the task reads it (in its entry or a shared reader in tasks/lib/pipeline), and
// the real reader, run as the agent runs a task but with that input missing from the environment,
// hands the entry exactly that default. And no entry or library file restates a default: no
// `default:` in an input read, no literal fallback after one, no `options.<input> ?? …` fallback.
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { expandMacros, TaskDefinition, TaskInputDefinition } from '../../tasks/lib/pipeline/task-json';

const ROOT = path.join(__dirname, '..', '..');
const TASKS = path.join(ROOT, 'tasks');
const PIPELINE = path.join(TASKS, 'lib', 'pipeline');
/** The variables the child run has, for the defaults with macros ($(Build.BuildNumber)). */
const VARIABLES: Record<string, string> = { 'Build.BuildNumber': '20261122.7', 'Build.ArtifactStagingDirectory': path.join(os.tmpdir(), 'staging') };

type Method = 'string' | 'required' | 'bool' | 'int' | 'number' | 'choice' | 'list' | 'lines' | 'keyValues' | 'path';
interface Read {
  file: string;
  name: string;
  method: Method;
}

const READ = /\binputs\.(string|required|bool|int|number|choice|list|lines|keyValues|path)\('([^']+)'/g;

interface TaskJson extends TaskDefinition {
  inputs: (TaskInputDefinition & { options?: Record<string, string> })[];
}

function tasks(): { dir: string; json: TaskJson }[] {
  return fs
    .readdirSync(TASKS)
    .filter((d) => fs.existsSync(path.join(TASKS, d, 'task.json')))
    .map((dir) => ({ dir, json: JSON.parse(fs.readFileSync(path.join(TASKS, dir, 'task.json'), 'utf8')) }));
}

function reads(file: string): Read[] {
  return [...fs.readFileSync(file, 'utf8').matchAll(READ)].map((m) => ({ file: path.relative(ROOT, file), method: m[1] as Method, name: m[2] }));
}

const sharedReaders = () => fs.readdirSync(PIPELINE).map((f) => path.join(PIPELINE, f));
const entry = (dir: string) => path.join(TASKS, dir, 'index.ts');

/** What the reader's method makes of a value, as the entry gets it. */
function expected(method: Method, value: string): unknown {
  if (method === 'bool') return value === 'true';
  if (method === 'int' || method === 'number') return Number(value);
  if (method === 'list') return value.split(/[\r\n,]+/).map((s) => s.trim()).filter(Boolean);
  if (method === 'lines') return value.split(/\r?\n/).map((s) => s.trim()).filter(Boolean);
  return value;
}

/** Runs the real reader (tasks/lib/pipeline TaskInputs over task-lib) in a child with no INPUT_* at all. */
function readUnset(dir: string, calls: { name: string; method: Method; options?: string[] }[]): Record<string, unknown> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'col-defaults-'));
  try {
    const script = path.join(work, 'read.ts');
    const out = path.join(work, 'out.json');
    fs.writeFileSync(
      script,
      [
        `import * as fs from 'node:fs';`,
        `import { TaskInputs } from ${JSON.stringify(path.join(PIPELINE, 'index'))};`,
        `const task = JSON.parse(fs.readFileSync(${JSON.stringify(path.join(TASKS, dir, 'task.json'))}, 'utf8'));`,
        `const inputs = new TaskInputs(task) as unknown as Record<string, (name: string, options?: unknown) => unknown>;`,
        `const calls: { name: string; method: string; options?: string[] }[] = ${JSON.stringify(calls)};`,
        `const values: Record<string, unknown> = {};`,
        `for (const c of calls) values[c.method + ' ' + c.name] = inputs[c.method].call(inputs, c.name, c.options) ?? null;`,
        `fs.writeFileSync(${JSON.stringify(out)}, JSON.stringify(values));`,
      ].join('\n'),
    );
    const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin', AGENT_TEMPDIRECTORY: work, SYSTEM_DEFAULTWORKINGDIRECTORY: work };
    for (const [name, value] of Object.entries(VARIABLES)) env[name.replace(/\./g, '_').toUpperCase()] = value;
    const run = spawnSync(process.execPath, ['--import', 'tsx', script], { cwd: ROOT, env, encoding: 'utf8' });
    assert.equal(run.status, 0, `the reader failed for ${dir}:\n${run.stdout}\n${run.stderr}`);
    return JSON.parse(fs.readFileSync(out, 'utf8'));
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

test('every input with a task.json default is read, and an unset one reads as that default', () => {
  let checked = 0;
  for (const { dir, json } of tasks()) {
    const declared = new Set(json.inputs.map((i) => i.name));
    const taskReads = [...reads(entry(dir)), ...sharedReaders().flatMap(reads).filter((r) => declared.has(r.name))];
    for (const r of reads(entry(dir))) assert.ok(declared.has(r.name), `${r.file} reads '${r.name}', which ${dir}/task.json does not declare`);
    const calls: { name: string; method: Method; options?: string[] }[] = [];
    const want: Record<string, unknown> = {};
    for (const input of json.inputs.filter((i) => i.defaultValue)) {
      const methods = [...new Set(taskReads.filter((r) => r.name === input.name).map((r) => r.method))];
      assert.ok(methods.length, `${dir}: input '${input.name}' has the default '${input.defaultValue}' in task.json, but neither the entry nor tasks/lib/pipeline reads it`);
      for (const method of methods) {
        calls.push({ name: input.name, method, options: method === 'choice' ? Object.keys(input.options ?? {}) : undefined });
        want[`${method} ${input.name}`] = expected(method, expandMacros(input.defaultValue as string, (v) => VARIABLES[v]));
      }
    }
    const got = readUnset(dir, calls);
    for (const [key, value] of Object.entries(want)) assert.deepEqual(got[key], value, `${dir}: ${key.replace(' ', "('")}') of an unset input`);
    checked += calls.length;
  }
  assert.ok(checked > 50, `only ${checked} defaults checked`);
});

test('a default whose variable is not set counts as none, so the entry falls back (PushWithDigest lockFile without a staging folder)', () => {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'col-defaults-'));
  try {
    const script = path.join(work, 'read.ts');
    fs.writeFileSync(
      script,
      `import task from ${JSON.stringify(path.join(TASKS, 'push-with-digest', 'task.json'))};\nimport { TaskInputs } from ${JSON.stringify(path.join(PIPELINE, 'index'))};\nconsole.log('lockFile=' + JSON.stringify(new TaskInputs(task).path('lockFile') ?? null));\n`,
    );
    const run = spawnSync(process.execPath, ['--import', 'tsx', script], { cwd: ROOT, env: { PATH: process.env.PATH ?? '', AGENT_TEMPDIRECTORY: work }, encoding: 'utf8' });
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stdout, /^lockFile=null$/m);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
});

/** The library's files, but not tasks/lib/compose: its defaults are the Compose file format's (build.dockerfile), not inputs'. */
function libraryFiles(dir = path.join(TASKS, 'lib')): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) return full === path.join(TASKS, 'lib', 'compose') ? [] : libraryFiles(full);
    return e.name.endsWith('.ts') ? [full] : [];
  });
}

test('no entry or library file restates a task.json default', () => {
  const withDefault = new Set(tasks().flatMap(({ json }) => json.inputs.filter((i) => i.defaultValue).map((i) => i.name)));
  const names = [...withDefault].join('|');
  const literal = String.raw`(-?\d[\d_.]*|'[^']*'|"[^"]*"|\btrue\b|\bfalse\b)`;
  const problems: string[] = [];
  const readers = [...tasks().map(({ dir }) => entry(dir)), ...sharedReaders()];
  for (const file of readers) {
    const text = fs.readFileSync(file, 'utf8');
    const where = path.relative(ROOT, file);
    for (const m of text.matchAll(/\binputs\.\w+\('([^']+)'[^)]*\bdefault\s*:/g)) problems.push(`${where}: '${m[1]}' is read with a default: of its own`);
    for (const m of text.matchAll(/\binputs\.bool\('([^']+)',/g)) problems.push(`${where}: bool('${m[1]}', …) restates the default`);
    for (const m of text.matchAll(new RegExp(String.raw`\binputs\.\w+\('([^']+)'[^)]*\)\s*(\?\?|\|\|)\s*${literal}`, 'g'))) problems.push(`${where}: '${m[1]}' falls back to a literal`);
  }
  // An option that stands for an input with a default gets the input's value from the entry: a fallback restates the default.
  const fallback = new RegExp(String.raw`\b(options|limits)\.(${names})\s*(\?\?\s*(${literal}|[A-Z][A-Z0-9_]+\b)|\|\|\s*${literal})`, 'g');
  for (const file of new Set([...readers, ...libraryFiles()])) {
    for (const m of fs.readFileSync(file, 'utf8').matchAll(fallback)) problems.push(`${path.relative(ROOT, file)}: ${m[0]} restates the default of '${m[2]}'`);
  }
  assert.deepEqual(problems, []);
});
