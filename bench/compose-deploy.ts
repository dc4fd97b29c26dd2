// Figure 5: ComposeDeploy.
//   a. render time of a 200-service compose file (a base with anchors and an override, ~100 KB; a
//      lock with 200 images): loadCompose + renderCompose
//        - warm: in this process, median of 10 calls after one warm-up (the comparable figure);
//        - cold: `node render.js` in a fresh process per run, the code bundled by esbuild as the task
//          is (what one task run pays: node start-up, module loading, the yaml parser not yet
//          optimised by V8), whole process, against Compose v2's `docker-compose config` on the same
//          files, alternating; median of 7 each. Target: at most 1.0× Compose (issue 10).
//      Target (warm): under 200 ms.
//   b. deploy overhead on the fixture app (test/fixtures/compose-deploy: web with a healthcheck,
//      worker): the bundled dist/tasks/compose-deploy/index.js as the agent runs it (render, pull
//      check, up, health gate, digest verification, release store) against the stack's Compose:
//        - `compose -p P up -d` by hand, and
//        - the same until web is healthy, which is what a careful script does: `up -d --wait` with
//          Compose v2, `up -d` and polling the engine every 250 ms with v1 (it has no --wait).
//          Target on the current stack: the task ≤ 1.25× `up -d --wait`.
//      Every run switches the project between v1 and v2 of the web image, so each one recreates
//      web; runs alternate (hand, task, …) so drift hits both equally.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ROOT } from './sizes';
import { Summary, VersusCompose, bundleLikeTasks, requireComposeTask, startBenchEngine, errorMessage, progress, round, runTaskTimed, runTimed, since, summarize, versusComposeConfig, versusComposeLines } from './util';
import { pushWithDigestDefaults } from '../test/support/task-defaults';

export const RENDER_TARGET_MS = 200;
export const DEPLOY_RATIO_TARGET = 1.25;
export const RENDER_SERVICES = 200;
const RENDER_RUNS = 10;
const DEPLOY_RUNS = 4;

export interface ComposeDeployReport {
  render?: { services: number; bytes: number; firstMs: number; warm: Summary; targetMs: number; meetsTarget: boolean; inPlace: boolean; cold?: VersusCompose };
  deploy?: {
    compose: string;
    runs: number;
    byHand: Summary;
    /** How the by-hand run waited for health: `up -d --wait` (v2) or polling after `up -d` (v1). */
    healthWait: string;
    byHandWithHealthWait: Summary;
    task: Summary;
    ratioVsUp: number;
    ratioVsUpAndWait: number;
    ratioTarget: number;
    /** The task's own account of its last run (its `Timings:` log line). */
    lastTaskPhases?: string;
  };
}

function renderFixture(dir: string): { files: string[]; lock: string } {
  const base: string[] = ['# 200 services', 'x-defaults: &defaults', '  restart: unless-stopped', '  labels: {team: shop}', '  logging: {driver: json-file, options: {max-size: 10m}}', 'services:'];
  const override: string[] = ['services:'];
  const images: unknown[] = [];
  for (let i = 0; i < RENDER_SERVICES; i++) {
    const name = `svc${String(i).padStart(3, '0')}`;
    base.push(
      `  ${name}:`,
      '    <<: *defaults',
      `    image: \${REGISTRY:-registry.example.com}/shop/${name}:\${TAG:-1.0}`,
      `    build: {context: ./${name}, args: {VERSION: "\${TAG:-1.0}"}}`,
      '    environment:',
      `      - SERVICE=${name}`,
      '      - LOG_LEVEL=${LOG_LEVEL:-info}',
      `    ports: ["${10000 + i}:8080"]`,
      `    volumes: ["./data/${name}:/data", "cache-${i % 10}:/cache"]`,
      '    healthcheck: {test: ["CMD", "wget", "-q", "-O-", "http://127.0.0.1:8080/health"], interval: 10s, retries: 3}',
      ...(i > 0 ? [`    depends_on: [svc${String(i - 1).padStart(3, '0')}]`] : []),
    );
    override.push(`  ${name}:`, '    environment: {ENV: qa}', '    labels: {env: qa}');
    const digest = `sha256:${(i.toString(16).padStart(4, '0') + 'ab').repeat(11).slice(0, 64)}`;
    images.push({ name, repository: `registry.example.com/shop/${name}`, tags: ['1.0'], digest, ref: `registry.example.com/shop/${name}@${digest}`, source: 'built', platforms: ['linux/amd64'] });
  }
  base.push('volumes:', ...Array.from({ length: 10 }, (_, i) => `  cache-${i}: {}`));
  fs.writeFileSync(path.join(dir, 'docker-compose.yml'), `${base.join('\n')}\n`);
  fs.writeFileSync(path.join(dir, 'docker-compose.qa.yml'), `${override.join('\n')}\n`);
  fs.writeFileSync(path.join(dir, 'lock.json'), JSON.stringify({ schemaVersion: 1, createdAt: '2026-11-22T05:40:00.000Z', images }));
  return { files: [path.join(dir, 'docker-compose.yml'), path.join(dir, 'docker-compose.qa.yml')], lock: path.join(dir, 'lock.json') };
}

async function measureRender(temp: string): Promise<NonNullable<ComposeDeployReport['render']>> {
  const { files, lock } = renderFixture(temp);
  const { loadCompose } = await import('../tasks/lib/compose/load');
  const { renderCompose } = await import('../tasks/lib/compose/render');
  const { readLock } = await import('../tasks/lib/lock/file');
  const once = () => {
    const start = process.hrtime.bigint();
    const app = loadCompose(files, { env: { PATH: process.env.PATH }, profiles: [] });
    const r = renderCompose(app, { lock: readLock(lock), allowUnpinned: false, header: ['bench'] });
    return { ms: since(start), r };
  };
  const first = once();
  const warm: number[] = [];
  for (let i = 0; i < RENDER_RUNS; i++) warm.push(once().ms);
  const summary = summarize(warm);
  const cold = await coldRender(temp, files, lock);
  return {
    services: RENDER_SERVICES,
    bytes: files.reduce((n, f) => n + fs.statSync(f).size, 0),
    firstMs: round(first.ms),
    warm: summary,
    cold,
    targetMs: RENDER_TARGET_MS,
    meetsTarget: summary.medianMs < RENDER_TARGET_MS,
    inPlace: first.r.inPlace,
  };
}

/** The same render in fresh node processes, bundled as the task is, against `docker-compose config` on the same files. */
async function coldRender(temp: string, files: string[], lock: string): Promise<VersusCompose | undefined> {
  const entry = path.join(temp, 'cold-render.ts');
  const lib = (p: string) => JSON.stringify(path.join(ROOT, 'tasks', 'lib', p));
  fs.writeFileSync(
    entry,
    [
      `import { loadCompose } from ${lib('compose/load')};`,
      `import { renderCompose } from ${lib('compose/render')};`,
      `import { readLock } from ${lib('lock/file')};`,
      'const start = process.hrtime.bigint();',
      `const app = loadCompose(${JSON.stringify(files)}, { env: {}, profiles: [] });`,
      `renderCompose(app, { lock: readLock(${JSON.stringify(lock)}), allowUnpinned: false, header: ['bench'] });`,
      'console.log(Number(process.hrtime.bigint() - start) / 1e6);',
    ].join('\n'),
  );
  const out = path.join(temp, 'cold-render.js');
  try {
    await bundleLikeTasks(entry, out);
  } catch (err) {
    progress(`ComposeDeploy: cold render not measured (${errorMessage(err)})`);
    return undefined;
  }
  progress('ComposeDeploy: render in fresh processes against docker-compose config, alternating');
  return versusComposeConfig(out, files, path.dirname(files[0]));
}

async function measureDeploy(temp: string): Promise<ComposeDeployReport['deploy']> {
  const { taskScript, compose, composeVersion } = await requireComposeTask('compose-deploy');
  const composeWaits = compose[0] === 'docker'; // v2 has up --wait
  const { startRegistry } = await import('../test/support/registry');
  const { BASE_IMAGE, ensureBaseImage } = await import('../test/support/base-image');
  const { createTestContext } = await import('../test/support/context');
  const { removeComposeProject } = await import('../test/support/engine');
  const { buildOptions, tagAndPush } = await import('../test/support/images');
  const { buildAndTag } = await import('../tasks/lib/build');
  const { pushWithDigest } = await import('../tasks/lib/push');
  const { createCredentialSource } = await import('../tasks/lib/auth');
  const { RegistryClient } = await import('../tasks/lib/registry/client');
  const { projectContainers } = await import('../tasks/lib/compose-deploy/health');

  const fixture = path.join(ROOT, 'test', 'fixtures', 'compose-deploy');
  const composeFile = path.join(fixture, 'docker-compose.yml');
  const engine = await startBenchEngine();
  const registry = await startRegistry('none');
  const docker = engine.docker;
  const projects = [`colbench-cd-hand-${process.pid}`, `colbench-cd-task-${process.pid}`];
  try {
    await ensureBaseImage(docker);
    await tagAndPush(docker, BASE_IMAGE, `${registry.host}/third-party/busybox:1.0`);
    const locks: Record<string, string> = {};
    for (const version of ['v1', 'v2']) {
      progress(`ComposeDeploy: building and pushing web ${version}`);
      const ctx = createTestContext();
      const env = { REGISTRY: registry.host, TAG: version };
      const record = path.join(temp, `record-${version}.json`);
      await buildAndTag(buildOptions(docker, { composeFile, services: ['web'], tags: [version], buildArgs: { VERSION: version }, buildRecordPath: record, env }), ctx);
      const credentials = createCredentialSource({ setSecret: () => undefined, useDockerConfig: false });
      const client = new RegistryClient({ credentials, log: ctx, setSecret: () => undefined });
      try {
        locks[version] = (
          await pushWithDigest(
            { engine: async () => docker, client, credentials, buildRecordPath: record, images: [], additionalTags: [], composeFile, lockFile: path.join(temp, `lock-${version}.json`), publishArtifact: false, artifactName: 'image-lock', ...pushWithDigestDefaults(), pipeline: { buildNumber: version }, env },
            ctx,
          )
        ).lockFile;
      } finally {
        client.close();
      }
    }

    let lastTaskPhases: string | undefined;
    const waitHealthy = async (project: string) => {
      const deadline = Date.now() + 60_000;
      for (;;) {
        const web = (await projectContainers(docker, project)).find((s) => s.service === 'web');
        if (web?.health === 'healthy') return;
        if (Date.now() > deadline) throw new Error(`${project}: web did not become healthy`);
        await new Promise((r) => setTimeout(r, 250));
      }
    };
    const byHand = async (version: string, wait: boolean) => {
      const start = process.hrtime.bigint();
      const args = [...compose.slice(1), '-p', projects[0], '-f', composeFile, 'up', '-d', '--no-build', ...(wait && composeWaits ? ['--wait'] : [])];
      const r = await runTimed(compose[0], args, { cwd: fixture, env: { PATH: process.env.PATH, DOCKER_HOST: engine!.dockerHost, REGISTRY: registry.host, TAG: version }, timeoutMs: 180_000 });
      if (r.code !== 0) throw new Error(`${compose.join(' ')} up failed: ${r.stderr.slice(-400)}`);
      if (wait && !composeWaits) await waitHealthy(projects[0]);
      return since(start);
    };
    const task = async (version: string) => {
      const r = await runTaskTimed(taskScript, {
        temp,
        dockerHost: engine.dockerHost,
        inputs: {
          composeFiles: composeFile,
          environmentName: 'bench',
          projectName: projects[1],
          lockFile: locks[version],
          variables: `REGISTRY=${registry.host}`,
          dockerHostType: 'local',
          publishRenderedFile: 'false',
        },
      });
      lastTaskPhases = /Timings: (.*)/.exec(r.stdout)?.[1];
      return r.ms;
    };

    progress('ComposeDeploy: one warm-up of each');
    await byHand('v1', true);
    await task('v1');
    const up: number[] = [];
    const upWait: number[] = [];
    const tasks: number[] = [];
    // Each deploy switches its project's web between v1 and v2 (both start at v1), so every one recreates web.
    const deploys = { hand: 0, task: 0 };
    const next = (project: keyof typeof deploys) => (deploys[project]++ % 2 === 0 ? 'v2' : 'v1');
    for (let i = 0; i < DEPLOY_RUNS; i++) {
      progress(`ComposeDeploy: run ${i + 1} of ${DEPLOY_RUNS} (up -d, healthy by hand, then the task)`);
      up.push(await byHand(next('hand'), false));
      upWait.push(await byHand(next('hand'), true));
      tasks.push(await task(next('task')));
    }
    const byHandSummary = summarize(up);
    const waitSummary = summarize(upWait);
    const taskSummary = summarize(tasks);
    return {
      compose: composeVersion,
      runs: DEPLOY_RUNS,
      byHand: byHandSummary,
      healthWait: composeWaits ? 'up -d --wait' : 'up -d, then polling the engine every 250 ms',
      byHandWithHealthWait: waitSummary,
      task: taskSummary,
      ratioVsUp: round(taskSummary.medianMs / byHandSummary.medianMs, 2),
      ratioVsUpAndWait: round(taskSummary.medianMs / waitSummary.medianMs, 2),
      ratioTarget: DEPLOY_RATIO_TARGET,
      lastTaskPhases,
    };
  } finally {
    for (const project of projects) await removeComposeProject(docker, project).catch(() => undefined);
    await registry.stop();
    await engine.stop();
  }
}

/** Figure 5a (render, no engine) and/or 5b (deploy, on the run's stack). */
export async function measureComposeDeploy(options: { render: boolean; deploy: boolean }): Promise<ComposeDeployReport> {
  const temp = fs.mkdtempSync(path.join(os.tmpdir(), 'col-bench-cd-'));
  try {
    if (options.render) progress(`ComposeDeploy: rendering ${RENDER_SERVICES} services`);
    const render = options.render ? await measureRender(temp) : undefined;
    const deploy = options.deploy ? await measureDeploy(temp) : undefined;
    return { render, deploy };
  } finally {
    fs.rmSync(temp, { recursive: true, force: true });
  }
}

export function composeDeployMissed(r: ComposeDeployReport | undefined): string[] {
  if (!r) return [];
  const out: string[] = [];
  if (r.render && !r.render.meetsTarget) out.push(`ComposeDeploy: rendering ${r.render.services} services, warm median ${r.render.warm.medianMs} ms ≥ ${r.render.targetMs} ms`);
  if (r.deploy?.healthWait === 'up -d --wait' && r.deploy.ratioVsUpAndWait > r.deploy.ratioTarget) {
    out.push(`ComposeDeploy: ${r.deploy.ratioVsUpAndWait}× the time of ${r.deploy.compose} up -d --wait > ${r.deploy.ratioTarget}×`);
  }
  const cold = r.render?.cold;
  if (cold && !cold.meetsTarget) out.push(`ComposeDeploy: rendering ${r.render!.services} services in a fresh process took ${cold.ratio}× the time of ${cold.composeCommand} (${cold.ours.medianMs} ms vs ${cold.compose.medianMs} ms) > ${cold.ratioTarget}×`);
  return out;
}

export function composeDeployTable(r: ComposeDeployReport | undefined): string[] {
  if (!r) return [];
  const lines: string[] = [];
  if (r.render) {
    lines.push(
      `ComposeDeploy: render ${r.render.services} services (${Math.round(r.render.bytes / 1024)} KB of compose files; target < ${r.render.targetMs} ms)`,
      `  warm (in process, after one call): median ${r.render.warm.medianMs} ms (min ${r.render.warm.minMs}, max ${r.render.warm.maxMs})  ${r.render.meetsTarget ? 'ok' : 'MISSED'}`,
      ...(r.render.cold ? versusComposeLines('cold, render', r.render.cold) : ['  cold (fresh process): not measured']),
    );
  }
  const d = r.deploy;
  if (d) {
    lines.push(
      `ComposeDeploy vs ${d.compose} by hand, fixture app, ${d.runs} runs (each recreates web)`,
      `  by hand, up -d:                     median ${d.byHand.medianMs} ms`,
      `  by hand, healthy (${d.healthWait}):  median ${d.byHandWithHealthWait.medianMs} ms`,
      `  the task (bundled; render, pull check, up, gate, verify, store): median ${d.task.medianMs} ms`,
      `  ratio ${d.ratioVsUp}× vs up -d, ${d.ratioVsUpAndWait}× vs healthy by hand${d.healthWait === 'up -d --wait' ? ` (target ≤ ${d.ratioTarget}×)` : ''}`,
      `  the task's last run: ${d.lastTaskPhases ?? '?'}`,
    );
  }
  lines.push('');
  return lines;
}

if (require.main === module) {
  // node --import tsx bench/compose-deploy.ts: the render figure alone (5a; no engine needed).
  measureComposeDeploy({ render: true, deploy: false }).then(
    (r) => {
      process.stderr.write(`${composeDeployTable(r).join('\n')}\n`);
      process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
    },
    (err) => {
      process.stderr.write(`${(err as Error).stack}\n`);
      process.exit(1);
    },
  );
}
