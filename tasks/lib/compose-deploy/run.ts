// One release brought up on the target: `compose up -d` of its rendered file, the health gate
// (health.ts), and the check that every container runs its pinned digest (verify.ts). The deploy, a
// rollback and a rollback after a cancel all bring a release up this way.
import type Dockerode from 'dockerode';
import { ComposeCli, composeUp } from '../compose/cli';
import type { PinnedService } from '../compose/render';
import type { TaskContext } from '../context';
import { healthGate } from './health';
import { UP_TIMEOUT_SECONDS, type ComposeDeployOptions } from './options';
import { VerifiedContainer, verifyDigests } from './verify';

/** One `compose up` run against the target: the engine, the CLI and its environment, the project. */
export interface ReleaseRun {
  docker: Dockerode;
  cli: ComposeCli;
  env: NodeJS.ProcessEnv;
  project: string;
  projectDir: string;
  options: ComposeDeployOptions;
  ctx: TaskContext;
  timings: Timings;
  /** When a cancelled task must be done (cancelDeadline). */
  graceEnd: () => number;
}

/** Where the time of a deployment went, for the log. */
export class Timings {
  private last = Date.now();
  private readonly laps: [string, number][] = [];
  lap(name: string): void {
    const now = Date.now();
    this.laps.push([name, now - this.last]);
    this.last = now;
  }
  toString(): string {
    return this.laps.map(([n, ms]) => `${n} ${ms} ms`).join(', ');
  }
}

/** `compose up -d` of one rendered file, ended by `bound` (its time, and a signal). */
export async function upRelease(run: ReleaseRun, file: string, bound: { timeoutMs: number; signal?: AbortSignal }): Promise<void> {
  await composeUp(run.cli, {
    project: run.project,
    file,
    projectDir: run.projectDir,
    env: run.env,
    removeOrphans: run.options.removeOrphans,
    timeoutMs: bound.timeoutMs,
    signal: bound.signal,
    onLine: (l) => run.ctx.info(l),
  });
  run.timings.lap('compose up');
}

/** up → gate → verify of one rendered file. */
export async function deployRelease(run: ReleaseRun, file: string, pins: PinnedService[], model: Record<string, unknown>): Promise<VerifiedContainer[]> {
  const { ctx } = run;
  await upRelease(run, file, { timeoutMs: (run.options.upTimeoutSeconds ?? UP_TIMEOUT_SECONDS) * 1000, signal: ctx.signal });
  const states = await healthGate(run.docker, {
    project: run.project,
    model,
    timeoutMs: run.options.waitTimeoutSeconds * 1000,
    signal: ctx.signal,
    log: ctx,
  });
  run.timings.lap('health gate');
  ctx.info(`Health gate passed: ${states.map((s) => `${s.name} ${s.health ?? s.status}`).join(', ')}`);
  const rows = await verifyDigests(run.docker, states, pins);
  run.timings.lap('verify');
  return rows;
}
