// A Kubernetes API server double for tests, on 127.0.0.1 (HTTPS with a test CA, or plain HTTP),
// used where the real control plane cannot do something on demand (429/503 faults, watches closed
// mid-rollout, late controllers, pod logs, the request record). It follows the real API's
// semantics closely enough that a client which works here has a good chance against a real
// cluster — and one that gets them wrong fails here:
//
//  - discovery (discovery.ts): /api, /apis, /api/v1 and /apis/<group>/<version>; unknown group
//    versions answer 404;
//  - authentication (routes.ts): bearer tokens, client certificates signed by the test CA (CN = user
//    name), or 401 Unauthorized (a Status object); authorization through `deny(...)`, answered with
//    the real 403 message ('… is forbidden: User "x" cannot patch resource "deployments" in API
//    group "apps" in the namespace "y"');
//  - server-side apply (apply.ts, managed-fields.ts): fieldManager required, force, managed fields
//    per manager (associative lists keyed by their merge keys), 409 conflicts naming the owning
//    manager, removal of fields a manager stops applying; defaulting and validation (defaults.ts):
//    immutable fields answered 422; generation bumped on spec changes (and, for a Deployment,
//    annotation changes) (store.ts); `update(...)` changes an object as another manager would;
//  - list with label and field selectors (selectors.ts), resourceVersion; watch (watch.ts) from a
//    resourceVersion, ERROR 410 Expired for a compacted version, timeoutSeconds; DELETE with garbage
//    collection of dependents;
//  - a small controller (controller.ts, pods.ts): Deployments, ReplicaSets, StatefulSets,
//    DaemonSets and Jobs as the real controllers run them. Knobs: `behave(match, behaviour)` makes
//    pods of an image run, fail with ImagePullBackOff or CrashLoopBackOff (with log lines), stay
//    unschedulable, or never get ready; `observeDelayMs` delays observedGeneration; `imageIdFor`
//    changes the imageID pods report.
export { kubeconfigFor } from './kubeconfig';
export type { PodBehaviour } from './pods';
export { startKubeApi } from './server';
export type { ApiRequestRecord, KubeApiOptions, KubeApiServer } from './types';
