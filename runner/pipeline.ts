// An Azure Pipelines YAML file as the local runner understands it: stages → jobs → steps, in any
// of the three shapes (steps only, jobs only, stages), with deployment jobs (`strategy: runOnce`).
// What cannot run locally (templates, variable groups, other repositories) is refused by name.
import { artifactNameProblem } from '../tasks/lib/artifact-name';
import { isObject } from '../tasks/lib/util/object';
import { parseYaml, readTextFile, toPlain } from '../tasks/lib/util/yaml';

export class PipelineError extends Error {}

export interface Step {
  kind: 'task' | 'script' | 'checkout' | 'download' | 'publish';
  displayName: string;
  /** `name:`: the prefix of the step's output variables. */
  name?: string;
  condition?: string;
  continueOnError: boolean;
  enabled: boolean;
  env: Record<string, string>;
  task?: { name: string; major: number };
  inputs: Record<string, string>;
  script?: string;
  workingDirectory?: string;
  /** download/publish: the artifact name, and publish's path. */
  artifact?: string;
  path?: string;
}

/** What a stage and a job both have, as nodes of their dependsOn graph: a name, what it waits for, its condition and its own variables. */
interface DependencyNode {
  name: string;
  displayName: string;
  dependsOn: string[];
  condition?: string;
  variables: Record<string, string>;
}

export interface Job extends DependencyNode {
  steps: Step[];
  /** Deployment jobs: the environment they deploy to. */
  environment?: string;
}

export interface Stage extends DependencyNode {
  jobs: Job[];
}

export interface Pipeline {
  name?: string;
  variables: Record<string, string>;
  stages: Stage[];
}

type Map = Record<string, unknown>;

export function loadPipeline(file: string): Pipeline {
  const what = `Pipeline '${file}'`;
  const data = toPlain(parseYaml(readTextFile(file, 'Pipeline file'), what), what);
  if (!isObject(data)) throw new PipelineError(`${what} must be a YAML mapping with stages:, jobs: or steps:.`);
  return parsePipeline(data, what);
}

export function parsePipeline(doc: Map, what: string): Pipeline {
  refuse(doc, ['extends', 'template'], what, 'templates are not available locally');
  const variables = parseVariables(doc.variables, `${what} variables`);
  let stages: (Stage & { explicitDependsOn?: boolean })[];
  if (doc.stages !== undefined) {
    stages = list(doc.stages, `${what} stages`).map((s, i) => parseStage(s, i, what));
  } else if (doc.jobs !== undefined) {
    stages = [{ name: '__default', displayName: 'Jobs', dependsOn: [], variables: {}, jobs: list(doc.jobs, `${what} jobs`).map((j, i) => parseJob(j, i, what)) }];
  } else if (doc.steps !== undefined) {
    stages = [{ name: '__default', displayName: 'Jobs', dependsOn: [], variables: {}, jobs: [parseJob({ job: 'Job', steps: doc.steps }, 0, what)] }];
  } else {
    throw new PipelineError(`${what} has no stages:, jobs: or steps:.`);
  }
  // A stage without dependsOn depends on the stage before it; jobs run independently unless told.
  stages.forEach((stage, i) => {
    if (stage.dependsOn.length === 0 && !stage.explicitDependsOn && i > 0) stage.dependsOn = [stages[i - 1].name];
    delete stage.explicitDependsOn;
  });
  checkUnique(stages.map((s) => s.name), `${what}: stage`);
  for (const stage of stages) {
    checkUnique(stage.jobs.map((j) => j.name), `${what}: stage '${stage.name}' job`);
    for (const dep of stage.dependsOn) if (!stages.some((s) => s.name === dep)) throw new PipelineError(`${what}: stage '${stage.name}' depends on '${dep}', which does not exist.`);
    for (const job of stage.jobs) for (const dep of job.dependsOn) if (!stage.jobs.some((j) => j.name === dep)) throw new PipelineError(`${what}: job '${job.name}' depends on '${dep}', which is not a job of stage '${stage.name}'.`);
  }
  return { name: typeof doc.name === 'string' ? doc.name : undefined, variables, stages };
}

function parseStage(value: unknown, index: number, what: string): Stage & { explicitDependsOn?: boolean } {
  const s = map(value, `${what} stages[${index}]`);
  refuse(s, ['template'], `${what} stages[${index}]`, 'templates are not available locally');
  const name = identifier(s.stage, `${what} stages[${index}].stage`);
  const where = `${what} stage '${name}'`;
  return {
    name,
    displayName: String(s.displayName ?? name),
    dependsOn: names(s.dependsOn),
    explicitDependsOn: s.dependsOn !== undefined,
    condition: s.condition === undefined ? undefined : String(s.condition),
    variables: parseVariables(s.variables, `${where} variables`),
    jobs: list(s.jobs, `${where} jobs`).map((j, i) => parseJob(j, i, where)),
  };
}

function parseJob(value: unknown, index: number, what: string): Job {
  const j = map(value, `${what} jobs[${index}]`);
  refuse(j, ['template'], `${what} jobs[${index}]`, 'templates are not available locally');
  const deployment = j.deployment !== undefined;
  const name = identifier(deployment ? j.deployment : j.job, `${what} jobs[${index}].${deployment ? 'deployment' : 'job'}`);
  const where = `${what} job '${name}'`;
  let steps: unknown = j.steps;
  let environment: string | undefined;
  if (deployment) {
    const env = j.environment;
    environment = isObject(env) ? String(env.name ?? '') : String(env ?? '');
    if (!environment) throw new PipelineError(`${where} is a deployment job without an environment.`);
    const strategy = map(j.strategy, `${where} strategy`);
    if (!strategy.runOnce) throw new PipelineError(`${where}: only 'strategy: runOnce' runs locally (rolling and canary need an environment's VMs or cluster).`);
    const runOnce = map(strategy.runOnce, `${where} strategy.runOnce`);
    steps = map(runOnce.deploy, `${where} strategy.runOnce.deploy`).steps;
  }
  return {
    name,
    displayName: String(j.displayName ?? name),
    dependsOn: names(j.dependsOn),
    condition: j.condition === undefined ? undefined : String(j.condition),
    variables: parseVariables(j.variables, `${where} variables`),
    steps: list(steps, `${where} steps`).map((s, i) => parseStep(s, i, where)),
    environment,
  };
}

function parseStep(value: unknown, index: number, what: string): Step {
  const s = map(value, `${what} steps[${index}]`);
  const where = `${what} steps[${index}]`;
  refuse(s, ['template'], where, 'templates are not available locally');
  refuse(s, ['powershell', 'pwsh'], where, 'PowerShell steps do not run on this runner; use bash');
  const base = {
    displayName: '',
    name: s.name === undefined ? undefined : identifier(s.name, `${where}.name`),
    condition: s.condition === undefined ? undefined : String(s.condition),
    continueOnError: s.continueOnError === true,
    enabled: s.enabled !== false,
    env: stringMap(s.env, `${where}.env`),
    inputs: {},
    workingDirectory: s.workingDirectory === undefined ? undefined : String(s.workingDirectory),
  };
  if (s.task !== undefined) {
    const m = /^([A-Za-z][\w-]*)@(\d+)$/.exec(String(s.task).trim());
    if (!m) throw new PipelineError(`${where}: task '${s.task}' must be Name@major, e.g. PushWithDigest@1.`);
    return { ...base, kind: 'task', task: { name: m[1], major: Number(m[2]) }, inputs: stringMap(s.inputs, `${where}.inputs`), displayName: String(s.displayName ?? m[0]) };
  }
  const script = s.script ?? s.bash;
  if (script !== undefined) return { ...base, kind: 'script', script: String(script), displayName: String(s.displayName ?? firstLine(String(script))) };
  if (s.checkout !== undefined) {
    if (s.checkout !== 'self' && s.checkout !== 'none') throw new PipelineError(`${where}: only 'checkout: self' (the local working tree) or 'none' runs locally.`);
    return { ...base, kind: 'checkout', displayName: `Checkout ${s.checkout}` };
  }
  if (s.download !== undefined) {
    if (s.download !== 'current' && s.download !== 'none') throw new PipelineError(`${where}: only 'download: current' (artifacts of this run) works locally.`);
    const artifact = s.artifact === undefined ? undefined : artifactName(String(s.artifact), where);
    return { ...base, kind: 'download', artifact, displayName: `Download ${artifact ?? 'artifacts'}` };
  }
  if (s.publish !== undefined) {
    const artifact = artifactName(String(s.artifact ?? 'drop'), where);
    return { ...base, kind: 'publish', path: String(s.publish), artifact, displayName: `Publish ${artifact}` };
  }
  throw new PipelineError(`${where} is not a step the local runner knows (task, script, bash, checkout, download, publish).`);
}

function parseVariables(value: unknown, what: string): Record<string, string> {
  if (value === undefined || value === null) return {};
  if (isObject(value)) return stringMap(value, what);
  const out: Record<string, string> = {};
  for (const [i, item] of list(value, what).entries()) {
    const v = map(item, `${what}[${i}]`);
    if (v.group !== undefined) throw new PipelineError(`${what}[${i}]: variable group '${v.group}' is not available locally; pass its variables with --var name=value.`);
    if (v.template !== undefined) throw new PipelineError(`${what}[${i}]: variable templates are not available locally.`);
    if (v.name === undefined) throw new PipelineError(`${what}[${i}] needs a name.`);
    out[String(v.name)] = v.value === undefined || v.value === null ? '' : String(v.value);
  }
  return out;
}

function refuse(m: Map, keys: string[], what: string, why: string): void {
  for (const key of keys) if (m[key] !== undefined) throw new PipelineError(`${what}: '${key}:' is not supported: ${why}.`);
}

function names(value: unknown): string[] {
  if (value === undefined || value === null) return [];
  return Array.isArray(value) ? value.map(String) : [String(value)];
}

function identifier(value: unknown, what: string): string {
  const text = String(value ?? '');
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(text)) throw new PipelineError(`${what} '${text}' must start with a letter or _ and hold only letters, digits and _.`);
  return text;
}

function checkUnique(values: string[], what: string): void {
  const seen = new Set<string>();
  for (const v of values) {
    if (seen.has(v.toLowerCase())) throw new PipelineError(`${what} '${v}' is defined twice.`);
    seen.add(v.toLowerCase());
  }
}

function stringMap(value: unknown, what: string): Record<string, string> {
  if (value === undefined || value === null) return {};
  const m = map(value, what);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(m)) out[k] = v === null || v === undefined ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v);
  return out;
}

function map(value: unknown, what: string): Map {
  if (!isObject(value)) throw new PipelineError(`${what} must be a mapping.`);
  return value;
}

function list(value: unknown, what: string): unknown[] {
  if (!Array.isArray(value)) throw new PipelineError(`${what} must be a list.`);
  return value;
}

function firstLine(text: string): string {
  const line = text.trim().split('\n')[0];
  return line.length > 60 ? `${line.slice(0, 57)}...` : line;
}

/** `name` when Azure Pipelines accepts it as an artifact name (it becomes a folder of the run). */
function artifactName(name: string, where: string): string {
  const problem = artifactNameProblem(name);
  if (problem) throw new PipelineError(`${where}: artifact ${problem}.`);
  return name;
}
