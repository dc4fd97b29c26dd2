// The health gate: after `compose up`, every service of the project must have its containers
// running, and healthy when the image or the compose file gives a healthcheck, within a bounded
// time (waitUntilReady, read through the Engine API so Compose v1 and v2 behave the same). The gate
// fails at once on an unhealthy container, an exited one (unless it is a one-shot service others
// wait for with `service_completed_successfully` and it exited 0), or one that restarts; the
// failure carries the container's health log and log tail.
import type Dockerode from 'dockerode';
import { ContainerState, containerLogTail, describeWaiting, oneShotServices, waitUntilReady } from '../compose/containers';
import { isObject } from '../util/object';
import { sanitizeOutput } from '../context';
import { OuterLoopError } from '../errors';

// bench/compose-deploy.ts reads the project's containers from here.
export { projectContainers } from '../compose/containers';

const LOG_TAIL = 30;

export class GateError extends OuterLoopError {}

/** Containers each service of a rendered model should end up with (`scale` or `deploy.replicas`, default 1). */
export function replicasOf(services: Record<string, Record<string, unknown>>): Map<string, number> {
  return new Map(
    Object.entries(services).map(([service, raw]) => {
      const deploy = isObject(raw.deploy) ? raw.deploy : {};
      const replicas = raw.scale !== undefined ? Number(raw.scale) : deploy.replicas !== undefined ? Number(deploy.replicas) : 1;
      return [service, Number.isFinite(replicas) ? replicas : 1];
    }),
  );
}

export interface GateOptions {
  project: string;
  /** The rendered model: what each service should end up with. */
  model: Record<string, unknown>;
  timeoutMs: number;
  signal?: AbortSignal;
  log: { info(m: string): void };
}

/** Waits until every service is ready; throws GateError naming the services and why. */
export async function healthGate(docker: Dockerode, options: GateOptions): Promise<ContainerState[]> {
  const services = (options.model.services ?? {}) as Record<string, Record<string, unknown>>;
  const result = await waitUntilReady(docker, options.project, {
    oneShot: oneShotServices(services),
    replicas: replicasOf(services),
    // `up` of an unchanged service keeps its container: restarts before this deployment are history.
    countEarlierRestarts: false,
    deadline: Date.now() + options.timeoutMs,
    signal: options.signal,
    log: options.log,
  });
  if (result.failed.length > 0) {
    const details: string[] = [];
    for (const f of result.failed) details.push(`${f.state.name} (service ${f.state.service}) ${f.why}.${await diagnostics(docker, f.state.id)}`);
    throw new GateError(`The health gate failed: ${details.join('\n')}`);
  }
  if (result.waiting.length > 0) {
    const details: string[] = [];
    for (const w of result.waiting) if (w.state) details.push(`${w.state.name}:${await diagnostics(docker, w.state.id)}`);
    throw new GateError(`The health gate timed out after ${Math.round(options.timeoutMs / 1000)} s (waitTimeoutSeconds): still waiting for ${describeWaiting(result)}.${details.length ? `\n${details.join('\n')}` : ''}`);
  }
  return result.states;
}

/** The last health check outputs and the log tail of a container, sanitised, for failure messages. */
export async function diagnostics(docker: Dockerode, id: string): Promise<string> {
  const parts: string[] = [];
  try {
    const info = await docker.getContainer(id).inspect();
    const last = info.State.Health?.Log?.slice(-2) ?? [];
    if (last.length) parts.push(`  last health checks: ${last.map((l) => `exit ${l.ExitCode}: ${l.Output.trim().split('\n').slice(-3).join(' | ') || '(no output)'}`).join('; ')}`);
    const lines = (await containerLogTail(docker, id, LOG_TAIL)).filter((l) => l.trim());
    parts.push(lines.length ? `  last log lines:\n${lines.map((l) => `    ${l.slice(0, 2000)}`).join('\n')}` : '  (no log output)');
  } catch (err) {
    parts.push(`  (no diagnostics: ${(err as Error).message})`);
  }
  return sanitizeOutput(`\n${parts.join('\n')}`);
}
