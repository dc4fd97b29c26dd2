// The containers of a compose project as the Engine API shows them (Compose labels every container
// with com.docker.compose.project/service), so that Compose v1 and v2 behave the same: their states,
// whether they are ready, why not, and their logs. ComposeDeploy's health gate and ContainerizedTest's
// start-up wait are both `waitUntilReady`; each words its own error.
import type Dockerode from 'dockerode';
import { unlessMissing } from '../docker/missing';
import { LOG_TAIL_LINES, LineSink } from '../context';
import { abortError } from '../util/abort';
import { sleep } from '../util/retry';
import { isObject } from '../util/object';
import { dependsOnMapping } from './merge';

export const PROJECT_LABEL = 'com.docker.compose.project';
export const SERVICE_LABEL = 'com.docker.compose.service';
const ONEOFF_LABEL = 'com.docker.compose.oneoff';

export interface ContainerState {
  service: string;
  id: string;
  name: string;
  /** running, exited, restarting, created, … */
  status: string;
  health?: string;
  exitCode?: number;
  restartCount: number;
  /** The image the container was created from, as given (`repo@sha256:…`). */
  configImage: string;
  /** The image id. */
  imageId: string;
}

/** The project's service containers as the engine lists them (one-off `run` containers left out). */
export async function listProjectContainers(docker: Dockerode, project: string): Promise<Dockerode.ContainerInfo[]> {
  const list = await docker.listContainers({ all: true, filters: { label: [`${PROJECT_LABEL}=${project}`] } });
  return list.filter((c) => c.Labels?.[ONEOFF_LABEL] !== 'True');
}

/** The project's service containers, inspected, sorted by service and name. */
export async function projectContainers(docker: Dockerode, project: string): Promise<ContainerState[]> {
  const states: ContainerState[] = [];
  for (const c of await listProjectContainers(docker, project)) {
    const info = await unlessMissing(docker.getContainer(c.Id).inspect());
    if (!info) continue; // removed meanwhile
    states.push({
      service: c.Labels?.[SERVICE_LABEL] ?? '?',
      id: c.Id,
      name: info.Name.replace(/^\//, ''),
      status: info.State.Status,
      health: info.State.Health?.Status,
      exitCode: info.State.ExitCode,
      restartCount: info.RestartCount ?? 0,
      configImage: info.Config.Image,
      imageId: info.Image,
    });
  }
  return states.sort((a, b) => a.service.localeCompare(b.service) || a.name.localeCompare(b.name));
}

/** Services another waits for with `condition: service_completed_successfully`: they may exit 0. */
export function oneShotServices(services: Record<string, unknown>): Set<string> {
  const oneShot = new Set<string>();
  for (const s of Object.values(services)) {
    if (!isObject(s)) continue;
    for (const [dep, spec] of Object.entries(dependsOnMapping(s.depends_on))) if (spec.condition === 'service_completed_successfully') oneShot.add(dep);
  }
  return oneShot;
}

export interface ReadinessRules {
  oneShot: Set<string>;
  /**
   * Containers each service must have (`scale`, `deploy.replicas`). When given, only these services
   * are looked at (a count of 0: not at all); else every container of the project.
   */
  replicas?: Map<string, number>;
  /** Services not to wait for (ContainerizedTest's runner, created but not started yet). */
  exclude?: Set<string>;
  /** Restarts before these counts (container id → restarts) do not count; without it every restart counts. */
  restartBaseline?: Map<string, number>;
  /**
   * Containers seen running on an earlier look. When given, a running container without a
   * healthcheck is ready only once it is in it: one that exits right after it starts is caught.
   */
  seenRunning?: Set<string>;
}

export interface Readiness {
  states: ContainerState[];
  /** Containers that exited, keep restarting or are unhealthy. */
  failed: { state: ContainerState; why: string }[];
  /** What is not ready yet: a container still starting, or a service short of containers. */
  waiting: { service: string; state?: ContainerState; what: string }[];
}

/** Whether every container is ready: running (healthy, when it has a healthcheck), or a one-shot service's container that exited 0. */
export function readiness(states: ContainerState[], rules: ReadinessRules): Readiness {
  const result: Readiness = { states: states.filter((s) => !rules.exclude?.has(s.service)), failed: [], waiting: [] };
  const services = (rules.replicas ? [...rules.replicas.keys()] : [...new Set(states.map((s) => s.service))]).filter((s) => !rules.exclude?.has(s));
  for (const service of services) {
    const replicas = rules.replicas?.get(service) ?? 0;
    if (rules.replicas && replicas <= 0) continue;
    const mine = states.filter((s) => s.service === service);
    if (mine.length < replicas) result.waiting.push({ service, what: `${service} (${mine.length}/${replicas} containers)` });
    for (const s of mine) {
      const restarts = s.restartCount - (rules.restartBaseline?.get(s.id) ?? 0);
      const fail = (why: string) => result.failed.push({ state: s, why });
      if (s.status === 'exited' || s.status === 'dead') {
        if (!(s.exitCode === 0 && rules.oneShot.has(service))) fail(`exited with code ${s.exitCode ?? '?'}`);
      } else if (s.status === 'restarting' || restarts > 0) {
        // A container running again reports exit code 0: the last exit code is known only while it restarts.
        fail(`keeps restarting (${restarts} restart(s)${s.status === 'restarting' ? `, exit code ${s.exitCode ?? '?'}` : ''})`);
      } else if (s.health === 'unhealthy') fail('is unhealthy: its healthcheck failed');
      else if (s.status !== 'running' || s.health === 'starting') result.waiting.push({ service, state: s, what: `${service} (${s.status}${s.health ? `, health: ${s.health}` : ''})` });
      else if (!s.health && rules.seenRunning && !rules.seenRunning.has(s.id)) result.waiting.push({ service, state: s, what: `${service} (just started)` });
    }
  }
  return result;
}

/**
 * Polls the project's containers until every one is ready, one fails (returned at once, in
 * `failed`), or `deadline` passes (returned with `waiting` not empty). Restarts of containers that
 * were there before the wait count only from its start when `countEarlierRestarts` is false. A
 * container without a healthcheck counts once two looks (250 ms apart at least) found it running, so
 * that one that exits right after it starts fails the gate instead of passing it.
 * Rejects with CancelledError when the job is cancelled.
 */
export async function waitUntilReady(
  docker: Dockerode,
  project: string,
  options: Omit<ReadinessRules, 'restartBaseline'> & { countEarlierRestarts: boolean; deadline: number; signal?: AbortSignal; log: { info(m: string): void } },
): Promise<Readiness> {
  const started = Date.now();
  const baseline = options.countEarlierRestarts ? undefined : new Map<string, number>();
  const seenRunning = new Set<string>();
  let reported = '';
  for (;;) {
    if (options.signal?.aborted) throw abortError(options.signal);
    const states = await projectContainers(docker, project);
    for (const s of states) if (baseline && !baseline.has(s.id)) baseline.set(s.id, s.restartCount);
    const result = readiness(states, { ...options, restartBaseline: baseline, seenRunning });
    for (const s of states) if (s.status === 'running') seenRunning.add(s.id);
    if (result.failed.length > 0 || result.waiting.length === 0 || Date.now() >= options.deadline) return result;
    const report = describeWaiting(result);
    if (report !== reported) {
      options.log.info(`Waiting for ${report}`);
      reported = report;
    }
    // Quick while health checks are starting, then once a second.
    const pollMs = Date.now() - started > 5_000 ? 1_000 : 250;
    try {
      await sleep(Math.min(pollMs, Math.max(0, options.deadline - Date.now())), options.signal);
    } catch {
      throw abortError(options.signal!);
    }
  }
}

export function describeWaiting(result: Readiness): string {
  return result.waiting.map((w) => w.what).join(', ');
}

/**
 * Splits the Engine API's multiplexed stream (non-TTY attach/logs: 8-byte header with the stream
 * type and the frame length) into stdout and stderr chunks.
 */
export class Demultiplexer {
  private buffer: Buffer = Buffer.alloc(0);
  constructor(private readonly onData: (chunk: Buffer, stream: 'stdout' | 'stderr') => void) {}

  push(chunk: Buffer): void {
    this.buffer = this.buffer.length ? Buffer.concat([this.buffer, chunk]) : chunk;
    while (this.buffer.length >= 8) {
      const type = this.buffer[0];
      const length = this.buffer.readUInt32BE(4);
      if (type > 2 || this.buffer[1] !== 0 || this.buffer[2] !== 0 || this.buffer[3] !== 0) {
        // Not a multiplexed stream (a TTY container): pass it through as it is.
        this.onData(this.buffer, 'stdout');
        this.buffer = Buffer.alloc(0);
        return;
      }
      if (this.buffer.length < 8 + length) return;
      this.onData(this.buffer.subarray(8, 8 + length), type === 2 ? 'stderr' : 'stdout');
      this.buffer = this.buffer.subarray(8 + length);
    }
  }
}

/** The last `lines` lines of a container's log (stdout and stderr), sanitised (LineSink). */
export async function containerLogTail(docker: Dockerode, id: string, lines = LOG_TAIL_LINES): Promise<string[]> {
  const container = docker.getContainer(id);
  const raw = (await container.logs({ stdout: true, stderr: true, follow: false, tail: lines, timestamps: false })) as unknown as Buffer;
  const out: string[] = [];
  const sink = new LineSink((l) => out.push(l), '', lines);
  const info = await container.inspect();
  if (info.Config?.Tty) sink.write(Buffer.from(raw));
  else new Demultiplexer((c) => sink.write(c)).push(Buffer.from(raw));
  sink.end();
  return out.slice(-lines);
}
