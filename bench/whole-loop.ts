// Figure 8: the whole outer loop. The example pipeline's Build, QA and Staging stages through the
// local runner (the bundled tasks: build, integration tests, push with digests, deploy qa and
// staging with health gates) against bench/whole-loop.sh, which does the same work with plain
// docker and compose commands, on the same engine and registry, alternating, on the run's stack.
// Target on the current stack: ≤ 1.2×.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ROOT } from './sizes';
import { Summary, requireComposeTask, progress, round, runTimed, since, startBenchEngine, summarize } from './util';

export const WHOLE_LOOP_TARGET = 1.2;
const RUNS = 3;

const PHASES = ['build', 'test', 'push', 'qa', 'staging'] as const;
type Phases = Record<(typeof PHASES)[number], number>;

export interface WholeLoopReport {
  compose: string;
  runs: number;
  runner: Summary;
  script: Summary;
  ratio: number;
  ratioTarget: number;
  /** Median seconds per phase: the runner's steps, and the script's phases (where the time goes). */
  phases: { runner: Phases; script: Phases };
}

function medianPhases(samples: Phases[]): Phases {
  const out = {} as Phases;
  for (const p of PHASES) out[p] = round(summarize(samples.map((s) => s[p] * 1000)).medianMs / 1000, 2);
  return out;
}

export async function measureWholeLoop(): Promise<WholeLoopReport> {
  const { compose, composeVersion } = await requireComposeTask('compose-deploy');
  const { prepareDemo, runExample, runningDigests } = await import('../scripts/demo');
  const { removeComposeProject } = await import('../test/support/engine');
  const { BASE_IMAGE } = await import('../test/support/base-image');
  const engine = await startBenchEngine();
  const setup = await prepareDemo(engine);
  const scriptProject = `colbench-loop-${process.pid}`;
  const runnerProjects = new Set<string>();
  const phaseLog = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'col-bench-loop-')), 'phases');
  try {
    const phaseSamples = { runner: [] as Phases[], script: [] as Phases[] };
    const runner = async () => {
      const start = process.hrtime.bigint();
      const lines: string[] = [];
      const { record } = await runExample(engine, setup, ['Build', 'QA', 'Staging'], (l) => lines.push(l));
      const ms = since(start);
      if (record.result === 'Failed') throw new Error(`the example pipeline failed:\n${lines.slice(-30).join('\n')}`);
      for (const d of record.deployments) for (const p of (await runningDigests(engine.docker, d.environment)).projects) runnerProjects.add(p);
      const seconds = (stage: string, step: RegExp) => record.steps.filter((s) => s.stage === stage && step.test(s.step)).reduce((n, s) => n + s.seconds, 0);
      phaseSamples.runner.push({ build: seconds('Build', /^Build/), test: seconds('Build', /test/i), push: seconds('Build', /^Push/), qa: seconds('QA', /./), staging: seconds('Staging', /./) });
      return ms;
    };
    let n = 0;
    const script = async () => {
      fs.rmSync(phaseLog, { force: true });
      const r = await runTimed('bash', [path.join(ROOT, 'bench', 'whole-loop.sh')], {
        env: {
          PATH: process.env.PATH,
          HOME: process.env.HOME,
          DOCKER_HOST: engine.dockerHost,
          REGISTRY: setup.registry.host,
          REGISTRY_USER: setup.registry.username,
          REGISTRY_PASSWORD: setup.registry.password,
          BASE_IMAGE,
          TAG: `script.${++n}`,
          PROJECT: scriptProject,
          COMPOSE: compose.join(' '),
          QA_WEB_PORT: '18090',
          STAGING_WEB_PORT: '28090',
          PHASE_LOG: phaseLog,
        },
        timeoutMs: 600_000,
      });
      if (r.code !== 0) throw new Error(`bench/whole-loop.sh failed (${r.code}): ${(r.stderr || r.stdout).slice(-800)}`);
      const marks = fs.readFileSync(phaseLog, 'utf8').trim().split('\n').map((l) => l.split(' '));
      const phases = {} as Phases;
      for (let i = 1; i < marks.length; i++) phases[marks[i][0] as keyof Phases] = (Number(marks[i][1]) - Number(marks[i - 1][1])) / 1e9;
      phaseSamples.script.push(phases);
      return r.ms;
    };
    progress('Whole loop: one warm-up of each');
    await runner();
    await script();
    phaseSamples.runner.length = 0;
    phaseSamples.script.length = 0;
    const runs = { runner: [] as number[], script: [] as number[] };
    for (let i = 1; i <= RUNS; i++) {
      progress(`Whole loop: run ${i} of ${RUNS} (the script, then the runner)`);
      runs.script.push(await script());
      runs.runner.push(await runner());
    }
    const runnerSummary = summarize(runs.runner);
    const scriptSummary = summarize(runs.script);
    return {
      compose: composeVersion,
      runs: RUNS,
      runner: runnerSummary,
      script: scriptSummary,
      ratio: round(runnerSummary.medianMs / scriptSummary.medianMs, 2),
      ratioTarget: WHOLE_LOOP_TARGET,
      phases: { runner: medianPhases(phaseSamples.runner), script: medianPhases(phaseSamples.script) },
    };
  } finally {
    fs.rmSync(path.dirname(phaseLog), { recursive: true, force: true });
    for (const project of [...runnerProjects, `${scriptProject}-qa`, `${scriptProject}-staging`, `${scriptProject}-test`]) {
      await removeComposeProject(engine.docker, project).catch(() => undefined);
    }
    await setup.stop();
    await engine.stop();
  }
}

export function wholeLoopMissed(r: WholeLoopReport | undefined, stack: string): string[] {
  return r && stack === 'current' && r.ratio > r.ratioTarget ? [`whole loop: the runner took ${r.ratio}× the time of the same work by hand > ${r.ratioTarget}×`] : [];
}

export function wholeLoopTable(r: WholeLoopReport | undefined): string[] {
  if (!r) return [];
  return [
    `Whole loop: example pipeline (build, test, push, deploy qa + staging), ${r.runs} runs, ${r.compose}`,
    `  by hand (bench/whole-loop.sh):  median ${r.script.medianMs} ms`,
    `  the local runner:               median ${r.runner.medianMs} ms`,
    `  ratio ${r.ratio}× (target on current ≤ ${r.ratioTarget}×)`,
    `  median seconds, runner / by hand: ${PHASES.map((p) => `${p} ${r.phases.runner[p]} / ${r.phases.script[p]}`).join(', ')}`,
    '',
  ];
}
