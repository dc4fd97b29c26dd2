// Issue 13, medium: `.dockerignore` patterns backtracked exponentially (a pattern became a JS regular
// expression), and the synchronous context walk ignored SIGTERM. Now the matcher runs in linear
// time, as Docker's (Go's RE2) does, and the walk checks the task's abort signal between folders.
//
// The differential fuzz pass compares tasks/lib/docker/ignore.ts with moby/patternmatcher (its
// ignorefile reader and MatchesOrParentMatches, what the Docker CLI and BuildKit use), through a small
// Go program of ours (test/tools/oracles/ignore-oracle) built by scripts/test-tools.mjs. One oracle process
// answers the whole generated corpus. Random from a seed the test prints: rerun a failure with
// DOCKERIGNORE_SEED=<seed>.
import { strict as assert } from 'node:assert';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { packBuildContext } from '../../tasks/lib/docker/context';
import { IgnoreMatcher, parseDockerignore } from '../../tasks/lib/docker/ignore';
import { CancelledError, FileError } from '../../tasks/lib/errors';
import { ReadablePaths } from '../../tasks/lib/readable-paths';
import { buildTestTools } from '../support/stack';

const SEED = process.env.DOCKERIGNORE_SEED ? Number(process.env.DOCKERIGNORE_SEED) : Math.floor(Math.random() * 2 ** 31);
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'col-ignore-'));
after(() => fs.rmSync(work, { recursive: true, force: true }));

interface Case {
  dockerignore: string;
  paths: string[];
}
type Answer = { patterns: string[]; ignored?: boolean[]; error?: string };

function runOracle(binary: string, cases: Case[]): Answer[] {
  const r = spawnSync(binary, { input: cases.map((c) => JSON.stringify(c)).join('\n') + '\n', encoding: 'utf8', maxBuffer: 64 << 20 });
  assert.equal(r.status, 0, `ignore-oracle failed: ${r.stderr}`);
  const answers = r.stdout.trimEnd().split('\n').map((line) => JSON.parse(line) as Answer);
  assert.equal(answers.length, cases.length, 'one oracle answer per case');
  return answers;
}

/** Ours, in the oracle's form; any exception but our FileError fails the test. */
function ours(c: Case): Answer {
  const patterns = parseDockerignore(c.dockerignore);
  try {
    const matcher = new IgnoreMatcher(patterns);
    return { patterns, ignored: c.paths.map((p) => matcher.ignores(p)) };
  } catch (err) {
    assert.ok(err instanceof FileError, `${JSON.stringify(c)}: ${String(err)}`);
    return { patterns, error: err.message };
  }
}

// Deliberate differences: patterns Docker accepts and we refuse, each with a clear message, because
// Docker hands them to Go's regular expressions, where they do not mean what a glob says.
const DELIBERATE: { name: string; applies: (pattern: string) => boolean }[] = [
  // `[*]` becomes `[[^/]*]` there: a class of '[', '^' and '/', repeated, then ']'.
  { name: "'*' or '?' inside [...]", applies: (p) => /\[[^\]]*[*?]/.test(p) },
  // `\x41`, `\pL`, `\Q…\E`, `\b`, `\1`: regular-expression escapes, not escaped characters.
  { name: 'a regular-expression escape', applies: (p) => /\\[xpPQEbBAzC0-9]/.test(p.replace(/\\\\/g, '')) },
];

// ---------------------------------------------------------------------------------------------
// The generated corpus

const PIECES = ['a', 'b', 'ab', '.', '..', '-', ' ', 'é', '/', '*', '**', '?', '^', '$', '(', '+', '{', ']', '[ab]', '[^a]', '[a-c]', '[\\]]', '[[:digit:]]', '[[:^alpha:]]', '\\*', '\\.', '\\[', '\\\\', '\\d', '\\W', '\\a', '1'];
// Pieces that Go's filepath.Match or its regular expressions refuse (some only where the check reaches them).
const BAD_PIECES = ['[c-a]', '[[:nope:]]', '[]a]', '[-a]', '[a', '\\q', '\\é', '[*]', '\\x41'];
const SEGMENTS = ['a', 'b', 'ab', 'ba', 'aab', '.a', 'a.b', 'x', '1', 'é', '^a', '[', ']', '*', '$', 'a b', '\\', '\x07'];

const patternText = fc.tuple(fc.constantFrom('', '', '', '!', '/', '!/', '# ', ' '), fc.array(fc.oneof({ arbitrary: fc.constantFrom(...PIECES), weight: 30 }, { arbitrary: fc.constantFrom(...BAD_PIECES), weight: 1 }), { minLength: 1, maxLength: 6 })).map(([prefix, pieces]) => prefix + pieces.join(''));
const pathText = fc.array(fc.constantFrom(...SEGMENTS), { minLength: 1, maxLength: 5 }).map((segments) => segments.join('/'));
const caseArb = fc.record({
  dockerignore: fc.array(patternText, { minLength: 1, maxLength: 4 }).map((lines) => lines.join('\n') + '\n'),
  paths: fc.array(pathText, { minLength: 1, maxLength: 6 }),
});

describe('against moby/patternmatcher', () => {
  let oracle: string;
  before(async () => {
    oracle = path.join((await buildTestTools(['ignore-oracle']))['ignore-oracle'], 'ignore-oracle');
  });

  test(`a generated corpus (seed ${SEED}) is read and matched as Docker does`, (t) => {
    t.diagnostic(`seed ${SEED} (rerun with DOCKERIGNORE_SEED=${SEED})`);
    const handWritten: Case[] = [
      { dockerignore: '**foo\n', paths: ['barfoo', 'a/foo', 'foo', 'a/barfoo/x', 'fo'] },
      { dockerignore: '**.log\n!keep.log\n', paths: ['x.log', 'a/b.log', 'keep.log', 'a/keep.log'] },
      { dockerignore: 'abc**\n', paths: ['abcd', 'abc/d', 'ab'] },
      { dockerignore: '^a\n', paths: ['^a', 'a'] },
      // Go's Match stops checking at a chunk that cannot match ".": an exclusion keeps its inner space.
      { dockerignore: 'x\n! *[]a]\n', paths: ['x', ' y]', 'a'] },
      { dockerignore: '^a*\n', paths: ['^ab', 'ab'] },
      { dockerignore: 'a^b*\n', paths: ['a^bc', 'abc'] },
      { dockerignore: 'docs/*\n!docs/README.md\n', paths: ['docs/a.md', 'docs/README.md', 'docs/x/README.md'] },
      { dockerignore: '*\n!*/\n', paths: ['a', 'a/b'] },
      { dockerignore: 'a\\\n', paths: ['a\\'] },
      { dockerignore: '\uFEFF# c\n#x\n x \n!\n', paths: ['x'] },
      { dockerignore: '[[:alpha:]]\n[\\d]*\n', paths: ['a', '1x', 'x1', '_'] },
      { dockerignore: '?\n', paths: ['\n', 'a', 'é'] },
      { dockerignore: '*\n', paths: ['a\nb', 'a/b'] },
      { dockerignore: '**\n', paths: ['a\nb'] },
      { dockerignore: 'a**\n', paths: ['a\nb'] },
      { dockerignore: 'x/**/y\n', paths: ['x/y', 'x/a/b/y', 'x\n/y'] },
    ];
    const generated = fc.sample(caseArb, { seed: SEED, numRuns: 1000 });
    const corpus = [...handWritten, ...generated];
    const mismatches: string[] = [];
    let refusedByBoth = 0;
    let ignoredPaths = 0;
    const deliberate = new Map(DELIBERATE.map((d) => [d.name, 0]));
    runOracle(oracle, corpus).forEach((docker, i) => {
      const c = corpus[i];
      const mine = ours(c);
      const show = () => `${JSON.stringify(c)}\n    docker: ${JSON.stringify(docker)}\n    ours:   ${JSON.stringify(mine)}`;
      if (JSON.stringify(mine.patterns) !== JSON.stringify(docker.patterns)) return void mismatches.push(`patterns read differently: ${show()}`);
      if (docker.error && mine.error) return void refusedByBoth++;
      if (mine.error && !docker.error) {
        const why = DELIBERATE.find((d) => mine.patterns.some((p) => d.applies(p)));
        if (why) return void deliberate.set(why.name, (deliberate.get(why.name) ?? 0) + 1);
      }
      if (JSON.stringify(mine.ignored) !== JSON.stringify(docker.ignored) || !!mine.error !== !!docker.error) mismatches.push(show());
      ignoredPaths += (docker.ignored ?? []).filter(Boolean).length;
    });
    t.diagnostic(`${corpus.length} cases, ${refusedByBoth} refused by both, ${ignoredPaths} paths ignored, deliberate refusals: ${JSON.stringify(Object.fromEntries(deliberate))}`);
    assert.deepEqual(mismatches, [], `${mismatches.length} of ${corpus.length} differ (DOCKERIGNORE_SEED=${SEED})`);
    assert.ok(corpus.length - refusedByBoth > 500, 'most cases are matched, not refused');
    assert.ok(ignoredPaths > 100, 'many paths are ignored, not only kept');
  });
});

describe('linear time', () => {
  test('patterns that backtrack exponentially in a regular expression finish at once', () => {
    // In a child with a hard limit: a backtracking matcher runs for minutes and blocks its thread.
    const script = `
      const { IgnoreMatcher } = require('./tasks/lib/docker/ignore');
      const deep = Array.from({ length: 60 }, (_, i) => 'd' + i).join('/') + '/y';
      const m1 = new IgnoreMatcher(['**/**/**/**/**/**/**/**/**/**/**/**/x']);
      const m2 = new IgnoreMatcher(['*a*a*a*a*a*a*a*a*b']);
      const m3 = new IgnoreMatcher(['**/**/**/**/**/**/**/**/**/**/**/**/y']);
      console.log(JSON.stringify([m1.ignores(deep), m2.ignores('a'.repeat(80)), m2.ignores('a'.repeat(79) + 'b'), m3.ignores(deep)]));`;
    const out = execFileSync(process.execPath, ['--import', 'tsx', '-e', script], { cwd: path.resolve(__dirname, '../..'), timeout: 20_000, encoding: 'utf8' });
    assert.deepEqual(JSON.parse(out), [false, false, true, true]);
  });
});

describe('the context walk', () => {
  test('is cancelled by the task abort signal between folders, with a CancelledError', async () => {
    const dir = path.join(work, 'many');
    for (let i = 0; i < 200; i++) fs.mkdirSync(path.join(dir, `d${i}`, 'sub'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'Dockerfile'), 'FROM x\n');
    const controller = new AbortController();
    const packing = packBuildContext(dir, path.join(dir, 'Dockerfile'), { readable: new ReadablePaths(dir, []), signal: controller.signal });
    setImmediate(() => controller.abort(new Error('BuildAndTag was cancelled (SIGTERM).')));
    await assert.rejects(packing, (err: unknown) => err instanceof CancelledError && /SIGTERM/.test(err.message));
  });
});
