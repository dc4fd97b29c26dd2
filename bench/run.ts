// Benchmarks: prints one JSON document to stdout and a short table to stderr.
//   npm run bench [-- --rebuild] [-- --skip-registry] [-- --stacks legacy,current]
// Figures, not tests: a missed target is reported (`missedTargets`), never a failure. The run fails
// (exit 1, with a message) only when a prerequisite is missing: no bundle can be made, no engine,
// no skopeo or docker-registry.
//   1. bundle sizes (bench/sizes.ts)    2. cold start (bench/cold-start.ts)
//   3. digest resolution round trips and 50 references vs skopeo (bench/registry.ts)
//   5a. ComposeDeploy: render time of 200 services (bench/compose-deploy.ts)
//   6. KubernetesDeploy: conversion of 200 compose services, pinning of 5,000 objects
//      (bench/kubernetes.ts; skip with --skip-kubernetes)
//   7. KubernetesDeploy vs kubectl apply --server-side + rollout status, 200 services on the local
//      control plane (bench/kube-cluster.ts; skip with --skip-kube-cluster)
// Then, on each Docker stack (legacy, current: scripts/stacks.mjs), in a child process of its own
// (`bench/run.ts --stack S`, with COL_STACK=S), every engine- and compose-driven figure:
//   4. ContainerizedTest vs compose up/run/down by hand (bench/containerized-test.ts;
//      skip with --skip-containerized-test)
//   5b. ComposeDeploy vs compose up -d [--wait] by hand (bench/compose-deploy.ts; skip with
//      --skip-compose-deploy-run)
//   7. the time the tasks take to find Compose (bench/find-compose.ts)
//   8. the whole loop: the example pipeline through the local runner vs the same by hand
//      (bench/whole-loop.ts; skip with --skip-whole-loop)
//   9. BuildAndTag vs docker compose build of the example app, cold and warm cache
//      (bench/build-and-tag.ts; skip with --skip-build-and-tag)
//   10. current stack only: a build on a fresh engine with BuildAndTag's registry cache vs without
//      (bench/build-cache.ts; skip with --skip-build-cache)
import { execFileSync, spawn } from 'node:child_process';
import * as os from 'node:os';
import * as path from 'node:path';
import { BuildAndTagReport, buildAndTagMissed, buildAndTagTable, measureBuildAndTag } from './build-and-tag';
import { BuildCacheReport, buildCacheTable, measureBuildCache } from './build-cache';
import { ColdStartReport, measureColdStart } from './cold-start';
import { ComposeDeployReport, composeDeployMissed, composeDeployTable, measureComposeDeploy } from './compose-deploy';
import { KubeClusterReport, kubeClusterMissed, kubeClusterTable, measureKubeCluster } from './kube-cluster';
import { KubernetesReport, kubernetesMissed, kubernetesTable, measureKubernetes } from './kubernetes';
import { ContainerizedTestReport, containerizedTestMissed, containerizedTestTable, measureContainerizedTest } from './containerized-test';
import { RegistryReport, ROUND_TRIP_TARGETS, SPEEDUP_TARGET, measureRegistry } from './registry';
import { ROOT, SizeReport, bundledTasks, measureSizes } from './sizes';
import { FindComposeReport, findComposeTable, measureFindCompose } from './find-compose';
import { MissingPrerequisiteError, errorMessage, formatBytes, progress, round, since } from './util';
import { WholeLoopReport, measureWholeLoop, wholeLoopMissed, wholeLoopTable } from './whole-loop';

/** The engine- and compose-driven figures of one stack (a child run, `--stack S`). */
interface StackReport {
  stack: string;
  engine?: string;
  findCompose?: FindComposeReport;
  containerizedTest?: ContainerizedTestReport;
  composeDeploy?: ComposeDeployReport;
  wholeLoop?: WholeLoopReport;
  buildAndTag?: BuildAndTagReport;
  buildCache?: BuildCacheReport;
  missedTargets: string[];
  errors: Record<string, string>;
  missingPrerequisites: string[];
}

interface Report {
  meta: Record<string, unknown>;
  sizes?: SizeReport;
  coldStart?: ColdStartReport;
  registry?: RegistryReport;
  composeDeploy?: ComposeDeployReport;
  kubernetes?: KubernetesReport;
  kubeCluster?: KubeClusterReport;
  stacks: Record<string, StackReport>;
  missedTargets: string[];
  errors: Record<string, string>;
  missingPrerequisites: string[];
}

function gitCommit(): string | undefined {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain'], { cwd: ROOT, encoding: 'utf8' }).trim() ? '+uncommitted' : '';
    return `${head}${dirty}`;
  } catch {
    return undefined;
  }
}

function missed(report: Report): string[] {
  const out: string[] = [];
  const s = report.sizes;
  if (s) {
    for (const t of s.tasks) {
      if (!t.meetsRawTarget) out.push(`bundle ${t.task}: ${t.indexRawBytes} bytes raw > ${s.targets.bundleRawBytes}`);
      if (!t.meetsZippedTarget) out.push(`bundle ${t.task}: ${t.indexZippedBytes} bytes zipped > ${s.targets.bundleZippedBytes}`);
    }
    if (s.vsix.meetsTarget === false) out.push(`.vsix: ${s.vsix.bytes} bytes > ${s.targets.vsixBytes}`);
    if (s.vsix.error) out.push(`.vsix: not measured (${s.vsix.packaged})`);
    for (const t of s.tasksWithoutBundle) out.push(`bundle ${t}: missing, not measured`);
  }
  for (const t of report.coldStart?.tasks ?? []) {
    if (!t.meetsTarget) out.push(`cold start ${t.task}: median ${t.medianMs} ms > ${report.coldStart!.targetMedianMs} ms`);
    if (!t.failedOnMissingInput) out.push(`cold start ${t.task}: did not end at a missing-input failure (${t.message})`);
  }
  const r = report.registry;
  if (r) {
    if (!r.roundTrips.meetsTargets.coldKnownRealm) out.push(`round trips cold, realm known: ${r.roundTrips.token.coldKnownRealm.requestsSeen.join('/')} > ${ROUND_TRIP_TARGETS.coldKnownRealm}`);
    if (!r.roundTrips.meetsTargets.warm) out.push(`round trips warm: token ${r.roundTrips.token.warm.requestsSeen.join('/')}, anonymous ${r.roundTrips.anonymous.warm.requestsSeen.join('/')} > ${ROUND_TRIP_TARGETS.warm}`);
    for (const [label, f] of Object.entries(r.fiftyReferences)) {
      if (typeof f !== 'object') continue;
      if (!f.meetsTarget) out.push(`50 references (${label}): ${f.speedup.vsSkopeoInspect}× faster than skopeo inspect < ${SPEEDUP_TARGET}×`);
      if (!f.digestsAgree) out.push(`50 references (${label}): digests disagree with skopeo / the push`);
    }
  }
  out.push(...composeDeployMissed(report.composeDeploy));
  out.push(...kubernetesMissed(report.kubernetes));
  out.push(...kubeClusterMissed(report.kubeCluster));
  for (const r of Object.values(report.stacks)) out.push(...r.missedTargets.map((m) => `${r.stack}: ${m}`));
  return out;
}

function stackMissed(r: StackReport): string[] {
  return [...containerizedTestMissed(r.containerizedTest), ...composeDeployMissed(r.composeDeploy), ...wholeLoopMissed(r.wholeLoop, r.stack), ...buildAndTagMissed(r.buildAndTag)];
}

function stackTable(r: StackReport): string[] {
  return [
    `=== ${r.stack} stack: ${r.engine ?? 'no engine'}`,
    ...findComposeTable(r.findCompose),
    ...containerizedTestTable(r.containerizedTest),
    ...composeDeployTable(r.composeDeploy),
    ...wholeLoopTable(r.wholeLoop),
    ...buildAndTagTable(r.buildAndTag),
    ...buildCacheTable(r.buildCache),
    ...Object.entries(r.errors).map(([k, v]) => `Error (${r.stack}, ${k}): ${v.split('\n')[0]}`),
    ...r.missingPrerequisites.map((m) => `Missing prerequisite (${r.stack}): ${m}`),
    '',
  ];
}

function table(report: Report): string {
  const lines: string[] = [];
  const row = (cells: (string | number)[], widths: number[]) => cells.map((c, i) => String(c).padEnd(widths[i])).join('  ').trimEnd();
  const mark = (ok: boolean | undefined) => (ok === undefined ? '' : ok ? 'ok' : 'MISSED');
  const s = report.sizes;
  if (s) {
    lines.push('Bundle sizes (targets: index.js ≤ 1.5 MB raw, ≤ 400 KB zipped; .vsix ≤ 3 MB)');
    const w = [20, 11, 11, 11, 12, 6];
    lines.push(row(['task', 'raw', 'gzip -9', 'zipped', 'folder', ''], w));
    for (const t of s.tasks) {
      lines.push(row([t.task, formatBytes(t.indexRawBytes), formatBytes(t.indexGzip9Bytes), formatBytes(t.indexZippedBytes), formatBytes(t.folderBytes), mark(t.meetsRawTarget && t.meetsZippedTarget)], w));
    }
    lines.push(s.vsix.bytes !== undefined ? row(['.vsix', formatBytes(s.vsix.bytes), '', '', '', mark(s.vsix.meetsTarget)], w) : `.vsix: ${s.vsix.error ?? 'not measured'}`);
    lines.push('');
  }
  const c = report.coldStart;
  if (c) {
    lines.push(`Cold start, ${c.runsPerTask} runs (target: median ≤ ${c.targetMedianMs} ms)`);
    const w = [20, 9, 9, 9, 11, 6];
    lines.push(row(['', 'median', 'min', 'max', 'over floor', ''], w));
    lines.push(row([c.floor.command, `${c.floor.medianMs} ms`, `${c.floor.minMs} ms`, `${c.floor.maxMs} ms`, '', ''], w));
    for (const t of c.tasks) lines.push(row([t.task, `${t.medianMs} ms`, `${t.minMs} ms`, `${t.maxMs} ms`, `${t.overFloorMs} ms`, mark(t.meetsTarget && t.failedOnMissingInput)], w));
    lines.push('');
  }
  const r = report.registry;
  if (r) {
    const rt = r.roundTrips;
    lines.push('Round trips (HTTP requests; targets: ≤ 2 cold once the realm is known, 1 warm)');
    const w = [34, 9, 7, 10];
    lines.push(row(['', 'requests', 'tokens', 'median'], w));
    const trip = (name: string, t: { requestsSeen: number[]; tokenRequests: number; medianMs: number }) =>
      lines.push(row([name, t.requestsSeen.join('/'), t.tokenRequests, `${t.medianMs} ms`], w));
    trip('anonymous, cold', rt.anonymous.cold);
    trip('anonymous, warm', rt.anonymous.warm);
    trip('anonymous, other repository', rt.anonymous.otherRepository);
    trip('token, cold (first contact)', rt.token.coldFirstContact);
    trip('token, cold (realm known)', rt.token.coldKnownRealm);
    trip('token, warm', rt.token.warm);
    lines.push(`${mark(rt.meetsTargets.coldKnownRealm && rt.meetsTargets.warm)}`);
    lines.push('');
    lines.push(`50 references (target: ≥ ${SPEEDUP_TARGET}× faster than sequential skopeo inspect)`);
    const w2 = [10, 16, 14, 14, 14, 10, 10, 6];
    lines.push(row(['registry', 'resolveMany', 'one by one', 'skopeo', 'skopeo --raw', 'speedup', 'vs raw', ''], w2));
    for (const [label, f] of Object.entries(r.fiftyReferences)) {
      if (typeof f !== 'object') continue;
      lines.push(
        row(
          [label, `${f.resolveMany.medianMs} ms (${f.resolveMany.requests} req)`, `${f.resolveSequentialMs} ms`, `${f.skopeoInspect.totalMs} ms`, `${f.skopeoInspectRaw.totalMs} ms`, `${f.speedup.vsSkopeoInspect}×`, `${f.speedup.vsSkopeoInspectRaw}×`, mark(f.meetsTarget && f.digestsAgree)],
          w2,
        ),
      );
    }
    lines.push('');
  }
  lines.push(...composeDeployTable(report.composeDeploy));
  lines.push(...kubernetesTable(report.kubernetes));
  lines.push(...kubeClusterTable(report.kubeCluster));
  for (const r of Object.values(report.stacks)) lines.push(...stackTable(r));
  if (report.missedTargets.length) lines.push('Missed:', ...report.missedTargets.map((m) => `  - ${m}`));
  else lines.push('Every measured target met.');
  for (const [k, v] of Object.entries(report.errors)) lines.push(`Error (${k}): ${v.split('\n')[0]}`);
  for (const m of report.missingPrerequisites) lines.push(`Missing prerequisite: ${m}`);
  return lines.join('\n');
}

const USAGE = `usage: npm run bench [-- OPTION…]   (one JSON document on stdout, a table on stderr)
  --rebuild                    bundle and package again before measuring sizes
  --skip-registry              skip digest resolution round trips and 50 references vs skopeo
  --skip-containerized-test    skip ContainerizedTest vs compose by hand
  --skip-compose-deploy        skip ComposeDeploy (render and deploy)
  --skip-compose-deploy-run    skip only ComposeDeploy's deploy part
  --skip-whole-loop            skip the example pipeline vs the same by hand
  --skip-build-and-tag         skip BuildAndTag vs docker compose build
  --skip-build-cache           skip the build on a fresh engine with and without the registry cache
  --skip-kubernetes            skip KubernetesDeploy conversion and pinning
  --skip-kube-cluster          skip KubernetesDeploy vs kubectl on the local control plane
  --stacks legacy,current      the stacks of the engine-driven figures (default: both)
  --stack S                    (internal) only the engine-driven figures, on stack S, as JSON`;

/** A section runner that files errors and missing prerequisites into `into`. */
function sectionRunner(into: { errors: Record<string, string>; missingPrerequisites: string[] }) {
  return async (name: string, fn: () => Promise<void>) => {
    try {
      await fn();
    } catch (err) {
      if (err instanceof MissingPrerequisiteError) into.missingPrerequisites.push(`${name}: ${err.message}`);
      else into.errors[name] = err instanceof Error && err.stack ? err.stack.split('\n').slice(0, 6).join('\n') : errorMessage(err);
      progress(`${name} failed: ${errorMessage(err)}`);
    }
  };
}

/** The child run: the engine- and compose-driven figures on one stack (COL_STACK is set by the parent). */
async function measureStack(stack: string, args: string[]): Promise<StackReport> {
  const report: StackReport = { stack, missedTargets: [], errors: {}, missingPrerequisites: [] };
  const section = sectionRunner(report);
  await section('engine', async () => {
    const { describeStack } = await import('../scripts/demo');
    const { startBenchEngine } = await import('./util');
    const engine = await startBenchEngine();
    try {
      report.engine = (await describeStack(engine)).replace(/^Docker engine: \S+ /, '');
    } finally {
      await engine.stop();
    }
  });
  await section('findCompose', async () => {
    report.findCompose = await measureFindCompose();
  });
  if (!args.includes('--skip-containerized-test')) {
    await section('containerizedTest', async () => {
      report.containerizedTest = await measureContainerizedTest();
    });
  }
  if (!args.includes('--skip-compose-deploy') && !args.includes('--skip-compose-deploy-run')) {
    await section('composeDeploy', async () => {
      report.composeDeploy = await measureComposeDeploy({ render: false, deploy: true });
    });
  }
  if (!args.includes('--skip-whole-loop')) {
    await section('wholeLoop', async () => {
      report.wholeLoop = await measureWholeLoop();
    });
  }
  if (!args.includes('--skip-build-and-tag')) {
    await section('buildAndTag', async () => {
      report.buildAndTag = await measureBuildAndTag();
    });
  }
  if (stack === 'current' && !args.includes('--skip-build-cache')) {
    await section('buildCache', async () => {
      report.buildCache = await measureBuildCache();
    });
  }
  report.missedTargets = stackMissed(report);
  return report;
}

/** Runs `bench/run.ts --stack S` on stack S (scripts/stacks.mjs) and reads its JSON. */
async function runStackChild(stack: string, args: string[]): Promise<StackReport> {
  const { onStack } = (await import(path.join(ROOT, 'scripts', 'stacks.mjs'))) as { onStack(stack: string, argv: string[]): string[] };
  const argv = onStack(stack, [process.execPath, '--import', 'tsx', path.join(ROOT, 'bench', 'run.ts'), '--stack', stack, ...args.filter((a) => a.startsWith('--skip-'))]);
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0], argv.slice(1), { cwd: ROOT, env: { ...process.env, COL_STACK: stack }, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      try {
        resolve(JSON.parse(out) as StackReport);
      } catch {
        reject(new Error(`the ${stack} stack's run exited ${code} without a report: ${out.slice(-400)}`));
      }
    });
  });
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const stackAt = args.indexOf('--stack');
  if (stackAt >= 0) {
    process.stdout.write(`${JSON.stringify(await measureStack(args[stackAt + 1], args))}\n`);
    return 0;
  }
  const stacksAt = args.indexOf('--stacks');
  const { STACKS } = await import('../test/support/stack');
  const stacks = stacksAt >= 0 ? args[stacksAt + 1].split(',') : [...STACKS];
  const rebuild = args.includes('--rebuild');
  const skipRegistry = args.includes('--skip-registry');
  const start = process.hrtime.bigint();
  const report: Report = {
    meta: {
      date: new Date().toISOString(),
      commit: gitCommit(),
      node: process.version,
      platform: `${process.platform}-${process.arch}`,
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model,
      loadAverageAtStart: os.loadavg().map((l) => round(l, 2)),
    },
    stacks: {},
    missedTargets: [],
    errors: {},
    missingPrerequisites: [],
  };
  const section = sectionRunner(report);

  await section('sizes', async () => {
    progress('bundle and .vsix sizes');
    report.sizes = measureSizes(rebuild);
  });
  await section('coldStart', async () => {
    const tasks = bundledTasks();
    if (tasks.length === 0) throw new MissingPrerequisiteError('no dist/tasks/<task>/index.js to start: run npm run build.');
    progress(`cold start of ${tasks.join(', ')} (1 warm-up + 10 runs each, and node -e 0)`);
    report.coldStart = await measureColdStart(tasks);
  });
  if (!skipRegistry) {
    await section('registry', async () => {
      report.registry = await measureRegistry();
    });
  }
  if (!args.includes('--skip-compose-deploy')) {
    await section('composeDeploy', async () => {
      report.composeDeploy = await measureComposeDeploy({ render: true, deploy: false });
    });
  }
  if (!args.includes('--skip-kubernetes')) {
    await section('kubernetes', async () => {
      report.kubernetes = await measureKubernetes();
    });
  }
  if (!args.includes('--skip-kube-cluster')) {
    await section('kubeCluster', async () => {
      report.kubeCluster = await measureKubeCluster();
    });
  }
  for (const stack of stacks) {
    await section(`stack ${stack}`, async () => {
      if (stack === 'current') {
        const { prepareCurrentStack } = await import('../test/support/stack');
        await prepareCurrentStack();
      }
      report.stacks[stack] = await runStackChild(stack, args);
    });
  }
  report.meta.durationMs = round(since(start), 0);
  report.meta.loadAverageAtEnd = os.loadavg().map((l) => round(l, 2));
  report.missedTargets = missed(report);

  process.stderr.write(`\n${table(report)}\n\n`);
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  return report.missingPrerequisites.length > 0 || Object.values(report.stacks).some((r) => r.missingPrerequisites.length > 0) ? 1 : 0;
}

main().then(
  (code) => {
    // Registries, the engine's lease and keep-alive sockets are closed in finally blocks; exit
    // explicitly in case a library left a timer behind.
    process.exit(code);
  },
  (err) => {
    process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
