// Everything a ContainerizedTest run creates carries two labels: the run id, and the time after
// which the run is certainly over (start + timeoutMinutes + a teardown allowance). Teardown removes
// everything with this run's label through the Engine API (after `compose down` in compose mode),
// and each run first sweeps what expired runs left behind (an agent killed with SIGKILL cannot tidy
// up after itself). A live run is never swept: its expiry lies in the future.
import type Dockerode from 'dockerode';
import type { Logger } from '../context';
import { errorMessage } from '../errors';
import { sleep } from '../util/retry';

export const RUN_LABEL = 'com.container-outer-loop.run';
export const EXPIRES_LABEL = 'com.container-outer-loop.expires';

/** Allowance after timeoutMinutes for start-up and teardown before a run counts as abandoned. */
export const EXPIRY_ALLOWANCE_MS = 30 * 60_000;

export function runLabels(runId: string, expiresAt: number): Record<string, string> {
  return { [RUN_LABEL]: runId, [EXPIRES_LABEL]: String(expiresAt) };
}

export interface SweepCounts {
  containers: number;
  networks: number;
  volumes: number;
}

const ignorable = (err: unknown) => [404, 409].includes((err as { statusCode?: number }).statusCode ?? 0);

/** How long a sweep may take when its caller gives no signal of its own. */
const SWEEP_BOUND_MS = 60_000;

/**
 * Removes every container (with its anonymous volumes), network and volume matching a label filter.
 * Every Engine API call ends when `signal` aborts (default: after a minute); what is left then is
 * named in a warning, and later runs sweep it once the run has expired.
 */
export async function sweepByLabel(docker: Dockerode, label: string, log: Logger, options: { signal?: AbortSignal } = {}): Promise<SweepCounts> {
  const signal = options.signal ?? AbortSignal.timeout(SWEEP_BOUND_MS);
  const abortSignal = signal as unknown as never; // dockerode's option types do not list abortSignal
  const counts: SweepCounts = { containers: 0, networks: 0, volumes: 0 };
  const filters = { label: [label] };
  // Listed at once; networks and volumes are removed after the containers that use them.
  const [containers, networks, volumeList] = await Promise.all([
    docker.listContainers({ all: true, filters, abortSignal }),
    docker.listNetworks({ filters, abortSignal }),
    docker.listVolumes({ filters, abortSignal }),
  ]);
  await Promise.all(
    containers.map(async (c) => {
      try {
        await docker.getContainer(c.Id).remove({ force: true, v: true, abortSignal });
        counts.containers++;
      } catch (err) {
        if (!ignorable(err)) log.warn(`Could not remove container ${c.Names?.[0] ?? c.Id}: ${errorMessage(err)}`);
      }
    }),
  );
  // Networks and volumes can stay busy for a moment while removed containers release them.
  const retry = async (what: string, remove: () => Promise<unknown>): Promise<boolean> => {
    for (let attempt = 0; ; attempt++) {
      try {
        await remove();
        return true;
      } catch (err) {
        const status = (err as { statusCode?: number }).statusCode;
        if (status === 404) return false;
        if (signal.aborted || attempt >= 20) {
          log.warn(`Could not remove ${what}: ${errorMessage(err)}`);
          return false;
        }
        await sleep(250, signal).catch(() => undefined);
      }
    }
  };
  await Promise.all(networks.map(async (n) => void ((await retry(`network ${n.Name}`, () => docker.getNetwork(n.Id).remove({ abortSignal }))) && counts.networks++)));
  const volumes = volumeList.Volumes ?? [];
  await Promise.all(volumes.map(async (v) => void ((await retry(`volume ${v.Name}`, () => docker.getVolume(v.Name).remove({ abortSignal }))) && counts.volumes++)));
  return counts;
}

/** What is left with this run's label (for checks and tests). */
export async function leftovers(docker: Dockerode, runId: string): Promise<SweepCounts> {
  const filters = { label: [`${RUN_LABEL}=${runId}`] };
  const [containers, networks, volumes] = await Promise.all([
    docker.listContainers({ all: true, filters }),
    docker.listNetworks({ filters }),
    docker.listVolumes({ filters }),
  ]);
  return { containers: containers.length, networks: networks.length, volumes: (volumes.Volumes ?? []).length };
}

/** Removes leftovers of earlier runs whose expiry has passed. Best effort: problems are debug lines. */
export async function sweepExpiredRuns(docker: Dockerode, log: Logger, now = Date.now()): Promise<string[]> {
  const expired = new Set<string>();
  const collect = (labels: Record<string, string> | undefined) => {
    const run = labels?.[RUN_LABEL];
    const expires = Number(labels?.[EXPIRES_LABEL]);
    if (run && Number.isFinite(expires) && expires < now) expired.add(run);
  };
  try {
    const filters = { label: [RUN_LABEL] };
    const [containers, networks, volumes] = await Promise.all([docker.listContainers({ all: true, filters }), docker.listNetworks({ filters }), docker.listVolumes({ filters })]);
    containers.forEach((c) => collect(c.Labels));
    networks.forEach((n) => collect(n.Labels));
    (volumes.Volumes ?? []).forEach((v) => collect(v.Labels as Record<string, string> | undefined));
    for (const run of expired) {
      const counts = await sweepByLabel(docker, `${RUN_LABEL}=${run}`, log);
      log.info(`Removed what an earlier, abandoned run (${run}) left behind: ${describeCounts(counts)}.`);
    }
  } catch (err) {
    log.debug(`Sweeping abandoned runs failed: ${errorMessage(err)}`);
  }
  return [...expired];
}

export function describeCounts(c: SweepCounts): string {
  return `${c.containers} container(s), ${c.networks} network(s), ${c.volumes} volume(s)`;
}
