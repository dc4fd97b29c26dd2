// Running a program without a shell, for the Compose CLI, docker credential helpers and kubeconfig
// exec plugins: bounded by a deadline and the job's cancellation (SIGTERM, then SIGKILL), with
// optional stdin; stdout and stderr kept (bounded), every output line sanitised (LineSink) to
// `onLine`, and the last lines kept for error messages.
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { LineSink } from '../context';
import { TimeoutError } from '../errors';
import { abortError } from './abort';

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The last lines it printed, stdout and stderr (sanitised), for error messages. */
  tail: string[];
  stdout: string;
  stderr: string;
}

/** After SIGTERM, a program gets this long before SIGKILL. */
const KILL_GRACE_MS = 5_000;
const TAIL_LINES = 60;
const MAX_CAPTURE = 1024 * 1024;

/**
 * Runs a program to its end without a shell, bounded by `deadline` (epoch ms; rejects with
 * TimeoutError) and `signal` (rejects with abortError(signal)), the process killed in both cases.
 * Rejects when it cannot start (`code` ENOENT: not installed); never for a non-zero exit.
 */
export function runProgram(
  command: string,
  args: string[],
  options: {
    env?: NodeJS.ProcessEnv;
    cwd?: string;
    /** Written to stdin (then closed); without it stdin is /dev/null. */
    input?: string;
    signal?: AbortSignal;
    deadline?: number;
    onLine?: (line: string) => void;
    timeoutMessage?: () => string;
  },
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    if (options.signal?.aborted) return reject(abortError(options.signal));
    let settled = false;
    let stdout = '';
    let stderr = '';
    const sink = new LineSink((l) => options.onLine?.(l), '', TAIL_LINES);
    const child = spawn(command, args, { env: options.env ?? process.env, cwd: options.cwd, stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'], windowsHide: true });
    let stopReason: Error | undefined;
    let killTimer: NodeJS.Timeout | undefined;
    const stop = (reason: Error) => {
      if (stopReason) return;
      stopReason = reason;
      child.kill('SIGTERM');
      killTimer = setTimeout(() => child.kill('SIGKILL'), KILL_GRACE_MS);
      killTimer.unref();
    };
    const onAbort = () => stop(abortError(options.signal!));
    options.signal?.addEventListener('abort', onAbort, { once: true });
    const deadlineTimer =
      options.deadline !== undefined
        ? setTimeout(() => stop(new TimeoutError(options.timeoutMessage?.() ?? `${path.basename(command)} ${args.join(' ')} did not finish in time.`)), Math.max(0, options.deadline - Date.now()))
        : undefined;
    child.stdout!.on('data', (c: Buffer) => {
      if (stdout.length < MAX_CAPTURE) stdout += c.toString('utf8');
      sink.write(c);
    });
    child.stderr!.on('data', (c: Buffer) => {
      if (stderr.length < MAX_CAPTURE) stderr += c.toString('utf8');
      sink.write(c);
    });
    if (child.stdin) {
      child.stdin.on('error', () => undefined); // a program that does not read its input
      child.stdin.end(options.input);
    }
    const finish = (err: Error | undefined, code: number | null, signal: NodeJS.Signals | null) => {
      if (settled) return;
      settled = true;
      sink.end();
      if (deadlineTimer) clearTimeout(deadlineTimer);
      if (killTimer) clearTimeout(killTimer);
      options.signal?.removeEventListener('abort', onAbort);
      if (err) reject(err);
      else if (stopReason) reject(stopReason);
      else resolve({ code, signal, tail: sink.tail, stdout, stderr });
    };
    child.on('error', (err) => finish(err, null, null));
    child.on('close', (code, signal) => finish(undefined, code, signal));
  });
}
