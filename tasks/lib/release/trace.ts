// Traceability: what every container ComposeDeploy deploys (as labels) and every object
// KubernetesDeploy applies (as annotations) says about the release it belongs to — the run that
// deployed it, the build and commit of the release (from the image lock, else the run), and the
// sha256 of the lock file's bytes — and the summary table that links each image to the run that
// built it. One set of values, two key namespaces: reverse-DNS labels as Docker recommends, and
// prefixed annotation keys as Kubernetes requires (`container-outer-loop/`, as the variant label).
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { PipelineInfo, TaskContext, pipelineInfo, runUrl } from '../context';
import type { ImageLock } from '../lock/types';

export interface ReleaseTrace {
  /** The results page of the run that deploys. */
  runUrl?: string;
  /** The release's build number: the lock's, else the run's. */
  buildNumber?: string;
  /** The release's commit: the lock's, else the run's. */
  commit?: string;
  /** sha256:<hex> of the image lock file's bytes. */
  lockDigest?: string;
}

type TraceKeys = Record<keyof ReleaseTrace, string>;

/** Container labels (ComposeDeploy). */
export const COMPOSE_TRACE_LABELS: TraceKeys = {
  runUrl: 'dev.azure.pipelines.outer-loop.run-url',
  buildNumber: 'dev.azure.pipelines.outer-loop.build-number',
  commit: 'dev.azure.pipelines.outer-loop.commit',
  lockDigest: 'dev.azure.pipelines.outer-loop.lock-digest',
};

/** Object annotations (KubernetesDeploy), on each object's own metadata, never on a pod template. */
export const KUBE_TRACE_ANNOTATIONS: TraceKeys = {
  runUrl: 'container-outer-loop/run-url',
  buildNumber: 'container-outer-loop/build-number',
  commit: 'container-outer-loop/commit',
  lockDigest: 'container-outer-loop/lock-digest',
};

/** The sha256 digest of a lock file's bytes, as `sha256:<hex>`. */
export function lockFileDigest(file: string): string {
  return `sha256:${createHash('sha256').update(fs.readFileSync(file)).digest('hex')}`;
}

/** The trace of the release this run deploys. */
export function releaseTrace(ctx: Pick<TaskContext, 'variable'>, lock: ImageLock | undefined, lockDigest: string | undefined): ReleaseTrace {
  const run = pipelineInfo(ctx);
  return { runUrl: runUrl(run), buildNumber: lock?.buildNumber ?? run.buildNumber, commit: lock?.commit ?? run.commit, lockDigest };
}

/** The trace under `keys`; values that are not known are left out. */
export function traceEntries(trace: ReleaseTrace, keys: TraceKeys): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [field, key] of Object.entries(keys) as [keyof ReleaseTrace, string][]) {
    const value = trace[field];
    if (value) out[key] = value;
  }
  return out;
}

/** The results page of the run that built the lock's images; undefined when the lock does not say. */
export function buildRunUrl(lock: ImageLock): string | undefined {
  const p = lock.pipeline;
  const info: PipelineInfo = { collectionUri: p?.collectionUri, project: p?.project, buildId: p?.runId ?? lock.buildId };
  return runUrl(info);
}

const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

/**
 * The summary table of where each deployed image comes from: the run that built it (linked when the
 * lock names its collection, project and run), or the tag it was resolved from for a third-party image.
 */
export function provenanceTable(lock: ImageLock | undefined, images: { service: string; image: string }[]): string {
  const url = lock && buildRunUrl(lock);
  const run = lock ? `${lock.pipeline?.definition ? `${lock.pipeline.definition} ` : ''}${lock.buildNumber ?? (lock.buildId ? `run ${lock.buildId}` : 'the build')}` : undefined;
  const rows = images.map(({ service, image }) => {
    const locked = lock?.images.find((i) => i.ref === image || i.name === service);
    let from: string;
    if (!lock || !locked || locked.ref !== image) from = 'not from the image lock';
    else if (locked.source === 'resolved') from = `resolved from ${locked.tags.map((t) => `\`${cell(t)}\``).join(', ') || 'its tag'} (not built by the pipeline)`;
    else from = url ? `[${cell(run!)}](${url})` : `${cell(run!)} (the lock does not name the run)`;
    return `| ${cell(service)} | \`${cell(image)}\` | ${from} |`;
  });
  return ['| Service | Image | Built by |', '| --- | --- | --- |', ...rows].join('\n');
}
