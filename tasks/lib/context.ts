// The small context every library function takes instead of azure-pipelines-task-lib, so the
// library runs (and is tested) without an agent. `tasks/lib/pipeline` implements it for the agent;
// `test/support/context.ts` implements it for tests.

/** A service connection as the agent hands it over (`ENDPOINT_URL_*`, `ENDPOINT_AUTH_*`, `ENDPOINT_DATA_*`). */
export interface EndpointInfo {
  id: string;
  /** The task input that named it, for error messages. */
  input: string;
  url: string;
  scheme: string;
  auth: Record<string, string>;
  data: Record<string, string>;
}

export interface Logger {
  info(message: string): void;
  warn(message: string): void;
  debug(message: string): void;
  /** A collapsible group in the pipeline log around `fn`. */
  group<T>(title: string, fn: () => Promise<T>): Promise<T>;
}

export interface TaskContext extends Logger {
  /**
   * Registers a secret so the agent masks it. Implementations also register each line of a
   * multi-line value and the base64 forms, so no encoding of it can leak.
   */
  setSecret(value: string): void;
  /** Sets an output variable of the step (`isOutput=true`). */
  output(name: string, value: string): void;
  /** Uploads a file as (part of) a pipeline artifact. */
  uploadArtifact(artifactName: string, path: string): void;
  /** Adds Markdown to the run's summary tab; `name` names the section (and the file the agent gets). */
  addSummary(name: string, markdown: string): void;
  /** Publishes test results (`##vso[results.publish]`). */
  publishTestResults(options: { format: string; files: string[]; title?: string; mergeResults?: boolean }): void;
  /** A folder for this run's temporary files (the agent's temp directory). */
  readonly tempDir: string;
  /** Pipeline variables such as Build.BuildNumber; undefined when not set. */
  variable(name: string): string | undefined;
  /** Aborted when the agent cancels the job (SIGINT/SIGTERM). */
  readonly signal: AbortSignal;
}

/**
 * How long a cancelled task has before the agent kills it: the agent sends SIGINT, then SIGTERM, then
 * kills the process a few seconds later. What a task still does after a cancel fits in this.
 */
export const CANCEL_GRACE_MS = 5_000;

/**
 * When a cancelled task must be done: CANCEL_GRACE_MS after the cancel (from now, while none has
 * come). Called before the work a cancel may interrupt, so that it knows when the cancel came.
 */
export function cancelDeadline(signal: AbortSignal): () => number {
  let cancelledAt = signal.aborted ? Date.now() : undefined;
  if (cancelledAt === undefined) signal.addEventListener('abort', () => (cancelledAt = Date.now()), { once: true });
  return () => (cancelledAt ?? Date.now()) + CANCEL_GRACE_MS;
}

/** What a cancelled task keeps of its grace time to report and end. */
const CANCEL_REPORT_MS = 500;
/** Below this much time left, no rollback is started after a cancel: a half-done one helps no one. */
const MIN_CANCEL_ROLLBACK_MS = 1_000;

/**
 * The time a rollback after a cancel may take: what is left of the grace time (`graceEnd`, from
 * cancelDeadline) but the report's; undefined when too little is left to start one.
 */
export function cancelRollbackTime(graceEnd: () => number): number | undefined {
  const left = graceEnd() - Date.now() - CANCEL_REPORT_MS;
  return left < MIN_CANCEL_ROLLBACK_MS ? undefined : left;
}

/** Every form in which a secret could be printed: the value, its lines, and their base64. */
export function secretForms(value: string): string[] {
  const forms = new Set<string>();
  const add = (s: string) => {
    if (s.trim().length > 0) forms.add(s);
  };
  const parts = [value, ...value.split(/\r?\n/)];
  for (const part of parts) {
    add(part);
    if (part.length >= 4) {
      add(Buffer.from(part).toString('base64'));
      add(Buffer.from(part).toString('base64url'));
    }
  }
  return [...forms].filter((s) => !/[\r\n]/.test(s));
}

/**
 * Neutralises Azure Pipelines logging commands (`##vso[…]`, `##[…]`) in text that comes from
 * containers or tools, so a process we run cannot set variables or complete the task.
 */
export function sanitizeOutput(text: string): string {
  return text.replace(/##(?=(vso)?\[)/gi, '#\u200b#');
}

// Output of containers and tools (the Compose CLI) on its way to the pipeline log: split into lines,
// sanitised (no `##vso[` or `##[` command can reach the agent), bounded in line length, with a
// bounded tail kept for failure reports.

/** Longer lines are cut (a binary blob on stdout must not become one multi-megabyte log line). */
export const MAX_LINE_CHARS = 16 * 1024;
/** Lines of each service's log printed when something fails. */
export const LOG_TAIL_LINES = 200;

/** Turns chunks into sanitised lines and hands each to `emit`; keeps the last `tailLines`. */
export class LineSink {
  private partial = '';
  private readonly tailBuffer: string[] = [];
  constructor(
    private readonly emit: (line: string) => void,
    private readonly prefix = '',
    private readonly tailLines = LOG_TAIL_LINES,
  ) {}

  write(chunk: Buffer | string): void {
    this.partial += typeof chunk === 'string' ? chunk : chunk.toString('utf8');
    const lines = this.partial.split(/\r?\n/);
    this.partial = lines.pop() ?? '';
    for (const line of lines) this.line(line);
    while (this.partial.length > MAX_LINE_CHARS) {
      this.line(this.partial.slice(0, MAX_LINE_CHARS));
      this.partial = this.partial.slice(MAX_LINE_CHARS);
    }
  }

  end(): void {
    if (this.partial) this.line(this.partial);
    this.partial = '';
  }

  get tail(): string[] {
    return [...this.tailBuffer];
  }

  private line(raw: string): void {
    const text = sanitizeOutput(`${this.prefix}${raw.replace(/\r/g, '').slice(0, MAX_LINE_CHARS)}`);
    this.tailBuffer.push(text);
    if (this.tailBuffer.length > this.tailLines) this.tailBuffer.shift();
    this.emit(text);
  }
}

/** Where the run comes from, from the agent's predefined variables; each may be missing locally. */
export interface PipelineInfo {
  buildNumber?: string;
  buildId?: string;
  definition?: string;
  branch?: string;
  commit?: string;
  repositoryUri?: string;
  project?: string;
  collectionUri?: string;
}

export function pipelineInfo(ctx: Pick<TaskContext, 'variable'>): PipelineInfo {
  return {
    buildNumber: ctx.variable('Build.BuildNumber'),
    buildId: ctx.variable('Build.BuildId'),
    definition: ctx.variable('Build.DefinitionName'),
    branch: ctx.variable('Build.SourceBranch'),
    commit: ctx.variable('Build.SourceVersion'),
    repositoryUri: ctx.variable('Build.Repository.Uri'),
    project: ctx.variable('System.TeamProject'),
    collectionUri: ctx.variable('System.CollectionUri'),
  };
}

/** The run's results page: <collection>/<project>/_build/results?buildId=<id>; undefined outside a pipeline. */
export function runUrl(info: PipelineInfo): string | undefined {
  if (!info.collectionUri || !info.project || !info.buildId) return undefined;
  return `${info.collectionUri.replace(/\/+$/, '')}/${encodeURIComponent(info.project)}/_build/results?buildId=${encodeURIComponent(info.buildId)}`;
}
