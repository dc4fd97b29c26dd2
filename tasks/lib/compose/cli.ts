// The Compose CLI, for ContainerizedTest and ComposeDeploy: `docker compose` (v2 plugin) when the
// docker CLI has it, else `docker-compose` (v1.29, or a standalone v2), or what `dockerComposePath`
// names. Only flags both majors understand are used (`-p`, `-f`, `--project-directory`, `up -d
// --no-build`, `up --no-start --no-deps --no-build`, `down -v --remove-orphans --timeout`), plus `--pull
// never` on v2's `up` when the major is known (v1 never pulls on `up` once the image is there).
// Health checks, logs and result copying go through the Engine API so that both versions behave
// the same. The child runs without a shell, bounded by a deadline and the job's cancellation, with
// the environment it is given (ComposeDeploy's composeEnvironment: a clean one); its output is
// sanitised and bounded (LineSink).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CancelledError, InputError, OuterLoopError } from '../errors';
import { RunResult, runProgram } from '../util/process';

export interface ComposeCli {
  /** The program to run. */
  command: string;
  /** Arguments before the compose sub-command (`compose` for the docker CLI plugin). */
  prefix: string[];
  /** `2.29.1`; empty for a docker-compose that was found but not run to ask (see findCompose). */
  version: string;
  /** 2 for the plugin; 0 when unknown. */
  major: number;
  /** How to show it in messages: `docker compose` or `docker-compose`. */
  display: string;
}

/** How long `version --short` may take. */
const PROBE_TIMEOUT_MS = 20_000;

/** A compose command failed; `tail` holds the last lines it printed (sanitised). */
export class ComposeError extends OuterLoopError {
  readonly tail: string[];
  constructor(message: string, tail: string[] = []) {
    super(message);
    this.tail = tail;
  }
}

/**
 * Finds the Compose CLI: `dockerComposePath`, else `docker compose` (the plugin answers `version`
 * in a few milliseconds), else `docker-compose` on PATH. By default docker-compose is found on PATH
 * without running it: v1 is Python and takes ~0.4 s to start, a tenth of a typical test run.
 * `askVersion` runs it too (alongside the plugin's probe), for callers whose flags depend on the
 * major (`--pull never`): a docker-compose on PATH may be a standalone v2.
 */
export async function findCompose(options: { path?: string; env?: NodeJS.ProcessEnv; signal?: AbortSignal; askVersion?: boolean } = {}): Promise<ComposeCli> {
  const env = options.env ?? process.env;
  const probe = async (command: string, prefix: string[], signal = options.signal): Promise<ComposeCli | undefined> => {
    let run: RunResult;
    try {
      run = await runProgram(command, [...prefix, 'version', '--short'], { env, signal, deadline: Date.now() + PROBE_TIMEOUT_MS });
    } catch (err) {
      if (err instanceof CancelledError && options.signal?.aborted) throw err;
      return undefined; // not installed (ENOENT), hung, or no longer needed
    }
    const m = /(\d+)\.(\d+)(?:\.(\d+))?/.exec(run.stdout);
    if (run.code !== 0 || !m) return undefined;
    return { command, prefix, version: m[0], major: Number(m[1]), display: [path.basename(command), ...prefix].join(' ') };
  };
  const notRun = (command: string): ComposeCli => ({ command, prefix: [], version: '', major: 0, display: path.basename(command) });
  if (options.path) {
    const base = path.basename(options.path).toLowerCase().replace(/\.exe$/, '');
    if (base === 'docker') {
      const found = await probe(options.path, ['compose']);
      if (!found) throw new InputError(`Input 'dockerComposePath': '${options.path}' did not answer 'compose version --short': that docker CLI has no compose plugin. Give the path of docker-compose, or of a docker CLI with the plugin.`);
      return found;
    }
    if (!isExecutable(options.path)) throw new InputError(`Input 'dockerComposePath': '${options.path}' is not an executable file. Give the path of docker-compose, or of a docker CLI with the compose plugin.`);
    if (!options.askVersion) return notRun(options.path);
    const found = await probe(options.path, []);
    if (!found) throw new InputError(`Input 'dockerComposePath': '${options.path}' did not answer 'version --short'. Give the path of docker-compose, or of a docker CLI with the compose plugin.`);
    return found;
  }
  const onPath = findOnPath(process.platform === 'win32' ? 'docker-compose.exe' : 'docker-compose', env.PATH ?? '');
  // With askVersion both probes start at once; v2 wins, and once it answers docker-compose's probe
  // (a Python start-up of ~0.5 s for v1) is stopped rather than awaited.
  const standalone = new AbortController();
  const onCancel = () => standalone.abort();
  options.signal?.addEventListener('abort', onCancel, { once: true });
  const asking = options.askVersion && onPath ? probe(onPath, [], standalone.signal) : undefined;
  let found: ComposeCli | undefined;
  try {
    found = await probe('docker', ['compose']);
    if (found) standalone.abort();
    const asked = await asking; // at once when aborted: the probe is killed
    found ??= onPath && !options.askVersion ? notRun(onPath) : asked;
  } finally {
    options.signal?.removeEventListener('abort', onCancel);
  }
  if (found) return found;
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

/** Compose v2 project names: lower case letters, digits, `-` and `_`, starting with a letter or digit. */
export function normaliseProjectName(text: string): string {
  return text
    .toLowerCase()
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '') // accents go: é → e
    .replace(/[^a-z0-9_-]+/g, '-')
    .replace(/-{2,}/g, '-')
    .replace(/^[^a-z0-9]+/, '')
    .replace(/[-_]+$/, '')
    .slice(0, 63)
    .replace(/[-_]+$/, '');
}

/** A compose project: the CLI, the project name and the files (user files, then any override). */
export interface ComposeProject {
  cli: ComposeCli;
  name: string;
  files: string[];
  projectDir: string;
  env: NodeJS.ProcessEnv;
  /** Global flags before the project's (`--ansi never`). */
  flags?: string[];
}

/** The arguments for one compose sub-command of `project`. */
export function composeArgs(project: Pick<ComposeProject, 'cli' | 'name' | 'files' | 'projectDir' | 'flags'>, args: string[]): string[] {
  return [...project.cli.prefix, ...(project.flags ?? []), '-p', project.name, '--project-directory', project.projectDir, ...project.files.flatMap((f) => ['-f', f]), ...args];
}

/** Runs `compose <args>` for the project, each output line to `onLine`; throws ComposeError (with the output's tail) on a non-zero exit. */
export async function compose(
  project: ComposeProject,
  args: string[],
  options: { onLine: (line: string) => void; signal?: AbortSignal; deadline?: number; what?: string; timeoutMessage?: () => string },
): Promise<RunResult> {
  const run = await runProgram(project.cli.command, composeArgs(project, args), {
    env: project.env,
    cwd: project.projectDir,
    signal: options.signal,
    deadline: options.deadline,
    timeoutMessage: options.timeoutMessage,
    onLine: options.onLine,
  });
  if (run.code !== 0) {
    const tail = run.tail.slice(-15);
    throw new ComposeError(`${options.what ? `${options.what} failed: ` : ''}${project.cli.display} ${args[0]} exited with ${run.signal ?? `code ${run.code}`}${tail.length ? `:\n${tail.join('\n')}` : '.'}`, run.tail);
  }
  return run;
}

/** The environment Compose runs with for a deployment: nothing of the agent's but PATH and the like, an empty docker config, the target. */
export function composeEnvironment(target: Record<string, string>, dockerConfigDir: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const key of ['PATH', 'SYSTEMROOT', 'TMPDIR', 'TEMP', 'TMP', 'LANG', 'LC_ALL', 'http_proxy', 'https_proxy', 'no_proxy', 'HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY']) {
    if (process.env[key] !== undefined) env[key] = process.env[key];
  }
  // The agent's ~/.docker would give Compose its credentials and its contexts; an empty folder gives
  // neither. No COMPOSE_* variable of the agent (COMPOSE_FILE, COMPOSE_PROJECT_NAME, COMPOSE_PROFILES
  // would change what is deployed).
  env.DOCKER_CONFIG = dockerConfigDir;
  env.HOME = dockerConfigDir;
  Object.assign(env, target);
  return env;
}

/** What a `compose up` that ran out of time is told as. */
export function upTimeoutMessage(cli: ComposeCli, timeoutMs: number): string {
  return `${cli.display} up did not finish within ${Math.round(timeoutMs / 1000)} s.`;
}

/** `up -d` of a rendered file for a project (`--pull never` on v2); throws ComposeError with the output's tail on failure. */
export async function composeUp(
  cli: ComposeCli,
  options: { project: string; file: string; projectDir: string; env: NodeJS.ProcessEnv; removeOrphans: boolean; timeoutMs: number; signal?: AbortSignal; onLine: (line: string) => void },
): Promise<void> {
  const args = ['up', '-d', '--no-build'];
  if (cli.major >= 2) args.push('--pull', 'never');
  if (options.removeOrphans) args.push('--remove-orphans');
  await compose({ cli, name: options.project, files: [options.file], projectDir: options.projectDir, env: options.env, flags: ['--ansi', 'never'] }, args, {
    onLine: options.onLine,
    signal: options.signal,
    deadline: Date.now() + options.timeoutMs,
    timeoutMessage: () => upTimeoutMessage(cli, options.timeoutMs),
  });
}
