// Benchmarks of issue 2 §7: prints one JSON document to stdout and a short table to stderr.
//   npm run bench [-- --rebuild] [-- --skip-registry]
// Figures, not tests: a missed target is reported (`missedTargets`), never a failure. The run fails
// (exit 1, with a message) only when a prerequisite is missing: no bundle can be made, no engine,
// no skopeo or docker-registry.
//   1. bundle sizes (bench/sizes.ts)    2. cold start (bench/cold-start.ts)
//   3. digest resolution round trips and 50 references vs skopeo (bench/registry.ts)
//   4. ContainerizedTest vs docker-compose up/run/down by hand (bench/containerized-test.ts;
//      skip with --skip-containerized-test)
//   5. ComposeDeploy: render time of 200 services, deploy overhead vs compose up by hand
//      (bench/compose-deploy.ts; skip with --skip-compose-deploy, or only its deploy part with
//      --skip-compose-deploy-run)
//   6. KubernetesDeploy: conversion of 200 compose services, pinning of 5,000 objects
//      (bench/kubernetes.ts; skip with --skip-kubernetes)
import { execFileSync } from 'node:child_process';
import * as os from 'node:os';
import { ColdStartReport, measureColdStart } from './cold-start';
import { ComposeDeployReport, composeDeployMissed, composeDeployTable, measureComposeDeploy } from './compose-deploy';
import { KubernetesReport, kubernetesMissed, kubernetesTable, measureKubernetes } from './kubernetes';
import { ContainerizedTestReport, containerizedTestMissed, containerizedTestTable, measureContainerizedTest } from './containerized-test';
import { RegistryReport, ROUND_TRIP_TARGETS, SPEEDUP_TARGET, measureRegistry } from './registry';
import { ROOT, SizeReport, bundledTasks, measureSizes } from './sizes';
import { MissingPrerequisiteError, errorMessage, formatBytes, progress, round, since } from './util';

interface Report {
  meta: Record<string, unknown>;
  sizes?: SizeReport;
  coldStart?: ColdStartReport;
  registry?: RegistryReport;
  containerizedTest?: ContainerizedTestReport;
  composeDeploy?: ComposeDeployReport;
  kubernetes?: KubernetesReport;
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
  out.push(...containerizedTestMissed(report.containerizedTest));
  out.push(...composeDeployMissed(report.composeDeploy));
  out.push(...kubernetesMissed(report.kubernetes));
  return out;
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
  lines.push(...containerizedTestTable(report.containerizedTest));
  lines.push(...composeDeployTable(report.composeDeploy));
  lines.push(...kubernetesTable(report.kubernetes));
  if (report.missedTargets.length) lines.push('Missed:', ...report.missedTargets.map((m) => `  - ${m}`));
  else lines.push('Every measured target met.');
  for (const [k, v] of Object.entries(report.errors)) lines.push(`Error (${k}): ${v.split('\n')[0]}`);
  for (const m of report.missingPrerequisites) lines.push(`Missing prerequisite: ${m}`);
  return lines.join('\n');
}

const USAGE = `usage: npm run bench [-- OPTION…]   (one JSON document on stdout, a table on stderr)
  --rebuild                    bundle and package again before measuring sizes
  --skip-registry              skip digest resolution round trips and 50 references vs skopeo
  --skip-containerized-test    skip ContainerizedTest vs docker-compose by hand
  --skip-compose-deploy        skip ComposeDeploy (render and deploy)
  --skip-compose-deploy-run    skip only ComposeDeploy's deploy part
  --skip-kubernetes            skip KubernetesDeploy conversion and pinning`;

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
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
    missedTargets: [],
    errors: {},
    missingPrerequisites: [],
  };
  const section = async (name: string, fn: () => Promise<void>) => {
    try {
      await fn();
    } catch (err) {
      if (err instanceof MissingPrerequisiteError) report.missingPrerequisites.push(`${name}: ${err.message}`);
      else report.errors[name] = err instanceof Error && err.stack ? err.stack.split('\n').slice(0, 6).join('\n') : errorMessage(err);
      progress(`${name} failed: ${errorMessage(err)}`);
    }
  };

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
  if (!args.includes('--skip-containerized-test')) {
    await section('containerizedTest', async () => {
      report.containerizedTest = await measureContainerizedTest();
    });
  }
  if (!args.includes('--skip-compose-deploy')) {
    await section('composeDeploy', async () => {
      report.composeDeploy = await measureComposeDeploy({ skipDeploy: args.includes('--skip-compose-deploy-run') });
    });
  }
  if (!args.includes('--skip-kubernetes')) {
    await section('kubernetes', async () => {
      report.kubernetes = await measureKubernetes();
    });
  }
  report.meta.durationMs = round(since(start), 0);
  report.meta.loadAverageAtEnd = os.loadavg().map((l) => round(l, 2));
  report.missedTargets = missed(report);

  process.stderr.write(`\n${table(report)}\n\n`);
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  return report.missingPrerequisites.length > 0 ? 1 : 0;
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
