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
import type { ComposeProject } from '../compose/cli';
import { ContainerState, SERVICE_LABEL, containerLogTail, describeWaiting, listProjectContainers, oneShotServices, projectContainers, readiness, waitUntilReady } from '../compose/containers';
import { escapeDollars } from '../compose/interpolate';
import { ComposeApp, ComposeService, loadCompose } from '../compose/load';
import { isObject } from '../util/object';
import type { Logger } from '../context';
import { InputError, OuterLoopError, TimeoutError } from '../errors';
import { parseReference, repositoryName } from '../reference';

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
  /** Folders outside the project directory whose files the compose files may name (the allowedPaths input). */
  allowedPaths?: string[];
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
  const app = loadCompose(input.composeFiles, { env: input.env, allowedPaths: input.allowedPaths });
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

  const used = new Set<string>();
  for (const service of app.services) {
    const nets = service.raw.networks;
    if (service.raw.network_mode !== undefined) continue;
    if (Array.isArray(nets)) nets.forEach((n) => used.add(String(n)));
    else if (nets && typeof nets === 'object') Object.keys(nets).forEach((n) => used.add(n));
    else used.add('default');
  }
  const section = (key: string) => (isObject(app.model[key]) ? app.model[key] : {});
  const topNetworks = section('networks');
  const topVolumes = section('volumes');
  const networks = [...new Set(['default', ...Object.keys(topNetworks)])].filter((n) => !isExternal(topNetworks[n]));
  const volumes = Object.keys(topVolumes).filter((v) => !isExternal(topVolumes[v]));
  return { app, runner, pinned, unpinnedBuilds, oneShot: oneShotServices(app.model.services as Record<string, unknown>), networks, volumes, runnerNetworks: used.size ? [...used].sort() : ['default'] };
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
  const services: Record<string, Record<string, unknown>> = {};
  for (const service of plan.app.services) {
    const entry: Record<string, unknown> = { labels: { ...input.labels } };
    const image = plan.pinned.get(service.name);
    if (image) entry.image = image.imageId;
    services[service.name] = entry;
  }
  const given: Record<string, unknown> = {};
  if (input.testCommand) given.command = input.testCommand;
  if (Object.keys(input.envVars).length) given.environment = input.envVars;
  if (input.workingDirectory) given.working_dir = input.workingDirectory;
  if (input.user) given.user = input.user;
  // Created with `up`, which (unlike `run`) would apply a restart policy: a runner runs once.
  const runnerConfig = { ...(escapeDollars(given) as Record<string, unknown>), restart: 'no' };
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

function isExternal(spec: unknown): boolean {
  if (!spec || typeof spec !== 'object') return false;
  const external = (spec as { external?: unknown }).external;
  return external === true || external === 'true' || (typeof external === 'object' && external !== null);
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
): Promise<ContainerState[]> {
  const result = await waitUntilReady(docker, project.name, { oneShot: plan.oneShot, exclude: new Set([plan.runner]), countEarlierRestarts: true, deadline: options.deadline, signal: options.signal, log: options.log });
  const failed = result.failed[0];
  if (failed) throw new StackError(`Service '${failed.state.service}' ${failed.why} while the stack was starting; its log is below.`);
  if (result.waiting.length > 0) {
    throw new TimeoutError(
      `The stack did not become ready within startupTimeoutSeconds (${options.startupTimeoutSeconds} s): ${describeWaiting(result)}. Raise startupTimeoutSeconds, or fix the service's healthcheck; logs are below.`,
    );
  }
  return result.states;
}

/** What is wrong with the stack right now (a service exited, restarts, is unhealthy), if anything. */
export async function stackProblem(docker: Dockerode, project: ComposeProject, plan: StackPlan): Promise<string | undefined> {
  const failed = readiness(await projectContainers(docker, project.name), { oneShot: plan.oneShot, exclude: new Set([plan.runner]) }).failed[0];
  return failed && `Service '${failed.state.service}' ${failed.why} while the stack was starting`;
}

/** Prints the last lines of every app container's log, one collapsible group each (the runner's, streamed already, left out). */
export async function printStackLogs(docker: Dockerode, project: string, log: Logger, lines: number, runner?: string): Promise<void> {
  let containers: Dockerode.ContainerInfo[];
  try {
    containers = await listProjectContainers(docker, project);
  } catch (err) {
    log.warn(`Could not list the stack's containers for their logs: ${(err as Error).message}`);
    return;
  }
  for (const c of containers.sort((a, b) => (a.Names[0] ?? '').localeCompare(b.Names[0] ?? ''))) {
    const service = c.Labels[SERVICE_LABEL] ?? c.Names[0];
    if (service === runner) continue;
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
