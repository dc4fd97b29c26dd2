#!/usr/bin/env node
// `npm test` after build and validate: the unit tests once, then the integration tests on each
// Docker stack in turn (test/support/stack.ts): legacy, then current. COL_STACK=legacy|current
// runs the integration tests on one stack only; extra arguments are test files to run instead of
// all of them (`node scripts/test.mjs test/integration/demo.test.ts`).
// The current stack's tools are built first (scripts/test-tools.mjs; cached, so a no-op once
// built). Each stack's pass runs through onStack (scripts/stacks.mjs): the legacy one without any
// docker CLI plugin.
// The Kubernetes tests (test/integration/kube-*.test.ts) use no Docker engine: they run once, in
// a pass of their own, on the test control plane (test/support/kube-cluster.ts), which the first
// of them starts and the run stops at its end.
// Ends with one line: "tests: N passed, N failed".
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { stopKubeCluster } from './kube-cluster.mjs';
import { onStack, STACKS } from './stacks.mjs';
import { ensureTools, installPlugins } from './test-tools.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const only = process.env.COL_STACK;
if (only && !STACKS.includes(only)) {
  console.error(`COL_STACK=${only}: use one of ${STACKS.join(', ')}`);
  process.exit(2);
}
const files = process.argv.slice(2);
const glob = (dir) => fs.readdirSync(path.join(root, dir)).filter((f) => f.endsWith('.test.ts')).sort().map((f) => path.join(dir, f));
const unitFiles = files.length > 0 ? files.filter((f) => f.includes('test/unit/')) : glob('test/unit');
const isKube = (f) => /(^|\/)kube-[^/]*\.test\.ts$/.test(f);
const allIntegration = files.length > 0 ? files.filter((f) => !f.includes('test/unit/')) : glob('test/integration');
const kubeFiles = allIntegration.filter(isKube);
const integrationFiles = allIntegration.filter((f) => !isKube(f));

const totals = { passed: 0, failed: 0 };

/** Runs node's test runner on `testFiles` (on `stack`, if given), echoing its output; adds its pass/fail counts to totals. */
function runTests(label, testFiles, env, stack) {
  if (testFiles.length === 0) return Promise.resolve(0);
  console.log(`\n=== ${label}: ${testFiles.length} file(s)`);
  const node = [process.execPath, '--import', 'tsx', '--test', '--test-concurrency=1', ...testFiles];
  const argv = stack ? onStack(stack, node) : node;
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0], argv.slice(1), { cwd: root, env, stdio: ['ignore', 'pipe', 'inherit'] });
    let tailText = '';
    child.stdout.on('data', (chunk) => {
      process.stdout.write(chunk);
      tailText = (tailText + chunk.toString()).slice(-4000);
    });
    child.on('error', reject);
    child.on('close', (code) => {
      const count = (word) => Number(new RegExp(`^\\S*\\s*${word} (\\d+)$`, 'm').exec(tailText)?.[1] ?? 0);
      totals.passed += count('pass');
      totals.failed += count('fail');
      // A runner that failed without reporting a failed test (a crash) still counts as one.
      if (code !== 0 && count('fail') === 0) totals.failed += 1;
      resolve(code ?? 1);
    });
  });
}

// Every pass runs even after a failed one (`||=` would skip the call), so one run shows everything.
let exitCode = await runTests('unit tests', unitFiles, process.env);
const stacks = only ? [only] : STACKS;
if ((stacks.includes('current') && integrationFiles.length > 0) || kubeFiles.length > 0) {
  await ensureTools();
  installPlugins();
}
for (const stack of stacks) {
  const env = { ...process.env, COL_STACK: stack };
  const code = await runTests(`integration tests, ${stack} stack`, integrationFiles, env, stack);
  exitCode ||= code;
}
const kubeCode = await runTests('integration tests, Kubernetes control plane', kubeFiles, process.env);
exitCode ||= kubeCode;
await stopKubeCluster();
console.log(`\ntests: ${totals.passed} passed, ${totals.failed} failed`);
process.exit(exitCode || (totals.failed > 0 ? 1 : 0));
