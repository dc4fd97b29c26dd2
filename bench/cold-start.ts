// Figure 2: cold start of each bundled task, from spawn() to exit, run the way the agent runs it
// (agent variables, no INPUT_*), so every run ends at the missing-input failure. `node -e 0` is the floor.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { agentEnvironment } from '../test/support/agent';
import { DIST_TASKS } from './sizes';
import { Summary, round, runTimed, summarize } from './util';

export const COLD_START_TARGET_MS = 150;

export interface TaskColdStart extends Summary {
  task: string;
  /** median − floor median: what the bundle itself costs. */
  overFloorMs: number;
  meetsTarget: boolean;
  /** Every measured run reported `##vso[task.complete result=Failed` with a message about an input that is required / missing / not set. */
  failedOnMissingInput: boolean;
  message?: string;
  exitCodes: number[];
}

export interface ColdStartReport {
  runsPerTask: number;
  warmupRunsPerTask: number;
  targetMedianMs: number;
  floor: Summary & { command: string };
  tasks: TaskColdStart[];
}

async function sample(command: string, args: string[], env: Record<string, string>, cwd: string, runs: number, warmups: number) {
  const results = [];
  for (let i = 0; i < warmups + runs; i++) {
    const run = await runTimed(command, args, { env, cwd, timeoutMs: 30_000 });
    if (i >= warmups) results.push(run);
  }
  return results;
}

export async function measureColdStart(tasks: string[], runs = 10, warmups = 1): Promise<ColdStartReport> {
  const floorRuns = await sample(process.execPath, ['-e', '0'], { PATH: process.env.PATH ?? '/usr/bin:/bin' }, os.tmpdir(), runs, warmups);
  const floor = { command: 'node -e 0', ...summarize(floorRuns.map((r) => r.ms)) };
  const out: TaskColdStart[] = [];
  for (const task of tasks) {
    const temp = fs.mkdtempSync(path.join(os.tmpdir(), `col-bench-agent-${task}-`));
    try {
      const script = path.join(DIST_TASKS, task, 'index.js');
      const measured = await sample(process.execPath, [script], agentEnvironment(temp), temp, runs, warmups);
      const stats = summarize(measured.map((r) => r.ms));
      const complete = (r: { stdout: string }) => /##vso\[task\.complete result=Failed;?\](.*)/.exec(r.stdout);
      const failedOnMissingInput = measured.every((r) => {
        const m = complete(r);
        return !!m && /input/i.test(m[1]) && /required|missing|not set|not given|empty/i.test(m[1]);
      });
      const first = measured[0];
      const message = complete(first)?.[1]?.trim() ?? `${first.stdout}${first.stderr}`.trim().split('\n').slice(-3).join(' | ').slice(0, 400);
      out.push({
        task,
        ...stats,
        overFloorMs: round(stats.medianMs - floor.medianMs),
        meetsTarget: stats.medianMs <= COLD_START_TARGET_MS,
        failedOnMissingInput,
        message,
        exitCodes: [...new Set(measured.map((r) => r.code ?? -1))],
      });
    } finally {
      fs.rmSync(temp, { recursive: true, force: true });
    }
  }
  return { runsPerTask: runs, warmupRunsPerTask: warmups, targetMedianMs: COLD_START_TARGET_MS, floor, tasks: out };
}
