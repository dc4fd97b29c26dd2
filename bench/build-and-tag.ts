// Figure 9: BuildAndTag's library against `docker compose build` of the same compose file, the
// example app (examples/shop: api, web, and the test runner of profile 'test'), on the stack of the
// run (COL_STACK), same engine. Twice: the app as written, where web depends on api and the tests
// on both, so BuildAndTag builds one after another; and the same services without depends_on
// (a copy of the file), which it builds at once. For each:
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
  /** The app as written, and its services without depends_on. */
  apps: { example: AppFigure; independent: AppFigure };
  coldRatioTarget: number;
  meetsTarget: boolean;
}

interface AppFigure {
  services: string[];
  /** Which services BuildAndTag waits for before building each (their depends_on). */
  buildOrder: Record<string, string[]>;
  cold: { ours: Summary; compose: Summary; ratio: number };
  warm: { ours: Summary; compose: Summary; ratio: number };
  /** Build cache records the engine still listed after each prune (0: every cold build started from nothing). */
  cacheRecordsAfterPrune: number;
}

export async function measureBuildAndTag(): Promise<BuildAndTagReport> {
  const { compose, composeVersion } = await requireCompose();
  const { ensureBaseImage } = await import('../test/support/base-image');
  const { parse, stringify } = await import('yaml');

  const example = path.join(ROOT, 'examples', 'shop', 'docker-compose.yml');
  const temp = fs.mkdtempSync(path.join(os.tmpdir(), 'col-bench-build-'));
  // The same services, contexts and args, without depends_on: a copy of the app's folder.
  fs.cpSync(path.dirname(example), path.join(temp, 'shop'), { recursive: true });
  const model = parse(fs.readFileSync(example, 'utf8')) as { services: Record<string, { depends_on?: unknown }> };
  for (const service of Object.values(model.services)) delete service.depends_on;
  const independent = path.join(temp, 'shop', 'docker-compose.yml');
  fs.writeFileSync(independent, stringify(model));
  const engine = await startBenchEngine();
  try {
    await ensureBaseImage(engine.docker);
    const env = { ...process.env, DOCKER_HOST: engine.dockerHost, REGISTRY };
    const buildx = await runTimed('docker', ['buildx', 'version'], { env }).catch(() => undefined);
    const apps = {
      example: await measureApp('the example app', example, { docker: engine.docker, compose, env, temp }),
      independent: await measureApp('its services without depends_on', independent, { docker: engine.docker, compose, env, temp }),
    };
    return {
      compose: composeVersion,
      composeBuilder: compose[0] === 'docker' && buildx?.code === 0 ? `buildx bake (${buildx.stdout.trim()})` : 'its own builder',
      maxParallel: MAX_PARALLEL,
      runs: RUNS,
      apps,
      coldRatioTarget: COLD_RATIO_TARGET,
      meetsTarget: apps.example.cold.ratio <= COLD_RATIO_TARGET,
    };
  } finally {
    fs.rmSync(temp, { recursive: true, force: true });
    await engine.stop();
  }
}

async function measureApp(name: string, composeFile: string, o: { docker: Dockerode; compose: string[]; env: NodeJS.ProcessEnv; temp: string }): Promise<AppFigure> {
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
  const theirs = async () => {
    const r = await runTimed(compose[0], [...compose.slice(1), '-p', 'colbench-build', '-f', composeFile, '--profile', 'test', 'build'], { env, cwd: path.dirname(composeFile), timeoutMs: 300_000 });
    if (r.code !== 0) throw new Error(`${compose.join(' ')} build failed (${r.code}): ${(r.stderr || r.stdout).slice(-600)}`);
    return r.ms;
  };
  let cacheRecordsAfterPrune = 0;
  const coldStart = async () => {
    for (const image of images) await docker.getImage(image).remove({ force: true }).catch(() => undefined);
    cacheRecordsAfterPrune = Math.max(cacheRecordsAfterPrune, await pruneBuildCache(docker));
  };

  progress(`BuildAndTag, ${name}: one warm-up of each`);
  await ours();
  await theirs();
  const samples = { oursCold: [] as number[], oursWarm: [] as number[], composeCold: [] as number[], composeWarm: [] as number[] };
  for (let i = 1; i <= RUNS; i++) {
    const sides = [
      async () => {
        await coldStart();
        samples.oursCold.push(await ours());
        samples.oursWarm.push(await ours());
      },
      async () => {
        await coldStart();
        samples.composeCold.push(await theirs());
        samples.composeWarm.push(await theirs());
      },
    ];
    progress(`BuildAndTag, ${name}: run ${i} of ${RUNS} (cold then warm, ${i % 2 ? 'ours first' : 'Compose first'})`);
    for (const side of i % 2 ? sides : sides.reverse()) await side();
  }
  for (const image of images) await docker.getImage(image).remove({ force: true }).catch(() => undefined);

  const figure = (ourSamples: number[], composeSamples: number[]) => {
    const [oursSummary, composeSummary] = [summarize(ourSamples), summarize(composeSamples)];
    return { ours: oursSummary, compose: composeSummary, ratio: round(oursSummary.medianMs / composeSummary.medianMs, 2) };
  };
  return {
    services: plans.map((p) => p.name),
    buildOrder: Object.fromEntries(plans.map((p) => [p.name, p.after])),
    cold: figure(samples.oursCold, samples.composeCold),
    warm: figure(samples.oursWarm, samples.composeWarm),
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
  return [`BuildAndTag: cold build of the example app ${r.apps.example.cold.ratio}× the time of ${r.compose} build > ${r.coldRatioTarget}×`];
}

/** Lines of the run's table for this figure. */
export function buildAndTagTable(r: BuildAndTagReport | undefined): string[] {
  if (!r) return [];
  const ms = (s: Summary) => `median ${s.medianMs} ms (min ${s.minMs}, max ${s.maxMs})`;
  const app = (title: string, a: AppFigure, mark: string) => {
    const order = Object.entries(a.buildOrder).map(([s, after]) => (after.length ? `${s} after ${after.join(', ')}` : s)).join('; ');
    return [
      `  ${title} (${order}):`,
      `    cold (images removed, build cache pruned; ${a.cacheRecordsAfterPrune} records left): ours ${ms(a.cold.ours)}, Compose ${ms(a.cold.compose)}, ratio ${a.cold.ratio}×${mark}`,
      `    warm (again at once): ours ${ms(a.warm.ours)}, Compose ${ms(a.warm.compose)}, ratio ${a.warm.ratio}×`,
    ];
  };
  return [
    `BuildAndTag (library, maxParallel ${r.maxParallel}) vs ${r.compose} --profile test build (${r.composeBuilder}), ${r.runs} runs (target: cold ≤ ${r.coldRatioTarget}× on the example app)`,
    ...app('the example app', r.apps.example, `  ${r.meetsTarget ? 'ok' : 'MISSED'}`),
    ...app('its services without depends_on', r.apps.independent, ''),
    '',
  ];
}
