// Server-side apply (PATCH application/apply-patch+yaml): checks the applied object against the
// URL, takes field ownership (managed-fields.ts), defaults and validates the result, and stores it.
import { randomUUID } from 'node:crypto';
import { applyDefaults, validate } from './defaults';
import { applyFields, type Conflict } from './managed-fields';
import { apiVersionOf, isObj, sameValue, statusBody, timestamp, type Answer, type Obj, type ResourceDef } from './resources';
import type { ObjectStore, Stored } from './store';

const badRequest = (message: string): Answer => ({ status: 400, body: statusBody(400, 'BadRequest', message) });

/** 409 as the real server words it: 'Apply failed with 1 conflict: conflict with "kubectl-scale" using apps/v1: .spec.replicas'. */
function conflictAnswer(conflicts: Conflict[]): Answer {
  const text = (c: Conflict) => `conflict with "${c.manager}" using ${c.apiVersion}`;
  const message =
    conflicts.length === 1
      ? `Apply failed with 1 conflict: ${text(conflicts[0])}: ${conflicts[0].field}`
      : `Apply failed with ${conflicts.length} conflicts: ${conflicts.map((c) => `${text(c)}: ${c.field}`).join('\n')}`;
  return { status: 409, body: statusBody(409, 'Conflict', message, { causes: conflicts.map((c) => ({ reason: 'FieldManagerConflict', message: text(c), field: c.field })) }) };
}

export function serverSideApply(store: ObjectStore, res: ResourceDef, ns: string | undefined, name: string, applied: Obj, manager: string, force: boolean): Answer {
  if (!isObj(applied)) return badRequest('the body of an apply patch must be an object');
  if (applied.apiVersion !== apiVersionOf(res) || applied.kind !== res.kind) {
    return badRequest(`the API version in the data (${applied.apiVersion}) and kind (${applied.kind}) do not match the request (${apiVersionOf(res)}, ${res.kind})`);
  }
  applied.metadata ??= {};
  if (applied.metadata.name !== name) return badRequest(`the name of the object (${applied.metadata.name}) does not match the name on the URL (${name})`);
  if (res.namespaced) {
    if (applied.metadata.namespace !== undefined && applied.metadata.namespace !== ns) return badRequest('the namespace of the provided object does not match the namespace sent on the request');
    if (!store.namespaceExists(ns!)) return { status: 404, body: statusBody(404, 'NotFound', `namespaces "${ns}" not found`, { name: ns, kind: 'namespaces' }) };
  }
  const existing = store.get(res, ns, name);
  const live: Obj = existing ? existing.obj : { apiVersion: apiVersionOf(res), kind: res.kind, metadata: { name, ...(res.namespaced ? { namespace: ns } : {}) } };
  const outcome = applyFields(live, existing?.managers ?? new Map(), applied, manager, { force, apiVersion: apiVersionOf(res), time: timestamp() });
  if ('conflicts' in outcome) return conflictAnswer(outcome.conflicts);
  const merged = outcome.merged;
  merged.metadata.name = name;
  if (res.namespaced) merged.metadata.namespace = ns;
  applyDefaults(res, merged);
  const problem = validate(res, merged, existing?.obj);
  if (problem) return problem;
  const s: Stored = existing ?? { res, obj: merged, managers: outcome.managers, internal: {} };
  const previous = existing ? structuredClone(existing.obj) : undefined;
  // What apply does not own: identity, generation and status stay the server's.
  merged.metadata.uid = existing?.obj.metadata.uid;
  merged.metadata.creationTimestamp = existing?.obj.metadata.creationTimestamp;
  merged.metadata.generation = existing?.obj.metadata.generation;
  merged.status = existing?.obj.status;
  if (merged.metadata.uid === undefined) delete merged.metadata.uid;
  if (merged.metadata.creationTimestamp === undefined) delete merged.metadata.creationTimestamp;
  if (merged.status === undefined) delete merged.status;
  s.obj = merged;
  s.managers = outcome.managers;
  if (res.kind === 'Job' && !previous) {
    merged.metadata.uid = randomUUID();
    merged.spec.selector = { matchLabels: { 'batch.kubernetes.io/controller-uid': merged.metadata.uid } };
    merged.spec.template.metadata.labels['batch.kubernetes.io/controller-uid'] = merged.metadata.uid;
  }
  if (previous && sameValue({ ...previous, metadata: { ...previous.metadata, managedFields: undefined } }, merged)) {
    return { status: 200, body: store.serialize(s) }; // nothing changed: no new resourceVersion
  }
  store.write(s, previous);
  return { status: previous ? 200 : 201, body: store.serialize(s) };
}
