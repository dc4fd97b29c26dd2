// scripts/validate.mjs: every rule catches a task.json that breaks it, the inputs record guards
// against removed inputs, and the repository's own tasks pass.
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';

const REPO_ROOT = path.resolve(__dirname, '..', '..');
const SCRIPT = path.join(REPO_ROOT, 'scripts', 'validate.mjs');

interface ValidateResult {
  problems: string[];
  notes: string[];
  recordWritten: boolean;
}
interface ValidateModule {
  validate(options: { root: string; updateRecord?: boolean }): ValidateResult;
  parseVisibleRule(rule: string): { clauses: { name: string; operator: string; value: string }[]; errors: string[] };
}

// A computed specifier keeps tsc from resolving the untyped .mjs; tsx loads it at run time.
let mod: ValidateModule;
before(async () => {
  const specifier = pathToFileURL(SCRIPT).href;
  mod = (await import(specifier)) as ValidateModule;
});

type Json = Record<string, any>;

function goodTask(name: string, id: string): Json {
  return {
    id,
    name,
    friendlyName: `${name} task`,
    description: 'Does a thing.',
    helpMarkDown: 'Help.',
    category: 'Build',
    author: 'Test',
    version: { Major: 1, Minor: 0, Patch: 0 },
    minimumAgentVersion: '3.232.1',
    instanceNameFormat: name,
    groups: [{ name: 'main', displayName: 'Main', isExpanded: true }],
    inputs: [
      { name: 'mode', type: 'pickList', label: 'Mode', defaultValue: 'a', options: { a: 'A', b: 'B' }, helpMarkDown: 'Mode.', groupName: 'main' },
      { name: 'enabled', type: 'boolean', label: 'Enabled', defaultValue: 'true', helpMarkDown: 'On or off.' },
      { name: 'target', type: 'string', label: 'Target', helpMarkDown: 'Target.', visibleRule: 'mode = b && enabled = true' },
      { name: 'connection', type: 'connectedService:dockerregistry', label: 'Connection', helpMarkDown: 'Registry.' },
    ],
    outputVariables: [{ name: 'result', description: 'The result.' }],
    execution: { Node20_1: { target: 'index.js' }, Node24: { target: 'index.js' } },
  };
}

const roots: string[] = [];
after(() => {
  for (const r of roots) fs.rmSync(r, { recursive: true, force: true });
});

/** A throwaway project root with package.json and the given task folders. */
function makeRoot(tasks: Record<string, Json>, { version = '1.2.3', record = true } = {}): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'col-validate-'));
  roots.push(root);
  fs.writeFileSync(path.join(root, 'package.json'), JSON.stringify({ name: 'x', version }));
  for (const [folder, json] of Object.entries(tasks)) writeTask(root, folder, json);
  if (record) {
    const r = mod.validate({ root, updateRecord: true });
    assert.deepEqual(r.problems, [], 'the starting tasks are valid');
  }
  return root;
}

function writeTask(root: string, folder: string, json: Json): void {
  fs.mkdirSync(path.join(root, 'tasks', folder), { recursive: true });
  fs.writeFileSync(path.join(root, 'tasks', folder, 'task.json'), JSON.stringify(json, null, 2));
}

function setVersion(root: string, version: string): void {
  fs.writeFileSync(path.join(root, 'package.json'), JSON.stringify({ name: 'x', version }));
}

const ID1 = '11111111-2222-4333-8444-555555555555';
const ID2 = '66666666-7777-4888-9999-aaaaaaaaaaaa';

/** Validates a root with one task `my-task` (after `mutate`) and returns the problems. */
function problemsFor(mutate: (json: Json) => void): string[] {
  const json = goodTask('MyTask', ID1);
  mutate(json);
  const root = makeRoot({ 'my-task': json }, { record: false });
  return mod.validate({ root, updateRecord: true }).problems;
}

function assertProblem(problems: string[], pattern: RegExp): void {
  assert.ok(problems.some((p) => pattern.test(p)), `expected a problem matching ${pattern}, got:\n${problems.join('\n') || '(none)'}`);
}

describe('task.json rules', () => {
  test('a good task passes', () => {
    assert.deepEqual(problemsFor(() => {}), []);
  });

  const cases: [string, (j: Json) => void, RegExp][] = [
    ['id not a UUID', (j) => (j.id = 'not-a-uuid'), /id 'not-a-uuid' is not a UUID/],
    ['id missing', (j) => delete j.id, /id '' is not a UUID/],
    ['name not PascalCase', (j) => (j.name = 'my-task'), /name 'my-task' is not PascalCase/],
    ['name not matching the folder', (j) => (j.name = 'OtherTask'), /does not match its folder.*'MyTask'/],
    ['friendlyName too long', (j) => (j.friendlyName = 'x'.repeat(41)), /friendlyName .* is 41 characters; at most 40/],
    ['friendlyName missing', (j) => delete j.friendlyName, /friendlyName is missing/],
    ['instanceNameFormat missing', (j) => delete j.instanceNameFormat, /instanceNameFormat is missing/],
    ['Node24 handler missing', (j) => delete j.execution.Node24, /execution\.Node24 is missing/],
    ['Node20_1 handler missing', (j) => delete j.execution.Node20_1, /execution\.Node20_1 is missing/],
    ['handler target not index.js', (j) => (j.execution.Node24.target = 'main.js'), /execution\.Node24\.target is 'main\.js'/],
    ['end-of-life handler', (j) => (j.execution.Node16 = { target: 'index.js' }), /execution\.Node16 runs on an end-of-life Node/],
    ['execution missing', (j) => delete j.execution, /execution is missing/],
    ['minimumAgentVersion missing', (j) => delete j.minimumAgentVersion, /minimumAgentVersion '' is missing/],
    ['minimumAgentVersion too old for Node20_1', (j) => (j.minimumAgentVersion = '2.144.0'), /older than 3\.232\.1/],
    ['input without label', (j) => delete j.inputs[1].label, /input 'enabled': label is missing/],
    ['input without helpMarkDown', (j) => (j.inputs[2].helpMarkDown = ' '), /input 'target': helpMarkDown is missing/],
    ['input with an invalid type', (j) => (j.inputs[2].type = 'text'), /input 'target': type 'text' is not one of/],
    ['input name not camelCase', (j) => (j.inputs[2].name = 'Target_Name'), /name 'Target_Name' is not camelCase/],
    ['input declared twice', (j) => j.inputs.push({ ...j.inputs[1] }), /input 'enabled' is declared twice/],
    ['pickList without options', (j) => delete j.inputs[0].options, /input 'mode': a pickList needs options/],
    ['pickList default not an option', (j) => (j.inputs[0].defaultValue = 'c'), /defaultValue 'c' is not one of its options/],
    ['boolean default not a boolean', (j) => (j.inputs[1].defaultValue = 'yes'), /defaultValue 'yes' of a boolean/],
    ['groupName that does not exist', (j) => (j.inputs[1].groupName = 'advanced'), /groupName 'advanced' is not one of the task's groups \(main\)/],
    ['group without displayName', (j) => delete j.groups[0].displayName, /group 'main' has no displayName/],
    ['visibleRule naming a missing input', (j) => (j.inputs[2].visibleRule = 'mode = b && missingInput != x'), /visibleRule refers to 'missingInput'/],
    ['visibleRule with || naming a missing input', (j) => (j.inputs[2].visibleRule = 'mode = a || other = b'), /visibleRule refers to 'other'/],
    ['visibleRule that does not parse', (j) => (j.inputs[2].visibleRule = 'mode'), /visibleRule condition 'mode' is not/],
    ['visibleRule with an unknown pickList value', (j) => (j.inputs[2].visibleRule = 'mode = c'), /compares 'mode' with 'c', which is not one of its options/],
    ['visibleRule with a non-boolean value', (j) => (j.inputs[2].visibleRule = 'enabled = maybe'), /compares boolean 'enabled' with 'maybe'/],
    ['group visibleRule naming a missing input', (j) => (j.groups[0].visibleRule = 'nothing = true'), /group 'main': visibleRule refers to 'nothing'/],
    ['outputVariables missing', (j) => delete j.outputVariables, /outputVariables is missing/],
    ['output variable without description', (j) => delete j.outputVariables[0].description, /output variable 'result' has no description/],
    ['output variable without name', (j) => j.outputVariables.push({ description: 'x' }), /outputVariables\[1\] name '' is not camelCase/],
  ];
  for (const [title, mutate, pattern] of cases) {
    test(`catches: ${title}`, () => assertProblem(problemsFor(mutate), pattern));
  }

  test('catches duplicate ids across tasks', () => {
    const root = makeRoot({ 'first-task': goodTask('FirstTask', ID1), 'second-task': goodTask('SecondTask', ID1.toUpperCase()) }, { record: false });
    assertProblem(mod.validate({ root }).problems, /tasks\/second-task\/task\.json: id .* is also the id of tasks\/first-task/);
  });

  test('catches an output variable the entry sets but task.json does not declare', () => {
    const root = makeRoot({ 'my-task': goodTask('MyTask', ID1) });
    fs.writeFileSync(path.join(root, 'tasks', 'my-task', 'index.ts'), "runTask('MyTask', async (inputs, ctx) => { ctx.output('result', 'x'); ctx.output('secretOutput', 'y'); });\n");
    const problems = mod.validate({ root }).problems;
    assert.equal(problems.length, 1, problems.join('\n'));
    assertProblem(problems, /index\.ts sets output variable 'secretOutput'/);
  });

  test('reports every problem at once', () => {
    const problems = problemsFor((j) => {
      j.id = 'x';
      j.friendlyName = 'y'.repeat(50);
      delete j.execution.Node24;
      delete j.inputs[1].label;
    });
    assert.ok(problems.length >= 4, problems.join('\n'));
  });

  test('a task.json that is not JSON is reported, not thrown', () => {
    const root = makeRoot({ 'my-task': goodTask('MyTask', ID1) });
    fs.writeFileSync(path.join(root, 'tasks', 'my-task', 'task.json'), '{ "id": ');
    assertProblem(mod.validate({ root }).problems, /tasks\/my-task\/task\.json: not valid JSON/);
  });
});

describe('the bundled version', () => {
  function withDist(version: string, distVersion: Json): string {
    const json = goodTask('MyTask', ID1);
    const root = makeRoot({ 'my-task': json }, { version });
    fs.mkdirSync(path.join(root, 'dist', 'tasks', 'my-task'), { recursive: true });
    fs.writeFileSync(path.join(root, 'dist', 'tasks', 'my-task', 'task.json'), JSON.stringify({ ...json, version: distVersion }));
    return root;
  }

  test('dist task.json with package.json version passes', () => {
    assert.deepEqual(mod.validate({ root: withDist('1.2.3', { Major: 1, Minor: 2, Patch: 3 }) }).problems, []);
  });

  test('dist task.json with another version fails', () => {
    assertProblem(mod.validate({ root: withDist('1.2.4', { Major: 1, Minor: 2, Patch: 3 }) }).problems, /has version 1\.2\.3, package\.json has 1\.2\.4; run npm run build/);
  });

  test('dist without a bundled task fails', () => {
    const root = withDist('1.2.3', { Major: 1, Minor: 2, Patch: 3 });
    writeTask(root, 'other-task', goodTask('OtherTask', ID2));
    mod.validate({ root, updateRecord: true });
    assertProblem(mod.validate({ root }).problems, /dist\/tasks\/other-task\/task\.json is missing; run npm run build/);
  });

  test('dist task.json that differs from the source fails', () => {
    const root = withDist('1.2.3', { Major: 1, Minor: 2, Patch: 3 });
    const src = path.join(root, 'tasks', 'my-task', 'task.json');
    const json = JSON.parse(fs.readFileSync(src, 'utf8'));
    json.friendlyName = 'Changed since the build';
    fs.writeFileSync(src, JSON.stringify(json));
    assertProblem(mod.validate({ root }).problems, /differs from tasks\/my-task\/task\.json; run npm run build/);
  });
});

describe('the inputs record', () => {
  function readRecord(root: string): Json {
    return JSON.parse(fs.readFileSync(path.join(root, 'tasks', 'inputs-record.json'), 'utf8'));
  }
  function editTask(root: string, edit: (j: Json) => void): void {
    const file = path.join(root, 'tasks', 'my-task', 'task.json');
    const json = JSON.parse(fs.readFileSync(file, 'utf8'));
    edit(json);
    fs.writeFileSync(file, JSON.stringify(json));
  }

  test('--update-record writes each task inputs and outputs', () => {
    const root = makeRoot({ 'my-task': goodTask('MyTask', ID1) });
    const record = readRecord(root);
    assert.deepEqual(record.tasks.MyTask.inputs, ['connection', 'enabled', 'mode', 'target']);
    assert.deepEqual(record.tasks.MyTask.outputVariables, ['result']);
    assert.equal(record.tasks.MyTask.major, 1);
    assert.deepEqual(mod.validate({ root }).problems, []);
  });

  test('a task missing from the record fails with a hint', () => {
    const root = makeRoot({ 'my-task': goodTask('MyTask', ID1) }, { record: false });
    assertProblem(mod.validate({ root }).problems, /task MyTask .* is not in the record; run `node scripts\/validate\.mjs --update-record`/);
    assert.ok(!fs.existsSync(path.join(root, 'tasks', 'inputs-record.json')), 'validation without --update-record writes nothing');
  });

  test('a removed input fails: it breaks existing pipelines', () => {
    const root = makeRoot({ 'my-task': goodTask('MyTask', ID1) });
    editTask(root, (j) => (j.inputs = j.inputs.filter((i: Json) => i.name !== 'target')));
    const problems = mod.validate({ root }).problems;
    assertProblem(problems, /input 'target' of MyTask has disappeared.*breaks existing pipelines.*bump the major version.*--update-record/);
  });

  test('a renamed input fails; an alias keeps the old name working', () => {
    const root = makeRoot({ 'my-task': goodTask('MyTask', ID1) });
    editTask(root, (j) => (j.inputs[2].name = 'destination'));
    assertProblem(mod.validate({ root }).problems, /input 'target' of MyTask has disappeared/);
    editTask(root, (j) => (j.inputs[2].aliases = ['target']));
    // The new name still needs recording, but nothing is broken.
    const problems = mod.validate({ root }).problems;
    assert.ok(!problems.some((p) => /disappeared/.test(p)), problems.join('\n'));
    assertProblem(problems, /MyTask has new input\(s\) destination/);
  });

  test('a removed output variable fails', () => {
    const root = makeRoot({ 'my-task': goodTask('MyTask', ID1) });
    editTask(root, (j) => (j.outputVariables = []));
    assertProblem(mod.validate({ root }).problems, /output variable 'result' of MyTask has disappeared/);
  });

  test('--update-record refuses to drop an input without a major version bump', () => {
    const root = makeRoot({ 'my-task': goodTask('MyTask', ID1) });
    const before = fs.readFileSync(path.join(root, 'tasks', 'inputs-record.json'), 'utf8');
    editTask(root, (j) => j.inputs.pop());
    const r = mod.validate({ root, updateRecord: true });
    assertProblem(r.problems, /was not updated/);
    assert.equal(fs.readFileSync(path.join(root, 'tasks', 'inputs-record.json'), 'utf8'), before);
  });

  test('after a major version bump, --update-record drops the input and validation passes', () => {
    const root = makeRoot({ 'my-task': goodTask('MyTask', ID1) });
    editTask(root, (j) => j.inputs.pop());
    setVersion(root, '2.0.0');
    assertProblem(mod.validate({ root }).problems, /out of date/);
    const r = mod.validate({ root, updateRecord: true });
    assert.deepEqual(r.problems, []);
    assert.ok(r.recordWritten);
    const record = readRecord(root);
    assert.deepEqual(record.tasks.MyTask.inputs, ['enabled', 'mode', 'target']);
    assert.equal(record.tasks.MyTask.major, 2);
    assert.deepEqual(mod.validate({ root }).problems, []);
  });

  test('a new input fails until --update-record records it', () => {
    const root = makeRoot({ 'my-task': goodTask('MyTask', ID1) });
    editTask(root, (j) => j.inputs.push({ name: 'extra', type: 'string', label: 'Extra', helpMarkDown: 'Extra.' }));
    assertProblem(mod.validate({ root }).problems, /MyTask has new input\(s\) extra that the record does not list; run `node scripts\/validate\.mjs --update-record`/);
    assert.deepEqual(mod.validate({ root, updateRecord: true }).problems, []);
    assert.ok(readRecord(root).tasks.MyTask.inputs.includes('extra'));
    assert.deepEqual(mod.validate({ root }).problems, []);
  });

  test('a removed task fails', () => {
    const root = makeRoot({ 'my-task': goodTask('MyTask', ID1), 'other-task': goodTask('OtherTask', ID2) });
    fs.rmSync(path.join(root, 'tasks', 'other-task'), { recursive: true });
    assertProblem(mod.validate({ root }).problems, /task OtherTask .* has disappeared: this breaks existing pipelines/);
  });

  test('a changed task id fails', () => {
    const root = makeRoot({ 'my-task': goodTask('MyTask', ID1) });
    editTask(root, (j) => (j.id = ID2));
    assertProblem(mod.validate({ root }).problems, /id changed from .* classic pipelines refer to MyTask by id/);
  });
});

describe('parseVisibleRule', () => {
  test('splits && and || conditions with every operator', () => {
    const { clauses, errors } = mod.parseVisibleRule('a = b && c != d || e Contains f && g NotStartsWith h && i >= 2');
    assert.deepEqual(errors, []);
    assert.deepEqual(
      clauses.map((c) => [c.name, c.operator, c.value]),
      [['a', '=', 'b'], ['c', '!=', 'd'], ['e', 'Contains', 'f'], ['g', 'NotStartsWith', 'h'], ['i', '>=', '2']],
    );
  });
  test('reports conditions that do not parse', () => {
    assert.equal(mod.parseVisibleRule('a = b && ').errors.length, 1);
    assert.equal(mod.parseVisibleRule('= b').errors.length, 1);
  });
});

describe('the command line', () => {
  test('exits non-zero listing every problem, and 0 when all is well', () => {
    const json = goodTask('MyTask', ID1);
    json.id = 'bad';
    delete json.inputs[0].label;
    const root = makeRoot({ 'my-task': json }, { record: false });
    const bad = spawnSync(process.execPath, [SCRIPT, '--root', root], { encoding: 'utf8' });
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /Task validation failed \(3 problems\)/);
    assert.match(bad.stderr, /id 'bad' is not a UUID/);
    assert.match(bad.stderr, /input 'mode': label is missing/);
    assert.match(bad.stderr, /not in the record/);

    writeTask(root, 'my-task', goodTask('MyTask', ID1));
    const update = spawnSync(process.execPath, [SCRIPT, '--root', root, '--update-record'], { encoding: 'utf8' });
    assert.equal(update.status, 0, update.stderr);
    const good = spawnSync(process.execPath, [SCRIPT, '--root', root], { encoding: 'utf8' });
    assert.equal(good.status, 0, good.stderr);
    assert.match(good.stdout, /Validated 1 task\(s\): OK/);
  });
});

describe('the repository', () => {
  // The task.json files, entries and record of the repository, without dist/ (npm run validate checks
  // the bundles after npm run build; a unit test must not depend on a build having run).
  test('the real tasks pass and the committed record is current', () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'col-validate-repo-'));
    roots.push(root);
    fs.copyFileSync(path.join(REPO_ROOT, 'package.json'), path.join(root, 'package.json'));
    const tasksDir = path.join(REPO_ROOT, 'tasks');
    fs.mkdirSync(path.join(root, 'tasks'));
    for (const entry of fs.readdirSync(tasksDir, { withFileTypes: true })) {
      if (entry.isFile() && entry.name === 'inputs-record.json') fs.copyFileSync(path.join(tasksDir, entry.name), path.join(root, 'tasks', entry.name));
      if (!entry.isDirectory() || entry.name === 'lib') continue;
      for (const file of ['task.json', 'index.ts']) {
        const from = path.join(tasksDir, entry.name, file);
        if (!fs.existsSync(from)) continue;
        fs.mkdirSync(path.join(root, 'tasks', entry.name), { recursive: true });
        fs.copyFileSync(from, path.join(root, 'tasks', entry.name, file));
      }
    }
    const result = mod.validate({ root });
    assert.deepEqual(result.problems, []);
    assert.equal(result.recordWritten, false);
    assert.ok(fs.readdirSync(path.join(root, 'tasks')).length >= 3, 'the tasks and the record were copied');
  });
});
