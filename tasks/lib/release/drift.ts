// The drift report: does an environment run exactly the image lock? One comparison for both deploy
// tasks (`mode: verify`) and the local runner's `container-outer-loop status`. The readers of what
// runs (drift-compose.ts: a compose project's containers; drift-kube.ts: a namespace's pods) turn
// the environment into RunningContainer rows; this module compares them with what the lock says
// should run, words each difference, and renders the table for the job summary.
import type { ImageLock } from '../lock/types';
import { InputError, OuterLoopError } from '../errors';

/** One image the environment should run, for one service (a compose service or a Kubernetes workload). */
export interface ExpectedImage {
  service: string;
  /** The container inside a Kubernetes workload; undefined: matched by repository. */
  container?: string;
  repository: string;
  /** undefined: not pinned (allowUnpinned), so only its presence is checked. */
  digest?: string;
  /** Compared when it runs, not missing when it does not: a Job's or CronJob's pods come and go. */
  optional?: boolean;
}

/** One container as the environment runs it. */
export interface RunningContainer {
  /** The compose service, or the workload owning the pod; undefined: neither. */
  service?: string;
  /** The container inside a pod (Kubernetes). */
  container?: string;
  /** For people: the container name, or `pod/container`. */
  name: string;
  repository?: string;
  /** The registry digest of what runs; undefined when the runtime reports none. */
  digest?: string;
  restarts: number;
  /** For people: running, healthy, exited 1, CrashLoopBackOff, … */
  state: string;
  /** Why it is not serving: exited with an error, unhealthy, waiting; undefined when fine. */
  down?: string;
  /** Why it was not started by the deploy task (a `docker run` with the project's labels, a bare pod); undefined when it was. */
  byHand?: string;
}

export type DriftKind = 'missing' | 'digest' | 'extra' | 'by-hand' | 'restarts' | 'down';

export interface Difference {
  kind: DriftKind;
  service: string;
  /** The container concerned; undefined for a missing service. */
  name?: string;
  message: string;
}

export interface DriftRow {
  service: string;
  name?: string;
  expected?: string;
  running?: string;
  state: string;
  restarts?: number;
  kinds: DriftKind[];
}

export interface DriftReport {
  rows: DriftRow[];
  differences: Difference[];
}

export interface DriftOptions {
  /** Restarts a container may have had; more is drift. */
  maxRestarts: number;
}

export class DriftError extends OuterLoopError {}

export const MAX_RESTARTS_LIMIT = 1000;

export function checkDriftInputs(options: DriftOptions): void {
  if (!Number.isInteger(options.maxRestarts) || options.maxRestarts < 0 || options.maxRestarts > MAX_RESTARTS_LIMIT) {
    throw new InputError(`Input 'maxRestarts' must be a whole number from 0 to ${MAX_RESTARTS_LIMIT}, not ${options.maxRestarts}.`);
  }
}

/** What an environment should run according to the lock alone: each image under its lock name (the compose service). */
export function expectedFromLock(lock: ImageLock, notDeployed: string[] = []): ExpectedImage[] {
  return lock.images.filter((i) => !notDeployed.includes(i.name)).map((i) => ({ service: i.name, repository: i.repository, digest: i.digest }));
}

/** The service column of a container that belongs to none. */
const NO_SERVICE = '—';

/** By service name, containers of no service last. */
function serviceOrder(a: string | undefined, b: string | undefined): number {
  const unknown = (s?: string) => (s === undefined || s === NO_SERVICE ? 1 : 0);
  return unknown(a) - unknown(b) || (a ?? '').localeCompare(b ?? '');
}

const short = (digest?: string) => (digest ? digest.replace(/^sha256:/, '').slice(0, 12) : undefined);

export function compareDrift(expected: ExpectedImage[], running: RunningContainer[], options: DriftOptions): DriftReport {
  const rows: DriftRow[] = [];
  const differences: Difference[] = [];
  const matched = new Set<ExpectedImage>();
  const byService = new Map<string, ExpectedImage[]>();
  for (const e of expected) byService.set(e.service, [...(byService.get(e.service) ?? []), e]);

  for (const c of [...running].sort((a, b) => serviceOrder(a.service, b.service) || a.name.localeCompare(b.name))) {
    const service = c.service ?? NO_SERVICE;
    const candidates = c.service === undefined ? [] : (byService.get(c.service) ?? []);
    const kinds: DriftKind[] = [];
    const who = `${c.name}${c.service === undefined ? '' : ` (service ${c.service})`}`;
    const add = (kind: DriftKind, message: string) => {
      kinds.push(kind);
      differences.push({ kind, service, name: c.name, message });
    };
    // The expected image of this container: by container name in a pod, else by repository; a
    // service with a single image takes any container (one replaced by another image).
    const want =
      candidates.find((e) => (e.container !== undefined && c.container !== undefined ? e.container === c.container : e.repository === c.repository)) ??
      (candidates.length === 1 ? candidates[0] : undefined);
    if (!want) {
      add('extra', c.service === undefined ? `${who} is not part of the release (no service of the lock).` : `${who} is not part of the release: the lock has no ${candidates.length ? `image ${c.repository ?? '?'} for it` : `service '${c.service}'`}.`);
    } else {
      matched.add(want);
      if (c.repository !== want.repository) add('digest', `${who} runs ${c.repository ?? 'an unknown image'}, not the lock's ${want.repository}.`);
      else if (want.digest && c.digest !== want.digest) add('digest', `${who} runs ${c.digest ?? 'an image with no registry digest'}, not the lock's ${want.digest}.`);
    }
    if (c.byHand) add('by-hand', `${who} was not started by the deploy: ${c.byHand}.`);
    if (c.restarts > options.maxRestarts) add('restarts', `${who} restarted ${c.restarts} time(s), more than maxRestarts (${options.maxRestarts}).`);
    if (c.down) add('down', `${who} is not serving: ${c.down}.`);
    rows.push({ service, name: c.name, expected: want?.digest, running: c.digest, state: c.state, restarts: c.restarts, kinds });
  }
  for (const e of expected) {
    if (matched.has(e) || e.optional) continue;
    const what = `${e.service}${e.container ? ` (container ${e.container})` : ''}`;
    differences.push({ kind: 'missing', service: e.service, message: `${what} is not running: the lock has ${e.repository}${e.digest ? `@${e.digest}` : ''} for it.` });
    rows.push({ service: e.service, name: e.container, expected: e.digest, state: 'not running', kinds: ['missing'] });
  }
  rows.sort((a, b) => serviceOrder(a.service, b.service) || (a.name ?? '').localeCompare(b.name ?? ''));
  return { rows, differences };
}

const KIND_WORDS: Record<DriftKind, string> = {
  missing: 'missing',
  digest: 'other image',
  extra: 'not in the lock',
  'by-hand': 'started by hand',
  restarts: 'restarts',
  down: 'not serving',
};

/** The summary table: one row per container (and per missing service). */
export function driftTable(report: DriftReport): string {
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  const lines = ['| service | container | lock digest | running digest | state | restarts | drift |', '|---|---|---|---|---|---|---|'];
  for (const r of report.rows) {
    const drift = r.kinds.length ? `❌ ${r.kinds.map((k) => KIND_WORDS[k]).join(', ')}` : '✅ none';
    const digest = (d?: string) => (d ? `\`${short(d)}\`` : '—');
    lines.push(`| ${esc(r.service)} | ${esc(r.name ?? '—')} | ${digest(r.expected)} | ${digest(r.running)} | ${esc(r.state)} | ${r.restarts ?? '—'} | ${drift} |`);
  }
  return lines.join('\n');
}

export interface DriftOutcome {
  title: string;
  /** Where: `project 'shop-prod' on ssh://deploy@host`, `namespace 'shop' on https://…`. */
  where: string;
  lockName?: string;
  failOnDrift: boolean;
}

/** The whole report as Markdown, for the job summary and the CLI. */
export function driftMarkdown(report: DriftReport, outcome: DriftOutcome, options: DriftOptions): string {
  const verdict = report.differences.length
    ? `**Drift:** ${report.differences.length} difference${report.differences.length === 1 ? '' : 's'} from the image lock.`
    : '**No drift:** the environment runs exactly the image lock.';
  return [
    `### ${outcome.title}`,
    '',
    `${outcome.where}${outcome.lockName ? `, compared with ${outcome.lockName}` : ''}; maxRestarts ${options.maxRestarts}.`,
    '',
    verdict,
    '',
    driftTable(report),
    '',
  ].join('\n');
}

/**
 * Logs each difference, then fails with DriftError (failOnDrift) or warns. `log.warn` gets one line
 * per difference, so the pipeline shows each as a warning or the error lists them all.
 */
export function concludeDrift(report: DriftReport, outcome: DriftOutcome, log: { info(m: string): void; warn(m: string): void }): void {
  if (!report.differences.length) {
    log.info(`No drift: ${outcome.where} runs exactly the image lock (${report.rows.length} container${report.rows.length === 1 ? '' : 's'}).`);
    return;
  }
  const list = report.differences.map((d) => `  ${d.message}`).join('\n');
  const head = `Drift: ${outcome.where} differs from the image lock in ${report.differences.length} way${report.differences.length === 1 ? '' : 's'}:`;
  if (outcome.failOnDrift) throw new DriftError(`${head}\n${list}`);
  for (const d of report.differences) log.warn(`Drift: ${d.message}`);
  log.info(`failOnDrift is false: the drift above is reported as warnings only.`);
}
