// The double's etcd: objects with their field managers, resourceVersion and generation, the watch
// history (compacted as the real one is), open watches, and deletion with garbage collection of
// dependents (ownerReferences).
import { randomUUID } from 'node:crypto';
import { applyDefaults } from './defaults';
import { fieldSet, managedFieldsOf, updateFields, type Managers } from './managed-fields';
import { apiVersionOf, resourceByKind, resourceOfKind, sameValue, timestamp, type Obj, type ResourceDef } from './resources';

export interface Stored {
  res: ResourceDef;
  obj: Obj;
  managers: Managers;
  /** Controller bookkeeping. */
  internal: Obj;
}

export interface WatchEvent {
  rv: number;
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  res: ResourceDef;
  obj: Obj;
}

export interface Watcher {
  send(event: WatchEvent): void;
  end(): void;
}

export class ObjectStore {
  private readonly objects = new Map<string, Stored>();
  /** Events kept for watches from a resourceVersion. */
  readonly history: WatchEvent[] = [];
  /** A watch from a version below this one gets 410 Expired. */
  compactedBefore = 0;
  readonly watchers = new Set<Watcher>();
  resourceVersion = 100;

  constructor(private readonly historyLimit: number) {}

  private key(res: ResourceDef, ns: string | undefined, name: string): string {
    return `${res.group}/${res.name}/${res.namespaced ? (ns ?? '') : ''}/${name}`;
  }

  get(res: ResourceDef, ns: string | undefined, name: string): Stored | undefined {
    return this.objects.get(this.key(res, ns, name));
  }

  /** Still stored (not deleted since it was read). */
  holds(s: Stored): boolean {
    return this.objects.has(this.key(s.res, s.obj.metadata.namespace, s.obj.metadata.name));
  }

  all(): Stored[] {
    return [...this.objects.values()];
  }

  namespaceExists(ns: string): boolean {
    return this.get(resourceOfKind('Namespace'), undefined, ns) !== undefined;
  }

  /** Objects of `kind` that `owner` owns. */
  ownedBy(owner: Stored, kind: string): Stored[] {
    return this.all().filter((s) => s.res.kind === kind && s.obj.metadata.namespace === owner.obj.metadata.namespace && (s.obj.metadata.ownerReferences ?? []).some((o: Obj) => o.uid === owner.obj.metadata.uid));
  }

  /** The object as clients read it, with its managedFields. */
  serialize(s: Stored): Obj {
    const obj = structuredClone(s.obj);
    obj.metadata.managedFields = managedFieldsOf(s.managers);
    return obj;
  }

  private emit(type: WatchEvent['type'], s: Stored): void {
    const event: WatchEvent = { rv: Number(s.obj.metadata.resourceVersion), type, res: s.res, obj: this.serialize(s) };
    this.history.push(event);
    if (this.history.length > this.historyLimit) {
      const dropped = this.history.splice(0, this.history.length - this.historyLimit);
      this.compactedBefore = Math.max(this.compactedBefore, dropped[dropped.length - 1].rv);
    }
    for (const w of this.watchers) w.send(event);
  }

  /**
   * Writes an object (already merged); bumps resourceVersion, and generation when the spec changed.
   * `status`: written as through the status subresource (as the controllers write status and the
   * Deployment's revision annotation), which moves no generation.
   */
  write(s: Stored, previous: Obj | undefined, how: 'update' | 'status' = 'update'): Stored {
    this.resourceVersion += 1;
    s.obj.metadata.resourceVersion = String(this.resourceVersion);
    if (!previous) {
      s.obj.metadata.uid ??= randomUUID();
      s.obj.metadata.creationTimestamp ??= timestamp();
      s.obj.metadata.generation = 1;
    } else {
      // As the API server's deployment strategy does: its annotations count too.
      const strip = (o: Obj) => {
        const { metadata, status: _s, ...rest } = o;
        return s.obj.kind === 'Deployment' ? { ...rest, annotations: metadata.annotations ?? {} } : rest;
      };
      s.obj.metadata.generation = (previous.metadata.generation ?? 1) + (how === 'status' || sameValue(strip(previous), strip(s.obj)) ? 0 : 1);
    }
    this.objects.set(this.key(s.res, s.obj.metadata.namespace, s.obj.metadata.name), s);
    this.emit(previous ? 'MODIFIED' : 'ADDED', s);
    return s;
  }

  /** Writes `status` (as the status subresource) unless it is what the object has. */
  setStatus(s: Stored, status: Obj): void {
    if (sameValue(s.obj.status, status)) return;
    const previous = structuredClone(s.obj);
    s.obj.status = status;
    this.write(s, previous);
  }

  /** Deletes an object; dependents are deleted too, or orphaned (`propagation` Orphan). */
  remove(s: Stored, propagation: string): void {
    this.objects.delete(this.key(s.res, s.obj.metadata.namespace, s.obj.metadata.name));
    this.resourceVersion += 1;
    s.obj.metadata.resourceVersion = String(this.resourceVersion);
    this.emit('DELETED', s);
    const uid = s.obj.metadata.uid;
    for (const other of this.all()) {
      const owners: Obj[] = other.obj.metadata.ownerReferences ?? [];
      if (!owners.some((o) => o.uid === uid)) continue;
      if (propagation === 'Orphan') {
        const prev = structuredClone(other.obj);
        other.obj.metadata.ownerReferences = owners.filter((o) => o.uid !== uid);
        this.write(other, prev);
      } else this.remove(other, propagation);
    }
  }

  /** Creates an object directly, owned by `manager` (operation Update). */
  create(obj: Obj, manager = 'test-setup'): Obj {
    const res = resourceByKind(obj.apiVersion, obj.kind);
    if (!res) throw new Error(`unknown kind ${obj.apiVersion} ${obj.kind}`);
    const copy = structuredClone(obj);
    copy.metadata ??= {};
    applyDefaults(res, copy);
    const s: Stored = { res, obj: copy, managers: new Map(), internal: {} };
    s.managers.set(manager, { operation: 'Update', apiVersion: apiVersionOf(res), time: timestamp(), fields: new Set(fieldSet(obj).keys()) });
    this.write(s, undefined);
    return this.serialize(s);
  }

  /** Changes an object as `manager` would (operation Update): it takes the fields it changes. */
  update(s: Stored, manager: string, mutate: (obj: Obj) => void): Obj {
    const previous = structuredClone(s.obj);
    mutate(s.obj);
    applyDefaults(s.res, s.obj);
    s.managers = updateFields(s.managers, previous, s.obj, manager, { apiVersion: apiVersionOf(s.res), time: timestamp() });
    this.write(s, previous);
    return this.serialize(s);
  }

  /** Forget watch history older than the current version. */
  compact(): void {
    this.compactedBefore = this.resourceVersion + 1;
    this.history.length = 0;
  }
}

/** The ownerReference a controller puts on what it makes. */
export function ownerRef(owner: Stored): Obj {
  return { apiVersion: apiVersionOf(owner.res), kind: owner.res.kind, name: owner.obj.metadata.name, uid: owner.obj.metadata.uid, controller: true, blockOwnerDeletion: true };
}
