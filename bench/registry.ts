// Figure 3: digest resolution with the library's RegistryClient against real registries
// (CNCF Distribution, anonymous and token auth), and 50 references against `skopeo inspect`.
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MissingPrerequisiteError, Summary, startBenchEngine, errorMessage, mapLimit, median, progress, round, runTimed, summarize, timed } from './util';

type ClientModule = typeof import('../tasks/lib/registry/client');
type RegistryClient = InstanceType<ClientModule['RegistryClient']>;
type CredentialSource = import('../tasks/lib/auth').CredentialSource;
type ImageReference = import('../tasks/lib/reference').ImageReference;
type TestRegistry = import('../test/support/registry').TestRegistry;

export const REFERENCE_COUNT = 50;
export const ROUND_TRIP_TARGETS = { coldKnownRealm: 2, warm: 1 };
export const SPEEDUP_TARGET = 5;
const ROUND_TRIP_REPEATS = 5;
const RESOLVE_MANY_REPEATS = 5;
const PUSH_CONCURRENCY = 4;

export interface Trip {
  /** HTTP requests the client made (stats.requests), token requests included. */
  requests: number;
  tokenRequests: number;
  /** Requests the test token issuer saw (token registry only): an outside count. */
  issuerRequests?: number;
  /** Distinct request counts over the repeats (one value when it is deterministic). */
  requestsSeen: number[];
  medianMs: number;
  minMs: number;
}

export interface FiftyRefs {
  references: number;
  repositories: number;
  resolveMany: Summary & { concurrency: number; requests: number; tokenRequests: number; issuerRequests?: number };
  /** The same client, one reference at a time (resolveMany with concurrency 1), fresh client. */
  resolveSequentialMs: number;
  skopeoInspect: { totalMs: number; perReferenceMedianMs: number; failures: number; firstError?: string };
  skopeoInspectRaw: { totalMs: number; perReferenceMedianMs: number; failures: number; firstError?: string };
  speedup: { vsSkopeoInspect: number; vsSkopeoInspectRaw: number };
  meetsTarget: boolean;
  /** resolveMany digests = the pushes' aux.Digest = skopeo's Digest = sha256 of skopeo --raw. */
  digestsAgree: boolean;
  disagreements?: string[];
}

export interface RegistryReport {
  engine: { dockerHost: string; private: boolean };
  setup: { imagesPerRegistry: number; pattern: string; pushMs: { anonymous: number; token: number }; totalSetupMs: number };
  roundTrips: {
    targets: typeof ROUND_TRIP_TARGETS;
    repeats: number;
    anonymous: { cold: Trip; warm: Trip; otherRepository: Trip };
    token: { coldFirstContact: Trip; coldKnownRealm: Trip; warm: Trip };
    meetsTargets: { coldKnownRealm: boolean; warm: boolean };
  };
  fiftyReferences: { targetSpeedup: number; anonymous: FiftyRefs; token: FiftyRefs };
}

function requireCommand(command: string, args: string[], debianPackage: string): void {
  const out = spawnSync(command, args, { encoding: 'utf8', timeout: 20_000 });
  if (out.error) {
    throw new MissingPrerequisiteError(`'${command}' is not available (${out.error.message}): install the Debian package ${debianPackage}.`);
  }
}

interface Side {
  label: 'anonymous' | 'token';
  registry: TestRegistry;
  refs: string[];
  parsed: ImageReference[];
  pushed: string[];
  credentials?: CredentialSource;
  authFile: string;
}

export async function measureRegistry(): Promise<RegistryReport> {
  requireCommand('skopeo', ['--version'], 'skopeo');
  requireCommand('docker-registry', ['--version'], 'docker-registry');
  requireCommand('openssl', ['version'], 'openssl');

  // Imported here so that a library being edited breaks this figure only, not the whole run.
  const { RegistryClient } = (await import('../tasks/lib/registry/client')) as ClientModule;
  const { parseReference } = await import('../tasks/lib/reference');
  const { startRegistry } = await import('../test/support/registry');
  const { ensureBaseImage, BASE_IMAGE } = await import('../test/support/base-image');
  const { pushImage } = await import('../test/support/images');

  const cleanups: Array<{ what: string; fn: () => Promise<unknown> }> = [];
  const temp = fs.mkdtempSync(path.join(os.tmpdir(), 'col-bench-registry-'));
  fs.chmodSync(temp, 0o700);
  cleanups.push({ what: 'temp folder', fn: async () => fs.rmSync(temp, { recursive: true, force: true }) });
  try {
    const setupStart = process.hrtime.bigint();
    progress('starting the engine and two registries (anonymous, token)');
    const engine = await startBenchEngine();
    cleanups.push({ what: 'engine', fn: () => engine.stop() });
    const docker = engine.docker;
    await ensureBaseImage(docker);
    const anon = await startRegistry('none');
    cleanups.push({ what: 'anonymous registry', fn: () => anon.stop() });
    const tok = await startRegistry('token');
    cleanups.push({ what: 'token registry', fn: () => tok.stop() });

    const names = Array.from({ length: REFERENCE_COUNT }, (_, i) => `bench/svc-${String(i).padStart(2, '0')}`);
    const tag = '1.0';
    const sides: Side[] = [];
    const pushMs = { anonymous: 0, token: 0 };
    for (const [label, registry] of [
      ['anonymous', anon],
      ['token', tok],
    ] as const) {
      const refs = names.map((n) => `${registry.host}/${n}:${tag}`);
      const authFile = path.join(temp, `auth-${label}.json`);
      const auths =
        label === 'token' ? { [registry.host]: { auth: Buffer.from(`${registry.username}:${registry.password}`).toString('base64') } } : {};
      fs.writeFileSync(authFile, JSON.stringify({ auths }), { mode: 0o600 });
      const authconfig = label === 'token' ? { username: registry.username, password: registry.password, serveraddress: registry.host } : {};
      progress(`pushing ${BASE_IMAGE} as ${REFERENCE_COUNT} repositories to the ${label} registry ${registry.host}`);
      for (const n of names) {
        await docker.getImage(BASE_IMAGE).tag({ repo: `${registry.host}/${n}`, tag });
      }
      cleanups.push({
        what: `tags in the engine (${label})`,
        fn: () => mapLimit(refs, 8, (r) => docker.getImage(r).remove({ noprune: true }).catch(() => undefined)),
      });
      const pushed = await timed(() => mapLimit(refs, PUSH_CONCURRENCY, (r) => pushImage(docker, r, authconfig)));
      pushMs[label] = round(pushed.ms);
      const credentials: CredentialSource | undefined =
        label === 'token'
          ? async (domain) => (domain === registry.host ? { username: registry.username!, password: registry.password! } : undefined)
          : undefined;
      sides.push({ label, registry, refs, parsed: refs.map((r) => parseReference(r)), pushed: pushed.value, credentials, authFile });
    }
    const totalSetupMs = round(Number(process.hrtime.bigint() - setupStart) / 1e6);

    const newClient = (side: Side, concurrency?: number): RegistryClient => new RegistryClient({ credentials: side.credentials, concurrency });

    // ---------------------------------------------------------------- round trips
    progress('round trips (cold, cold with the realm known, warm)');
    /** Runs `steps` on a fresh client `ROUND_TRIP_REPEATS` times and measures each step. */
    const trips = async <K extends string>(side: Side, steps: Array<[K, number]>): Promise<Record<K, Trip>> => {
      const samples = new Map<K, { requests: number[]; tokens: number[]; issuer: number[]; ms: number[] }>();
      for (const [key] of steps) samples.set(key, { requests: [], tokens: [], issuer: [], ms: [] });
      for (let rep = 0; rep < ROUND_TRIP_REPEATS; rep++) {
        const client = newClient(side);
        try {
          for (const [key, index] of steps) {
            const s = samples.get(key)!;
            const r0 = client.stats.requests;
            const t0 = client.stats.tokenRequests;
            const i0 = side.registry.tokenRequests?.() ?? 0;
            const { ms, value } = await timed(() => client.resolve(side.parsed[index]));
            if (value.digest !== side.pushed[index]) throw new Error(`${side.refs[index]} resolved to ${value.digest}, pushed as ${side.pushed[index]}`);
            s.ms.push(ms);
            s.requests.push(client.stats.requests - r0);
            s.tokens.push(client.stats.tokenRequests - t0);
            s.issuer.push((side.registry.tokenRequests?.() ?? 0) - i0);
          }
        } finally {
          client.close();
        }
      }
      const out = {} as Record<K, Trip>;
      for (const [key, s] of samples) {
        out[key] = {
          requests: median(s.requests),
          tokenRequests: median(s.tokens),
          ...(side.registry.tokenRequests ? { issuerRequests: median(s.issuer) } : {}),
          requestsSeen: [...new Set(s.requests)].sort((a, b) => a - b),
          medianMs: round(median(s.ms), 2),
          minMs: round(Math.min(...s.ms), 2),
        };
      }
      return out;
    };
    const [anonSide, tokSide] = sides;
    // Different repositories for each repeat would be the same here: every client starts empty.
    const anonTrips = await trips(anonSide, [
      ['cold', 0],
      ['warm', 0],
      ['otherRepository', 1],
    ]);
    const tokTrips = await trips(tokSide, [
      ['coldFirstContact', 0],
      ['coldKnownRealm', 1],
      ['warm', 1],
    ]);
    const roundTrips = {
      targets: ROUND_TRIP_TARGETS,
      repeats: ROUND_TRIP_REPEATS,
      anonymous: anonTrips,
      token: tokTrips,
      meetsTargets: {
        coldKnownRealm: Math.max(...tokTrips.coldKnownRealm.requestsSeen) <= ROUND_TRIP_TARGETS.coldKnownRealm,
        warm: Math.max(...tokTrips.warm.requestsSeen, ...anonTrips.warm.requestsSeen) <= ROUND_TRIP_TARGETS.warm,
      },
    };

    // ---------------------------------------------------------------- 50 references
    const fifty = async (side: Side): Promise<FiftyRefs> => {
      progress(`${REFERENCE_COUNT} references, ${side.label} registry: resolveMany ×${RESOLVE_MANY_REPEATS}, then skopeo inspect and skopeo inspect --raw one by one`);
      const once = async (concurrency?: number) => {
        const client = newClient(side, concurrency);
        try {
          const i0 = side.registry.tokenRequests?.() ?? 0;
          const { ms, value } = await timed(() => client.resolveMany(side.parsed, concurrency ? { concurrency } : {}));
          return { ms, digests: value.map((v) => v.digest), requests: client.stats.requests, tokenRequests: client.stats.tokenRequests, issuer: (side.registry.tokenRequests?.() ?? 0) - i0 };
        } finally {
          client.close();
        }
      };
      await once(); // warm-up: JIT, the registry's caches (not counted)
      const runs: Awaited<ReturnType<typeof once>>[] = [];
      for (let i = 0; i < RESOLVE_MANY_REPEATS; i++) runs.push(await once());
      const sequential = await once(1);
      const defaultConcurrency = 8; // RegistryClient's default for resolveMany

      const skopeo = async (raw: boolean) => {
        const times: number[] = [];
        const digests: string[] = [];
        let failures = 0;
        let firstError: string | undefined;
        const start = process.hrtime.bigint();
        for (const ref of side.refs) {
          const args = ['inspect', ...(raw ? ['--raw'] : []), '--tls-verify=false', '--no-tags', '--authfile', side.authFile, `docker://${ref}`];
          const run = await runTimed('skopeo', args, { env: process.env, timeoutMs: 60_000 });
          times.push(run.ms);
          if (run.code !== 0) {
            failures++;
            firstError ??= `${ref}: ${run.stderr.trim().slice(0, 300)}`;
            digests.push('');
            continue;
          }
          try {
            digests.push(raw ? `sha256:${createHash('sha256').update(run.stdout, 'utf8').digest('hex')}` : (JSON.parse(run.stdout) as { Digest: string }).Digest);
          } catch (err) {
            failures++;
            firstError ??= `${ref}: ${errorMessage(err)}`;
            digests.push('');
          }
        }
        const totalMs = round(Number(process.hrtime.bigint() - start) / 1e6);
        return { totalMs, perReferenceMedianMs: round(median(times)), failures, ...(firstError ? { firstError } : {}), digests };
      };
      const inspect = await skopeo(false);
      const inspectRaw = await skopeo(true);

      const disagreements: string[] = [];
      side.refs.forEach((ref, i) => {
        const seen = {
          pushed: side.pushed[i],
          resolveMany: runs[0].digests[i],
          skopeo: inspect.digests[i],
          skopeoRaw: inspectRaw.digests[i],
        };
        if (new Set(Object.values(seen)).size !== 1) disagreements.push(`${ref}: ${JSON.stringify(seen)}`);
      });
      const summary = summarize(runs.map((r) => r.ms));
      const speedup = {
        vsSkopeoInspect: round(inspect.totalMs / summary.medianMs, 1),
        vsSkopeoInspectRaw: round(inspectRaw.totalMs / summary.medianMs, 1),
      };
      const { digests: _a, ...skopeoInspect } = inspect;
      const { digests: _b, ...skopeoInspectRaw } = inspectRaw;
      return {
        references: side.refs.length,
        repositories: new Set(side.parsed.map((p) => p.path)).size,
        resolveMany: {
          concurrency: defaultConcurrency,
          ...summary,
          requests: median(runs.map((r) => r.requests)),
          tokenRequests: median(runs.map((r) => r.tokenRequests)),
          ...(side.registry.tokenRequests ? { issuerRequests: median(runs.map((r) => r.issuer)) } : {}),
        },
        resolveSequentialMs: round(sequential.ms),
        skopeoInspect,
        skopeoInspectRaw,
        speedup,
        meetsTarget: speedup.vsSkopeoInspect >= SPEEDUP_TARGET,
        digestsAgree: disagreements.length === 0,
        ...(disagreements.length ? { disagreements: disagreements.slice(0, 5) } : {}),
      };
    };
    const fiftyAnon = await fifty(anonSide);
    const fiftyTok = await fifty(tokSide);

    return {
      engine: { dockerHost: engine.dockerHost, private: engine.private },
      setup: { imagesPerRegistry: REFERENCE_COUNT, pattern: `<registry>/bench/svc-NN:${tag} (${REFERENCE_COUNT} repositories, one tag each)`, pushMs, totalSetupMs },
      roundTrips,
      fiftyReferences: { targetSpeedup: SPEEDUP_TARGET, anonymous: fiftyAnon, token: fiftyTok },
    };
  } finally {
    for (const { what, fn } of cleanups.reverse()) {
      try {
        await fn();
      } catch (err) {
        progress(`cleaning up the ${what} failed: ${errorMessage(err)}`);
      }
    }
  }
}
