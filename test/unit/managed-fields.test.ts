// Server-side apply field ownership in the Kubernetes API double (test/support/kube-api/
// managed-fields.ts): what a manager owns, what it loses, what is removed, and the conflicts, as
// the real API server decides them.
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { applyFields, managedFieldsOf, updateFields, type Managers } from '../support/kube-api/managed-fields';
import type { Obj } from '../support/kube-api/resources';

const how = { force: false, apiVersion: 'apps/v1', time: '2026-01-01T00:00:00Z' };

function deployment(spec: Obj, labels?: Record<string, string>): Obj {
  return { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web', namespace: 'shop', ...(labels ? { labels } : {}) }, spec };
}

/** Applies `applied` as `manager` over `live`; fails the test on conflicts. */
function apply(live: Obj, managers: Managers, applied: Obj, manager: string): { merged: Obj; managers: Managers } {
  const out = applyFields(live, managers, applied, manager, how);
  assert.ok(!('conflicts' in out), `unexpected conflicts: ${JSON.stringify(out)}`);
  return out;
}

const empty = () => ({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web', namespace: 'shop' } });

test('a field a manager stops applying is removed, and the rest of the object stays', () => {
  const first = apply(empty(), new Map(), deployment({ replicas: 2, minReadySeconds: 5 }), 'deployer');
  assert.equal(first.merged.spec.minReadySeconds, 5);
  const second = apply(first.merged, first.managers, deployment({ replicas: 2 }), 'deployer');
  assert.deepEqual(second.merged.spec, { replicas: 2 });
  assert.ok(!second.managers.get('deployer')!.fields.has('.spec.minReadySeconds'));
});

test('a dotted label key (app.kubernetes.io/name) is owned, shown in FieldsV1 and removed as one key', () => {
  const first = apply(empty(), new Map(), deployment({}, { 'app.kubernetes.io/name': 'web', tier: 'front' }), 'deployer');
  const fieldsV1 = managedFieldsOf(first.managers)[0].fieldsV1;
  assert.deepEqual(Object.keys(fieldsV1['f:metadata']['f:labels']).sort(), ['f:app.kubernetes.io/name', 'f:tier']);
  const second = apply(first.merged, first.managers, deployment({}, { tier: 'front' }), 'deployer');
  assert.deepEqual(second.merged.metadata.labels, { tier: 'front' });
});

test('a field another manager owns too is kept when one of them stops applying it', () => {
  const a = apply(empty(), new Map(), deployment({ replicas: 2, paused: false }), 'a');
  const b = apply(a.merged, a.managers, deployment({ paused: false }), 'b');
  const dropped = apply(b.merged, b.managers, deployment({ replicas: 2 }), 'a');
  assert.equal(dropped.merged.spec.paused, false);
  assert.deepEqual([...dropped.managers.get('b')!.fields], ['.spec.paused']);
});

test('a conflict between managers is reported with the owner and the field, and force takes the field over', () => {
  const applied = apply(empty(), new Map(), deployment({ replicas: 2 }), 'deployer');
  const scaled = { ...applied.merged, spec: { replicas: 5 } };
  const managers = updateFields(applied.managers, applied.merged, scaled, 'kubectl-scale', { apiVersion: 'apps/v1', time: how.time });
  assert.deepEqual([...managers.get('kubectl-scale')!.fields], ['.spec.replicas']);
  assert.deepEqual([...managers.get('deployer')!.fields], [], 'the update took the field from the applier');

  const again = applyFields(scaled, managers, deployment({ replicas: 2 }), 'deployer', how);
  assert.deepEqual(again, { conflicts: [{ manager: 'kubectl-scale', apiVersion: 'apps/v1', field: '.spec.replicas' }] });

  const forced = applyFields(scaled, managers, deployment({ replicas: 2 }), 'deployer', { ...how, force: true });
  assert.ok(!('conflicts' in forced));
  assert.equal(forced.merged.spec.replicas, 2);
  assert.equal(forced.managers.has('kubectl-scale'), false, 'a manager left with no fields is gone');
  assert.ok(forced.managers.get('deployer')!.fields.has('.spec.replicas'));
});

test('applying the value another manager set is no conflict', () => {
  const applied = apply(empty(), new Map(), deployment({ replicas: 2 }), 'deployer');
  const scaled = { ...applied.merged, spec: { replicas: 5 } };
  const managers = updateFields(applied.managers, applied.merged, scaled, 'kubectl-scale', { apiVersion: 'apps/v1', time: how.time });
  assert.ok(!('conflicts' in applyFields(scaled, managers, deployment({ replicas: 5 }), 'deployer', how)));
});

test('containers merge by name: one manager\'s container is left alone when another applies its own', () => {
  const pod = (containers: Obj[]) => deployment({ template: { spec: { containers } } });
  const a = apply(empty(), new Map(), pod([{ name: 'web', image: 'web:1' }]), 'a');
  const b = apply(a.merged, a.managers, pod([{ name: 'sidecar', image: 'proxy:1' }]), 'b');
  assert.deepEqual(
    b.merged.spec.template.spec.containers.map((c: Obj) => c.name),
    ['web', 'sidecar'],
  );
  const fieldsV1 = managedFieldsOf(b.managers).find((m) => m.manager === 'b')!.fieldsV1;
  assert.deepEqual(Object.keys(fieldsV1['f:spec']['f:template']['f:spec']['f:containers']), ['k:{"name":"sidecar"}']);
  const dropped = apply(b.merged, b.managers, pod([]), 'b');
  assert.deepEqual(
    dropped.merged.spec.template.spec.containers.map((c: Obj) => c.name),
    ['web'],
  );
});

test('the inputs are not changed', () => {
  const live = empty();
  const managers: Managers = new Map();
  const before = JSON.stringify(live);
  apply(live, managers, deployment({ replicas: 2 }), 'deployer');
  assert.equal(JSON.stringify(live), before);
  assert.equal(managers.size, 0);
});
