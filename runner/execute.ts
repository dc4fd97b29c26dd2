// Runs a parsed pipeline on this machine the way the agent would: stages and jobs in dependency
// order with their conditions, variables and macros, this extension's bundled tasks as child
// processes with the agent's environment, script/bash steps, and the logging commands they print.
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { AgentServices, CommandError } from './agent-services';
import { Connection, endpointEnvironment, envName, inputEnvName } from './agent-env';
import { evaluate, ExpressionContext, truthy, Value } from './expressions';
import { parseLine, RunLog } from './logging';
import { Job, Pipeline, PipelineError, Stage, Step } from './pipeline';
import { JobOutcome, Result, RunRecord, worst } from './run-record';
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
  private stageOutcomes = new Map<string, { result: Result; jobs: Map<string, JobOutcome> }>();

  constructor(private readonly options: RunOptions) {
    this.artifactsDir = path.join(options.runDir, 'artifacts');
    this.sourcesDir = gitRoot(path.dirname(path.resolve(options.pipelineFile)));
    this.record = { result: 'Succeeded', steps: [], tests: [], summaries: [], deployments: [], artifactsDir: this.artifactsDir, warnings: [] };
    this.log = new RunLog(options.out);
    this.root = new Variables();
    this.services = new AgentServices(this.record, this.artifactsDir, this.log, this.root);
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
        ({ result, message } = await this.runStep(step, variables, outcome, temp, pathPrefix));
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

  private async runStep(step: Step, variables: Variables, job: JobOutcome, temp: string, pathPrefix: string[]): Promise<{ result: Result; message?: string }> {
    switch (step.kind) {
      case 'checkout':
        return { result: 'Succeeded', message: 'the local working tree is the checkout' };
      case 'download':
        this.services.downloadArtifacts(step.artifact, this.options.runDir);
        return { result: 'Succeeded' };
      case 'publish': {
        const from = path.resolve(this.sourcesDir, variables.expand(step.path as string));
        if (!fs.existsSync(from)) return { result: 'Failed', message: `nothing to publish at ${from}` };
        this.services.uploadArtifact(step.artifact as string, from);
        return { result: 'Succeeded' };
      }
      case 'script':
        return this.runProcess(step, variables, job, pathPrefix, 'bash', ['--noprofile', '--norc', '-e', '-o', 'pipefail', writeScript(temp, variables.expand(step.script as string))], {});
      case 'task': {
        const task = this.findTask(step);
        const env = this.taskEnvironment(task, step, variables);
        return this.runProcess(step, variables, job, pathPrefix, process.execPath, [path.join(task.dir, 'index.js')], env);
      }
    }
  }

  private findTask(step: Step): { dir: string; json: TaskJson } {
    const wanted = step.task!;
    const dirs = fs.existsSync(this.options.tasksDir) ? fs.readdirSync(this.options.tasksDir) : [];
    const available: string[] = [];
    for (const dir of dirs) {
      const file = path.join(this.options.tasksDir, dir, 'task.json');
      if (!fs.existsSync(file)) continue;
      const json = JSON.parse(fs.readFileSync(file, 'utf8')) as TaskJson;
      available.push(`${json.name}@${json.version.Major}`);
      if (json.name.toLowerCase() === wanted.name.toLowerCase() && json.version.Major === wanted.major) return { dir: path.join(this.options.tasksDir, dir), json };
    }
    if (available.length === 0) throw new PipelineError(`no bundled tasks in ${this.options.tasksDir}: run npm run build first.`);
    throw new PipelineError(`task ${wanted.name}@${wanted.major} is not available locally: the local runner runs this extension's tasks (${available.join(', ')}), script and bash steps.`);
  }

  /** INPUT_* with task.json defaults (expanded, as the agent does), and ENDPOINT_* for connection inputs. */
  private taskEnvironment(task: { json: TaskJson }, step: Step, variables: Variables): Record<string, string> {
    const env: Record<string, string> = {};
    const given = new Map(Object.entries(step.inputs).map(([k, v]) => [k.toLowerCase(), v]));
    for (const input of task.json.inputs ?? []) {
      const names = [input.name, ...(input.aliases ?? [])].map((n) => n.toLowerCase());
      const key = names.find((n) => given.has(n));
      const raw = key !== undefined ? (given.get(key) as string) : input.defaultValue ?? '';
      for (const n of names) given.delete(n);
      const value = variables.expand(String(raw));
      env[inputEnvName(input.name)] = value;
      if (input.type.startsWith('connectedService') && value) {
        const connection = this.options.connections[value];
        if (!connection) throw new PipelineError(`input '${input.name}' names the service connection '${value}', which is not in .outer-loop/connections.yml or --connection flags.`);
        Object.assign(env, endpointEnvironment(value, connection));
      }
    }
    for (const [name] of given) this.record.warnings.push(`${step.displayName}: input '${name}' is not an input of ${task.json.name}@${task.json.version.Major} (ignored, as the agent ignores it).`);
    return env;
  }

  private runProcess(
    step: Step,
    variables: Variables,
    job: JobOutcome,
    pathPrefix: string[],
    command: string,
    args: string[],
    extraEnv: Record<string, string>,
  ): Promise<{ result: Result; message?: string }> {
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('INPUT_') && !k.startsWith('ENDPOINT_')) env[k] = v;
    for (const v of variables.all()) {
      // Tasks get secrets as SECRET_* (task-lib reads them from there); scripts only what env: maps, as on the agent.
      if (!v.secret) env[envName(v.name)] = v.value;
      else if (step.kind === 'task') env[`SECRET_${envName(v.name)}`] = v.value;
    }
    for (const [k, v] of Object.entries(step.env)) env[k] = variables.expand(v);
    if (pathPrefix.length) env.PATH = [...pathPrefix, env.PATH].join(path.delimiter);
    Object.assign(env, extraEnv);
    const cwd = step.workingDirectory ? path.resolve(this.sourcesDir, variables.expand(step.workingDirectory)) : this.sourcesDir;

    return new Promise((resolve) => {
      const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
      let completed: { result: Result; message?: string } | undefined;
      // A logging command the agent cannot process fails the step, whatever the step reports after.
      let commandFailure: string | undefined;
      let buffer = '';
      const onLine = (line: string) => {
        const parsed = parseLine(line);
        if (parsed.kind === 'text') this.log.print(`    ${parsed.text}`);
        else if (parsed.kind === 'format') this.printFormat(parsed.format, parsed.message, variables);
        else if (parsed.kind === 'malformed') this.log.print(`    ##[warning] ignored a malformed logging command (${parsed.reason}): ${parsed.text}`);
        else {
          try {
            const done = this.services.handle(parsed.command, step, variables, job, pathPrefix);
            if (done) completed = done;
          } catch (err) {
            if (!(err instanceof CommandError)) throw err;
            this.log.print(`    ##[error] ${err.message}`);
            commandFailure ??= err.message;
          }
        }
      };
      const feed = (chunk: Buffer) => {
        buffer += chunk.toString('utf8');
        const lines = buffer.split('\n');
        buffer = lines.pop() ?? '';
        for (const l of lines) onLine(l.replace(/\r$/, ''));
      };
      child.stdout.on('data', feed);
      child.stderr.on('data', feed);
      child.on('error', (err) => resolve({ result: 'Failed', message: err.message }));
      child.on('close', (code) => {
        if (buffer) onLine(buffer);
        if (commandFailure) resolve({ result: 'Failed', message: commandFailure });
        else if (step.kind === 'task') resolve(completed ?? (code === 0 ? { result: 'Succeeded' } : { result: 'Failed', message: `exit code ${code}` }));
        else if (code !== 0) resolve({ result: 'Failed', message: `bash exited with code ${code}` });
        else resolve(completed ?? { result: 'Succeeded' });
      });
    });
  }

  private printFormat(format: string, message: string, variables: Variables): void {
    if (format === 'debug' && !variables.debug) return;
    if (format === 'group') this.log.print(`    ▸ ${message}`);
    else if (format === 'endgroup') return;
    else this.log.print(`    [${format}] ${message}`);
  }
}

interface TaskJson {
  name: string;
  version: { Major: number };
  inputs?: { name: string; type: string; defaultValue?: string; aliases?: string[] }[];
}

function writeScript(temp: string, body: string): string {
  const file = path.join(temp, `script-${Date.now()}-${Math.random().toString(36).slice(2)}.sh`);
  fs.writeFileSync(file, body, { mode: 0o700 });
  return file;
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
