// Server-side apply of a set of objects, in dependency order, with one field manager. Before
// anything is applied every kind is checked against discovery, so a manifest naming a kind the
// cluster does not serve fails the task with nothing half-applied. A conflict names the field
// manager that owns the field (the API's 409 says so) and what to do; `force` takes the fields over.
import { OuterLoopError } from '../errors';
import { ApiResource, KubeApiError, KubeClient } from './client';
import { KubeObject, describe, sortForApply } from './objects';

export interface ApplyItem {
  object: KubeObject;
  /** Where it came from, for messages: "manifest 'k8s/web.yaml', document 2" or "compose service 'web'". */
  where: string;
}

export interface ApplyOptions {
  fieldManager: string;
  force: boolean;
}

export interface Applied {
  object: KubeObject;
  live: KubeObject;
  resource: ApiResource;
}

/** An apply refused because another field manager owns fields with other values. */
export class ApplyConflictError extends OuterLoopError {
  constructor(
    message: string,
    readonly managers: string[],
    readonly fields: string[],
  ) {
    super(message);
  }
}

/**
 * Checks every kind against discovery and puts namespaced objects without a namespace into
 * `namespace` (cluster-scoped objects lose any namespace). Returns the resources, in order.
 */
export async function resolveResources(client: KubeClient, items: ApplyItem[], namespace: string): Promise<Map<ApplyItem, ApiResource>> {
  const resources = new Map<ApplyItem, ApiResource>();
  for (const item of items) {
    const resource = await client.resourceFor(item.object.apiVersion, item.object.kind, item.where);
    if (!resource.verbs.includes('patch')) {
      throw new OuterLoopError(`${describe(item.object)} (${item.where}): the cluster does not allow patching ${resource.name}, so it cannot be applied.`);
    }
    if (resource.namespaced) item.object.metadata.namespace ??= namespace;
    else delete item.object.metadata.namespace;
    resources.set(item, resource);
  }
  return resources;
}

export async function applyObject(client: KubeClient, item: ApplyItem, options: ApplyOptions): Promise<KubeObject> {
  try {
    return await client.apply(item.object, options);
  } catch (err) {
    throw explainApplyError(err, item, options);
  }
}

export async function applyAll(
  client: KubeClient,
  items: ApplyItem[],
  resources: Map<ApplyItem, ApiResource>,
  options: ApplyOptions,
  log: { info(m: string): void; debug(m: string): void },
): Promise<Applied[]> {
  const applied: Applied[] = [];
  for (const item of sortForApply(items)) {
    let live: KubeObject;
    try {
      live = await client.apply(item.object, options);
    } catch (err) {
      if (item.object.kind === 'Job' && err instanceof KubeApiError && err.status === 422 && /immutable/i.test(err.message)) {
        // A Job's pod template cannot change: replace the Job (its pods go with it).
        log.info(`${describe(item.object)}: the template of a Job cannot change; deleting the old Job and creating it again.`);
        await client.delete('batch/v1', 'Job', item.object.metadata.namespace, item.object.metadata.name as string, 'Background');
        await waitGone(client, item.object, Date.now() + 60_000);
        live = await applyObject(client, item, options);
      } else throw explainApplyError(err, item, options);
    }
    const generation = (live.metadata as { generation?: number }).generation;
    log.info(`  ${describe(item.object)} applied${generation !== undefined ? ` (generation ${generation})` : ''}`);
    applied.push({ object: item.object, live, resource: resources.get(item)! });
  }
  return applied;
}

function explainApplyError(err: unknown, item: ApplyItem, options: ApplyOptions): unknown {
  if (!(err instanceof KubeApiError)) return err;
  if (err.status === 409 && err.reason === 'Conflict') {
    const causes = (err.details?.causes ?? []).filter((c) => c.reason === 'FieldManagerConflict' || c.field);
    const managers = [...new Set(causes.map((c) => /conflict with "([^"]+)"/.exec(c.message ?? '')?.[1]).filter((m): m is string => !!m))];
    const fields = causes.map((c) => c.field ?? '?');
    const list = causes.map((c) => `    ${c.field ?? '?'}: ${c.message ?? 'conflict'}`).join('\n');
    return new ApplyConflictError(
      `Server-side apply of ${describe(item.object)} (${item.where}) conflicts with field manager${managers.length === 1 ? '' : 's'} ${managers.map((m) => `'${m}'`).join(', ') || '(unknown)'}, which own${managers.length === 1 ? 's' : ''} fields with other values:\n${list}\n` +
        `Another tool (or a person with kubectl) changed them. Remove these fields from the manifest so that ${managers.join(', ') || 'it'} keeps them, or set forceConflicts: true to make '${options.fieldManager}' their owner.`,
      managers,
      fields,
    );
  }
  if (err.status === 404 && /namespaces? "?[^"]*"? not found/i.test(err.message)) {
    return new OuterLoopError(`${describe(item.object)} (${item.where}): namespace '${item.object.metadata.namespace}' does not exist. Create it, or set createNamespace: true.`, { cause: err });
  }
  if (err.status === 422 || err.status === 400) {
    const causes = (err.details?.causes ?? []).map((c) => `    ${c.field ?? ''}: ${c.message ?? ''}`).join('\n');
    return new OuterLoopError(`The API server rejected ${describe(item.object)} (${item.where}): ${err.message}${causes ? `\n${causes}` : ''}`, { cause: err });
  }
  return err;
}

/** Waits (by watch) until an object is gone, bounded by `deadline`. */
export async function waitGone(client: KubeClient, object: KubeObject, deadline: number): Promise<void> {
  const resource = await client.resourceFor(object.apiVersion, object.kind);
  while (Date.now() < deadline) {
    const current = await client.get(object.apiVersion, object.kind, object.metadata.namespace, object.metadata.name as string);
    if (!current) return;
    const rv = (current.metadata as { resourceVersion?: string }).resourceVersion;
    let gone = false;
    await client.watch(client.resourcePath(resource, object.metadata.namespace), { fieldSelector: `metadata.name=${object.metadata.name}`, resourceVersion: rv }, (e) => {
      if (e.type === 'DELETED') gone = true;
      return gone;
    }, Math.max(1, deadline - Date.now()));
    if (gone) return;
  }
  throw new OuterLoopError(`${describe(object)} was not deleted in time; it may have finalizers that block deletion.`);
}

/** `kubernetes.io/dockerconfigjson` Secret for pulling from a registry. */
export function pullSecretObject(name: string, namespace: string, server: string, username: string, password: string, labels: Record<string, string>): { object: KubeObject; secrets: string[] } {
  const auth = Buffer.from(`${username}:${password}`).toString('base64');
  const config = JSON.stringify({ auths: { [server]: { username, password, auth } } });
  const data = Buffer.from(config).toString('base64');
  return {
    object: { apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace, labels }, type: 'kubernetes.io/dockerconfigjson', data: { '.dockerconfigjson': data } },
    secrets: [password, auth, config, data],
  };
}
