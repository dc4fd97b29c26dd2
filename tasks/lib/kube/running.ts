// What a namespace runs now, per workload container, through the API server: the images of the
// pod templates of its Deployments, StatefulSets, DaemonSets, CronJobs and Jobs (Jobs a CronJob
// made, and canary/baseline variants, left out: they follow their owner). Used by the promotion
// diff before a deploy; `workloadImages` names containers the same way for the release.
import type { ReleaseImage, RunningImage } from '../release/diff';
import { KubeApiError, type KubeClient } from './client';
import { KubeObject, VARIANT_LABEL, templateContainers } from './objects';
import { digestOfImageId } from './rollout';

/** The workload kinds whose pod templates the diff compares, with their API versions. */
export const WORKLOAD_KINDS: [apiVersion: string, kind: string][] = [
  ['apps/v1', 'Deployment'],
  ['apps/v1', 'StatefulSet'],
  ['apps/v1', 'DaemonSet'],
  ['batch/v1', 'CronJob'],
  ['batch/v1', 'Job'],
];

/**
 * The images of a workload's pod template, one per container: named after the workload
 * (`web`) when the pod has one container, else `<workload>/<container>` (init containers too).
 * Empty for an object that is not a workload of WORKLOAD_KINDS.
 */
export function workloadImages(obj: KubeObject): { service: string; image: string }[] {
  if (!WORKLOAD_KINDS.some(([, kind]) => kind === obj.kind)) return [];
  const containers = templateContainers(obj);
  const name = String(obj.metadata.name);
  return containers.map((c) => ({ service: containers.length === 1 ? name : `${name}/${c.name}`, image: c.image }));
}

/** The release's images from the rendered (pinned) objects. */
export function releaseWorkloads(objects: KubeObject[]): ReleaseImage[] {
  return objects.flatMap(workloadImages).map((w) => ({ ...w, digest: digestOfImageId(w.image) }));
}

/**
 * Every workload container of the namespace now, sorted; the digest is the one its template pins
 * (none for a tag). A kind the account may not list (403) fails the read, unless `onForbidden` is
 * given: then it is told, and that kind is left out.
 */
export async function runningWorkloads(client: KubeClient, namespace: string, options: { onForbidden?: (kind: string, error: KubeApiError) => void } = {}): Promise<RunningImage[]> {
  const out: RunningImage[] = [];
  const listKind = async ([apiVersion, kind]: [string, string]) => {
    try {
      return { apiVersion, kind, items: (await client.list(apiVersion, kind, namespace)).items };
    } catch (err) {
      if (!(err instanceof KubeApiError && err.status === 403 && options.onForbidden)) throw err;
      options.onForbidden(kind, err);
      return { apiVersion, kind, items: [] };
    }
  };
  const lists = await Promise.all(WORKLOAD_KINDS.map(listKind));
  for (const { apiVersion, kind, items } of lists) {
    for (const obj of items) {
      if (obj.metadata.labels?.[VARIANT_LABEL]) continue;
      const owners = (obj.metadata as { ownerReferences?: { kind?: string }[] }).ownerReferences ?? [];
      if (owners.some((o) => o.kind === 'CronJob')) continue;
      // Items of a list carry no kind of their own.
      for (const w of workloadImages({ ...obj, apiVersion, kind })) {
        const digest = digestOfImageId(w.image);
        out.push({ ...w, digests: digest ? [digest] : [] });
      }
    }
  }
  return out.sort((a, b) => a.service.localeCompare(b.service));
}
