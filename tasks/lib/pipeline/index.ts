// The one adapter over azure-pipelines-task-lib. Nothing else imports task-lib: the library takes
// a TaskContext and plain options. Import the `/task` entry (the package root pulls in mock code).
import { setMaxListeners } from 'node:events';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tl from 'azure-pipelines-task-lib/task';
import { EndpointInfo, TaskContext, secretForms, sanitizeOutput } from '../context';
import { CancelledError, InputError, OuterLoopError, errorMessage } from '../errors';
import { TaskDefinition, inputDefault } from './task-json';

export type { EndpointInfo };

/**
 * Typed access to the task's inputs; every error names the input. An input without a value gets
 * its task.json default, as the agent gives it: task.json is the one source of defaults (an entry
 * passes limits such as min and max, never a default). The entry imports its task.json, which the
 * bundle inlines, rather than reading it beside the bundle at run time: the same object then serves
 * the bundled task, the local runner (which runs the bundle) and unit tests (which run the source).
 */
export class TaskInputs {
  constructor(private readonly task: TaskDefinition) {}

  /** The input's value, else its task.json default; `required` fails when there is neither. */
  string(name: string, options: { required?: boolean } = {}): string | undefined {
    return this.valueOrDefault(name, tl.getInput(name, false)?.trim(), options.required);
  }

  required(name: string): string {
    return this.string(name, { required: true }) as string;
  }

  /** Unset with no default: false, as the agent's getBoolInput reads an empty input. */
  bool(name: string): boolean {
    const value = this.string(name);
    if (value === undefined) return false;
    if (/^(true|yes|1)$/i.test(value)) return true;
    if (/^(false|no|0)$/i.test(value)) return false;
    throw new InputError(`Input '${name}' must be true or false, not '${value}'.`);
  }

  int(name: string, limits: { min?: number; max?: number } = {}): number {
    const value = this.required(name);
    const n = Number(value);
    const { min = Number.MIN_SAFE_INTEGER, max = Number.MAX_SAFE_INTEGER } = limits;
    if (!Number.isInteger(n) || n < min || n > max) {
      throw new InputError(`Input '${name}' must be a whole number from ${min} to ${max}, not '${value}'.`);
    }
    return n;
  }

  /** A number (fractions allowed); the range is the library's to check. */
  number(name: string): number {
    const value = this.required(name);
    const n = Number(value);
    if (!Number.isFinite(n)) throw new InputError(`Input '${name}' must be a number, not '${value}'.`);
    return n;
  }

  /**
   * A pickList input: one of `options`, whatever its case (YAML users type `Compose` as often as
   * `compose`), returned as the option is spelt. Unset: task.json's default.
   */
  choice<T extends string>(name: string, options: readonly T[]): T {
    const value = this.required(name);
    const found = options.find((o) => o.toLowerCase() === value.toLowerCase());
    if (found === undefined) throw new InputError(`Input '${name}' must be one of ${options.join(', ')}, not '${value}'.`);
    return found;
  }

  /** A multi-line or comma-separated list; blank entries and `#` comments dropped. */
  list(name: string): string[] {
    return splitList(this.string(name) ?? '');
  }

  /** One entry per line (an entry may hold commas); blank lines and `#` comments dropped. */
  lines(name: string): string[] {
    return (this.string(name) ?? '')
      .split(/\r?\n/)
      .map((s) => s.trim())
      .filter((s) => s.length > 0 && !s.startsWith('#'));
  }

  /** Multi-line `KEY=VALUE` pairs (the value may contain `=`). */
  keyValues(name: string): Record<string, string> {
    return parseKeyValues(this.string(name) ?? '', name);
  }

  /** A path input; task-lib resolves an unset path input to the sources folder, so treat that as unset. */
  path(name: string, options: { required?: boolean; mustExist?: boolean } = {}): string | undefined {
    const given = tl.getInput(name, false)?.trim();
    const value = this.valueOrDefault(name, given && !isDefaultDirectory(given) ? given : undefined, options.required);
    if (value !== undefined && options.mustExist && !fs.existsSync(value)) {
      throw new InputError(`Input '${name}': '${value}' does not exist. Check the path (relative paths start at the working directory).`);
    }
    return value;
  }

  /** The service connection an input names, or undefined when the input is empty. */
  endpoint(name: string): EndpointInfo | undefined {
    const id = this.string(name);
    if (!id) return undefined;
    const url = tl.getEndpointUrl(id, true);
    const authorization = tl.getEndpointAuthorization(id, true);
    if (url === undefined && authorization === undefined) {
      throw new InputError(`Input '${name}': service connection '${id}' was not found. Check that the pipeline is authorised to use it.`);
    }
    const prefix = `ENDPOINT_DATA_${id.toUpperCase()}_`;
    const data: Record<string, string> = {};
    for (const [key, value] of Object.entries(process.env)) {
      if (key.toUpperCase().startsWith(prefix) && value !== undefined) data[key.slice(prefix.length).toLowerCase()] = value;
    }
    const auth: Record<string, string> = {};
    for (const [key, value] of Object.entries(authorization?.parameters ?? {})) auth[key.toLowerCase()] = value;
    return { id, input: name, url: url ?? '', scheme: authorization?.scheme ?? '', auth, data };
  }

  private valueOrDefault(name: string, value: string | undefined, required = false): string | undefined {
    const result = value || inputDefault(this.task, name, (v) => tl.getVariable(v));
    if (result === undefined && required) throw new InputError(`Input '${name}' is required but was not set.`);
    return result;
  }
}

export function splitList(text: string): string[] {
  return text
    .split(/[\r\n,]+/)
    .map((s) => s.trim())
    .filter((s) => s.length > 0 && !s.startsWith('#'));
}

export function parseKeyValues(text: string, inputName: string): Record<string, string> {
  const result: Record<string, string> = {};
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    if (eq <= 0) throw new InputError(`Input '${inputName}': '${line}' is not KEY=VALUE. Write one KEY=VALUE per line.`);
    result[line.slice(0, eq).trim()] = line.slice(eq + 1);
  }
  return result;
}

function isDefaultDirectory(value: string): boolean {
  const defaults = ['System.DefaultWorkingDirectory', 'Build.SourcesDirectory'].map((v) => tl.getVariable(v));
  return defaults.some((d) => d !== undefined && d.replace(/[\\/]+$/, '') === value.replace(/[\\/]+$/, ''));
}

class AgentContext implements TaskContext {
  readonly tempDir: string;
  private summaries = 0;
  readonly signal: AbortSignal;

  constructor(signal: AbortSignal) {
    this.tempDir = tl.getVariable('Agent.TempDirectory') ?? os.tmpdir();
    this.signal = signal;
  }

  info(message: string): void {
    console.log(sanitizeOutput(message));
  }
  warn(message: string): void {
    tl.warning(sanitizeOutput(message));
  }
  debug(message: string): void {
    tl.debug(sanitizeOutput(message));
  }
  async group<T>(title: string, fn: () => Promise<T>): Promise<T> {
    console.log(`##[group]${sanitizeOutput(title)}`);
    try {
      return await fn();
    } finally {
      console.log('##[endgroup]');
    }
  }
  setSecret(value: string): void {
    for (const form of secretForms(value)) tl.setSecret(form);
  }
  output(name: string, value: string): void {
    tl.setVariable(name, value, false, true);
  }
  uploadArtifact(artifactName: string, path: string): void {
    tl.uploadArtifact(artifactName, path, artifactName);
  }
  addSummary(name: string, markdown: string): void {
    // The agent reads the file when the step ends: a file per summary, in the job's temp folder.
    const dir = path.join(this.tempDir, 'outer-loop');
    fs.mkdirSync(dir, { recursive: true });
    const file = path.join(dir, `${name}-${process.pid}-${++this.summaries}.md`);
    fs.writeFileSync(file, markdown);
    tl.uploadSummary(file);
  }
  publishTestResults(options: { format: string; files: string[]; title?: string; mergeResults?: boolean }): void {
    tl.command(
      'results.publish',
      {
        type: options.format,
        resultFiles: options.files.join(','),
        mergeResults: String(options.mergeResults ?? true),
        runTitle: options.title ?? '',
      },
      '',
    );
  }
  variable(name: string): string | undefined {
    return tl.getVariable(name) || undefined;
  }
}

/**
 * The one top-level catch of every task: known errors fail the task with their message; anything
 * else fails it with the message and the stack in debug output. SIGINT/SIGTERM (the agent
 * cancelling the job) abort `ctx.signal` so the task can clean up before it exits.
 */
export function runTask(task: TaskDefinition, body: (inputs: TaskInputs, ctx: TaskContext) => Promise<void>): void {
  const taskName = task.name;
  const controller = new AbortController();
  // Every operation listens for a cancel while it runs and stops listening when it ends; a
  // deployment of hundreds of workloads waits on hundreds at once, which is not a leak.
  setMaxListeners(0, controller.signal);
  const onSignal = (signal: NodeJS.Signals) => {
    if (!controller.signal.aborted) {
      console.log(`${taskName}: received ${signal}; cleaning up.`);
      controller.abort(new CancelledError(`${taskName} was cancelled (${signal}).`));
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const ctx = new AgentContext(controller.signal);
  body(new TaskInputs(task), ctx)
    .then(() => {
      if (controller.signal.aborted) tl.setResult(tl.TaskResult.Cancelled, `${taskName} was cancelled.`);
      else tl.setResult(tl.TaskResult.Succeeded, '');
    })
    .catch((err: unknown) => {
      if (!(err instanceof OuterLoopError) && err instanceof Error && err.stack) tl.debug(err.stack);
      // A job the agent cancelled reports Cancelled, whatever error the interrupted work threw.
      const result = controller.signal.aborted ? tl.TaskResult.Cancelled : tl.TaskResult.Failed;
      tl.setResult(result, sanitizeOutput(`${taskName}: ${errorMessage(err)}`));
    })
    .finally(() => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    });
}
