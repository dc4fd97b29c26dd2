// Runs a parsed pipeline on this machine the way the agent would. This is the scheduler: stages
// and jobs in dependency order with their conditions, variables and macros, and the steps of each
// job in turn. The step host (step-host.ts) runs a step; the agent services (agent-services.ts)
// answer the logging commands it prints.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { AgentServices } from './agent-services';
import type { Connection } from './agent-env';
import { evaluate, ExpressionContext, truthy, Value } from './expressions';
import { RunLog } from './logging';
import { Job, Pipeline, PipelineError, Stage } from './pipeline';
import { JobOutcome, Result, RunRecord, worst } from './run-record';
import { StepHost } from './step-host';
import { Variables } from './variables';

export interface RunOptions {
  pipelineFile: string;
  pipeline: Pipeline;
  /** Run only these stages (by name); their dependencies on other stages are ignored. */
  stages?: string[];
  variables: Record<string, string>;
  secretVariables?: Record<string, string>;
  connections: Record<string, Connection>;
  /** Where the bundled tasks are (dist/tasks). */
  tasksDir: string;
  /** The run's folder (artifacts, temp, report). */
  runDir: string;
  buildNumber: string;
  out: (line: string) => void;
}

export class PipelineRun {
  private readonly record: RunRecord;
  private readonly log: RunLog;
  private readonly root: Variables;
  private readonly artifactsDir: string;
  private readonly sourcesDir: string;
  private readonly services: AgentServices;
  private readonly steps: StepHost;
  private stageOutcomes = new Map<string, { result: Result; jobs: Map<string, JobOutcome> }>();

  constructor(private readonly options: RunOptions) {
    this.artifactsDir = path.join(options.runDir, 'artifacts');
    this.sourcesDir = gitRoot(path.dirname(path.resolve(options.pipelineFile)));
    this.record = { result: 'Succeeded', steps: [], tests: [], summaries: [], deployments: [], artifactsDir: this.artifactsDir, warnings: [] };
    this.log = new RunLog(options.out);
    this.root = new Variables();
    this.services = new AgentServices(this.record, this.artifactsDir, this.log, this.root);
    this.steps = new StepHost(options.tasksDir, options.connections, options.runDir, this.sourcesDir, this.log, this.services, this.record.warnings);
    for (const [k, v] of Object.entries(this.predefined())) this.root.set(k, v);
    for (const [k, v] of Object.entries(options.pipeline.variables)) this.root.set(k, this.root.expand(v));
    for (const [k, v] of Object.entries(options.variables)) this.root.set(k, v);
    for (const [k, v] of Object.entries(options.secretVariables ?? {})) this.addSecretVariable(this.root, k, v);
    for (const c of Object.values(options.connections)) for (const [k, v] of Object.entries(c.parameters)) if (/password|token|key|secret|kubeconfig|certificate/i.test(k)) this.log.addSecret(v);
  }

  private predefined(): Record<string, string> {
    const runDir = this.options.runDir;
    const git = (args: string[]) => {
      try {
        return execFileSync('git', args, { cwd: this.sourcesDir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
      } catch {
        return '';
      }
    };
    const branch = git(['rev-parse', '--abbrev-ref', 'HEAD']) || 'main';
    return {
      'Build.BuildNumber': this.options.buildNumber,
      'Build.BuildId': String(Date.now() % 1_000_000),
      'Build.DefinitionName': path.basename(this.options.pipelineFile).replace(/\.ya?ml$/, ''),
      'Build.SourceVersion': git(['rev-parse', 'HEAD']) || '0'.repeat(40),
      'Build.SourceBranch': `refs/heads/${branch}`,
      'Build.SourceBranchName': branch,
      'Build.Reason': 'Manual',
      'Build.Repository.Name': path.basename(this.sourcesDir),
      'Build.Repository.LocalPath': this.sourcesDir,
      'Build.SourcesDirectory': this.sourcesDir,
      'System.DefaultWorkingDirectory': this.sourcesDir,
      'Build.ArtifactStagingDirectory': path.join(runDir, 'a'),
      'Build.BinariesDirectory': path.join(runDir, 'b'),
      'Pipeline.Workspace': runDir,
      'Agent.BuildDirectory': runDir,
      'Agent.TempDirectory': path.join(runDir, '_temp'),
      'Agent.OS': 'Linux',
      'Agent.Name': 'local',
      'System.TeamProject': 'local',
      'System.CollectionUri': 'https://localhost/local/',
      'System.TeamFoundationCollectionUri': 'https://localhost/local/',
      'System.HostType': 'build',
    };
  }

  private addSecretVariable(scope: Variables, name: string, value: string): void {
    scope.set(name, value, true);
    this.log.addSecret(value);
  }

  async run(): Promise<RunRecord> {
    fs.mkdirSync(this.artifactsDir, { recursive: true });
    const selected = this.options.stages?.length ? new Set(this.options.stages.map((s) => s.toLowerCase())) : undefined;
    if (selected) for (const s of selected) if (!this.options.pipeline.stages.some((st) => st.name.toLowerCase() === s)) throw new PipelineError(`--stage ${s}: the pipeline has no such stage (stages: ${this.options.pipeline.stages.map((st) => st.name).join(', ')}).`);
    for (const stage of order(this.options.pipeline.stages)) {
      if (selected && !selected.has(stage.name.toLowerCase())) continue;
      const deps = selected ? stage.dependsOn.filter((d) => selected.has(d.toLowerCase())) : stage.dependsOn;
      const outcome = await this.runStage(stage, deps);
      this.stageOutcomes.set(stage.name, outcome);
      if (outcome.result === 'Failed') this.record.result = 'Failed';
      else if (outcome.result === 'SucceededWithIssues' && this.record.result === 'Succeeded') this.record.result = 'SucceededWithIssues';
    }
    return this.record;
  }

  private dependencyContext(stageDeps: string[], jobDeps: Map<string, JobOutcome> | undefined, variables: Variables): ExpressionContext {
    const results = jobDeps ? [...jobDeps.values()].map((j) => j.result) : stageDeps.map((d) => this.stageOutcomes.get(d)?.result ?? 'Skipped');
    return {
      status: { failed: results.some((r) => r === 'Failed' || r === 'Skipped' || r === 'Canceled'), canceled: results.includes('Canceled') },
      variable: (name) => variables.get(name)?.value,
      dependency: (p) => this.lookupDependency(p, jobDeps),
    };
  }

  private lookupDependency(p: string[], jobDeps: Map<string, JobOutcome> | undefined): Value {
    const [root, ...rest] = p;
    if (root === 'stagedependencies') {
      const [stage, job, prop, key] = rest;
      const j = this.stageOutcomes.get(stage)?.jobs.get(job);
      if (prop === 'result') return j?.result;
      return prop === 'outputs' && key ? j?.outputs[key] : undefined;
    }
    const [name, prop, key] = rest;
    const job = jobDeps?.get(name);
    if (job) return prop === 'result' ? job.result : prop === 'outputs' && key ? job.outputs[key] : undefined;
    const stage = this.stageOutcomes.get(name);
    if (!stage) return undefined;
    if (prop === 'result') return stage.result;
    if (prop === 'outputs' && key) {
      const [jobName, ...stepVar] = key.split('.');
      return stage.jobs.get(jobName)?.outputs[stepVar.join('.')];
    }
    return undefined;
  }

  private async runStage(stage: Stage, deps: string[]): Promise<{ result: Result; jobs: Map<string, JobOutcome> }> {
    const variables = new Variables(this.root);
    this.defineVariables(variables, stage.variables, this.dependencyContext(deps, undefined, variables));
    variables.set('System.StageName', stage.name);
    variables.set('System.StageDisplayName', stage.displayName);
    const condition = stage.condition ?? 'succeeded()';
    const run = truthy(evaluate(condition, this.dependencyContext(deps, undefined, variables)));
    const jobs = new Map<string, JobOutcome>();
    this.log.print(`\n=== Stage ${stage.displayName}${run ? '' : ` — skipped (condition: ${condition})`}`);
    if (!run) {
      for (const job of stage.jobs) jobs.set(job.name, { result: 'Skipped', outputs: {} });
      return { result: 'Skipped', jobs };
    }
    for (const job of order(stage.jobs)) {
      const depOutcomes = new Map(job.dependsOn.map((d) => [d, jobs.get(d) ?? { result: 'Skipped' as Result, outputs: {} }]));
      jobs.set(job.name, await this.runJob(stage, job, variables, depOutcomes));
    }
    return { result: worst([...jobs.values()].map((j) => j.result)), jobs };
  }

  private defineVariables(scope: Variables, defs: Record<string, string>, ctx: ExpressionContext): void {
    for (const [name, raw] of Object.entries(defs)) {
      const runtime = /^\$\[(.*)\]$/s.exec(raw.trim());
      const value = runtime ? evaluate(runtime[1], ctx) : scope.expand(raw);
      scope.set(name, value === undefined ? '' : String(value));
    }
  }

  private async runJob(stage: Stage, job: Job, stageVariables: Variables, deps: Map<string, JobOutcome>): Promise<JobOutcome> {
    const variables = new Variables(stageVariables);
    const ctx = this.dependencyContext([], deps, variables);
    this.defineVariables(variables, job.variables, ctx);
    const jobDir = path.join(this.options.runDir, 'jobs', `${stage.name}.${job.name}`);
    const temp = path.join(jobDir, '_temp');
    fs.mkdirSync(temp, { recursive: true });
    fs.mkdirSync(path.join(this.options.runDir, 'a'), { recursive: true });
    variables.set('Agent.TempDirectory', temp);
    variables.set('System.JobName', job.name);
    variables.set('System.JobDisplayName', job.displayName);
    if (job.environment) variables.set('Environment.Name', job.environment);

    const condition = job.condition ?? 'succeeded()';
    const outcome: JobOutcome = { result: 'Succeeded', outputs: {} };
    if (!truthy(evaluate(condition, ctx))) {
      this.log.print(`--- Job ${job.displayName} — skipped (condition: ${condition})`);
      return { result: 'Skipped', outputs: {} };
    }
    this.log.print(`--- Job ${job.displayName}${job.environment ? ` (deployment to environment '${job.environment}')` : ''}`);
    // Deployment jobs download the run's artifacts first, as the agent does.
    if (job.environment) this.services.downloadArtifacts(undefined, this.options.runDir);

    const stepResults: Result[] = [];
    const pathPrefix: string[] = [];
    for (const step of job.steps) {
      const stepCtx: ExpressionContext = {
        status: { failed: stepResults.includes('Failed'), canceled: false },
        variable: (name) => variables.get(name)?.value,
        dependency: () => undefined,
      };
      const stepCondition = step.condition ?? 'succeeded()';
      const display = variables.expand(step.displayName);
      if (!step.enabled || !truthy(evaluate(stepCondition, stepCtx))) {
        this.log.print(`  · ${display} — skipped`);
        this.record.steps.push({ stage: stage.name, job: job.name, step: display, result: 'Skipped', seconds: 0 });
        continue;
      }
      this.log.print(`  ▶ ${display}`);
      const started = Date.now();
      let result: Result;
      let message: string | undefined;
      try {
        ({ result, message } = await this.steps.run(step, variables, outcome, temp, pathPrefix));
      } catch (err) {
        result = 'Failed';
        message = (err as Error).message;
      }
      if (result === 'Failed' && step.continueOnError) result = 'SucceededWithIssues';
      const seconds = (Date.now() - started) / 1000;
      this.log.print(`  ${result === 'Failed' ? '✗' : '✓'} ${display}: ${result} (${seconds.toFixed(1)} s)${message ? ` — ${message}` : ''}`);
      this.record.steps.push({ stage: stage.name, job: job.name, step: display, result, seconds, message: message && this.log.masked(message) });
      stepResults.push(result);
    }
    outcome.result = worst(stepResults.length ? stepResults : ['Succeeded']);
    if (job.environment) {
      this.record.deployments.push({ stage: stage.name, job: job.name, environment: job.environment, result: outcome.result, outputs: { ...outcome.outputs } });
      // Deployment jobs' outputs are also reachable as '<job>.<step>.<var>', as in Azure.
      for (const [k, v] of Object.entries({ ...outcome.outputs })) outcome.outputs[`${job.name}.${k}`] = v;
    }
    return outcome;
  }
}

/** Dependency order (stable for independent items); a cycle is an error naming it. */
function order<T extends { name: string; dependsOn: string[] }>(items: T[]): T[] {
  const done = new Set<string>();
  const out: T[] = [];
  const visit = (item: T, trail: string[]) => {
    if (done.has(item.name)) return;
    if (trail.includes(item.name)) throw new PipelineError(`dependsOn forms a cycle: ${[...trail, item.name].join(' → ')}`);
    for (const dep of item.dependsOn) {
      const d = items.find((i) => i.name === dep);
      if (d) visit(d, [...trail, item.name]);
    }
    done.add(item.name);
    out.push(item);
  };
  for (const item of items) visit(item, []);
  return out;
}

function gitRoot(dir: string): string {
  try {
    return execFileSync('git', ['rev-parse', '--show-toplevel'], { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() || dir;
  } catch {
    return dir;
  }
}
