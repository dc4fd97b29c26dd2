// The trace annotations (release/trace.ts) of the objects KubernetesDeploy applies, on each object's
// own metadata: never on a pod template, whose annotations would roll the pods out again. A
// Deployment's generation still moves when its annotations change (the API server copies them to
// the ReplicaSet), so values that change with every run (the run URL does) would move it on every
// deploy. They change only with the object: `container-outer-loop/content-digest` is the sha256 of
// what the task applies without them, and an object whose live copy has the same content digest
// keeps the live trace annotations, so that its apply changes nothing. The annotations of an object
// thus name the deploy that last changed it. They are added at apply time (they depend on what the
// namespace holds): the rendered manifests artifact does not carry them.
import { createHash } from 'node:crypto';
import type { TaskContext } from '../context';
import { KUBE_TRACE_ANNOTATIONS } from '../release/trace';
import type { ApplyItem } from './apply';
import { KubeApiError, type KubeClient } from './client';
import { KubeObject, describe } from './objects';
import type { BeforeState } from './rollback';

export const CONTENT_DIGEST_ANNOTATION = 'container-outer-loop/content-digest';
const TRACE_KEYS = new Set<string>([...Object.values(KUBE_TRACE_ANNOTATIONS), CONTENT_DIGEST_ANNOTATION]);

/** JSON with the keys of every mapping sorted: the same data always gives the same text. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.keys(value as object)
      .sort()
      .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${canonical((value as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

/** sha256 of the object as applied, without the trace annotations. */
export function contentDigest(obj: KubeObject): string {
  const annotations = Object.fromEntries(Object.entries(obj.metadata.annotations ?? {}).filter(([k]) => !TRACE_KEYS.has(k)));
  const bare = { ...obj, metadata: { ...obj.metadata, annotations: Object.keys(annotations).length ? annotations : undefined } };
  return `sha256:${createHash('sha256').update(canonical(bare)).digest('hex')}`;
}

/**
 * Adds the trace annotations to `obj` (in place): `trace`, this run's, unless `live` (the object as
 * the namespace has it, if it does) has the same content digest and trace annotations of its own.
 */
export function annotateForTrace(obj: KubeObject, live: KubeObject | undefined, trace: Record<string, string>): void {
  if (!Object.keys(trace).length) return;
  const digest = contentDigest(obj);
  const liveAnnotations = live?.metadata.annotations ?? {};
  const kept = Object.fromEntries(Object.values(KUBE_TRACE_ANNOTATIONS).filter((k) => liveAnnotations[k] !== undefined).map((k) => [k, liveAnnotations[k]]));
  const unchanged = liveAnnotations[CONTENT_DIGEST_ANNOTATION] === digest && Object.keys(kept).length > 0;
  obj.metadata.annotations = { ...(obj.metadata.annotations ?? {}), ...(unchanged ? kept : trace), [CONTENT_DIGEST_ANNOTATION]: digest };
}

/** The trace annotations of every object to apply (trace.ts), from its live copy: as `read` holds it, else fetched. */
export async function annotateItems(client: KubeClient, items: ApplyItem[], trace: Record<string, string>, ctx: TaskContext, read: Map<ApplyItem, BeforeState>): Promise<void> {
  if (!Object.keys(trace).length) return;
  // The live copies not read yet, all at once (one after another, 420 objects cost seconds).
  const live = await Promise.all(items.map((item) => (read.has(item) ? read.get(item)!.live : liveObject(client, item.object, ctx))));
  items.forEach((item, i) => annotateForTrace(item.object, live[i], trace));
}

/** The object as the cluster has it; undefined when it does not, or the account may not read it (it then gets this run's trace). */
async function liveObject(client: KubeClient, object: KubeObject, ctx: TaskContext): Promise<KubeObject | undefined> {
  try {
    return await client.get(object.apiVersion, object.kind, object.metadata.namespace, object.metadata.name as string);
  } catch (err) {
    if (!(err instanceof KubeApiError && err.status === 403)) throw err;
    ctx.debug(`kubernetes: may not read ${describe(object)} (403); it gets this run's trace annotations`);
    return undefined;
  }
}
