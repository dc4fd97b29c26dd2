// kubectl's rollout status rules (k8s.io/kubectl rollout_status.go), as pure functions of the
// object, and the digest in a container status imageID.
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import type { KubeObject } from '../../tasks/lib/kube/objects';
import { daemonSetState, deploymentState, digestOfImageId, jobState, statefulSetState } from '../../tasks/lib/kube/rollout';
import { canaryReplicas } from '../../tasks/lib/kube/rollback';

const obj = (kind: string, generation: number, spec: object, status: object): KubeObject => ({ apiVersion: 'apps/v1', kind, metadata: { name: 'x', generation }, spec, status });

test('Deployment: judged only once observedGeneration catches up, then updated, old gone, available', () => {
  const cases: [object, object, number, boolean, RegExp][] = [
    [{ replicas: 3 }, { observedGeneration: 1, replicas: 3, updatedReplicas: 3, availableReplicas: 3 }, 2, false, /Waiting for deployment spec update to be observed/],
    [{ replicas: 3 }, { observedGeneration: 2, replicas: 3, updatedReplicas: 1, availableReplicas: 3 }, 2, false, /1 out of 3 new replicas have been updated/],
    [{ replicas: 3 }, { observedGeneration: 2, replicas: 5, updatedReplicas: 3, availableReplicas: 3 }, 2, false, /2 old replicas are pending termination/],
    [{ replicas: 3 }, { observedGeneration: 2, replicas: 3, updatedReplicas: 3, availableReplicas: 2 }, 2, false, /2 of 3 updated replicas are available/],
    [{ replicas: 3 }, { observedGeneration: 2, replicas: 3, updatedReplicas: 3, availableReplicas: 3 }, 2, true, /successfully rolled out/],
    [{ replicas: 0 }, { observedGeneration: 2 }, 2, true, /successfully rolled out/],
  ];
  for (const [spec, status, generation, done, message] of cases) {
    const s = deploymentState(obj('Deployment', generation, spec, status));
    assert.equal(s.done, done, JSON.stringify(status));
    assert.match(s.message, message);
  }
  const stuck = deploymentState(obj('Deployment', 2, { replicas: 1 }, { observedGeneration: 2, conditions: [{ type: 'Progressing', status: 'False', reason: 'ProgressDeadlineExceeded', message: 'ReplicaSet "x-1" has timed out progressing.' }] }));
  assert.equal(stuck.failed, true);
  assert.match(stuck.message, /exceeded its progress deadline \(ReplicaSet "x-1" has timed out progressing\.\)/);
});

test('StatefulSet and DaemonSet rules', () => {
  assert.match(statefulSetState(obj('StatefulSet', 1, { replicas: 2 }, { observedGeneration: 0 })).message, /spec update to be observed/);
  assert.match(statefulSetState(obj('StatefulSet', 1, { replicas: 2 }, { observedGeneration: 1, readyReplicas: 1 })).message, /Waiting for 1 pods to be ready/);
  assert.match(statefulSetState(obj('StatefulSet', 1, { replicas: 2 }, { observedGeneration: 1, readyReplicas: 2, currentRevision: 'a', updateRevision: 'b', updatedReplicas: 1 })).message, /rolling update to complete 1 pods at revision b/);
  assert.equal(statefulSetState(obj('StatefulSet', 1, { replicas: 2 }, { observedGeneration: 1, readyReplicas: 2, currentRevision: 'b', updateRevision: 'b', currentReplicas: 2 })).done, true);
  const partitioned = statefulSetState(obj('StatefulSet', 1, { replicas: 4, updateStrategy: { type: 'RollingUpdate', rollingUpdate: { partition: 2 } } }, { observedGeneration: 1, readyReplicas: 4, updatedReplicas: 2 }));
  assert.equal(partitioned.done, true);
  assert.match(partitioned.message, /partitioned roll out complete/);
  assert.equal(statefulSetState(obj('StatefulSet', 1, { updateStrategy: { type: 'OnDelete' } }, {})).done, true);
  assert.match(daemonSetState(obj('DaemonSet', 2, {}, { observedGeneration: 2, desiredNumberScheduled: 3, updatedNumberScheduled: 1 })).message, /1 out of 3 new pods have been updated/);
  assert.match(daemonSetState(obj('DaemonSet', 2, {}, { observedGeneration: 2, desiredNumberScheduled: 3, updatedNumberScheduled: 3, numberAvailable: 2 })).message, /2 of 3 updated pods are available/);
  assert.equal(daemonSetState(obj('DaemonSet', 2, {}, { observedGeneration: 2, desiredNumberScheduled: 3, updatedNumberScheduled: 3, numberAvailable: 3 })).done, true);
  assert.match(daemonSetState(obj('DaemonSet', 3, {}, { observedGeneration: 2 })).message, /spec update to be observed/);
});

test('Job: Complete or Failed conditions', () => {
  assert.equal(jobState(obj('Job', 1, {}, { conditions: [{ type: 'Complete', status: 'True' }] })).done, true);
  const failed = jobState(obj('Job', 1, {}, { conditions: [{ type: 'Failed', status: 'True', reason: 'BackoffLimitExceeded', message: 'Job has reached the specified backoff limit' }] }));
  assert.equal(failed.failed, true);
  assert.match(failed.message, /BackoffLimitExceeded/);
  assert.match(jobState(obj('Job', 1, {}, { active: 1 })).message, /1 active/);
});

test('imageID digests, canary sizes', () => {
  const d = `sha256:${'a'.repeat(64)}`;
  assert.equal(digestOfImageId(`docker-pullable://registry.example.com/app@${d}`), d);
  assert.equal(digestOfImageId(`registry.example.com/app@${d}`), d);
  assert.equal(digestOfImageId(d), undefined, 'an image id alone is not a registry digest');
  assert.equal(digestOfImageId(''), undefined);
  const dep = (replicas?: number): KubeObject => ({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'x' }, spec: replicas === undefined ? {} : { replicas } });
  assert.equal(canaryReplicas(dep(10), 25), 3);
  assert.equal(canaryReplicas(dep(2), 10), 1);
  assert.equal(canaryReplicas(dep(), 50), 1);
  assert.equal(canaryReplicas(dep(4), 100), 4);
});
