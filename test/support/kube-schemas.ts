// Validates generated Kubernetes objects against the OpenAPI schemas of the Kubernetes API, with
// the kubernetes-models class for each apiVersion and kind.
import { strict as assert } from 'node:assert';
import type { KubeObject } from '../../tasks/lib/kube/objects';

/** Validates an object with the kubernetes-models class for its apiVersion and kind; only current API versions have one. */
export async function validateWithSchemas(obj: KubeObject): Promise<void> {
  const modules: Record<string, () => Promise<Record<string, unknown>>> = {
    v1: () => import('kubernetes-models/v1'),
    'apps/v1': () => import('kubernetes-models/apps/v1'),
    'batch/v1': () => import('kubernetes-models/batch/v1'),
    'networking.k8s.io/v1': () => import('kubernetes-models/networking.k8s.io/v1'),
    'autoscaling/v2': () => import('kubernetes-models/autoscaling/v2'),
  };
  const load = modules[obj.apiVersion];
  assert.ok(load, `${obj.kind} uses apiVersion ${obj.apiVersion}, which is not a current API version`);
  const Model = (await load())[obj.kind] as new (data: unknown) => { validate(): void };
  assert.ok(Model, `no model for ${obj.apiVersion} ${obj.kind}`);
  new Model(obj).validate();
}
