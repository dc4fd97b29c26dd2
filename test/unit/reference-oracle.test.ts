// Differential test: our image-reference grammar (tasks/lib/reference) against the real one,
// github.com/distribution/reference's ParseNormalizedNamed, which the Docker CLI and engine,
// Compose and containerd parse references with. The oracle is a small Go program of ours
// (test/tools/oracles/reference-oracle), built by scripts/test-tools.mjs at the version
// test/tools/versions.json pins. The whole corpus goes through ONE oracle process.
//
// For every reference both must agree: refused by both, or accepted by both with the same
// registry, path, tag, digest and familiar (short) name. The only differences allowed are the
// deliberate ones listed in DELIBERATE, each with the reason; the test checks that each of them
// still happens in the corpus, so the list cannot go stale.
//
// The generated part of the corpus is random, from a seed the test prints; rerun a failure with
// REFERENCE_ORACLE_SEED=<seed>.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { isIPv6 } from 'node:net';
import * as path from 'node:path';
import fc from 'fast-check';
import { InvalidReferenceError } from '../../tasks/lib/errors';
import { familiarName, formatReference, parseReference } from '../../tasks/lib/reference';
import { HEX64, INVALID, VALID, generated, referenceLike, referenceText } from '../support/reference-cases';
import { buildTestTools } from '../support/stack';

/** What distribution/reference made of one input (test/tools/oracles/reference-oracle/main.go). */
type OracleResult =
  | { input: string; error: string }
  | { input: string; domain: string; path: string; tag?: string; digest?: string; familiar: string; familiarRoundTrips: boolean };
type Accepted = Exclude<OracleResult, { error: string }>;

/** One outcome, ours or the oracle's, in a form that compares with deepEqual. */
type Outcome = { refused: true } | { refused: false; domain: string; path: string; tag?: string; digest?: string; familiar: string };

// ---------------------------------------------------------------------------------------------
// Deliberate differences: distribution accepts these references and we refuse them, each for
// the reason given. `applies` recognises one from the oracle's own result.

interface Deliberate {
  name: string;
  why: string;
  applies(docker: Accepted): boolean;
}

const BARE_DIGEST = /^(?:sha256:[a-f0-9]{64}|sha384:[a-f0-9]{96}|sha512:[a-f0-9]{128})$/;

/** The port of a registry as distribution split it: '5000' from '[::1]:5000' or 'reg:5000', undefined from 'reg'. */
function portOf(domain: string): string | undefined {
  const m = /^(?:\[[^\]]*\]|[^:]*)(?::(.*))?$/.exec(domain);
  return m?.[1];
}

const DELIBERATE: Deliberate[] = [
  {
    name: 'bare digest',
    why: "distribution reads 'sha256:<hex>' as the image docker.io/library/sha256 with the hex as its tag; no one means that, so we refuse it and say to write 'repository@sha256:<hex>'",
    applies: (d) => BARE_DIGEST.test(d.input),
  },
  {
    name: 'port above 65535',
    why: 'distribution takes any run of digits as the port; no registry can listen there, so we say so at once instead of failing on the first connection',
    applies: (d) => {
      const port = portOf(d.domain);
      return port !== undefined && Number(port) > 65535;
    },
  },
  {
    name: 'not an IPv6 address',
    why: "distribution accepts any run of hex digits and ':' in brackets ('[1:2:3]'); one that is not an IPv6 address can never be connected to",
    applies: (d) => d.domain.startsWith('[') && !isIPv6(d.domain.slice(1, d.domain.indexOf(']'))),
  },
  {
    name: 'no registry',
    why: "when the first component is not a valid host ('my_reg.io/app') distribution's regular expression falls back to reading the whole name as a path on no registry at all (domain ''); nothing can pull that, so we refuse it and name the bad host label",
    applies: (d) => d.domain === '',
  },
];

/**
 * Our familiar name is Docker's, except where Docker's cannot be read back as the same reference
 * ('docker.io/a.b/c' gives 'a.b/c', which names the registry 'a.b'; 'docker.io/library/<64 hex>'
 * gives an image ID), or is a bare digest, which we refuse ('docker.io/library/sha256:<hex>'):
 * there we keep the full name, so that parseReference(familiarName(x)) is always x.
 */
function expectedFamiliar(docker: Accepted): string {
  if (docker.familiarRoundTrips && !BARE_DIGEST.test(docker.familiar)) return docker.familiar;
  return formatReference({ domain: docker.domain, path: docker.path, tag: docker.tag, digest: docker.digest });
}

// ---------------------------------------------------------------------------------------------
// The corpus

const SEED = process.env.REFERENCE_ORACLE_SEED ? Number(process.env.REFERENCE_ORACLE_SEED) : Math.floor(Math.random() * 2 ** 31);

const hexOf = (n: number) => (HEX64 + HEX64 + HEX64).slice(0, n);
const a = (n: number) => 'a'.repeat(n);

function handWritten(): string[] {
  const out: string[] = [];
  // Separators inside a path component, alone and in each position.
  for (const s of ['.', '_', '__', '___', '-', '--', '---', '.-', '_.', '..', '-_']) {
    out.push(`a${s}b`, `team/a${s}b`, `reg.io/a${s}b/c`, `a${s}`, `${s}a`, `x/${s}`);
  }
  // Ports, on a host name, a single label, localhost and an IPv6 literal.
  for (const p of ['0', '1', '5000', '65535', '65536', '99999', '0005000', '', 'x', '-1']) {
    out.push(`reg.io:${p}/app`, `host:${p}/app`, `localhost:${p}/app`, `[::1]:${p}/app`, `127.0.0.1:${p}/app:1`);
  }
  // IPv6 hosts.
  for (const h of ['::1', '::', ':', '1:2:3', '::g', '2001:db8::1', 'ABCD::1', '::ffff:1.2.3.4', 'fe80::1%eth0', '', '0:0:0:0:0:0:0:1', '1:2:3:4:5:6:7:8:9']) {
    out.push(`[${h}]/app`, `[${h}]:5000/team/app:1`);
  }
  out.push('[::1]', '[::1]:5000', '::1/app', '[::1]x/app', '[::1/app', '::1]/app');
  // Upper case, in the registry (allowed), the path and the tag.
  out.push('MyApp', 'My/app', 'my/App', 'MY.REG/app', 'LOCALHOST/app', 'LocalHost:5000/app', 'reg.io/App', 'app:TAG', 'Docker.IO/app', 'INDEX.DOCKER.IO/app', 'A/b', 'a/B/c', 'app@SHA256:' + HEX64);
  // Lengths around 255: distribution counts the path only (with 'library/' when it adds it), not the registry.
  for (const n of [245, 246, 247, 248, 249]) out.push(a(n), `docker.io/${a(n)}`, `${a(n)}:1`);
  for (const n of [252, 253, 254]) out.push(`x/${a(n)}`, `library/${a(n - 6)}`);
  for (const n of [254, 255, 256]) {
    out.push(`reg.io/${a(n)}`, `localhost:5000/${a(n)}`, `${'d'.repeat(60)}.${'e'.repeat(60)}.example.com:5000/${a(n)}`, `[::1]:5000/${a(n)}@sha256:${HEX64}`);
  }
  out.push(`reg.io/${'abc/'.repeat(63)}abc`, `reg.io/${'abc/'.repeat(63)}abcd`);
  // Digests: each known algorithm at its length, one off, upper case; unknown algorithms.
  for (const [algorithm, n] of [['sha256', 64], ['sha384', 96], ['sha512', 128]] as const) {
    for (const length of [n - 1, n, n + 1, 32]) out.push(`app@${algorithm}:${hexOf(length)}`);
    out.push(`reg.io/team/app:1@${algorithm}:${hexOf(n)}`, `app@${algorithm}:${hexOf(n).toUpperCase()}`, `${algorithm}:${hexOf(n)}`, `app@${algorithm.toUpperCase()}:${hexOf(n)}`);
  }
  for (const digest of [`sha1:${hexOf(40)}`, `md5:${hexOf(32)}`, `blake3:${hexOf(64)}`, `sha256+b64u:${hexOf(64)}`, 'sha256+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564', `multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8`, `sha-256:${hexOf(64)}`, `a.b_c-d:${hexOf(32)}`, `sha256:${'g'.repeat(64)}`, `:${hexOf(64)}`, 'sha256']) {
    out.push(`app@${digest}`, `localhost:5000/app:1@${digest}`);
  }
  // Loopback registries.
  out.push('localhost', 'localhost:5000', 'localhost/app', 'localhost:5000/app', 'foo.localhost/app', 'foo.localhost:5000/app', 'a.b.localhost/app:1', 'localhost.localdomain/app', 'localhost/library/app', 'localhost/a/b', '127.0.0.1/app', '[::1]/app');
  // Docker Hub normalisation.
  out.push('busybox', 'docker.io/busybox', 'docker.io/library/busybox', 'index.docker.io/busybox', 'index.docker.io/library/busybox:1', 'registry-1.docker.io/busybox', 'docker.io/library/a/b', 'library/busybox', 'library', 'docker.io', 'docker.io/docker.io', 'docker.io/a.b/c', 'a.b/c', 'docker.io:443/app', `docker.io/sha256:${HEX64}`, `docker.io/${HEX64}`, HEX64, `${HEX64}:1`, HEX64.toUpperCase(), `user/${HEX64}`, `${HEX64}@sha256:${HEX64}`);
  // Whitespace and control characters.
  out.push(' busybox', 'busybox ', 'busybox\n', 'app\tx', 'my app', 'app:1 ', '\u00a0app', 'app\r', 'app\u0000');
  return out;
}

function generatedCorpus(seed: number): string[] {
  const valid = generated.map(referenceText);
  // A valid reference with one character replaced, inserted or removed: near misses.
  const mutated = fc
    .tuple(valid, fc.nat(), fc.constantFrom(...'aZ0._-/:@[]% '.split(''), '__', ''), fc.boolean())
    .map(([text, at, piece, insert]) => {
      const i = at % (text.length + 1);
      return text.slice(0, i) + piece + text.slice(insert ? i : i + 1);
    });
  const sample = <T>(arb: fc.Arbitrary<T>, numRuns: number, offset: number) => fc.sample(arb, { seed: seed + offset, numRuns });
  return [...sample(valid, 300, 0), ...sample(mutated, 300, 1), ...sample(referenceLike, 300, 2)];
}

// ---------------------------------------------------------------------------------------------
// Running both

function ours(input: string): Outcome {
  try {
    const ref = parseReference(input);
    return { refused: false, ...ref, familiar: familiarName(ref) };
  } catch (err) {
    assert.ok(err instanceof InvalidReferenceError, `${JSON.stringify(input)}: ${String(err)}`);
    // The message names the reference it refuses (the quoting escapes control characters).
    assert.ok(err.message.startsWith('The image reference '), err.message);
    return { refused: true };
  }
}

function theirs(docker: OracleResult): Outcome {
  if ('error' in docker) return { refused: true };
  const outcome: Outcome = { refused: false, domain: docker.domain, path: docker.path, familiar: expectedFamiliar(docker) };
  if (docker.tag !== undefined) outcome.tag = docker.tag;
  if (docker.digest !== undefined) outcome.digest = docker.digest;
  return outcome;
}

/** JSON for a failure message, with long runs ('a' × 250, 64 hex digits) shortened. */
function brief(value: unknown): string {
  return JSON.stringify(value)
    .replace(/(.)\1{15,}/g, (run, c: string) => `${c}×${run.length}`)
    .replace(/([0-9a-fA-F]{8})[0-9a-fA-F]{24,}/g, (run, head: string) => `${head}…(${run.length} hex)`);
}

function runOracle(binary: string, inputs: string[]): OracleResult[] {
  const r = spawnSync(binary, { input: inputs.map((i) => JSON.stringify(i)).join('\n') + '\n', encoding: 'utf8', maxBuffer: 64 << 20 });
  assert.equal(r.status, 0, `reference-oracle failed: ${r.stderr}`);
  const results = r.stdout.trimEnd().split('\n').map((line) => JSON.parse(line) as OracleResult);
  assert.equal(results.length, inputs.length, 'one oracle answer per reference');
  results.forEach((result, i) => assert.equal(result.input, inputs[i], 'oracle answers in input order'));
  return results;
}

describe('image references: ours against distribution/reference', () => {
  let oracle: string;
  before(async () => {
    oracle = path.join((await buildTestTools(['reference-oracle']))['reference-oracle'], 'reference-oracle');
  });

  test(`the corpus (seed ${SEED}) parses as Docker parses it`, (t) => {
    t.diagnostic(`seed ${SEED} (rerun with REFERENCE_ORACLE_SEED=${SEED})`);
    const tables = [...VALID.map((v) => v[0]), ...INVALID.map((i) => i[0])];
    const corpus = [...new Set([...tables, ...handWritten(), ...generatedCorpus(SEED)])];
    assert.ok(corpus.length >= 300, `${corpus.length} references`);

    const mismatches: string[] = [];
    const applied = new Map(DELIBERATE.map((d) => [d.name, 0]));
    let accepted = 0;
    for (const docker of runOracle(oracle, corpus)) {
      const mine = ours(docker.input);
      let want = theirs(docker);
      const deliberate = 'error' in docker ? undefined : DELIBERATE.find((d) => d.applies(docker));
      if (deliberate) {
        applied.set(deliberate.name, (applied.get(deliberate.name) ?? 0) + 1);
        want = { refused: true };
      }
      if (!want.refused) accepted++;
      try {
        assert.deepEqual(mine, want);
      } catch {
        mismatches.push(`${brief(docker.input)}\n    ours:   ${brief(mine)}\n    docker: ${brief(docker)}`);
      }
    }
    t.diagnostic(`${corpus.length} references, ${accepted} accepted by both; deliberate differences: ${[...applied].map(([n, c]) => `${n} ${c}`).join(', ')}`);
    assert.equal(mismatches.length, 0, `${mismatches.length} of ${corpus.length} references differ from Docker (seed ${SEED}):\n  ${mismatches.slice(0, 40).join('\n  ')}`);
    for (const d of DELIBERATE) {
      assert.ok((applied.get(d.name) ?? 0) > 0, `the deliberate difference '${d.name}' (${d.why}) no longer occurs in the corpus: remove it or add a case`);
    }
    assert.ok(accepted >= 100 && corpus.length - accepted >= 100, `both sides of the grammar exercised: ${accepted} accepted of ${corpus.length}`);
  });
});
