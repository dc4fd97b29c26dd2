// The bake window: after a release passed its gate (ComposeDeploy's health gate, KubernetesDeploy's
// rollout) and the digest check, keep watching it for bakeSeconds. A watcher per task looks at what
// runs once a second (containers through the Engine API, pods through the API server); the smoke
// test URL, when given, must answer 2xx, once at the start and every 5 s. The first failure ends the
// window, and the deploy fails with what failed and how many seconds into the window; the task then
// rolls back as after a failed gate. The window ends at its length, and at once on a cancel.
import type Dockerode from 'dockerode';
import { InputError, OuterLoopError } from '../errors';
import { abortError } from '../util/abort';
import { bounded } from '../util/bounds';
import { oneShotServices, projectContainers, readiness } from '../compose/containers';
import { diagnostics, replicasOf } from '../compose-deploy/health';
import type { KubeClient } from '../kube/client';
import { KubeObject, describe } from '../kube/objects';
import { diagnosePods, formatProblems, workloadPods } from '../kube/rollout';
import { HttpTransport, NetworkError, safeUrl, withTransport } from '../util/http';
import { sleep } from '../util/retry';
import type { Logger } from '../context';

export const MAX_BAKE_SECONDS = 3600;
/** How often a watcher looks. */
const WATCH_EVERY_MS = 1_000;
/** How often the smoke test URL is asked. */
const SMOKE_EVERY_MS = 5_000;
/** Bound of one smoke request, and of one look of a watcher. */
const REQUEST_TIMEOUT_MS = 10_000;

/** What runs, watched for the window: `look` says what went wrong, or undefined. */
export interface BakeWatcher {
  /** "the containers of project shop-qa", for the log. */
  what: string;
  /** Called once when the window opens: what counts from here on (restart counts, who is ready). */
  start(): Promise<void>;
  look(): Promise<string | undefined>;
}

export interface BakeOptions {
  seconds: number;
  smokeTestUrl?: string;
  signal: AbortSignal;
  log: Logger;
  transport?: HttpTransport;
  /** Intervals, for tests; the defaults are the task's. */
  watchEveryMs?: number;
  smokeEveryMs?: number;
}

/** bakeSeconds and smokeTestUrl, checked before anything is deployed. */
export function checkBakeInputs(seconds: number, smokeTestUrl: string | undefined): void {
  if (!Number.isInteger(seconds) || seconds < 0 || seconds > MAX_BAKE_SECONDS) throw new InputError(`Input 'bakeSeconds' must be a whole number from 0 to ${MAX_BAKE_SECONDS}, not ${seconds}.`);
  if (smokeTestUrl === undefined) return;
  let url: URL | undefined;
  try {
    url = new URL(smokeTestUrl);
  } catch {
    // undefined below
  }
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) throw new InputError(`Input 'smokeTestUrl': '${smokeTestUrl}' is not an http:// or https:// URL. Give the full address the agent can reach, e.g. https://qa.shop.example.com/health.`);
}

/**
 * Watches for `seconds` (and asks the smoke test URL), or only asks the URL once with seconds 0.
 * Returns why the window failed ("The bake window failed 5.2 s into its 30 s: …"), or undefined
 * when it passed or there is no window. Rejects with CancelledError at once when the job is cancelled.
 */
export async function bakeWindow(watcher: BakeWatcher, options: BakeOptions): Promise<string | undefined> {
  const { seconds, smokeTestUrl, log } = options;
  if (seconds === 0 && !smokeTestUrl) return undefined;
  const title = seconds > 0 ? `Bake window: ${seconds} s watching ${watcher.what}${smokeTestUrl ? ` and ${safeUrl(smokeTestUrl)}` : ''}` : `Smoke test: ${safeUrl(smokeTestUrl!)}`;
  return log.group(title, () =>
    withTransport(options.transport, async (transport) => {
      const opened = Date.now();
      const end = opened + seconds * 1000;
      // Ends the other look when one fails; the job's cancel ends both.
      const stop = new AbortController();
      const signal = AbortSignal.any([options.signal, stop.signal]);
      // A smoke request ends itself at REQUEST_TIMEOUT_MS, with its own message; the second more is for that.
      const boundedLook = (what: string, look: () => Promise<string | undefined>) => () =>
        bounded(look(), { deadline: Date.now() + REQUEST_TIMEOUT_MS + 1_000, signal: options.signal, onTimeout: () => new OuterLoopError(`the bake window's look at ${what} got no answer within ${REQUEST_TIMEOUT_MS / 1000} s`) });
      const every = async (ms: number, look: () => Promise<string | undefined>): Promise<{ why: string; at: number } | undefined> => {
        for (;;) {
          let why: string | undefined;
          try {
            why = await look();
          } catch (err) {
            stop.abort(); // the other look must not go on alone
            throw err;
          }
          if (why) {
            stop.abort();
            return { why, at: (Date.now() - opened) / 1000 };
          }
          const wait = Math.min(ms, end - Date.now());
          if (wait <= 0 || stop.signal.aborted) return undefined;
          try {
            await sleep(wait, signal);
          } catch {
            if (options.signal.aborted) throw abortError(options.signal);
            return undefined; // the other look failed
          }
        }
      };
      let probes = 0;
      const smoke = async () => {
        probes++;
        return smokeTest(transport, smokeTestUrl!, options.signal);
      };
      if (seconds > 0) await bounded(watcher.start(), { deadline: Date.now() + REQUEST_TIMEOUT_MS, signal: options.signal, onTimeout: () => new OuterLoopError(`the bake window could not read ${watcher.what} within ${REQUEST_TIMEOUT_MS / 1000} s`) });
      const failures = await Promise.all([
        seconds > 0 ? every(options.watchEveryMs ?? WATCH_EVERY_MS, boundedLook(watcher.what, () => watcher.look())) : undefined,
        smokeTestUrl ? every(options.smokeEveryMs ?? SMOKE_EVERY_MS, boundedLook(safeUrl(smokeTestUrl ?? ''), smoke)) : undefined,
      ]);
      const first = failures.filter((f) => f !== undefined).sort((a, b) => a.at - b.at)[0];
      if (first) {
        const message = seconds > 0 ? `The bake window failed ${first.at.toFixed(1)} s into its ${seconds} s: ${first.why}` : `The smoke test failed: ${first.why}`;
        log.info(message);
        return message;
      }
      log.info(seconds > 0 ? `Bake window passed: ${seconds} s without a failure${smokeTestUrl ? `; the smoke test answered 2xx ${probes} time${probes === 1 ? '' : 's'}` : ''}.` : 'Smoke test passed.');
      return undefined;
    }),
  );
}

/** One GET of the smoke test URL: why it failed, or undefined for a 2xx. The URL is printed without its query. */
async function smokeTest(transport: HttpTransport, url: string, signal: AbortSignal): Promise<string | undefined> {
  try {
    const res = await transport.request({ method: 'GET', url, timeoutMs: REQUEST_TIMEOUT_MS, maxBodyBytes: 1024 * 1024, signal });
    if (res.status >= 200 && res.status < 300) return undefined;
    const text = res.body.toString('utf8').trim().split('\n')[0].slice(0, 200);
    return `the smoke test GET ${safeUrl(url)} answered ${res.status}${text ? ` (${text})` : ''}, not 2xx`;
  } catch (err) {
    if (signal.aborted) throw abortError(signal);
    const why = err instanceof NetworkError ? `${err.code}: ${err.message}` : (err as Error).message;
    return `the smoke test GET ${safeUrl(url)} got no answer (${why})`;
  }
}

// ---- ComposeDeploy: the project's containers through the Engine API ----------------------------

/**
 * A container that exits (but a one-shot service's exit 0), restarts (its restart count moves from
 * where it was when the window opened), turns unhealthy, or goes missing (a service short of its
 * containers) fails the window, with its last health checks and log lines.
 */
export function composeWatcher(docker: Dockerode, project: string, model: Record<string, unknown>): BakeWatcher {
  const services = (model.services ?? {}) as Record<string, Record<string, unknown>>;
  const rules = { oneShot: oneShotServices(services), replicas: replicasOf(services), restartBaseline: new Map<string, number>() };
  return {
    what: `the containers of project '${project}'`,
    async start() {
      for (const s of await projectContainers(docker, project)) rules.restartBaseline.set(s.id, s.restartCount);
    },
    async look() {
      const states = await projectContainers(docker, project);
      // A container replaced meanwhile (by hand) counts from its first sight.
      for (const s of states) if (!rules.restartBaseline.has(s.id)) rules.restartBaseline.set(s.id, s.restartCount);
      const result = readiness(states, rules);
      const failed = result.failed[0];
      if (failed) return `${failed.state.name} (service ${failed.state.service}) ${failed.why}.${await diagnostics(docker, failed.state.id)}`;
      // After the gate nothing is still starting: whatever is not ready now has stopped being so.
      const waiting = result.waiting[0];
      if (waiting) return `${waiting.what}: no longer ready.${waiting.state ? await diagnostics(docker, waiting.state.id) : ''}`;
      return undefined;
    },
  };
}

// ---- KubernetesDeploy: the workloads' pods through the API server -------------------------------

interface PodSeen {
  restarts: Map<string, number>;
  wasReady: boolean;
  /** Evicted before the window opened (an evicted pod stays, Failed, until it is removed): not this release's failure. */
  evictedBefore: boolean;
}

type Status = Record<string, unknown>;

/** Why a pod is (being) evicted, or undefined: the kubelet's status reason, or the DisruptionTarget condition. */
function eviction(pod: KubeObject): string | undefined {
  const status = (pod.status ?? {}) as Status;
  if (status.reason === 'Evicted') return `evicted${status.message ? ` (${String(status.message)})` : ''}`;
  const conditions = Array.isArray(status.conditions) ? (status.conditions as Status[]) : [];
  const target = conditions.find((c) => c.type === 'DisruptionTarget' && c.status === 'True');
  if (target) return `evicted: ${String(target.reason ?? 'DisruptionTarget')}${target.message ? ` (${String(target.message)})` : ''}`;
  return undefined;
}

function isReady(pod: KubeObject): boolean {
  const conditions = ((pod.status ?? {}) as Status).conditions;
  return Array.isArray(conditions) && (conditions as Status[]).some((c) => c.type === 'Ready' && c.status === 'True');
}

function restartCounts(pod: KubeObject): Map<string, number> {
  const status = (pod.status ?? {}) as Status;
  const statuses = [...((status.initContainerStatuses as Status[]) ?? []), ...((status.containerStatuses as Status[]) ?? [])];
  return new Map(statuses.map((cs) => [String(cs.name), typeof cs.restartCount === 'number' ? cs.restartCount : 0]));
}

/**
 * A pod of a watched workload (Deployments, StatefulSets, DaemonSets; a Job's pods end by design)
 * whose container restarts, that was Ready and is no longer, or that is evicted fails the window;
 * the message carries the pods' reasons and last log lines. A pod that is deleted (scaled down,
 * replaced) does not count; its replacement is watched from when it is first seen.
 */
export function kubeWatcher(client: KubeClient, workloads: KubeObject[], options: { tailLines: number }): BakeWatcher {
  const watched = workloads.filter((w) => w.kind !== 'Job');
  const seen = new Map<string, PodSeen>();
  const note = (pod: KubeObject) => {
    const uid = String(pod.metadata.uid ?? pod.metadata.name);
    let s = seen.get(uid);
    if (!s) seen.set(uid, (s = { restarts: restartCounts(pod), wasReady: false, evictedBefore: false }));
    return s;
  };
  return {
    what: `the pods of ${watched.map((w) => describe(w)).join(', ') || 'no workload'}`,
    async start() {
      for (const w of watched) {
        for (const pod of await workloadPods(client, w)) {
          const s = note(pod);
          s.wasReady = isReady(pod);
          s.evictedBefore = eviction(pod) !== undefined;
        }
      }
    },
    async look() {
      const pods = await Promise.all(watched.map((w) => workloadPods(client, w)));
      for (const [i, w] of watched.entries()) {
        for (const pod of pods[i]) {
          const s = note(pod);
          if (s.evictedBefore) continue;
          const name = `pod ${String(pod.metadata.name)} of ${describe(w)}`;
          let why = eviction(pod);
          for (const [container, count] of restartCounts(pod)) {
            const before = s.restarts.get(container) ?? 0;
            if (!why && count > before) why = `container ${container} restarted (${count - before} time${count - before === 1 ? '' : 's'})`;
          }
          const ready = isReady(pod);
          if (!why && s.wasReady && !ready) why = 'lost its readiness (Ready is no longer True)';
          s.wasReady ||= ready;
          if (why) {
            const problems = await diagnosePods(client, w, { tailLines: options.tailLines });
            return `${name}: ${why}.${problems.length ? `\n${formatProblems(problems)}` : ''}`;
          }
        }
      }
      return undefined;
    },
  };
}
