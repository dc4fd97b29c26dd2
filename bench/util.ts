// Small helpers shared by the benchmarks: statistics, timing child processes, formatting, prerequisites.
import { spawn, type SpawnOptions } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { inputEnvName } from '../runner/agent-env';

export interface Summary {
  runs: number;
  medianMs: number;
  minMs: number;
  maxMs: number;
  meanMs: number;
}

export function round(value: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

export function summarize(samplesMs: number[]): Summary {
  return {
    runs: samplesMs.length,
    medianMs: round(median(samplesMs)),
    minMs: round(Math.min(...samplesMs)),
    maxMs: round(Math.max(...samplesMs)),
    meanMs: round(samplesMs.reduce((a, b) => a + b, 0) / samplesMs.length),
  };
}

/** Milliseconds since `start` (a process.hrtime.bigint() value). */
export function since(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e6;
}

export async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const start = process.hrtime.bigint();
  const value = await fn();
  return { value, ms: since(start) };
}

export interface ChildRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** From just before spawn() to the child's 'exit' event. */
  ms: number;
  stdout: string;
  stderr: string;
}

/** Runs a command (no shell) and measures spawn → exit with process.hrtime. */
export function runTimed(command: string, args: string[], options: SpawnOptions & { timeoutMs?: number } = {}): Promise<ChildRun> {
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint();
    const child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let ms = 0;
    let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    child.stdout!.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('exit', (code, signal) => {
      ms = since(start);
      exit = { code, signal };
    });
    child.on('close', () => {
      clearTimeout(timer);
      resolve({ code: exit?.code ?? null, signal: exit?.signal ?? null, ms, stdout, stderr });
    });
  });
}

export function formatBytes(bytes: number): string {
  if (bytes >= 1e6) return `${round(bytes / 1e6, 2)} MB`;
  if (bytes >= 1e3) return `${round(bytes / 1e3, 1)} KB`;
  return `${bytes} B`;
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Runs `fn` over `items` with at most `limit` in flight; results in input order. */
export async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

export function progress(message: string): void {
  process.stderr.write(`bench: ${message}\n`);
}

/** A prerequisite the benchmark cannot do without: the run fails with this message. */
export class MissingPrerequisiteError extends Error {
  override name = 'MissingPrerequisiteError';
}

/** A Docker engine (test/support's: DOCKER_HOST's, else a private dockerd); MissingPrerequisiteError without one. */
export async function startBenchEngine() {
  const { startEngine } = await import('../test/support/engine');
  try {
    return await startEngine();
  } catch (err) {
    throw new MissingPrerequisiteError(`No Docker engine (install the Debian package docker.io, or set DOCKER_HOST): ${errorMessage(err)}`);
  }
}

/**
 * The environment of a bundled task run as the agent runs it, with the bare minimum of agent
 * variables: PATH, HOME and AGENT_TEMPDIRECTORY (`agentTemp`), DOCKER_HOST, `variables` as given,
 * and `inputs` as INPUT_*.
 */
export function agentTaskEnv(agentTemp: string, dockerHost: string, inputs: Record<string, string>, variables: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: agentTemp, AGENT_TEMPDIRECTORY: agentTemp, ...variables, DOCKER_HOST: dockerHost };
  for (const [name, value] of Object.entries(inputs)) env[inputEnvName(name)] = value;
  return env;
}

/** Runs a bundled task (agentTaskEnv, a fresh agent folder under `temp`), timed; throws unless it reports Succeeded. */
export async function runTaskTimed(
  taskScript: string,
  o: { temp: string; dockerHost: string; inputs: Record<string, string>; variables?: Record<string, string> },
): Promise<ChildRun> {
  const agentTemp = fs.mkdtempSync(path.join(o.temp, 'agent-'));
  const r = await runTimed(process.execPath, [taskScript], { cwd: agentTemp, timeoutMs: 180_000, env: agentTaskEnv(agentTemp, o.dockerHost, o.inputs, o.variables) });
  if (!/##vso\[task\.complete result=Succeeded;/.test(r.stdout)) {
    throw new Error(`the task did not succeed:\n${r.stdout.split('\n').filter((l) => !l.startsWith('##vso[task.debug')).slice(-30).join('\n')}`);
  }
  return r;
}

/** The stack's Compose command line (`docker compose` on current, `docker-compose` on legacy) and its version. */
export async function requireCompose(): Promise<{ compose: string[]; composeVersion: string }> {
  const { stackComposeCommand } = await import('../test/support/stack');
  const compose = stackComposeCommand();
  const version = await runTimed(compose[0], [...compose.slice(1), 'version', '--short']).catch(() => undefined);
  if (!version || version.code !== 0) throw new MissingPrerequisiteError(`${compose.join(' ')} is not installed (Debian package docker-compose; Compose v2 from node scripts/test-tools.mjs).`);
  return { compose, composeVersion: `${compose.join(' ')} ${version.stdout.trim()}` };
}

/** The bundled task and the stack's Compose (requireCompose), for the runs by hand. */
export async function requireComposeTask(task: string): Promise<{ taskScript: string; compose: string[]; composeVersion: string }> {
  const taskScript = path.join(__dirname, '..', 'dist', 'tasks', task, 'index.js');
  if (!fs.existsSync(taskScript)) throw new MissingPrerequisiteError(`${taskScript} is missing: run npm run build.`);
  return { taskScript, ...(await requireCompose()) };
}

/** Bundles a bench script as scripts/bundle.mjs bundles the tasks (minified CommonJS for node20), to run in fresh node processes. */
export async function bundleLikeTasks(entry: string, outfile: string): Promise<void> {
  const esbuild = await import('esbuild');
  await esbuild.build({ entryPoints: [entry], outfile, bundle: true, platform: 'node', target: 'node20', format: 'cjs', minify: true, keepNames: true, logLevel: 'silent', external: ['cpu-features', '*.node'] });
}

export interface VersusCompose {
  /** The Compose command timed, e.g. `docker-compose config` (Compose v2.x). */
  composeCommand: string;
  runs: number;
  /** `node script.js`: the whole process, spawn to exit (node start-up and module loading included). */
  ours: Summary;
  /** The part of it inside the script (what it prints: milliseconds from its first line to its last). */
  oursInProcess: Summary;
  /** `docker-compose -f … config` on the same files, spawn to exit. */
  compose: Summary;
  /** ours.medianMs / compose.medianMs. */
  ratio: number;
  ratioTarget: number;
  meetsTarget: boolean;
}

export const VERSUS_COMPOSE_TARGET = 1.0;

/**
 * Times a bundled script in fresh node processes against Compose v2's `config` on the same files,
 * whole processes both, alternating (one warm-up of each first) so that the load of a shared
 * machine falls on both sides alike. The script prints its in-process milliseconds on stdout.
 */
export async function versusComposeConfig(script: string, files: string[], cwd: string, runs = 7): Promise<VersusCompose> {
  const { composeV2Binary } = await import('../test/support/stack');
  const compose = await composeV2Binary();
  const version = (await runTimed(compose, ['version', '--short'])).stdout.trim();
  const env = { PATH: process.env.PATH, HOME: process.env.HOME };
  const runOurs = async () => {
    const r = await runTimed(process.execPath, [script], { cwd, env, timeoutMs: 120_000 });
    if (r.code !== 0) throw new Error(`node ${path.basename(script)} failed: ${r.stderr.slice(-600)}`);
    return { ms: r.ms, inProcessMs: Number(r.stdout.trim().split('\n').pop()) };
  };
  const runCompose = async () => {
    const r = await runTimed(compose, [...files.flatMap((f) => ['-f', f]), 'config'], { cwd, env, timeoutMs: 120_000 });
    if (r.code !== 0) throw new Error(`docker-compose config failed: ${r.stderr.slice(-600)}`);
    return r.ms;
  };
  await runOurs();
  await runCompose();
  const ours: number[] = [];
  const inProcess: number[] = [];
  const theirs: number[] = [];
  for (let i = 0; i < runs; i++) {
    const o = await runOurs();
    ours.push(o.ms);
    inProcess.push(o.inProcessMs);
    theirs.push(await runCompose());
  }
  const oursSummary = summarize(ours);
  const composeSummary = summarize(theirs);
  const ratio = round(oursSummary.medianMs / composeSummary.medianMs, 2);
  return {
    composeCommand: `docker-compose config (Compose ${version})`,
    runs,
    ours: oursSummary,
    oursInProcess: summarize(inProcess),
    compose: composeSummary,
    ratio,
    ratioTarget: VERSUS_COMPOSE_TARGET,
    meetsTarget: ratio <= VERSUS_COMPOSE_TARGET,
  };
}

/** Table lines for a VersusCompose figure. */
export function versusComposeLines(what: string, v: VersusCompose): string[] {
  return [
    `  ${what}, fresh process (node bundle.js, whole process): median ${v.ours.medianMs} ms (min ${v.ours.minMs}, max ${v.ours.maxMs}); in the process ${v.oursInProcess.medianMs} ms`,
    `  ${v.composeCommand} on the same files:                median ${v.compose.medianMs} ms (min ${v.compose.minMs}, max ${v.compose.maxMs})`,
    `  ratio ${v.ratio}× (target ≤ ${v.ratioTarget}×; ${v.runs} runs of each, alternating)  ${v.meetsTarget ? 'ok' : 'MISSED'}`,
  ];
}
