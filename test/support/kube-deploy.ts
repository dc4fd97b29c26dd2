// What the KubernetesDeploy tests (and bench) share, whichever server they run against: the
// storefront manifests, the fixture lock with another web digest, the task's options with the
// defaults a test wants (for a deployment or for renderOnly), a namespace of its own per test, and
// a ServiceAccount service connection as the agent hands it to the bundled task.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { KubernetesDeployOptions } from '../../tasks/lib/kube';
import { parseKubeconfig, type ResolvedKubeconfig } from '../../tasks/lib/kube/kubeconfig';
import { readLock } from '../../tasks/lib/lock/file';
import type { ImageLock } from '../../tasks/lib/lock/types';
import type { AgentEndpoint } from './agent';
import { kubernetesDeployDefaults } from './task-defaults';

export const KUBE_FIXTURES = path.join(__dirname, '..', 'fixtures', 'kube');
export const baseLock = readLock(path.join(KUBE_FIXTURES, 'lock.json'));
export const WEB = 'registry.example.com/shop/web';
export const D = (n: string) => `sha256:${n.repeat(64)}`;

let namespaces = 0;
/** A namespace of its own for each test (a cluster outlives a single run of a file). */
export const testNamespace = (name: string): string => `${name}-${process.pid.toString(36)}-${++namespaces}`;

/** A `kubernetes` service connection for a ServiceAccount (its token and the cluster's CA, base64, as from the secret's YAML), as the agent hands it to the bundled task. */
export function serviceAccountEndpoint(id: string, to: { url: string; caPem: string; token: string }): AgentEndpoint {
  return {
    id,
    url: to.url,
    scheme: 'Token',
    parameters: { apitoken: Buffer.from(to.token).toString('base64'), serviceAccountCertificate: Buffer.from(to.caPem).toString('base64'), isCreatedFromSecretYaml: 'true' },
    data: { authorizationType: 'ServiceAccount' },
  };
}

/** The fixture lock with the web image at another digest (a new release). */
export function lockWithWeb(digest: string): ImageLock {
  const lock = structuredClone(baseLock);
  const web = lock.images.find((i) => i.name === 'web')!;
  web.digest = digest;
  web.ref = `${web.repository}@${digest}`;
  return lock;
}

export interface WebRelease {
  replicas?: number;
  progressDeadlineSeconds?: number;
  /** On the pod template: `col.test/behaviour` sends the pods down a failure path (kwok-stages.yaml). */
  podLabels?: Record<string, string>;
  podAnnotations?: Record<string, string>;
  /** More YAML documents after the Deployment and its Service. */
  extra?: string;
}

/** The storefront Deployment and its Service, in a folder of their own. */
export function webManifestDir(o: WebRelease = {}): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'col-kweb-'));
  fs.writeFileSync(
    path.join(dir, 'web.yaml'),
    `# the storefront
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: ${o.replicas ?? 2}
  progressDeadlineSeconds: ${o.progressDeadlineSeconds ?? 600}
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: ${JSON.stringify({ app: 'web', ...o.podLabels })}
      annotations: ${JSON.stringify(o.podAnnotations ?? {})}
    spec:
      containers:
        - name: web
          image: ${WEB}:1.0
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
${o.extra ?? ''}`,
  );
  return dir;
}

export const resolveKubeconfig = (text: string): ResolvedKubeconfig => parseKubeconfig(text, { source: "Input 'kubernetesServiceConnection'", setSecret: () => undefined });

/** What every test's options start from: the task.json defaults (a rolling deploy that rolls back, nothing unpinned, our field manager, the manifests published) and the fixture lock. */
function commonOptions(): Pick<KubernetesDeployOptions, 'lock' | 'lockInput' | 'imagePullSecrets'> & ReturnType<typeof kubernetesDeployDefaults> {
  return { ...kubernetesDeployDefaults(), lock: baseLock, lockInput: 'lockFile', imagePullSecrets: [] };
}

/** The task's options for a deployment of the manifests in `baseDir` (by default a fresh storefront). */
export function deployOptions(config: ResolvedKubeconfig, overrides: Partial<KubernetesDeployOptions> & { namespace: string }): KubernetesDeployOptions {
  const dir = overrides.baseDir ?? webManifestDir();
  return {
    ...commonOptions(),
    kubeconfig: async () => config,
    createNamespace: true,
    source: 'manifests',
    manifests: ['*.yaml'],
    baseDir: dir,
    canaryPercentage: 25,
    rolloutTimeoutSeconds: 60,
    renderedManifests: path.join(dir, 'out', 'rendered.yaml'),
    logTailLines: 5,
    client: { retryDelayMs: 10, attempts: 2, timeoutMs: 5000 },
    ...overrides,
  };
}

/** The task's options for renderOnly (no connection) of the compose files `composeFiles` into the namespace shop-review. */
export function renderOnlyOptions(overrides: Partial<KubernetesDeployOptions> & Pick<KubernetesDeployOptions, 'composeFiles' | 'baseDir'>): KubernetesDeployOptions {
  return {
    ...commonOptions(),
    renderOnly: true,
    namespace: 'shop-review',
    source: 'compose',
    env: {},
    ...overrides,
  };
}
