// What a local run records (steps, tests, summaries, deployments, warnings) for its report, and
// how results combine.

export type Result = 'Succeeded' | 'SucceededWithIssues' | 'Failed' | 'Skipped' | 'Canceled';

export interface StepRecord {
  stage: string;
  job: string;
  step: string;
  result: Result;
  seconds: number;
  message?: string;
}

export interface TestRun {
  title: string;
  format: string;
  passed: number;
  failed: number;
  skipped: number;
}

export interface RunRecord {
  result: Result;
  steps: StepRecord[];
  tests: TestRun[];
  summaries: { title: string; markdown: string }[];
  deployments: { stage: string; job: string; environment: string; result: Result; outputs: Record<string, string> }[];
  artifactsDir: string;
  warnings: string[];
}

export interface JobOutcome {
  result: Result;
  /** 'step.var' → value (output variables of the job's named steps). */
  outputs: Record<string, string>;
}

/** The result of several: the worst one, Skipped when all were skipped. */
export function worst(results: Result[]): Result {
  for (const r of ['Failed', 'Canceled', 'SucceededWithIssues', 'Succeeded'] as Result[]) if (results.includes(r)) return r;
  return results.every((r) => r === 'Skipped') ? 'Skipped' : 'Succeeded';
}
