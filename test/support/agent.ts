// Runs a bundled task (dist/tasks/<task>/index.js) in a child process the way the agent does:
// inputs as INPUT_* (every input of task.json, its default where a test gives none, as the agent
// and the local runner fill them in), service connections as ENDPOINT_*, variables as upper-snake environment.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { agentInputEnvironment, Connection, endpointEnvironment, envName } from '../../runner/agent-env';
import { parseLine, unescapeMessage } from '../../runner/logging';

export const DIST_TASKS = path.join(__dirname, '..', '..', 'dist', 'tasks');

export interface AgentEndpoint extends Connection {
  id: string;
}

export interface AgentRun {
  code: number | null;
  /** Everything the task printed, stdout then stderr interleaved as received. */
  output: string;
  /** The output as the agent would show it: `##vso[task.setsecret]` commands are consumed, not shown; escapes undone. */
  visible: string;
  /** Values of `##vso[task.setvariable]` commands (outputs included). */
  variables: Record<string, string>;
  result?: string;
}

/** The variables the agent sets for every task (temp folder, collection, project, build), as environment. */
export function agentEnvironment(temp: string, cwd = temp): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? temp,
    AGENT_TEMPDIRECTORY: temp,
    AGENT_VERSION: '3.248.0',
    SYSTEM_DEFAULTWORKINGDIRECTORY: cwd,
    SYSTEM_TEAMFOUNDATIONCOLLECTIONURI: 'https://dev.azure.com/outer-loop-tests/',
    SYSTEM_COLLECTIONURI: 'https://dev.azure.com/outer-loop-tests/',
    SYSTEM_TEAMPROJECT: 'shop',
    BUILD_BUILDNUMBER: '20261122.1',
    BUILD_BUILDID: '42',
    BUILD_DEFINITIONNAME: 'shop-ci',
    BUILD_SOURCEVERSION: '0123456789abcdef0123456789abcdef01234567',
    BUILD_SOURCEBRANCH: 'refs/heads/main',
    BUILD_ARTIFACTSTAGINGDIRECTORY: path.join(temp, 'staging'),
  };
}

export async function runBundledTask(
  task: string,
  options: { inputs?: Record<string, string>; variables?: Record<string, string>; endpoints?: AgentEndpoint[]; env?: Record<string, string>; cwd?: string; timeoutMs?: number },
): Promise<AgentRun> {
  const script = path.join(DIST_TASKS, task, 'index.js');
  if (!fs.existsSync(script)) throw new Error(`${script} is missing: run npm run build first.`);
  const temp = fs.mkdtempSync(path.join(os.tmpdir(), 'col-agent-'));
  const env: Record<string, string> = { ...agentEnvironment(temp, options.cwd ?? temp), ...options.env };
  for (const [name, value] of Object.entries(options.variables ?? {})) env[envName(name)] = value;
  const definition = JSON.parse(fs.readFileSync(path.join(DIST_TASKS, task, 'task.json'), 'utf8'));
  const given = agentInputEnvironment(definition, options.inputs ?? {}, (name) => env[envName(name)]);
  if (given.unknown.length) throw new Error(`${task}: ${given.unknown.join(', ')} ${given.unknown.length > 1 ? 'are not inputs' : 'is not an input'} of its task.json.`);
  Object.assign(env, given.env);
  for (const e of options.endpoints ?? []) Object.assign(env, endpointEnvironment(e.id, e));
  const child = spawn(process.execPath, [script], { env, cwd: options.cwd ?? temp, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr.on('data', (c: Buffer) => (output += c.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 300_000);
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  clearTimeout(timer);
  fs.rmSync(temp, { recursive: true, force: true });
  const variables: Record<string, string> = {};
  let result: string | undefined;
  for (const line of output.split(/\r?\n/)) {
    const parsed = parseLine(line);
    if (parsed.kind !== 'command') continue;
    const { command, properties, message } = parsed.command;
    if (command === 'task.setvariable' && properties.variable) variables[properties.variable] = message;
    else if (command === 'task.complete') result ??= properties.result;
  }
  const visible = unescapeMessage(
    output
      .split('\n')
      .filter((l) => !l.startsWith('##vso[task.setsecret]'))
      .join('\n'),
  );
  return { code, output, visible, variables, result };
}
