// Figure 10 (current stack only: a registry cache needs the containerd image store): the time of a
// build on a FRESH engine with BuildAndTag's registry cache, against the same build without it.
// A first build on the bench engine exports its cache (cacheTo type=registry,mode=max) to a test
// registry that wants a password. Then, RUNS times and alternating which goes first, each side gets
// an engine of its own, started for it (own data root; only the base image loaded, as on a
// Microsoft-hosted agent, which starts empty every job):
//   with:    cacheFrom type=registry,ref=… (buildx: the cache manifest and the layers are pulled);
//   without: no cacheFrom (the Engine API's /build: every step runs).
// The Dockerfile's build stage does work worth caching: a CPU step (hashing 300 MB of zeros) and
// a step that makes a 16 MB layer the cache must carry. Only buildAndTag is timed, not the engine start.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { Summary, progress, round, since, startBenchEngine, summarize } from './util';

const RUNS = 3;

const DOCKERFILE = (base: string) => `FROM --platform=$BUILDPLATFORM ${base} AS build
RUN head -c 300000000 /dev/zero | sha256sum > /work-sum
RUN dd if=/dev/urandom of=/blob bs=1M count=16 2>/dev/null && sha256sum /blob > /blob-sum
FROM scratch
COPY --from=build /work-sum /blob /blob-sum /
`;

export interface BuildCacheReport {
  runs: number;
  /** The Dockerfile steps the builds with the cache showed CACHED (each run's). */
  cachedSteps: string[][];
  withRegistryCache: Summary;
  withoutCache: Summary;
  /** with / without, of the medians. */
  ratio: number;
  exportMs: number;
}

export async function measureBuildCache(): Promise<BuildCacheReport> {
  const { buildAndTag } = await import('../tasks/lib/build');
  const { createCredentialSource } = await import('../tasks/lib/auth');
  const { followStream } = await import('../tasks/lib/docker/stream');
  const { BASE_IMAGE, ensureBaseImage } = await import('../test/support/base-image');
  const { createTestContext } = await import('../test/support/context');
  const { startEngine } = await import('../test/support/engine');
  const { buildOptions, cachedBuildSteps } = await import('../test/support/images');
  const { startRegistry } = await import('../test/support/registry');

  const temp = fs.mkdtempSync(path.join(os.tmpdir(), 'col-bench-cache-'));
  fs.writeFileSync(path.join(temp, 'Dockerfile'), DOCKERFILE(BASE_IMAGE));
  const engine = await startBenchEngine();
  const registry = await startRegistry('htpasswd');
  const cacheRef = `${registry.host}/bench/cache:main`;
  const options = (docker: import('dockerode'), over: Record<string, unknown>) => {
    const ctx = createTestContext();
    const endpoint = { id: 'reg', input: 'containerRegistry', url: registry.url, scheme: 'UsernamePassword', auth: { username: registry.username!, password: registry.password! }, data: { registry: registry.url } };
    const credentials = createCredentialSource({ endpoint, setSecret: (s) => ctx.setSecret(s), useDockerConfig: false });
    return { ctx, options: buildOptions(docker, { dockerfile: path.join(temp, 'Dockerfile'), buildContext: temp, imageName: 'bench/cached', tags: ['1'], buildRecordPath: path.join(temp, 'record.json'), credentials, ...over }) };
  };
  try {
    await ensureBaseImage(engine.docker);
    progress('BuildAndTag cache reuse: exporting the cache to the registry');
    const seed = options(engine.docker, { cacheTo: [`type=registry,ref=${cacheRef},mode=max`], noCache: true });
    const exportStart = process.hrtime.bigint();
    await buildAndTag(seed.options, seed.ctx);
    const exportMs = since(exportStart);

    let fresh = 0;
    /** One build on an engine of its own, with only the base image (saved from the bench engine, so its digest is the same). */
    const onFreshEngine = async (over: Record<string, unknown>): Promise<{ ms: number; logs: string[] }> => {
      const dir = fs.mkdtempSync(`/tmp/col-bxb${fresh++}-`);
      const second = await startEngine({ stack: 'current', dir });
      try {
        await followStream((await second.docker.loadImage((await engine.docker.getImage(BASE_IMAGE).get()) as NodeJS.ReadableStream)) as NodeJS.ReadableStream, 'Loading the base image');
        const run = options(second.docker, over);
        const start = process.hrtime.bigint();
        await buildAndTag(run.options, run.ctx);
        return { ms: since(start), logs: run.ctx.logs };
      } finally {
        await second.stop();
        const network = path.join(dir, 'network.json');
        if (fs.existsSync(network)) spawnSync('ip', ['link', 'del', (JSON.parse(fs.readFileSync(network, 'utf8')) as { bridge: string }).bridge]);
        spawnSync('rm', ['-rf', dir]);
      }
    };
    const samples = { with: [] as number[], without: [] as number[] };
    const cachedSteps: string[][] = [];
    for (let i = 1; i <= RUNS; i++) {
      progress(`BuildAndTag cache reuse: run ${i} of ${RUNS} on fresh engines (${i % 2 ? 'with the cache first' : 'without first'})`);
      const sides = [
        async () => {
          const r = await onFreshEngine({ cacheFrom: [`type=registry,ref=${cacheRef}`] });
          samples.with.push(r.ms);
          cachedSteps.push(cachedBuildSteps(r.logs));
        },
        async () => samples.without.push((await onFreshEngine({})).ms),
      ];
      for (const side of i % 2 ? sides : sides.reverse()) await side();
    }
    const [withCache, without] = [summarize(samples.with), summarize(samples.without)];
    return { runs: RUNS, cachedSteps, withRegistryCache: withCache, withoutCache: without, ratio: round(withCache.medianMs / without.medianMs, 2), exportMs: round(exportMs) };
  } finally {
    await registry.stop();
    await engine.stop();
    fs.rmSync(temp, { recursive: true, force: true });
  }
}

/** Lines of the run's table for this figure. */
export function buildCacheTable(r: BuildCacheReport | undefined): string[] {
  if (!r) return [];
  const ms = (s: Summary) => `median ${s.medianMs} ms (min ${s.minMs}, max ${s.maxMs})`;
  return [
    `BuildAndTag cache reuse on a fresh engine, ${r.runs} runs (the cache exported once in ${r.exportMs} ms):`,
    `  cacheFrom type=registry (buildx; steps CACHED per run: ${r.cachedSteps.map((s) => s.length).join(', ')}): ${ms(r.withRegistryCache)}`,
    `  no cache (/build, every step runs): ${ms(r.withoutCache)}`,
    `  ratio ${r.ratio}×`,
    '',
  ];
}
