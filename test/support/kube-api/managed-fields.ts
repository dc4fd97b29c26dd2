// Server-side apply field ownership, as pure functions over plain objects (no input is changed).
//
// A field path is `.spec.template.spec.containers[name="web"].image`: one `.key` part per map
// key, one `[k=v,…]` part per item of an associative list (keyed by its merge keys). A dot inside
// a key (app.kubernetes.io/name) is held as \u0001 so that the path splits where it should;
// `readablePath` turns it back for messages.
import { isObj, sameValue, type Obj } from './resources';

export interface Manager {
  operation: 'Apply' | 'Update';
  apiVersion: string;
  time: string;
  fields: Set<string>;
}

/** Field managers by name. */
export type Managers = Map<string, Manager>;

export interface Conflict {
  manager: string;
  apiVersion: string;
  /** The field as people read it: `.spec.replicas`. */
  field: string;
}

/** Merge keys of associative lists, by field name (the ones that matter for pods and services). */
function listKeys(field: string, items: unknown[]): string[] | undefined {
  if (['containers', 'initContainers', 'ephemeralContainers', 'env', 'volumes', 'imagePullSecrets'].includes(field)) return ['name'];
  if (field === 'volumeMounts') return ['mountPath'];
  if (field === 'ports') {
    const first = items.find((i) => isObj(i)) as Obj | undefined;
    if (first && 'containerPort' in first) return ['containerPort', 'protocol'];
    if (first && 'port' in first) return ['port', 'protocol'];
  }
  return undefined;
}

/** A merge key's value in an item; protocol defaults to TCP, as the API server defaults it. */
const keyValue = (item: Obj, k: string) => item[k] ?? (k === 'protocol' ? 'TCP' : null);

function itemKey(keys: string[], item: Obj): string {
  return keys.map((k) => `${k}=${JSON.stringify(keyValue(item, k))}`).join(',');
}

const IGNORED_TOP = new Set(['apiVersion', 'kind', 'status']);
const IGNORED_META = new Set(['name', 'namespace', 'uid', 'resourceVersion', 'generation', 'creationTimestamp', 'managedFields', 'deletionTimestamp', 'selfLink']);

const escapeKey = (k: string) => k.replace(/\./g, '\u0001');
const keyOf = (part: string) => part.slice(1).replace(/\u0001/g, '.');
/** A field path as people read it (in conflict messages). */
export const readablePath = (p: string) => p.replace(/\u0001/g, '.');

/** Leaf paths of a configuration, with their values (`'<item>'` for an associative list item). */
export function fieldSet(obj: Obj): Map<string, unknown> {
  const out = new Map<string, unknown>();
  const walk = (value: unknown, p: string, field: string) => {
    if (isObj(value)) {
      const keys = Object.keys(value);
      if (keys.length === 0) {
        out.set(p, {});
        return;
      }
      for (const k of keys) {
        if (p === '' && IGNORED_TOP.has(k)) continue;
        if (p === '.metadata' && IGNORED_META.has(k)) continue;
        walk(value[k], `${p}.${escapeKey(k)}`, k);
      }
      return;
    }
    if (Array.isArray(value)) {
      const keys = listKeys(field, value);
      if (keys && value.every(isObj)) {
        for (const item of value as Obj[]) {
          const ip = `${p}[${itemKey(keys, item)}]`;
          out.set(ip, '<item>');
          for (const k of Object.keys(item)) walk(item[k], `${ip}.${escapeKey(k)}`, k);
        }
        return;
      }
    }
    out.set(p, value);
  };
  walk(obj, '', '');
  return out;
}

/** Splits a field path into parts: ['.spec', '.template', '[name="web"]', '.image']. */
function pathParts(p: string): string[] {
  return p.match(/\.[^.[]+|\[[^\]]*\]/g) ?? [];
}

function parseItemKey(part: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const kv of part.slice(1, -1).split(/,(?=\w+=)/)) {
    const eq = kv.indexOf('=');
    out[kv.slice(0, eq)] = JSON.parse(kv.slice(eq + 1));
  }
  return out;
}

function matchesKey(item: unknown, key: Record<string, unknown>): boolean {
  return isObj(item) && Object.entries(key).every(([k, v]) => keyValue(item, k) === v);
}

function descend(obj: Obj, parts: string[]): unknown {
  let cur: unknown = obj;
  for (const part of parts) {
    if (part.startsWith('.')) cur = isObj(cur) ? cur[keyOf(part)] : undefined;
    else cur = Array.isArray(cur) ? cur.find((i) => matchesKey(i, parseItemKey(part))) : undefined;
    if (cur === undefined) return undefined;
  }
  return cur;
}

/** Removes the field at `p` from `obj` in place (only ever called on a copy). */
function removeAt(obj: Obj, p: string): void {
  const parts = pathParts(p);
  const cur = descend(obj, parts.slice(0, -1));
  const last = parts[parts.length - 1];
  if (last.startsWith('.')) {
    if (isObj(cur)) delete cur[keyOf(last)];
  } else if (Array.isArray(cur)) {
    const i = cur.findIndex((x) => matchesKey(x, parseItemKey(last)));
    if (i >= 0) cur.splice(i, 1);
  }
}

/** `patch` over `base`: maps merge, associative lists merge by key, other lists replace. */
export function mergeApplied(base: unknown, patch: unknown, field = ''): unknown {
  if (isObj(patch)) {
    const out: Obj = isObj(base) ? { ...base } : {};
    for (const [k, v] of Object.entries(patch)) out[k] = mergeApplied(out[k], v, k);
    return out;
  }
  if (Array.isArray(patch)) {
    const keys = listKeys(field, patch);
    if (keys && Array.isArray(base) && patch.every(isObj) && base.every(isObj)) {
      const out = [...(base as Obj[])];
      for (const item of patch as Obj[]) {
        const key = Object.fromEntries(keys.map((k) => [k, keyValue(item, k)]));
        const i = out.findIndex((x) => matchesKey(x, key));
        if (i >= 0) out[i] = mergeApplied(out[i], item) as Obj;
        else out.push(structuredClone(item));
      }
      return out;
    }
    return structuredClone(patch);
  }
  return patch;
}

function copyManagers(managers: Managers): Managers {
  return new Map([...managers].map(([k, m]) => [k, { ...m, fields: new Set(m.fields) }]));
}

/**
 * `manager` applies `applied` over `live`. Conflicts: another manager owns a field this apply
 * sets to a different value; without `force` they are the answer. Otherwise the merged object
 * (fields this manager applied before and no longer applies, owned by nobody else, removed) and
 * the managers after (forced fields taken over, managers left with no fields gone).
 */
export function applyFields(
  live: Obj,
  managers: Managers,
  applied: Obj,
  manager: string,
  how: { force: boolean; apiVersion: string; time: string },
): { conflicts: Conflict[] } | { merged: Obj; managers: Managers } {
  const fields = fieldSet(applied);
  const conflicts: (Conflict & { path: string })[] = [];
  for (const [p, v] of fields) {
    if (v === '<item>') continue;
    for (const [other, m] of managers) {
      if (other === manager || !m.fields.has(p)) continue;
      if (!sameValue(descend(live, pathParts(p)), v)) conflicts.push({ manager: other, apiVersion: m.apiVersion, field: readablePath(p), path: p });
    }
  }
  if (conflicts.length && !how.force) return { conflicts: conflicts.map(({ path: _p, ...c }) => c) };
  const after = copyManagers(managers);
  for (const c of conflicts) after.get(c.manager)!.fields.delete(c.path);
  const base = structuredClone(live);
  const mine = after.get(manager);
  if (mine) {
    const dropped = [...mine.fields].filter((p) => !fields.has(p) && ![...after].some(([n, m]) => n !== manager && m.fields.has(p)));
    // A list item before its fields: once a field is gone the item's merge key no longer finds it.
    for (const p of dropped.sort((a, b) => a.length - b.length)) removeAt(base, p);
  }
  for (const [n, m] of [...after]) if (m.fields.size === 0) after.delete(n);
  after.set(manager, { operation: 'Apply', apiVersion: how.apiVersion, time: how.time, fields: new Set(fields.keys()) });
  return { merged: mergeApplied(base, applied) as Obj, managers: after };
}

/**
 * `manager` changed `before` into `after` (operation Update): it takes every field whose value
 * changed, and the other managers lose them.
 */
export function updateFields(managers: Managers, before: Obj, after: Obj, manager: string, how: { apiVersion: string; time: string }): Managers {
  const was = fieldSet(before);
  const changed = [...fieldSet(after).entries()].filter(([p, v]) => !was.has(p) || !sameValue(was.get(p), v)).map(([p]) => p);
  const out = copyManagers(managers);
  for (const [name, m] of out) if (name !== manager) for (const p of changed) m.fields.delete(p);
  const mine = out.get(manager) ?? { operation: 'Update' as const, apiVersion: how.apiVersion, time: how.time, fields: new Set<string>() };
  for (const p of changed) mine.fields.add(p);
  mine.time = how.time;
  out.set(manager, mine);
  return out;
}

/** The object's `metadata.managedFields`, in FieldsV1 (`f:<key>`, `k:<merge key>`, `.`). */
export function managedFieldsOf(managers: Managers): Obj[] {
  return [...managers.entries()].map(([manager, m]) => ({ manager, operation: m.operation, apiVersion: m.apiVersion, time: m.time, fieldsType: 'FieldsV1', fieldsV1: fieldsV1(m.fields) }));
}

function fieldsV1(paths: Iterable<string>): Obj {
  const root: Obj = {};
  for (const p of paths) {
    let cur = root;
    for (const part of pathParts(p)) {
      const key = part.startsWith('.') ? `f:${keyOf(part)}` : `k:${JSON.stringify(parseItemKey(part))}`;
      cur[key] ??= {};
      cur = cur[key];
      if (part.startsWith('[')) cur['.'] ??= {};
    }
  }
  return root;
}
