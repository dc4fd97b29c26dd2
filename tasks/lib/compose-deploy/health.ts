// The health gate: after `compose up`, every service of the project must have its containers
// running, and healthy when the image or the compose file gives a healthcheck, within a bounded
// time. Read through the Engine API (containers labelled com.docker.compose.project/service), so
// Compose v1 and v2 behave the same. The gate fails at once on an unhealthy container, an exited one
// (unless it is a one-shot service others wait for with `service_completed_successfully` and it
// exited 0), or one that restarts; the failure carries the container's health log and log tail.
import type Dockerode from 'dockerode';
import { sanitizeOutput } from '../context';
import { OuterLoopError } from '../errors';
import { dependsOnMapping, isMapping } from '../compose/merge';

export const PROJECT_LABEL = 'com.docker.compose.project';
export const SERVICE_LABEL = 'com.docker.compose.service';
const ONEOFF_LABEL = 'com.docker.compose.oneoff';
const LOG_TAIL = 30;

export class GateError extends OuterLoopError {}

export interface ServiceExpectation {
  service: string;
  /** Containers expected (`scale` or `deploy.replicas`, default 1). */
  replicas: number;
  /** May exit 0 (another service depends on it with service_completed_successfully). */
  oneShot: boolean;
}

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

/** What each service of a rendered model should end up with. */
export function expectations(model: Record<string, unknown>): ServiceExpectation[] {
  const services = (model.services ?? {}) as Record<string, Record<string, unknown>>;
  const oneShot = new Set<string>();
  for (const s of Object.values(services)) {
    for (const [dep, spec] of Object.entries(dependsOnMapping(s.depends_on))) if (spec.condition === 'service_completed_successfully') oneShot.add(dep);
  }
  return Object.entries(services).map(([service, raw]) => {
    const deploy = isMapping(raw.deploy) ? raw.deploy : {};
    const replicas = raw.scale !== undefined ? Number(raw.scale) : deploy.replicas !== undefined ? Number(deploy.replicas) : 1;
    return { service, replicas: Number.isFinite(replicas) ? replicas : 1, oneShot: oneShot.has(service) };
  });
}

/** The project's service containers (one-off `run` containers left out). */
export async function projectContainers(docker: Dockerode, project: string): Promise<ContainerState[]> {
  const list = await docker.listContainers({ all: true, filters: { label: [`${PROJECT_LABEL}=${project}`] } });
  const states: ContainerState[] = [];
  for (const c of list) {
    if (c.Labels?.[ONEOFF_LABEL] === 'True') continue;
    let info: Dockerode.ContainerInspectInfo;
    try {
      info = await docker.getContainer(c.Id).inspect();
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) continue; // removed meanwhile
      throw err;
    }
    states.push({
      service: c.Labels?.[SERVICE_LABEL] ?? '?',
      id: c.Id,
      name: info.Name.replace(/^\//, ''),
      status: info.State.Status,
      health: (info.State as { Health?: { Status?: string } }).Health?.Status,
      exitCode: info.State.ExitCode,
      restartCount: info.RestartCount ?? 0,
      configImage: info.Config.Image,
      imageId: info.Image,
    });
  }
  return states.sort((a, b) => a.service.localeCompare(b.service) || a.name.localeCompare(b.name));
}

export interface GateOptions {
  project: string;
  expect: ServiceExpectation[];
  timeoutMs: number;
  signal?: AbortSignal;
  log: { info(m: string): void; debug(m: string): void };
  pollMs?: number;
}

/** Waits until every service is ready; throws GateError naming the services and why. */
export async function healthGate(docker: Dockerode, options: GateOptions): Promise<ContainerState[]> {
  const started = Date.now();
  const deadline = started + options.timeoutMs;
  const restartsAtStart = new Map<string, number>();
  let pollMs = options.pollMs ?? 250;
  let lastReport = '';
  for (;;) {
    if (options.signal?.aborted) throw new GateError('The deployment was cancelled while waiting for the services to become healthy.');
    const states = await projectContainers(docker, options.project);
    for (const s of states) if (!restartsAtStart.has(s.id)) restartsAtStart.set(s.id, s.restartCount);
    const waiting: string[] = [];
    const failed: { state: ContainerState; why: string }[] = [];
    for (const e of options.expect) {
      if (e.replicas <= 0) continue;
      const mine = states.filter((s) => s.service === e.service);
      if (mine.length < e.replicas) waiting.push(`${e.service}: ${mine.length}/${e.replicas} containers`);
      for (const s of mine) {
        const restarted = s.restartCount - (restartsAtStart.get(s.id) ?? s.restartCount);
        if (s.health === 'unhealthy') failed.push({ state: s, why: 'is unhealthy' });
        else if (s.status === 'restarting' || restarted > 0) failed.push({ state: s, why: `keeps restarting (exit code ${s.exitCode ?? '?'})` });
        else if (s.status === 'exited' || s.status === 'dead') {
          if (!(e.oneShot && s.exitCode === 0)) failed.push({ state: s, why: `exited with code ${s.exitCode ?? '?'}` });
        } else if (s.status !== 'running') waiting.push(`${s.name}: ${s.status}`);
        else if (s.health === 'starting') waiting.push(`${s.name}: health starting`);
      }
    }
    if (failed.length > 0) {
      const details: string[] = [];
      for (const f of failed) details.push(`${f.state.name} (service ${f.state.service}) ${f.why}.${await diagnostics(docker, f.state.id)}`);
      throw new GateError(`The health gate failed: ${details.join('\n')}`);
    }
    if (waiting.length === 0) return states;
    const report = waiting.join(', ');
    if (report !== lastReport) {
      options.log.info(`Waiting for ${report}`);
      lastReport = report;
    }
    if (Date.now() >= deadline) {
      const details: string[] = [];
      for (const s of states.filter((x) => waiting.some((w) => w.startsWith(`${x.name}:`)))) details.push(`${s.name}:${await diagnostics(docker, s.id)}`);
      throw new GateError(`The health gate timed out after ${Math.round(options.timeoutMs / 1000)} s (waitTimeoutSeconds): still waiting for ${report}.${details.length ? `\n${details.join('\n')}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, Math.min(pollMs, Math.max(0, deadline - Date.now()))));
    if (Date.now() - started > 5_000) pollMs = 1_000; // quick while health checks are starting, then once a second
  }
}

/** The last health check outputs and the log tail of a container, sanitised, for failure messages. */
export async function diagnostics(docker: Dockerode, id: string): Promise<string> {
  const parts: string[] = [];
  try {
    const info = await docker.getContainer(id).inspect();
    const health = (info.State as { Health?: { Log?: { ExitCode: number; Output: string }[] } }).Health;
    const last = health?.Log?.slice(-2) ?? [];
    if (last.length) parts.push(`  last health checks: ${last.map((l) => `exit ${l.ExitCode}: ${l.Output.trim().split('\n').slice(-3).join(' | ') || '(no output)'}`).join('; ')}`);
    const raw = (await docker.getContainer(id).logs({ stdout: true, stderr: true, tail: LOG_TAIL, follow: false })) as unknown as Buffer;
    const text = info.Config.Tty ? raw.toString('utf8') : demux(raw);
    const lines = text.split(/\r?\n/).filter((l) => l.trim());
    parts.push(lines.length ? `  last log lines:\n${lines.map((l) => `    ${l.slice(0, 2000)}`).join('\n')}` : '  (no log output)');
  } catch (err) {
    parts.push(`  (no diagnostics: ${(err as Error).message})`);
  }
  return sanitizeOutput(`\n${parts.join('\n')}`);
}

/** The Engine's multiplexed log stream (8-byte frame headers) as text. */
export function demux(buf: Buffer): string {
  const out: Buffer[] = [];
  let i = 0;
  while (i + 8 <= buf.length) {
    const type = buf[i];
    const size = buf.readUInt32BE(i + 4);
    if (type > 2 || buf[i + 1] !== 0 || buf[i + 2] !== 0 || buf[i + 3] !== 0) return buf.toString('utf8'); // not multiplexed
    out.push(buf.subarray(i + 8, i + 8 + size));
    i += 8 + size;
  }
  return Buffer.concat(out).toString('utf8');
}
