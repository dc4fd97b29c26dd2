// Runs jobs (the builds of compose services) at most `maxParallel` at a time, each after the jobs it
// depends on. Logs stay readable: each job's output is one collapsible group, written when the job
// ends, so the lines of two builds never interleave; a job that runs alone (nothing else can start
// until it ends) streams its group live. The first failure aborts the running jobs, starts no new
// one, waits for the aborted ones to end, and is thrown naming the job and what was stopped (a job
// alone throws its own error as it is).
import type { Logger } from '../context';
import { OuterLoopError } from '../errors';
import { abortError } from '../util/abort';

export interface PoolJob<T> {
  name: string;
  /** Names of jobs that must have succeeded before this one starts (names outside the pool are ignored). */
  after: string[];
  /** The title of the job's log group. */
  title: string;
  /** The work; it must stop (reject) soon after `signal` aborts. */
  run(log: Logger, signal: AbortSignal): Promise<T>;
}

export interface PoolOptions {
  maxParallel: number;
  /** Cancels every job (the task's signal). */
  signal: AbortSignal;
  log: Logger;
}

type Level = 'info' | 'warn' | 'debug';

/** A Logger that keeps what a job says, at its level, to be written as one group later. */
class BufferedLog implements Logger {
  private readonly entries: [Level, string][] = [];
  info(message: string): void {
    this.entries.push(['info', message]);
  }
  warn(message: string): void {
    this.entries.push(['warn', message]);
  }
  debug(message: string): void {
    this.entries.push(['debug', message]);
  }
  /** Groups do not nest in the pipeline log: a group inside a job's group is its title, then its lines. */
  async group<T>(title: string, fn: () => Promise<T>): Promise<T> {
    this.info(title);
    return fn();
  }
  replayTo(log: Logger): void {
    for (const [level, message] of this.entries) log[level](message);
  }
}

/**
 * The results in the order of `jobs`. A job waits for the jobs named in its `after` (so an image
 * built `FROM` a sibling service's image finds it, as with Compose v2's own builder, which builds in
 * dependency order); any other job starts as soon as a slot is free, in the order given.
 */
export async function runInDependencyOrder<T>(jobs: PoolJob<T>[], options: PoolOptions): Promise<T[]> {
  const { maxParallel, log } = options;
  if (!Number.isInteger(maxParallel) || maxParallel < 1) throw new RangeError(`maxParallel must be a whole number of 1 or more, not ${maxParallel}`);
  const names = new Set(jobs.map((j) => j.name));
  const results = new Map<string, T>();
  const pending = [...jobs];
  const running = new Map<string, Promise<void>>();
  const stopped: string[] = [];
  let failure: { job: string; error: unknown } | undefined;
  // The jobs' signal: aborted by the task's signal or by the first failure.
  const controller = new AbortController();
  const onCancel = () => controller.abort(options.signal.reason);
  if (options.signal.aborted) onCancel();
  options.signal.addEventListener('abort', onCancel, { once: true });
  // The log is written through one queue, so nothing lands inside another job's group.
  let written = Promise.resolve();
  const write = (fn: () => Promise<void> | void): Promise<void> => {
    const next = written.then(fn);
    written = next.catch(() => undefined); // a live job's failure is the job's, not the log's
    return next;
  };
  const writeGroup = (title: string, fn: () => Promise<void>) => write(() => log.group(title, fn));

  const start = (job: PoolJob<T>, live: boolean): Promise<void> => {
    const buffer = new BufferedLog();
    const run = (jobLog: Logger) => job.run(jobLog, controller.signal).then((result) => void results.set(job.name, result));
    const work = live ? writeGroup(job.title, () => run(log)) : run(buffer);
    if (!live) void write(() => log.info(`Started '${job.name}'; its log follows when it ends.`));
    return work.then(
      () => (live ? undefined : writeGroup(job.title, async () => buffer.replayTo(log))),
      (error: unknown) => {
        if (controller.signal.aborted) stopped.push(job.name);
        else {
          failure = { job: job.name, error };
          controller.abort(new OuterLoopError(`'${job.name}' failed.`));
        }
        if (!live) {
          return writeGroup(job.title, async () => {
            buffer.replayTo(log);
            if (failure?.job !== job.name) log.info(`Stopped: ${options.signal.aborted ? 'the job was cancelled' : `'${failure?.job}' failed`}.`);
          });
        }
      },
    );
  };

  try {
    for (;;) {
      // Start every job whose dependencies are done, while slots are free; none after a failure or a cancel.
      const starting: PoolJob<T>[] = [];
      for (const job of [...pending]) {
        if (controller.signal.aborted || running.size + starting.length >= maxParallel) break;
        if (job.after.every((d) => !names.has(d) || results.has(d))) {
          starting.push(job);
          pending.splice(pending.indexOf(job), 1);
        }
      }
      // A job that runs alone stays alone until it ends: what waits, waits for it or for a free slot.
      const alone = running.size === 0 && starting.length === 1;
      for (const job of starting) {
        const done = start(job, alone).finally(() => running.delete(job.name));
        running.set(job.name, done);
      }
      if (running.size === 0) break;
      await Promise.race(running.values());
    }
    await written;
  } finally {
    options.signal.removeEventListener('abort', onCancel);
  }

  if (options.signal.aborted) throw abortError(options.signal);
  if (failure) throw jobs.length > 1 ? namedFailure(failure.job, failure.error, stopped, pending.map((j) => j.name)) : failure.error;
  if (pending.length) throw new Error(`jobs ${quoted(pending.map((j) => j.name))} wait for each other; the caller must refuse dependency cycles`);
  return jobs.map((j) => results.get(j.name) as T);
}

const quoted = (names: string[]) => names.map((n) => `'${n}'`).join(', ');

/** The failed job's own error (its class kept, so the task reports it as such), saying which job it was and what was stopped. */
function namedFailure(job: string, error: unknown, stopped: string[], notStarted: string[]): Error {
  const err = error instanceof Error ? error : new OuterLoopError(String(error));
  const others = [stopped.length && `stopped ${quoted(stopped)}`, notStarted.length && `did not start ${quoted(notStarted)}`].filter(Boolean);
  err.message = `${err.message.replace(/\.?\s*$/, '')}. ('${job}' failed${others.length ? `; ${others.join('; ')}` : ''}.)`;
  return err;
}
