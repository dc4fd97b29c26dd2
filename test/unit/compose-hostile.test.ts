// Issue 13, low: hostile compose files. 20,000 nested `${A:-…}` ended in "Maximum call stack size
// exceeded" with no file named; service names such as `../../x y` or ones holding `##vso[` were
// taken as they were, where Compose v2 refuses them. And a fuzz pass over interpolation and env
// files: anything may be refused, but only with our own errors (tasks/lib/errors.ts). Random from a
// seed the test prints: rerun a failure with COMPOSE_FUZZ_SEED=<seed>.
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import fc from 'fast-check';
import { parseEnvFile } from '../../tasks/lib/compose/dotenv';
import { interpolate } from '../../tasks/lib/compose/interpolate';
import { loadCompose } from '../../tasks/lib/compose/load';
import { OuterLoopError } from '../../tasks/lib/errors';
import { composeV2Binary } from '../support/stack';

const run = promisify(execFile);
const SEED = process.env.COMPOSE_FUZZ_SEED ? Number(process.env.COMPOSE_FUZZ_SEED) : Math.floor(Math.random() * 2 ** 31);
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'col-hostile-'));
after(() => fs.rmSync(work, { recursive: true, force: true }));

let projects = 0;
function composeFile(text: string): string {
  const dir = path.join(work, `p${++projects}`);
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'compose.yml'), text);
  return path.join(dir, 'compose.yml');
}

describe('nesting', () => {
  test('20,000 nested ${A:-…} are refused, naming the file and the key, not with a stack overflow', () => {
    const nested = '${A:-'.repeat(20_000) + 'x' + '}'.repeat(20_000);
    const file = composeFile(`services:\n  web:\n    image: busybox\n    environment:\n      DEEP: "${nested}"\n`);
    assert.throws(
      () => loadCompose([file], { env: {} }),
      (err: unknown) => {
        assert.ok(err instanceof OuterLoopError, `one of our errors, not ${String(err).slice(0, 200)}`);
        assert.match(err.message, /compose\.yml/);
        assert.match(err.message, /services\.web\.environment\.DEEP/);
        assert.match(err.message, /nests \$\{…\} more than 100 deep/);
        assert.ok(err.message.length < 1000, 'the message does not repeat the whole value');
        return true;
      },
    );
  });

  test('nesting Compose files really use still works', () => {
    const file = composeFile('services:\n  web:\n    image: "busybox:${A:-${B:-${C:-${D:-1.36}}}}"\n');
    assert.equal(loadCompose([file], { env: {} }).services[0].image, 'busybox:1.36');
  });
});

describe('names of services, networks, volumes, secrets and configs, as Compose v2 checks them', () => {
  let compose: string;
  before(async () => {
    compose = await composeV2Binary();
  });

  const NAMES = ['web', 'web.1_a-B', '..', '.', '_', '-x', '../../x y', 'a##vso[task.complete result=Succeeded]x', 'a b', 'a/b', 'é', 'a:b', '${N}', 'a\tb'];
  for (const section of ['services', 'networks', 'volumes', 'secrets', 'configs']) {
    test(`${section}: the names Compose v2 refuses are refused, the others kept`, async () => {
      for (const name of NAMES) {
        const key = JSON.stringify(name);
        const text =
          section === 'services'
            ? `services:\n  ${key}: {image: busybox}\n`
            : `services:\n  web: {image: busybox}\n${section}:\n  ${key}: ${section === 'secrets' || section === 'configs' ? '{environment: HOME}' : '{}'}\n`;
        const file = composeFile(text);
        const theirs = await run(compose, ['-p', 'names', '-f', file, 'config', '--format', 'json'], { env: { PATH: process.env.PATH, HOME: work }, cwd: path.dirname(file) }).then(
          () => 'accepted',
          (err: { stderr: string }) => (/additional properties .* not allowed/.test(err.stderr) ? 'refused' : `failed otherwise: ${err.stderr}`),
        );
        let ours = 'accepted';
        try {
          loadCompose([file], { env: { HOME: work } });
        } catch (err) {
          assert.ok(err instanceof OuterLoopError, String(err));
          assert.match(err.message, /\^\[a-zA-Z0-9\._-\]\+\$/, 'the message gives the rule');
          assert.match(err.message, /compose\.yml/, 'the message names the file');
          ours = 'refused';
        }
        assert.equal(ours, theirs, `${section} name ${key}`);
      }
    });
  }
});

describe(`fuzz (seed ${SEED})`, () => {
  const PIECES = ['$', '$$', '{', '}', '${', ':-', '-', ':?', '?', ':+', '+', 'A', 'B', '_', '1', 'x', ' ', '\n', '"', "'", '\\', '#', '=', 'é'];
  const text = fc.array(fc.constantFrom(...PIECES), { maxLength: 40 }).map((p) => p.join(''));
  const env = { A: 'a', B: '', X: '${A}' };
  const ours = (fn: () => unknown) => {
    try {
      fn();
    } catch (err) {
      if (!(err instanceof OuterLoopError)) throw err;
    }
  };
  const bounds = { seed: SEED, numRuns: 3000, interruptAfterTimeLimit: 20_000, markInterruptAsFailure: true };

  test('interpolation: a string, or one of our errors', () => {
    fc.assert(fc.property(text, (t) => ours(() => interpolate(t, env, 'fuzz'))), bounds);
  });

  test('deeply nested and unbalanced references: a string, or one of our errors', () => {
    const deep = fc.tuple(fc.integer({ min: 1, max: 400 }), fc.constantFrom(':-', '-', ':+', '+', ':?'), fc.integer({ min: 0, max: 400 })).map(([n, op, closing]) => `\${A${op}`.repeat(n) + 'x' + '}'.repeat(closing));
    fc.assert(fc.property(deep, (t) => ours(() => interpolate(t, { A: '' }, 'fuzz'))), { ...bounds, numRuns: 300 });
  });

  test('env files: values, or one of our errors naming the file', () => {
    fc.assert(fc.property(text, (t) => ours(() => parseEnvFile(t, { file: 'fuzz.env', env }))), bounds);
  });
});
