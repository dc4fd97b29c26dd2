// Compose mode: the application stack as it will be deployed, started as an isolated project with a
// unique name, built services pinned to the image ids of the build record, and a test runner that
// talks to it over the project's network from outside the app containers.
//
// The per-run override file (the last -f) does three things: pins each built service to its image
// id (`image: sha256:…`; with `up --no-build` nothing is rebuilt, and an id is never pulled),
// labels every service, network and volume with the run id (teardown and later sweeps find them),
// and configures the runner (command, environment, working directory, user) so that nothing the
// user gives goes on a command line. `$` in those values is escaped as `$$` (compose interpolates).
import * as fs from 'node:fs';
import * as path from 'node:path';
import type Dockerode from 'dockerode';
import type { BuildRecord, BuiltImage } from '../build/record';
import { interpolateValue } from '../compose/interpolate';
import { ComposeApp, ComposeService, loadCompose } from '../compose/load';
import { readYamlFile, toPlain } from '../compose/yaml';
import type { Logger } from '../context';
import { FileError, InputError, OuterLoopError, TimeoutError } from '../errors';
import { parseReference, repositoryName } from '../reference';
import type { ComposeProject } from '../compose/cli';
import { pause } from './bounds';
import { containerLogTail } from './output';
import { COMPOSE_PROJECT_LABEL } from './teardown';

/** The runner service added to the override when testImage is used instead of testService. */
export const ADDED_RUNNER = 'outer-loop-test-runner';

/** A service of the stack exited, turned unhealthy, or never became ready. */
export class StackError extends OuterLoopError {}

export interface StackPlanInput {
  composeFiles: string[];
  testService?: string;
  testImage?: string;
  /** Already parsed (JSON array, or ['/bin/sh', '-c', text]). */
  testCommand?: string[];
  envVars: Record<string, string>;
  workingDirectory?: string;
  user?: string;
  record?: BuildRecord;
  env: NodeJS.ProcessEnv;
}

export interface StackPlan {
  app: ComposeApp;
  /** The compose service that runs the tests (the user's, or ADDED_RUNNER). */
  runner: string;
  /** Services pinned to a built image: service → image. */
  pinned: Map<string, BuiltImage>;
  /** Services with build: that are not in the build record (compose will use their image tag as it is). */
  unpinnedBuilds: string[];
  /** Services that may exit 0 during start-up (another depends on them with service_completed_successfully). */
  oneShot: Set<string>;
  /** Top-level networks and volumes that are not external (they get the run label). */
  networks: string[];
  volumes: string[];
  /** Networks the added runner joins. */
  runnerNetworks: string[];
}

/** Checks the compose inputs and plans the run. No engine needed: fails fast on bad input. */
export function planStack(input: StackPlanInput): StackPlan {
  if (input.composeFiles.length === 0) throw new InputError("Input 'composeFiles' is required in compose mode: give the compose file of the app (and any overrides, one per line).");
  for (const file of input.composeFiles) {
    if (!fs.existsSync(file)) throw new InputError(`Input 'composeFiles': '${file}' does not exist. Check the path (relative paths start at the working directory).`);
  }
  if (!input.testService && !input.testImage) {
    throw new InputError("Input 'testService' is required in compose mode (the compose service that runs the tests), or give 'testImage' and 'testCommand' to run a test container on the app's network.");
  }
  if (input.testService && input.testImage) throw new InputError("Inputs 'testService' and 'testImage' are both set: use the compose service, or an image with testCommand, not both.");
  const app = loadCompose(input.composeFiles, { env: input.env });
  const names = app.services.map((s) => s.name);
  if (input.testService && !names.includes(input.testService)) {
    throw new InputError(`Input 'testService': service '${input.testService}' is not in ${input.composeFiles.join(', ')} (services: ${names.join(', ')}).`);
  }
  if (input.testImage && names.includes(ADDED_RUNNER)) throw new InputError(`Input 'testImage': the compose files already have a service named '${ADDED_RUNNER}'; use testService instead.`);
  const runner = input.testService ?? ADDED_RUNNER;

  const pinned = new Map<string, BuiltImage>();
  const unpinnedBuilds: string[] = [];
  for (const service of app.services) {
    const image = input.record ? builtImageFor(service, input.record) : undefined;
    if (image) pinned.set(service.name, image);
    else if (service.build && service.name !== runner) unpinnedBuilds.push(service.name);
  }

  const oneShot = new Set<string>();
  const used = new Set<string>();
  for (const service of app.services) {
    const deps = service.raw.depends_on;
    if (deps && typeof deps === 'object' && !Array.isArray(deps)) {
      for (const [dep, spec] of Object.entries(deps as Record<string, { condition?: string } | null>)) {
        if (spec?.condition === 'service_completed_successfully') oneShot.add(dep);
      }
    }
    const nets = service.raw.networks;
    if (service.raw.network_mode !== undefined) continue;
    if (Array.isArray(nets)) nets.forEach((n) => used.add(String(n)));
    else if (nets && typeof nets === 'object') Object.keys(nets).forEach((n) => used.add(n));
    else used.add('default');
  }
  const top = topLevel(input.composeFiles, input.env);
  const networks = [...new Set(['default', ...Object.keys(top.networks)])].filter((n) => !isExternal(top.networks[n]));
  const volumes = Object.keys(top.volumes).filter((v) => !isExternal(top.volumes[v]));
  return { app, runner, pinned, unpinnedBuilds, oneShot, networks, volumes, runnerNetworks: used.size ? [...used].sort() : ['default'] };
}

/** The build record's image for a compose service: same name (and it builds, or names the same repository), or same repository. */
export function builtImageFor(service: ComposeService, record: BuildRecord): BuiltImage | undefined {
  let repository: string | undefined;
  try {
    repository = service.image ? repositoryName(parseReference(service.image)) : undefined;
  } catch {
    repository = undefined;
  }
  const byName = record.images.find((i) => i.name === service.name);
  if (byName && (service.build || repository === undefined || repository === byName.repository)) return byName;
  return repository ? record.images.find((i) => i.repository === repository) : undefined;
}

/** The override document (plain data; written as JSON, which every YAML parser reads). */
export function overrideDocument(plan: StackPlan, input: StackPlanInput & { labels: Record<string, string>; testImageRef?: string }): Record<string, unknown> {
  const esc = (s: string) => s.replace(/\$/g, '$$$$');
  const services: Record<string, Record<string, unknown>> = {};
  for (const service of plan.app.services) {
    const entry: Record<string, unknown> = { labels: { ...input.labels } };
    const image = plan.pinned.get(service.name);
    if (image) entry.image = image.imageId;
    services[service.name] = entry;
  }
  const runnerConfig: Record<string, unknown> = {};
  if (input.testCommand) runnerConfig.command = input.testCommand.map(esc);
  if (Object.keys(input.envVars).length) runnerConfig.environment = Object.fromEntries(Object.entries(input.envVars).map(([k, v]) => [k, esc(v)]));
  if (input.workingDirectory) runnerConfig.working_dir = esc(input.workingDirectory);
  if (input.user) runnerConfig.user = esc(input.user);
  if (plan.runner === ADDED_RUNNER) {
    services[ADDED_RUNNER] = { image: input.testImageRef, labels: { ...input.labels }, networks: plan.runnerNetworks, ...runnerConfig };
  } else {
    Object.assign(services[plan.runner], runnerConfig);
  }
  const labelled = (names: string[]) => Object.fromEntries(names.map((n) => [n, { labels: { ...input.labels } }]));
  const doc: Record<string, unknown> = { services, networks: labelled(plan.networks) };
  if (plan.volumes.length) doc.volumes = labelled(plan.volumes);
  return doc;
}

export function writeOverride(file: string, doc: Record<string, unknown>): void {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  fs.writeFileSync(file, `# Written by ContainerizedTest for one run; removed at teardown.\n${JSON.stringify(doc, null, 2)}\n`, { mode: 0o600 });
}

function topLevel(files: string[], env: NodeJS.ProcessEnv): { networks: Record<string, unknown>; volumes: Record<string, unknown> } {
  const out = { networks: {} as Record<string, unknown>, volumes: {} as Record<string, unknown> };
  for (const file of files) {
    const data = toPlain(readYamlFile(file, 'Compose file'), `Compose file '${file}'`) as Record<string, unknown> | null;
    if (!data || typeof data !== 'object') continue;
    for (const key of ['networks', 'volumes'] as const) {
      const section = data[key];
      if (section === undefined || section === null) continue;
      if (typeof section !== 'object' || Array.isArray(section)) throw new FileError(`Compose file '${file}': '${key}' must be a mapping.`);
      const value = interpolateValue(section, env, `Compose file '${file}' ${key}`) as Record<string, unknown>;
      for (const [name, spec] of Object.entries(value)) {
        const prev = out[key][name];
        out[key][name] = prev && typeof prev === 'object' && spec && typeof spec === 'object' ? { ...prev, ...spec } : (spec ?? prev ?? {});
      }
    }
  }
  return out;
}

function isExternal(spec: unknown): boolean {
  if (!spec || typeof spec !== 'object') return false;
  const external = (spec as { external?: unknown }).external;
  return external === true || external === 'true' || (typeof external === 'object' && external !== null);
}

/** The project's app containers (not the runner, not one-off containers). */
async function appContainers(docker: Dockerode, project: string): Promise<Dockerode.ContainerInfo[]> {
  return docker.listContainers({ all: true, filters: { label: [`${COMPOSE_PROJECT_LABEL}=${project}`, 'com.docker.compose.oneoff=False'] } });
}

export interface ServiceState {
  service: string;
  container: string;
  state: string;
  health?: string;
  exitCode?: number;
  restarts: number;
}

/**
 * Waits until every app container is healthy (or running, when it has no healthcheck; or exited
 * with 0, when another service waits for it to complete). Fails fast when one exits, keeps
 * restarting or turns unhealthy; gives up at `deadline`.
 */
export async function waitForStack(
  docker: Dockerode,
  project: ComposeProject,
  plan: StackPlan,
  options: { deadline: number; startupTimeoutSeconds: number; signal: AbortSignal; log: Logger },
): Promise<ServiceState[]> {
  let reported = '';
  for (;;) {
    const states = await stackStates(docker, project.name);
    const problem = firstProblem(states, plan);
    if (problem) throw new StackError(`${problem}; its log is below.`);
    const pending = states.filter((s) => !(s.state === 'exited' || (s.state === 'running' && (s.health === undefined || s.health === 'healthy'))));
    if (pending.length === 0) return states;
    const now = describe(pending);
    if (now !== reported) {
      options.log.info(`Waiting for ${now}`);
      reported = now;
    }
    if (Date.now() >= options.deadline) {
      throw new TimeoutError(
        `The stack did not become ready within startupTimeoutSeconds (${options.startupTimeoutSeconds} s): ${describe(pending)}. Raise startupTimeoutSeconds, or fix the service's healthcheck; logs are below.`,
      );
    }
    await pause(Math.min(200, Math.max(0, options.deadline - Date.now())), options.signal);
  }
}

/** What is wrong with the stack right now (a service exited, restarts, is unhealthy), if anything. */
export async function stackProblem(docker: Dockerode, project: ComposeProject, plan: StackPlan): Promise<string | undefined> {
  return firstProblem(await stackStates(docker, project.name), plan);
}

async function stackStates(docker: Dockerode, project: string): Promise<ServiceState[]> {
  const states: ServiceState[] = [];
  for (const c of await appContainers(docker, project)) {
    let info: Dockerode.ContainerInspectInfo;
    try {
      info = await docker.getContainer(c.Id).inspect();
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) continue;
      throw err;
    }
    states.push({
      service: c.Labels['com.docker.compose.service'] ?? c.Names[0],
      container: info.Name.replace(/^\//, ''),
      state: info.State.Status,
      health: info.State.Health?.Status,
      exitCode: info.State.ExitCode,
      restarts: info.RestartCount ?? 0,
    });
  }
  return states;
}

function firstProblem(states: ServiceState[], plan: StackPlan): string | undefined {
  for (const s of states) {
    if (s.state === 'exited' || s.state === 'dead') {
      if (s.exitCode === 0 && plan.oneShot.has(s.service)) continue;
      return `Service '${s.service}' exited with code ${s.exitCode} while the stack was starting`;
    }
    if (s.restarts > 0 || s.state === 'restarting') return `Service '${s.service}' keeps restarting (${s.restarts} restart(s)) while the stack was starting`;
    if (s.health === 'unhealthy') return `Service '${s.service}' is unhealthy: its healthcheck failed`;
  }
  return undefined;
}

function describe(states: ServiceState[]): string {
  return states.map((s) => `${s.service} (${s.state}${s.health ? `, health: ${s.health}` : ''})`).join(', ');
}

/** Prints the last lines of every app container's log, one collapsible group each. */
export async function printStackLogs(docker: Dockerode, project: string, log: Logger, lines: number): Promise<void> {
  let containers: Dockerode.ContainerInfo[];
  try {
    containers = await appContainers(docker, project);
  } catch (err) {
    log.warn(`Could not list the stack's containers for their logs: ${(err as Error).message}`);
    return;
  }
  for (const c of containers.sort((a, b) => (a.Names[0] ?? '').localeCompare(b.Names[0] ?? ''))) {
    const service = c.Labels['com.docker.compose.service'] ?? c.Names[0];
    await log.group(`Log of service ${service} (last ${lines} lines; ${c.Status})`, async () => {
      try {
        const tail = await containerLogTail(docker, c.Id, lines);
        for (const line of tail.length ? tail : ['(no output)']) log.info(line);
      } catch (err) {
        log.warn(`Could not read the log of ${service}: ${(err as Error).message}`);
      }
    });
  }
}
