// The shape of the code base, as the issue on one home per mechanism asks it to stay: no import
// cycle among the product's modules (tasks/ and runner/), and no library file over 450 lines.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

const root = path.resolve(__dirname, '../..');

function sources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === 'node_modules' ? [] : sources(full);
    return entry.name.endsWith('.ts') ? [full] : [];
  });
}

/** The relative modules a file imports at load time (`import type` erases, so it cannot cycle). */
function imports(file: string): string[] {
  const text = fs.readFileSync(file, 'utf8');
  const found: string[] = [];
  for (const match of text.matchAll(/^\s*(import|export)\s+(?!type\s)[^;]*?from\s+'(\.[^']+)'/gms)) {
    const base = path.resolve(path.dirname(file), match[2]);
    // A JSON module (a task entry's task.json) is a leaf; anything else is a .ts file or a folder's index.ts.
    const candidates = base.endsWith('.json') ? [base] : [`${base}.ts`, path.join(base, 'index.ts')];
    const target = candidates.find((candidate) => fs.existsSync(candidate));
    assert.ok(target, `${path.relative(root, file)} imports '${match[2]}', which is no file`);
    found.push(target);
  }
  return found;
}

/** Every cycle's modules (strongly connected components with more than one member, or a self-import). */
function cycles(graph: Map<string, string[]>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  let counter = 0;
  const visit = (node: string) => {
    index.set(node, counter);
    low.set(node, counter++);
    stack.push(node);
    onStack.add(node);
    for (const next of graph.get(node) ?? []) {
      if (!index.has(next)) {
        visit(next);
        low.set(node, Math.min(low.get(node)!, low.get(next)!));
      } else if (onStack.has(next)) low.set(node, Math.min(low.get(node)!, index.get(next)!));
    }
    if (low.get(node) !== index.get(node)) return;
    const component: string[] = [];
    let member: string;
    do {
      member = stack.pop()!;
      onStack.delete(member);
      component.push(member);
    } while (member !== node);
    if (component.length > 1 || (graph.get(node) ?? []).includes(node)) found.push(component);
  };
  for (const node of graph.keys()) if (!index.has(node)) visit(node);
  return found;
}

test('the import graph of tasks/ and runner/ has no cycle', () => {
  const files = [...sources(path.join(root, 'tasks')), ...sources(path.join(root, 'runner'))];
  assert.ok(files.length > 100, 'the walk found the sources');
  const graph = new Map(files.map((file) => [file, imports(file)]));
  assert.ok([...graph.values()].flat().length > files.length, 'the imports were read');
  assert.deepEqual(
    cycles(graph).map((cycle) => cycle.map((file) => path.relative(root, file)).sort()),
    [],
  );
});

test('no file under tasks/lib is over 450 lines: a file that grows past it splits at a seam', () => {
  const long = sources(path.join(root, 'tasks', 'lib'))
    .map((file) => ({ file: path.relative(root, file), lines: fs.readFileSync(file, 'utf8').split('\n').length - 1 }))
    .filter((f) => f.lines > 450);
  assert.deepEqual(long, []);
});

test('the cycle finder finds a cycle', () => {
  const graph = new Map([
    ['a', ['b']],
    ['b', ['c']],
    ['c', ['a']],
    ['d', ['a']],
  ]);
  assert.deepEqual(cycles(graph).map((cycle) => cycle.sort()), [['a', 'b', 'c']]);
});
