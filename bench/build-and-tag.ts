// Figure 9: BuildAndTag's library against `docker compose build` of the same compose file, and
// against `docker buildx bake` of it where buildx is installed: the example app (examples/shop:
// api, web, and the test runner of profile 'test'), on the stack of the run (COL_STACK), same
// engine. BuildAndTag builds the three at once (no Dockerfile reads a sibling's image). For each:
//   cold: the built images removed and the engine's build cache pruned (`/build/prune?all=1`) first;
//   warm: again at once, with the cache of the cold build.
// Ours is buildAndTag in this process (maxParallel 3, the task's default); Compose is the stack's
// command line (`docker compose --profile test build`, which hands the services to `buildx bake`
// when the buildx plugin is installed, else builds them itself in dependency order). Runs alternate
// (ours first, then Compose first) so drift in the engine hits both equally.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type Dockerode from 'dockerode';
import { ROOT } from './sizes';
import { Summary, progress, requireCompose, round, runTimed, since, startBenchEngine, summarize } from './util';

export const COLD_RATIO_TARGET = 1.0;
const RUNS = 3;
const MAX_PARALLEL = 3; // the task's default
const REGISTRY = 'bench.local';

export interface BuildAndTagReport {
  compose: string;
  /** How Compose built: through buildx bake (the buildx plugin is installed), or its own builder. */
  composeBuilder: string;
  maxParallel: number;
  runs: number;
  app: AppFigure;
  coldRatioTarget: number;
  meetsTarget: boolean;
}

interface PeerFigure {
  cold: { ours: Summary; peer: Summary; ratio: number };
  warm: { ours: Summary; peer: Summary; ratio: number };
}

interface AppFigure {
  services: string[];
  /** Which services BuildAndTag waits for before building each (the siblings whose image its Dockerfile reads). */
  buildOrder: Record<string, string[]>;
  /** `docker compose build`, and `docker buildx bake` where buildx is installed. */
  peers: { compose: PeerFigure; bake?: PeerFigure };
  /** Build cache records the engine still listed after each prune (0: every cold build started from nothing). */
  cacheRecordsAfterPrune: number;
}

export async function measureBuildAndTag(): Promise<BuildAndTagReport> {
  const { compose, composeVersion } = await requireCompose();
  const { ensureBaseImage } = await import('../test/support/base-image');

  const example = path.join(ROOT, 'examples', 'shop', 'docker-compose.yml');
  const temp = fs.mkdtempSync(path.join(os.tmpdir(), 'col-bench-build-'));
  const engine = await startBenchEngine();
  try {
    await ensureBaseImage(engine.docker);
    const env = { ...process.env, DOCKER_HOST: engine.dockerHost, REGISTRY };
    const buildx = await runTimed('docker', ['buildx', 'version'], { env }).catch(() => undefined);
    const app = await measureApp(example, { docker: engine.docker, compose, bake: buildx?.code === 0, env, temp });
    return {
      compose: composeVersion,
      composeBuilder: compose[0] === 'docker' && buildx?.code === 0 ? `buildx bake (${buildx.stdout.trim()})` : 'its own builder',
      maxParallel: MAX_PARALLEL,
      runs: RUNS,
      app,
      coldRatioTarget: COLD_RATIO_TARGET,
      meetsTarget: app.peers.compose.cold.ratio <= COLD_RATIO_TARGET,
    };
  } finally {
    fs.rmSync(temp, { recursive: true, force: true });
    await engine.stop();
  }
}

async function measureApp(composeFile: string, o: { docker: Dockerode; compose: string[]; bake: boolean; env: NodeJS.ProcessEnv; temp: string }): Promise<AppFigure> {
  const { buildAndTag, planBuilds } = await import('../tasks/lib/build');
  const { createTestContext } = await import('../test/support/context');
  const { buildOptions } = await import('../test/support/images');
  const { docker, compose, env } = o;
  const options = buildOptions(docker, { composeFile, tags: ['latest'], maxParallel: MAX_PARALLEL, buildRecordPath: path.join(o.temp, 'build-record.json'), env: { REGISTRY } });
  const plans = planBuilds(options, createTestContext());
  const images = plans.map((p) => `${REGISTRY}/shop/${p.name}:latest`);

  const ours = async () => {
    const start = process.hrtime.bigint();
    await buildAndTag(options, createTestContext());
    return since(start);
  };
  const command = async (program: string, args: string[]) => {
    const r = await runTimed(program, args, { env, cwd: path.dirname(composeFile), timeoutMs: 300_000 });
    if (r.code !== 0) throw new Error(`${program} ${args.join(' ')} failed (${r.code}): ${(r.stderr || r.stdout).slice(-600)}`);
    return r.ms;
  };
  const peers: Record<string, () => Promise<number>> = {
    compose: () => command(compose[0], [...compose.slice(1), '-p', 'colbench-build', '-f', composeFile, '--profile', 'test', 'build']),
    // bake reads the compose file itself and builds every service with build: (profiles play no part).
    ...(o.bake ? { bake: () => command('docker', ['buildx', 'bake', '-f', composeFile, '--progress', 'quiet']) } : {}),
  };
  let cacheRecordsAfterPrune = 0;
  const coldStart = async () => {
    for (const image of images) await docker.getImage(image).remove({ force: true }).catch(() => undefined);
    cacheRecordsAfterPrune = Math.max(cacheRecordsAfterPrune, await pruneBuildCache(docker));
  };

  progress('BuildAndTag: one warm-up of each');
  await ours();
  for (const peer of Object.values(peers)) await peer();
  const samples: Record<string, { cold: number[]; warm: number[] }> = Object.fromEntries(['ours', ...Object.keys(peers)].map((k) => [k, { cold: [], warm: [] }]));
  const sides = Object.entries({ ours, ...peers }).map(([name, run]) => async () => {
    await coldStart();
    samples[name].cold.push(await run());
    samples[name].warm.push(await run());
  });
  for (let i = 1; i <= RUNS; i++) {
    progress(`BuildAndTag: run ${i} of ${RUNS} (cold then warm, ${i % 2 ? 'ours first' : 'ours last'})`);
    for (const side of i % 2 ? sides : [...sides].reverse()) await side();
  }
  for (const image of images) await docker.getImage(image).remove({ force: true }).catch(() => undefined);

  const figure = (ourSamples: number[], peerSamples: number[]) => {
    const [oursSummary, peerSummary] = [summarize(ourSamples), summarize(peerSamples)];
    return { ours: oursSummary, peer: peerSummary, ratio: round(oursSummary.medianMs / peerSummary.medianMs, 2) };
  };
  const against = (peer: string): PeerFigure => ({ cold: figure(samples.ours.cold, samples[peer].cold), warm: figure(samples.ours.warm, samples[peer].warm) });
  return {
    services: plans.map((p) => p.name),
    buildOrder: Object.fromEntries(plans.map((p) => [p.name, p.after])),
    peers: { compose: against('compose'), ...(peers.bake ? { bake: against('bake') } : {}) },
    cacheRecordsAfterPrune,
  };
}

/** Empties the engine's build cache (what `docker builder prune --all` does); returns the cache records it still lists. */
async function pruneBuildCache(docker: Dockerode): Promise<number> {
  await new Promise<void>((resolve, reject) =>
    docker.modem.dial({ path: '/build/prune?', method: 'POST', options: { all: true }, statusCodes: { 200: true } }, (err) => (err ? reject(err) : resolve())),
  );
  const df = (await docker.df()) as { BuildCache?: unknown[] };
  return df.BuildCache?.length ?? 0;
}

/** Missed targets of this figure, for the run's `missedTargets`. */
export function buildAndTagMissed(r: BuildAndTagReport | undefined): string[] {
  if (!r || r.meetsTarget) return [];
  return [`BuildAndTag: cold build of the example app ${r.app.peers.compose.cold.ratio}× the time of ${r.compose} build > ${r.coldRatioTarget}×`];
}

/** Lines of the run's table for this figure. */
export function buildAndTagTable(r: BuildAndTagReport | undefined): string[] {
  if (!r) return [];
  const ms = (s: Summary) => `median ${s.medianMs} ms (min ${s.minMs}, max ${s.maxMs})`;
  const order = Object.entries(r.app.buildOrder).map(([s, after]) => (after.length ? `${s} after ${after.join(', ')}` : s)).join('; ');
  const peer = (title: string, f: PeerFigure, mark: string) => [
    `  vs ${title}:`,
    `    cold (images removed, build cache pruned; ${r.app.cacheRecordsAfterPrune} records left): ours ${ms(f.cold.ours)}, theirs ${ms(f.cold.peer)}, ratio ${f.cold.ratio}×${mark}`,
    `    warm (again at once): ours ${ms(f.warm.ours)}, theirs ${ms(f.warm.peer)}, ratio ${f.warm.ratio}×`,
  ];
  return [
    `BuildAndTag (library, maxParallel ${r.maxParallel}) on the example app (${order}), ${r.runs} runs (target: cold ≤ ${r.coldRatioTarget}× ${r.compose} build)`,
    ...peer(`${r.compose} --profile test build (${r.composeBuilder})`, r.app.peers.compose, `  ${r.meetsTarget ? 'ok' : 'MISSED'}`),
    ...(r.app.peers.bake ? peer('docker buildx bake -f docker-compose.yml', r.app.peers.bake, '') : []),
    '',
  ];
}
