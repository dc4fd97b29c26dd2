// `container-outer-loop run <pipeline.yml> [--stage S]… [--var name=value]… [--secret name=value]…
//  [--connection name.key=value]… [--connections FILE] [--report FILE]`
// Runs an Azure Pipelines YAML file on this machine with this extension's bundled tasks.
// `container-outer-loop status --lock <file> …` prints the drift report of an environment (runner/status.ts).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseYaml, readTextFile, toPlain } from '../tasks/lib/util/yaml';
import type { Connection } from './agent-env';
import { PipelineRun } from './execute';
import type { RunRecord } from './run-record';
import { loadPipeline, PipelineError } from './pipeline';
import { buildReport, Report } from './report';
import { parseStatusArgs, runStatus, STATUS_USAGE } from './status';

export const REPO_ROOT = path.resolve(__dirname, '..');

export interface CliOptions {
  pipelineFile: string;
  stages: string[];
  variables: Record<string, string>;
  secretVariables: Record<string, string>;
  connectionFlags: string[];
  connectionsFile?: string;
  reportFile?: string;
}

const USAGE = `usage: container-outer-loop run <pipeline.yml> [--stage S] [--var name=value] [--secret name=value] [--connection name.key=value] [--connections FILE] [--report FILE]\n${STATUS_USAGE.replace(/^usage: /, '       ')}`;

export function parseArgs(argv: string[]): CliOptions {
  if (argv[0] !== 'run' || !argv[1]) throw new PipelineError(USAGE);
  const options: CliOptions = { pipelineFile: argv[1], stages: [], variables: {}, secretVariables: {}, connectionFlags: [] };
  for (let i = 2; i < argv.length; i++) {
    const flag = argv[i];
    const value = argv[++i];
    if (value === undefined) throw new PipelineError(`${flag} needs a value.\n${USAGE}`);
    if (flag === '--stage') options.stages.push(value);
    else if (flag === '--var' || flag === '--secret') {
      const eq = value.indexOf('=');
      if (eq <= 0) throw new PipelineError(`${flag} ${value}: write name=value.`);
      (flag === '--var' ? options.variables : options.secretVariables)[value.slice(0, eq)] = value.slice(eq + 1);
    } else if (flag === '--connection') options.connectionFlags.push(value);
    else if (flag === '--connections') options.connectionsFile = value;
    else if (flag === '--report') options.reportFile = value;
    else throw new PipelineError(`unknown option ${flag}.\n${USAGE}`);
  }
  return options;
}

/**
 * Service connections: `.outer-loop/connections.yml` (git-ignored) maps a name to
 * `{type: dockerregistry, url, username, password}`, `{type: kubernetes, kubeconfig: PATH}`,
 * `{type: ssh, host, port, username, password | privateKey}` or `{url, scheme, parameters, data}`.
 * `--connection name.key=value` sets or overrides one key.
 */
export function loadConnections(file: string | undefined, flags: string[]): Record<string, Connection> {
  const raw: Record<string, Record<string, unknown>> = {};
  if (file && fs.existsSync(file)) {
    const data = toPlain(parseYaml(readTextFile(file, 'Connections file'), `Connections file '${file}'`), file);
    if (data && typeof data === 'object') Object.assign(raw, data);
  }
  for (const flag of flags) {
    const m = /^([^.=]+)\.([^=]+)=(.*)$/s.exec(flag);
    if (!m) throw new PipelineError(`--connection ${flag}: write name.key=value, e.g. --connection my-registry.password=…`);
    (raw[m[1]] ??= {})[m[2]] = m[3];
  }
  const out: Record<string, Connection> = {};
  for (const [name, c] of Object.entries(raw)) out[name] = toConnection(name, c);
  return out;
}

function toConnection(name: string, c: Record<string, unknown>): Connection {
  const s = (k: string) => (c[k] === undefined || c[k] === null ? '' : String(c[k]));
  const record = (k: string) => Object.fromEntries(Object.entries((c[k] as Record<string, unknown>) ?? {}).map(([key, v]) => [key, String(v)]));
  switch (s('type').toLowerCase()) {
    case 'dockerregistry':
      return { url: s('url'), scheme: 'UsernamePassword', parameters: { username: s('username'), password: s('password'), registry: s('url'), email: s('email') }, data: { registrytype: 'Others' } };
    case 'kubernetes': {
      const file = s('kubeconfig').replace(/^~(?=\/)/, os.homedir());
      if (!file || !fs.existsSync(file)) throw new PipelineError(`connection '${name}': kubeconfig '${s('kubeconfig')}' does not exist.`);
      return { url: s('url'), scheme: 'Kubernetes', parameters: { kubeconfig: fs.readFileSync(file, 'utf8') }, data: { authorizationType: 'Kubeconfig' } };
    }
    case 'ssh':
      return { url: `ssh://${s('host')}:${s('port') || '22'}`, scheme: 'UsernamePassword', parameters: { username: s('username'), password: s('password') }, data: { host: s('host'), port: s('port') || '22', privateKey: s('privateKey') } };
    case '':
      return { url: s('url'), scheme: s('scheme') || 'None', parameters: record('parameters'), data: record('data') };
    default:
      throw new PipelineError(`connection '${name}': type '${s('type')}' is not known (dockerregistry, kubernetes, ssh, or give url/scheme/parameters/data).`);
  }
}

/** `yyyyMMdd.N`, N counting this day's runs in the runs folder, as Azure's default build number. */
function nextBuildNumber(runsDir: string): string {
  const now = new Date();
  const day = `${now.getFullYear()}${String(now.getMonth() + 1).padStart(2, '0')}${String(now.getDate()).padStart(2, '0')}`;
  const taken = fs.existsSync(runsDir) ? fs.readdirSync(runsDir).filter((d) => d.startsWith(`${day}.`)).map((d) => Number(d.split('.')[1]) || 0) : [];
  return `${day}.${Math.max(0, ...taken) + 1}`;
}

export async function runCli(options: CliOptions, out: (line: string) => void = console.log): Promise<{ record: RunRecord; report: Report; runDir: string }> {
  const pipeline = loadPipeline(options.pipelineFile);
  const stateDir = path.join(REPO_ROOT, '.outer-loop');
  const runsDir = path.join(stateDir, 'runs');
  const buildNumber = nextBuildNumber(runsDir);
  const runDir = path.join(runsDir, buildNumber);
  fs.mkdirSync(runDir, { recursive: true });
  const connections = loadConnections(options.connectionsFile ?? path.join(stateDir, 'connections.yml'), options.connectionFlags);
  out(`Running ${options.pipelineFile} as build ${buildNumber} (run folder ${runDir})`);
  const run = new PipelineRun({
    pipelineFile: options.pipelineFile,
    pipeline,
    stages: options.stages,
    variables: options.variables,
    secretVariables: options.secretVariables,
    connections,
    tasksDir: path.join(REPO_ROOT, 'dist', 'tasks'),
    runDir,
    buildNumber,
    out,
  });
  const record = await run.run();
  const report = buildReport(record, `${path.basename(options.pipelineFile)} ${buildNumber}`);
  const reportFile = options.reportFile ?? path.join(runDir, 'report.md');
  fs.writeFileSync(reportFile, report.markdown);
  out('');
  out(report.text);
  out(`Report: ${reportFile}`);
  return { record, report, runDir };
}

/** Runs a command line; resolves to the exit code (1: the pipeline failed, or the environment drifted). */
export async function main(argv: string[]): Promise<number> {
  if (argv[0] === 'status') return (await runStatus(parseStatusArgs(argv))).differences.length ? 1 : 0;
  const { record } = await runCli(parseArgs(argv));
  return record.result === 'Failed' ? 1 : 0;
}

if (require.main === module) {
  main(process.argv.slice(2))
    .then((code) => process.exit(code))
    .catch((err: unknown) => {
      console.error(`container-outer-loop: ${err instanceof Error ? err.message : String(err)}`);
      process.exit(2);
    });
}
