// The task entries read every pickList input with inputs.choice(name, options); an unset input gets
// task.json's default: each such call must list exactly the task.json options, the default first
// (so the code reads as task.json does): of its own task for a task entry, of every task that has
// that input for lib/pipeline.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { RESULTS_FORMATS } from '../../tasks/lib/containerized-test/xml-count';
import { NOTIFY_FORMATS } from '../../tasks/lib/release/notify';

const TASKS = path.join(__dirname, '..', '..', 'tasks');
const CONSTANTS: Record<string, readonly string[]> = { RESULTS_FORMATS, NOTIFY_FORMATS };

interface PickList {
  task: string;
  defaultValue: string;
  options: string[];
}

function pickLists(): Map<string, PickList[]> {
  const byName = new Map<string, PickList[]>();
  for (const dir of fs.readdirSync(TASKS)) {
    const file = path.join(TASKS, dir, 'task.json');
    if (!fs.existsSync(file)) continue;
    const json = JSON.parse(fs.readFileSync(file, 'utf8')) as { inputs: { name: string; type: string; defaultValue?: string; options?: Record<string, string> }[] };
    for (const input of json.inputs) {
      if (input.type !== 'pickList') continue;
      const list = byName.get(input.name) ?? [];
      list.push({ task: dir, defaultValue: input.defaultValue ?? '', options: Object.keys(input.options ?? {}) });
      byName.set(input.name, list);
    }
  }
  return byName;
}

function choiceCalls(): { file: string; name: string; options: string[] }[] {
  const files = [
    ...fs.readdirSync(TASKS).map((d) => path.join(TASKS, d, 'index.ts')),
    ...fs.readdirSync(path.join(TASKS, 'lib', 'pipeline')).map((f) => path.join(TASKS, 'lib', 'pipeline', f)),
  ].filter((f) => fs.existsSync(f));
  const calls: { file: string; name: string; options: string[] }[] = [];
  for (const file of files) {
    for (const m of fs.readFileSync(file, 'utf8').matchAll(/\.choice\('([^']+)',\s*(\[[^\]]*\]|[A-Z_]+)/g)) {
      const options = m[2].startsWith('[') ? [...m[2].matchAll(/'([^']+)'/g)].map((o) => o[1]) : [...(CONSTANTS[m[2]] ?? [])];
      assert.ok(options.length, `${file}: choice('${m[1]}', ${m[2]}) lists no options this test can read`);
      calls.push({ file: path.relative(TASKS, file), name: m[1], options });
    }
  }
  return calls;
}

test('every choice() lists its pickList options as task.json does, the default first', () => {
  const lists = pickLists();
  const calls = choiceCalls();
  for (const call of calls) {
    // A task's entry reads its own task.json; the shared readers in lib/pipeline read every task's.
    const owner = call.file.startsWith('lib') ? undefined : path.dirname(call.file);
    const inputs = (lists.get(call.name) ?? []).filter((i) => owner === undefined || i.task === owner);
    assert.ok(inputs.length, `${call.file}: '${call.name}' is not a pickList input of ${owner ?? 'any task'}`);
    for (const input of inputs) {
      assert.deepEqual([...call.options].sort(), [...input.options].sort(), `${call.file}: choice('${call.name}') options vs ${input.task}/task.json`);
      assert.equal(call.options[0], input.defaultValue, `${call.file}: choice('${call.name}') must list ${input.task}'s default '${input.defaultValue}' first`);
    }
  }
  const read = new Set(calls.map((c) => c.name));
  for (const [name, inputs] of lists) assert.ok(read.has(name), `pickList '${name}' (${inputs.map((i) => i.task).join(', ')}) is not read with inputs.choice()`);
});
