// Figure 4: ContainerizedTest's overhead over the same compose run by hand, on the fixture app
// (test/fixtures/containerized: web with a healthcheck, a runner that calls it and writes JUnit),
// on the stack of the run (COL_STACK), with that stack's Compose:
//   by hand:  compose -p P up -d  →  run -T tests (compose waits for web's health through
//             depends_on)  →  down -v --remove-orphans
//   the task: the bundled dist/tasks/containerized-test/index.js in a child process, as the agent
//             runs it (compose mode, results copied out and counted, override, health wait, label
//             sweep), against the same engine.
// Runs alternate (hand, task, hand, task, …) so drift in the engine hits both equally. Also timed:
// teardown (the task's own figure vs. `down` by hand) and cancellation (SIGTERM mid-test → the task
// has exited with nothing left).
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ROOT } from './sizes';
import { Summary, agentTaskEnv, requireComposeTask, startBenchEngine, progress, round, runTaskTimed, runTimed, since, summarize } from './util';

export const RATIO_TARGET = 1.15;
const RUNS = 5;

export interface ContainerizedTestReport {
  compose: string;
  runs: number;
  byHand: { total: Summary; up: Summary; run: Summary; down: Summary };
  task: { total: Summary; teardown: Summary; ranAsTask: boolean };
  /** Median task time / median by-hand time. */
  ratio: number;
  ratioTarget: number;
  meetsTarget: boolean;
  /** SIGTERM while the runner runs → the task process has exited; what was left afterwards. */
  cancellation: { signalToExitMs: number; teardownMs?: number; leftAfter: { containers: number; networks: number; volumes: number } };
}

export async function measureContainerizedTest(): Promise<ContainerizedTestReport> {
  const { taskScript, compose, composeVersion } = await requireComposeTask('containerized-test');

  const { ensureBaseImage } = await import('../test/support/base-image');
  const { buildAndTag } = await import('../tasks/lib/build');
  const { leftovers } = await import('../tasks/lib/containerized-test/teardown');
  const { createTestContext } = await import('../test/support/context');
  const { buildOptions } = await import('../test/support/images');

  const fixture = path.join(ROOT, 'test', 'fixtures', 'containerized');
  const composeFile = path.join(fixture, 'docker-compose.yml');
  const temp = fs.mkdtempSync(path.join(os.tmpdir(), 'col-bench-ct-'));
  const engine = await startBenchEngine();
  try {
    const docker = engine.docker;
    await ensureBaseImage(docker);
    const env = { ...process.env, DOCKER_HOST: engine.dockerHost };
    const record = path.join(temp, 'build-record.json');
    progress('ContainerizedTest: building the fixture app');
    await buildAndTag(buildOptions(docker, { composeFile, tags: ['dev'], buildRecordPath: record, env }), createTestContext());

    const byHand = async (i: number) => {
      const project = `colbench-hand-${process.pid}-${i}`;
      const args = (rest: string[]) => [...compose.slice(1), '-p', project, '-f', composeFile, ...rest];
      const opts = { env, cwd: fixture, timeoutMs: 180_000 };
      const start = process.hrtime.bigint();
      const up = await runTimed(compose[0], args(['up', '-d']), opts);
      const run = await runTimed(compose[0], args(['run', '-T', 'tests']), opts);
      const down = await runTimed(compose[0], args(['down', '-v', '--remove-orphans']), opts);
      const total = since(start);
      for (const [what, r] of [['up', up], ['run', run], ['down', down]] as const) {
        if (r.code !== 0) throw new Error(`${compose.join(' ')} ${what} failed (${r.code}): ${(r.stderr || r.stdout).slice(-400)}`);
      }
      return { total, up: up.ms, run: run.ms, down: down.ms };
    };
    const task = async () => {
      const r = await runTaskTimed(taskScript, {
        temp,
        dockerHost: engine.dockerHost,
        inputs: { mode: 'compose', composeFiles: composeFile, testService: 'tests', resultsPath: '/results', buildRecord: record },
        variables: { BUILD_BUILDID: '4242' },
      });
      const teardown = Number(/Teardown done in ([\d.]+) s/.exec(r.stdout)?.[1] ?? Number.NaN) * 1000;
      return { total: r.ms, teardown };
    };

    progress('ContainerizedTest: one warm-up of each');
    await byHand(0);
    await task();
    const hand: Awaited<ReturnType<typeof byHand>>[] = [];
    const tasks: Awaited<ReturnType<typeof task>>[] = [];
    for (let i = 1; i <= RUNS; i++) {
      progress(`ContainerizedTest: run ${i} of ${RUNS} (by hand, then the task)`);
      hand.push(await byHand(i));
      tasks.push(await task());
    }

    progress('ContainerizedTest: SIGTERM mid-test');
    const cancellation = await cancel(taskScript, { temp, record, composeFile, dockerHost: engine.dockerHost });
    const leftAfter = await leftovers(docker, cancellation.runId);

    const handTotal = summarize(hand.map((h) => h.total));
    const taskTotal = summarize(tasks.map((t) => t.total));
    const ratio = round(taskTotal.medianMs / handTotal.medianMs, 2);
    return {
      compose: composeVersion,
      runs: RUNS,
      byHand: { total: handTotal, up: summarize(hand.map((h) => h.up)), run: summarize(hand.map((h) => h.run)), down: summarize(hand.map((h) => h.down)) },
      task: { total: taskTotal, teardown: summarize(tasks.map((t) => t.teardown)), ranAsTask: true },
      ratio,
      ratioTarget: RATIO_TARGET,
      meetsTarget: ratio <= RATIO_TARGET,
      cancellation: { signalToExitMs: round(cancellation.signalToExitMs, 0), teardownMs: cancellation.teardownMs, leftAfter },
    };
  } finally {
    fs.rmSync(temp, { recursive: true, force: true });
    await engine.stop();
  }
}

/** Starts the task with a runner that sleeps, sends SIGTERM once it runs, and times signal → exit. */
function cancel(taskScript: string, o: { temp: string; record: string; composeFile: string; dockerHost: string }): Promise<{ runId: string; signalToExitMs: number; teardownMs?: number }> {
  return new Promise((resolve, reject) => {
    const agentTemp = fs.mkdtempSync(path.join(o.temp, 'agent-'));
    const child = spawn(process.execPath, [taskScript], {
      cwd: agentTemp,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: agentTaskEnv(agentTemp, o.dockerHost, { mode: 'compose', composeFiles: o.composeFile, testService: 'tests', envVars: 'TEST_MODE=slow', buildRecord: o.record }),
    });
    let output = '';
    let signalledAt: bigint | undefined;
    const killer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    const onData = (c: Buffer) => {
      output += c.toString();
      if (signalledAt === undefined && output.includes('RUNNER-STARTED')) {
        signalledAt = process.hrtime.bigint();
        child.kill('SIGTERM');
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('close', () => {
      clearTimeout(killer);
      const runId = /ContainerizedTest run (\S+) \(/.exec(output)?.[1];
      if (!signalledAt || !runId) return reject(new Error(`the cancellation run never reached the tests:\n${output.slice(-2000)}`));
      const teardown = /Teardown done in ([\d.]+) s/.exec(output)?.[1];
      resolve({ runId, signalToExitMs: since(signalledAt), teardownMs: teardown ? Number(teardown) * 1000 : undefined });
    });
  });
}

/** Missed targets of this figure, for the run's `missedTargets`. */
export function containerizedTestMissed(r: ContainerizedTestReport | undefined): string[] {
  if (!r) return [];
  const out: string[] = [];
  if (!r.meetsTarget) out.push(`ContainerizedTest: ${r.ratio}× the time of ${r.compose} up/run/down by hand > ${r.ratioTarget}×`);
  const left = r.cancellation.leftAfter;
  if (left.containers + left.networks + left.volumes > 0) out.push(`ContainerizedTest: SIGTERM left ${left.containers} container(s), ${left.networks} network(s), ${left.volumes} volume(s)`);
  return out;
}

/** Lines of the run's table for this figure. */
export function containerizedTestTable(r: ContainerizedTestReport | undefined): string[] {
  if (!r) return [];
  const ms = (s: Summary) => `${s.medianMs} ms`;
  return [
    `ContainerizedTest vs ${r.compose} by hand, fixture app, ${r.runs} runs (target: ≤ ${r.ratioTarget}×)`,
    `  by hand (up -d / run / down):  median ${ms(r.byHand.total)}  (up ${ms(r.byHand.up)}, run ${ms(r.byHand.run)}, down ${ms(r.byHand.down)})`,
    `  the task (bundled, compose):   median ${ms(r.task.total)}  (teardown ${ms(r.task.teardown)})`,
    `  ratio ${r.ratio}×  ${r.meetsTarget ? 'ok' : 'MISSED'}`,
    `  SIGTERM mid-test → exited in ${r.cancellation.signalToExitMs} ms (teardown ${r.cancellation.teardownMs ?? '?'} ms), left: ${r.cancellation.leftAfter.containers}/${r.cancellation.leftAfter.networks}/${r.cancellation.leftAfter.volumes} (containers/networks/volumes)`,
    '',
  ];
}
