// The Compose CLI: `docker compose` (v2 plugin) when present, else `docker-compose` (v1, or a
// standalone v2), or what `dockerComposePath` names. Only the flags both versions share are used
// (`-p`, `-f`, `up -d --no-build --scale`, `run -d --name --no-deps -T`, `down -v --remove-orphans
// --timeout`); health checks, logs and result copying go through the Engine API so that both
// versions behave the same. The child gets the task's environment (DOCKER_HOST, DOCKER_TLS_VERIFY,
// DOCKER_CERT_PATH reach the same engine as the Engine API client) and its output is sanitised.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Logger } from '../context';
import { InputError, OuterLoopError } from '../errors';
import { CancelledError, TimeoutError, cancelledError } from './bounds';
import { LineSink } from './output';

export interface ComposeCli {
  /** The program to run. */
  command: string;
  /** Arguments before the compose sub-command (`compose` for the docker CLI plugin). */
  prefix: string[];
  /** `2.29.1` for the plugin; empty for a docker-compose found on PATH (not run to ask). */
  version: string;
  /** 2 for the plugin; 0 when unknown. Only flags that v1 and v2 share are used, so nothing depends on it. */
  major: number;
  /** How to show it in messages: `docker compose` or `docker-compose`. */
  display: string;
}

export class ComposeError extends OuterLoopError {}

const PROBE_TIMEOUT_MS = 20_000;
/** After SIGTERM, a compose process gets this long before SIGKILL. */
const KILL_GRACE_MS = 5_000;

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The last lines it printed (sanitised), for error messages. */
  tail: string[];
  stdout: string;
}

/** Runs a program to its end without a shell, bounded; never throws for a non-zero exit. */
export function runProgram(
  command: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string; signal?: AbortSignal; deadline?: number; onLine?: (line: string) => void; timeoutMessage?: () => string },
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    if (options.signal?.aborted) return reject(cancelledError(options.signal));
    let settled = false;
    let stdout = '';
    const sink = new LineSink((l) => options.onLine?.(l), '', 60);
    const child = spawn(command, args, { env: options.env ?? process.env, cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe'], windowsHide: true });
    let stopReason: Error | undefined;
    let killTimer: NodeJS.Timeout | undefined;
    const stop = (reason: Error) => {
      if (stopReason) return;
      stopReason = reason;
      child.kill('SIGTERM');
      killTimer = setTimeout(() => child.kill('SIGKILL'), KILL_GRACE_MS);
      killTimer.unref();
    };
    const onAbort = () => stop(cancelledError(options.signal!));
    options.signal?.addEventListener('abort', onAbort, { once: true });
    const deadlineTimer =
      options.deadline !== undefined
        ? setTimeout(() => stop(new TimeoutError(options.timeoutMessage?.() ?? `${path.basename(command)} ${args.join(' ')} did not finish in time.`)), Math.max(0, options.deadline - Date.now()))
        : undefined;
    child.stdout.on('data', (c: Buffer) => {
      if (stdout.length < 1024 * 1024) stdout += c.toString('utf8');
      sink.write(c);
    });
    child.stderr.on('data', (c: Buffer) => sink.write(c));
    const finish = (err: Error | undefined, code: number | null, signal: NodeJS.Signals | null) => {
      if (settled) return;
      settled = true;
      sink.end();
      if (deadlineTimer) clearTimeout(deadlineTimer);
      if (killTimer) clearTimeout(killTimer);
      options.signal?.removeEventListener('abort', onAbort);
      if (err) reject(err);
      else if (stopReason) reject(stopReason);
      else resolve({ code, signal, tail: sink.tail, stdout });
    };
    child.on('error', (err) => finish(err, null, null));
    child.on('close', (code, signal) => finish(undefined, code, signal));
  });
}

/**
 * Finds the Compose CLI: `dockerComposePath`, else `docker compose` (the plugin answers
 * `version` in a few milliseconds), else `docker-compose` on PATH. docker-compose is found on
 * PATH without running it: v1 is Python and takes ~0.4 s to start, a tenth of a typical test run.
 */
export async function findCompose(options: { path?: string; env?: NodeJS.ProcessEnv; signal?: AbortSignal } = {}): Promise<ComposeCli> {
  const env = options.env ?? process.env;
  const probe = async (command: string, prefix: string[]): Promise<ComposeCli | undefined> => {
    let run: RunResult;
    try {
      run = await runProgram(command, [...prefix, 'version', '--short'], { env, signal: options.signal, deadline: Date.now() + PROBE_TIMEOUT_MS });
    } catch (err) {
      if (err instanceof CancelledError) throw err;
      return undefined; // not installed (ENOENT), or hung
    }
    const m = /(\d+)\.(\d+)(?:\.(\d+))?/.exec(run.stdout);
    if (run.code !== 0 || !m) return undefined;
    return { command, prefix, version: m[0], major: Number(m[1]), display: [path.basename(command), ...prefix].join(' ') };
  };
  const standalone = (command: string): ComposeCli => ({ command, prefix: [], version: '', major: 0, display: path.basename(command) });
  if (options.path) {
    const base = path.basename(options.path).toLowerCase().replace(/\.exe$/, '');
    if (base === 'docker') {
      const found = await probe(options.path, ['compose']);
      if (!found) throw new InputError(`Input 'dockerComposePath': '${options.path}' did not answer 'compose version --short': that docker CLI has no compose plugin. Give the path of docker-compose, or of a docker CLI with the plugin.`);
      return found;
    }
    if (!isExecutable(options.path)) throw new InputError(`Input 'dockerComposePath': '${options.path}' is not an executable file. Give the path of docker-compose, or of a docker CLI with the compose plugin.`);
    return standalone(options.path);
  }
  const plugin = await probe('docker', ['compose']);
  if (plugin) return plugin;
  const onPath = findOnPath(process.platform === 'win32' ? 'docker-compose.exe' : 'docker-compose', env.PATH ?? '');
  if (onPath) return standalone(onPath);
  throw new InputError("Input 'dockerComposePath': neither 'docker compose' (v2) nor 'docker-compose' (v1) was found on the agent's PATH. Install Docker Compose, or set dockerComposePath.");
}

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

function findOnPath(name: string, searchPath: string): string | undefined {
  for (const dir of searchPath.split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
}

/** A compose project: the CLI, the project name and the files (user files, then the override). */
export interface ComposeProject {
  cli: ComposeCli;
  name: string;
  files: string[];
  projectDir: string;
  env: NodeJS.ProcessEnv;
}

/** The arguments for one compose sub-command of `project`. */
export function composeArgs(project: Pick<ComposeProject, 'cli' | 'name' | 'files' | 'projectDir'>, args: string[]): string[] {
  return [...project.cli.prefix, '-p', project.name, '--project-directory', project.projectDir, ...project.files.flatMap((f) => ['-f', f]), ...args];
}

/** Runs `compose <args>` for the project, printing its output through `log`; throws ComposeError on a non-zero exit. */
export async function compose(
  project: ComposeProject,
  args: string[],
  options: { log: Logger; signal?: AbortSignal; deadline?: number; what: string; quiet?: boolean; timeoutMessage?: () => string },
): Promise<RunResult> {
  const lines: string[] = [];
  const run = await runProgram(project.cli.command, composeArgs(project, args), {
    env: project.env,
    cwd: project.projectDir,
    signal: options.signal,
    deadline: options.deadline,
    timeoutMessage: options.timeoutMessage,
    onLine: (l) => (options.quiet ? options.log.debug(l) : options.log.info(l), lines.push(l)),
  });
  if (run.code !== 0) {
    throw new ComposeError(`${options.what} failed: ${project.cli.display} ${args[0]} exited with ${run.signal ?? `code ${run.code}`}.${run.tail.length ? `\n${run.tail.slice(-15).join('\n')}` : ''}`);
  }
  return run;
}
