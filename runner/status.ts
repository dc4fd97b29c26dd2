// `container-outer-loop status --lock <file> [--host H --project P | --kubeconfig F --namespace N]
//  [--context C] [--field-manager M] [--max-restarts N] [--not-deployed NAME]…`
// The drift report of the deploy tasks' `mode: verify`, from a terminal: does this Docker host's
// compose project (or this namespace) run exactly the image lock? The lock alone says what should
// run: each of its images under its name (the compose service, or the workload converted from it);
// --not-deployed leaves out images the environment does not run (a test runner). Exit 0: no drift; 1: drift.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { connectTarget } from '../tasks/lib/compose-deploy/target';
import { InputError } from '../tasks/lib/errors';
import { KubeClient } from '../tasks/lib/kube/client';
import { parseKubeconfig } from '../tasks/lib/kube/kubeconfig';
import { readLock } from '../tasks/lib/lock/file';
import { inputDefault } from '../tasks/lib/pipeline/task-json';
import composeDeployTask from '../tasks/compose-deploy/task.json';
import kubernetesDeployTask from '../tasks/kubernetes-deploy/task.json';
import { checkDriftInputs, compareDrift, DriftReport, driftMarkdown, expectedFromLock, MAX_RESTARTS_LIMIT, RunningContainer } from '../tasks/lib/release/drift';
import { readComposeProjectForDrift } from '../tasks/lib/release/drift-compose';
import { readNamespaceForDrift } from '../tasks/lib/release/drift-kube';

export interface StatusOptions {
  lockFile: string;
  /** A Docker host (unix:// or tcp://); unset: DOCKER_HOST or the local socket. */
  host?: string;
  project?: string;
  kubeconfig?: string;
  namespace: string;
  context?: string;
  fieldManager: string;
  maxRestarts: number;
  notDeployed: string[];
}

export const STATUS_USAGE =
  'usage: container-outer-loop status --lock <file> [--host unix://…|tcp://… --project <compose project>] [--kubeconfig <file> [--namespace N] [--context C] [--field-manager M]] [--max-restarts N] [--not-deployed <lock image name>]';

export function parseStatusArgs(argv: string[]): StatusOptions {
  if (argv[0] !== 'status') throw new InputError(STATUS_USAGE);
  // Unset flags take KubernetesDeploy's task.json defaults, so status reads the namespace as the task deploys it.
  const kubeDefault = (name: string) => inputDefault(kubernetesDeployTask, name, () => undefined) as string;
  const o: Partial<StatusOptions> & { notDeployed: string[] } = { notDeployed: [], namespace: kubeDefault('namespace'), fieldManager: kubeDefault('fieldManager'), maxRestarts: Number(kubeDefault('maxRestarts')) };
  for (let i = 1; i < argv.length; i++) {
    const flag = argv[i];
    const value = argv[++i];
    if (value === undefined) throw new InputError(`${flag} needs a value.\n${STATUS_USAGE}`);
    if (flag === '--lock') o.lockFile = value;
    else if (flag === '--host') o.host = value;
    else if (flag === '--project') o.project = value;
    else if (flag === '--kubeconfig') o.kubeconfig = value;
    else if (flag === '--namespace') o.namespace = value;
    else if (flag === '--context') o.context = value;
    else if (flag === '--field-manager') o.fieldManager = value;
    else if (flag === '--not-deployed') o.notDeployed.push(value);
    else if (flag === '--max-restarts') {
      o.maxRestarts = Number(value);
      if (!/^\d+$/.test(value) || o.maxRestarts > MAX_RESTARTS_LIMIT) throw new InputError(`--max-restarts ${value}: give a whole number from 0 to ${MAX_RESTARTS_LIMIT}.`);
    } else throw new InputError(`unknown option ${flag}.\n${STATUS_USAGE}`);
  }
  if (!o.lockFile) throw new InputError(`--lock is required: the image lock PushWithDigest wrote.\n${STATUS_USAGE}`);
  if (o.kubeconfig && (o.host || o.project)) throw new InputError(`--kubeconfig reads a namespace; --host and --project read a compose project: give one of the two.\n${STATUS_USAGE}`);
  if (!o.kubeconfig && !o.project) throw new InputError(`--project is required for a Docker host: the compose project ComposeDeploy deployed (its log names it).\n${STATUS_USAGE}`);
  checkDriftInputs({ maxRestarts: o.maxRestarts as number });
  return o as StatusOptions;
}

/** Reads the environment, compares it with the lock, prints the report; returns it. */
export async function runStatus(options: StatusOptions, out: (line: string) => void = console.log): Promise<DriftReport> {
  const lock = readLock(options.lockFile);
  const unknown = options.notDeployed.filter((s) => !lock.images.some((i) => i.name === s));
  if (unknown.length) throw new InputError(`--not-deployed ${unknown.join(', ')}: the lock ${options.lockFile} has no image of that name (it has ${lock.images.map((i) => i.name).join(', ')}).`);
  const expected = expectedFromLock(lock, options.notDeployed);
  const log = { info: () => {}, warn: (m: string) => out(`warning: ${m}`), debug: () => {}, group: <T>(_t: string, fn: () => Promise<T>) => fn() };
  let where: string;
  let running: RunningContainer[];
  if (options.kubeconfig) {
    const file = path.resolve(options.kubeconfig);
    if (!fs.existsSync(file)) throw new InputError(`--kubeconfig ${options.kubeconfig}: the file does not exist.`);
    const config = parseKubeconfig(fs.readFileSync(file, 'utf8'), { source: `the kubeconfig file '${options.kubeconfig}'`, baseDir: path.dirname(file), context: options.context, setSecret: () => {} });
    const client = new KubeClient(config, { setSecret: () => {}, log });
    try {
      where = `Namespace '${options.namespace}' on ${client.describeTarget()}`;
      running = await readNamespaceForDrift(client, options.namespace, options.fieldManager);
    } finally {
      client.close();
    }
  } else {
    const engineStallSeconds = Number(inputDefault(composeDeployTask, 'engineStallSeconds', () => undefined));
    const target = await connectTarget({ type: 'local', dockerHost: options.host, engineStallSeconds, tempRoot: '', setSecret: () => {}, log });
    try {
      where = `Project '${options.project}' on ${target.description}`;
      running = await readComposeProjectForDrift(target.docker, options.project as string);
    } finally {
      await target.close();
    }
  }
  const report = compareDrift(expected, running, { maxRestarts: options.maxRestarts });
  out(driftMarkdown(report, { title: 'Drift report', where, lockName: options.lockFile, failOnDrift: true }, { maxRestarts: options.maxRestarts }).trimEnd());
  if (report.differences.length) {
    out('');
    for (const d of report.differences) out(`- ${d.message}`);
  }
  return report;
}
