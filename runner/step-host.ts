// Runs one step the way the agent hosts it: checkout, download and publish steps; script and bash
// steps in bash; this extension's bundled tasks as node child processes with INPUT_*, ENDPOINT_*
// and SECRET_* as the agent sets them. The step's output is printed (masked), and its logging
// commands go to the agent services.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { AgentServices, CommandError } from './agent-services';
import type { TaskDefinition } from '../tasks/lib/pipeline/task-json';
import { agentInputEnvironment, Connection, endpointEnvironment, envName, inputEnvName } from './agent-env';
import { parseLine, RunLog } from './logging';
import { PipelineError, Step } from './pipeline';
import { JobOutcome, Result } from './run-record';
import type { Variables } from './variables';

export class StepHost {
  constructor(
    /** Where the bundled tasks are (dist/tasks). */
    private readonly tasksDir: string,
    private readonly connections: Record<string, Connection>,
    /** The run's folder, where download steps put artifacts. */
    private readonly runDir: string,
    /** The working directory of steps (the checkout). */
    private readonly sourcesDir: string,
    private readonly log: RunLog,
    private readonly services: AgentServices,
    /** The run's warnings (inputs a task does not have). */
    private readonly warnings: string[],
  ) {}

  async run(step: Step, variables: Variables, job: JobOutcome, temp: string, pathPrefix: string[]): Promise<{ result: Result; message?: string }> {
    switch (step.kind) {
      case 'checkout':
        return { result: 'Succeeded', message: 'the local working tree is the checkout' };
      case 'download':
        this.services.downloadArtifacts(step.artifact, this.runDir);
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
    const dirs = fs.existsSync(this.tasksDir) ? fs.readdirSync(this.tasksDir) : [];
    const available: string[] = [];
    for (const dir of dirs) {
      const file = path.join(this.tasksDir, dir, 'task.json');
      if (!fs.existsSync(file)) continue;
      const json = JSON.parse(fs.readFileSync(file, 'utf8')) as TaskJson;
      available.push(`${json.name}@${json.version.Major}`);
      if (json.name.toLowerCase() === wanted.name.toLowerCase() && json.version.Major === wanted.major) return { dir: path.join(this.tasksDir, dir), json };
    }
    if (available.length === 0) throw new PipelineError(`no bundled tasks in ${this.tasksDir}: run npm run build first.`);
    throw new PipelineError(`task ${wanted.name}@${wanted.major} is not available locally: the local runner runs this extension's tasks (${available.join(', ')}), script and bash steps.`);
  }

  /** INPUT_* with task.json defaults (expanded, as the agent does), and ENDPOINT_* for connection inputs. */
  private taskEnvironment(task: { json: TaskJson }, step: Step, variables: Variables): Record<string, string> {
    const { env, unknown } = agentInputEnvironment(task.json, step.inputs, (name) => variables.get(name)?.value);
    for (const input of task.json.inputs ?? []) {
      const value = env[inputEnvName(input.name)];
      if (input.type.startsWith('connectedService') && value) {
        const connection = this.connections[value];
        if (!connection) throw new PipelineError(`input '${input.name}' names the service connection '${value}', which is not in .outer-loop/connections.yml or --connection flags.`);
        Object.assign(env, endpointEnvironment(value, connection));
      }
    }
    for (const name of unknown) this.warnings.push(`${step.displayName}: input '${name}' is not an input of ${task.json.name}@${task.json.version.Major} (ignored, as the agent ignores it).`);
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

type TaskJson = TaskDefinition & { version: { Major: number } };

function writeScript(temp: string, body: string): string {
  const file = path.join(temp, `script-${Date.now()}-${Math.random().toString(36).slice(2)}.sh`);
  fs.writeFileSync(file, body, { mode: 0o700 });
  return file;
}
