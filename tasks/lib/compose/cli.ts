// The Compose CLI for deployments: `docker compose` (v2 plugin) when the docker CLI has it, else
// `docker-compose` (v1.29, or a standalone v2), or what `dockerComposePath` names. Only flags both
// majors understand are used, plus `--pull never` for v2 (v1 never pulls on `up` once the image is
// there, and the task pulls every image before). The child gets a clean environment: PATH, the
// target's DOCKER_HOST/DOCKER_TLS_VERIFY/DOCKER_CERT_PATH, DOCKER_CONFIG pointing at an empty
// private folder (so no credential of the agent user is read or written, and none reaches the
// target), and no COMPOSE_* variable of the agent (COMPOSE_FILE, COMPOSE_PROJECT_NAME,
// COMPOSE_PROFILES would change what is deployed). Its output is sanitised and bounded.
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { sanitizeOutput } from '../context';
import { InputError, OuterLoopError } from '../errors';

export interface ComposeCommand {
  command: string;
  /** Arguments before the compose sub-command (`compose` for the docker CLI plugin). */
  prefix: string[];
  version: string;
  major: number;
  /** `docker compose` or `docker-compose`, for messages. */
  display: string;
}

export class ComposeCliError extends OuterLoopError {
  readonly tail: string[];
  constructor(message: string, tail: string[] = []) {
    super(message);
    this.tail = tail;
  }
}

export interface RunOutput {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  /** The last lines of stdout and stderr (sanitised). */
  tail: string[];
}

const PROBE_TIMEOUT_MS = 20_000;
const KILL_GRACE_MS = 5_000;
const TAIL_LINES = 40;
const MAX_LINE = 8 * 1024;

/** Runs a program without a shell, bounded by `timeoutMs` and `signal`; never throws for a non-zero exit. */
export function runProgram(
  command: string,
  args: string[],
  options: { env: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number; signal?: AbortSignal; onLine?: (line: string) => void },
): Promise<RunOutput> {
  return new Promise((resolve, reject) => {
    if (options.signal?.aborted) return reject(new OuterLoopError(`${path.basename(command)} was not started: the job was cancelled.`));
    const child = spawn(command, args, { env: options.env, cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe'], windowsHide: true });
    let stdout = '';
    const tail: string[] = [];
    const partial = { out: '', err: '' };
    let stopped: string | undefined;
    let killTimer: NodeJS.Timeout | undefined;
    const emit = (line: string) => {
      const clean = sanitizeOutput(line.length > MAX_LINE ? `${line.slice(0, MAX_LINE)}…` : line).replace(/\x1b\[[0-9;]*[A-Za-z]/g, '');
      if (!clean.trim()) return;
      tail.push(clean);
      if (tail.length > TAIL_LINES) tail.shift();
      options.onLine?.(clean);
    };
    const feed = (which: 'out' | 'err', chunk: Buffer) => {
      const text = partial[which] + chunk.toString('utf8');
      const lines = text.split(/\r?\n|\r/);
      partial[which] = lines.pop() ?? '';
      lines.forEach(emit);
    };
    const stop = (why: string) => {
      if (stopped) return;
      stopped = why;
      child.kill('SIGTERM');
      killTimer = setTimeout(() => child.kill('SIGKILL'), KILL_GRACE_MS);
      killTimer.unref();
    };
    const timer = options.timeoutMs ? setTimeout(() => stop(`did not finish within ${Math.round(options.timeoutMs! / 1000)} s`), options.timeoutMs) : undefined;
    const onAbort = () => stop('was cancelled');
    options.signal?.addEventListener('abort', onAbort, { once: true });
    child.stdout.on('data', (c: Buffer) => {
      if (stdout.length < 1024 * 1024) stdout += c.toString('utf8');
      feed('out', c);
    });
    child.stderr.on('data', (c: Buffer) => feed('err', c));
    let settled = false;
    const finish = (err: Error | undefined, code: number | null, sig: NodeJS.Signals | null) => {
      if (settled) return;
      settled = true;
      if (partial.out) emit(partial.out);
      if (partial.err) emit(partial.err);
      if (timer) clearTimeout(timer);
      if (killTimer) clearTimeout(killTimer);
      options.signal?.removeEventListener('abort', onAbort);
      if (err) reject(err);
      else if (stopped) reject(new ComposeCliError(`${path.basename(command)} ${args.filter((a) => !a.startsWith('-')).slice(-2).join(' ')} ${stopped}.`, tail));
      else resolve({ code, signal: sig, stdout, tail });
    };
    child.on('error', (err) => finish(err, null, null));
    child.on('close', (code, sig) => finish(undefined, code, sig));
  });
}

/** The environment Compose runs with: nothing of the agent's but PATH, HOME-free docker config, the target. */
export function composeEnvironment(target: Record<string, string>, dockerConfigDir: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const key of ['PATH', 'SYSTEMROOT', 'TMPDIR', 'TEMP', 'TMP', 'LANG', 'LC_ALL', 'http_proxy', 'https_proxy', 'no_proxy', 'HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY']) {
    if (process.env[key] !== undefined) env[key] = process.env[key];
  }
  // The agent's ~/.docker would give Compose its credentials and its contexts; an empty folder gives neither.
  env.DOCKER_CONFIG = dockerConfigDir;
  env.HOME = dockerConfigDir;
  Object.assign(env, target);
  return env;
}

/** Finds the Compose CLI. */
export async function findComposeCommand(options: { path?: string; env: NodeJS.ProcessEnv; signal?: AbortSignal }): Promise<ComposeCommand> {
  const probe = async (command: string, prefix: string[]): Promise<ComposeCommand | undefined> => {
    let run: RunOutput;
    try {
      run = await runProgram(command, [...prefix, 'version', '--short'], { env: options.env, signal: options.signal, timeoutMs: PROBE_TIMEOUT_MS });
    } catch {
      return undefined;
    }
    const m = /(\d+)\.(\d+)(?:\.(\d+))?/.exec(run.stdout);
    if (run.code !== 0 || !m) return undefined;
    return { command, prefix, version: m[0].replace(/^v/, ''), major: Number(m[1]), display: [path.basename(command), ...prefix].join(' ') };
  };
  if (options.path) {
    const base = path.basename(options.path).toLowerCase().replace(/\.exe$/, '');
    const found = await probe(options.path, base === 'docker' ? ['compose'] : []);
    if (!found) throw new InputError(`Input 'dockerComposePath': '${options.path}' did not answer '${base === 'docker' ? 'compose ' : ''}version --short'. Give the path of docker-compose, or of a docker CLI with the compose plugin.`);
    return found;
  }
  // Both at once (v1's probe is a Python start-up); v2 wins when both answer.
  const [v2, standalone] = await Promise.all([probe('docker', ['compose']), probe('docker-compose', [])]);
  const found = v2 ?? standalone;
  if (!found) throw new InputError("Input 'dockerComposePath': neither 'docker compose' (v2) nor 'docker-compose' (v1) is on the agent's PATH. Install Docker Compose, or set dockerComposePath.");
  return found;
}

/** `up -d` of a rendered file for a project; throws ComposeCliError with the output's tail on failure. */
export async function composeUp(
  cli: ComposeCommand,
  options: { project: string; file: string; projectDir: string; env: NodeJS.ProcessEnv; removeOrphans: boolean; timeoutMs: number; signal?: AbortSignal; onLine: (line: string) => void },
): Promise<void> {
  const args = [...cli.prefix, '--ansi', 'never', '-p', options.project, '--project-directory', options.projectDir, '-f', options.file, 'up', '-d', '--no-build'];
  if (cli.major >= 2) args.push('--pull', 'never');
  if (options.removeOrphans) args.push('--remove-orphans');
  const run = await runProgram(cli.command, args, { env: options.env, cwd: options.projectDir, timeoutMs: options.timeoutMs, signal: options.signal, onLine: options.onLine });
  if (run.code !== 0) {
    throw new ComposeCliError(`${cli.display} up exited with ${run.signal ?? `code ${run.code}`}:\n${run.tail.slice(-15).join('\n')}`, run.tail);
  }
}
