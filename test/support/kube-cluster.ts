// A real Kubernetes control plane for the tests: etcd, kube-apiserver, kube-controller-manager and
// kube-scheduler (built from Go modules by scripts/test-tools.mjs), with kwok playing the kubelet
// on three simulated nodes (its stages: test/support/kwok-stages.yaml). There is no container
// runtime: pods are scheduled, bound and moved through their lifecycle by kwok.
//
// Everything listens on 127.0.0.1 on free ports, with its own PKI (test/support/pki.ts): a CA, the
// API server's serving certificate, a service-account signing key, and client certificates for
// the admin (system:masters), the controller manager and the scheduler. It also makes:
//   - a namespace-scoped deployer identity: the ServiceAccount `deployer` in `col-deployer`, bound
//     to a Role that may manage workloads there and nothing else, with a token from TokenRequest;
//   - three Nodes that kwok manages.
//
// The cluster is started on first use and then kept for the rest of the test run: the next test
// file adopts it (from the state in ${COL_KUBE_DIR:-/tmp/col-kube}), so the ~20 s start is paid
// once. scripts/test.mjs stops it when the run ends (scripts/kube-cluster.mjs). Tests isolate
// themselves by namespace.
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as path from 'node:path';
import { freePort } from './http-double';
import { kubeconfigFor } from './kube-api/kubeconfig';
import { existingCa, issueCert, makeCa, makeKeyPair } from './pki';
import { buildTestTools, pinnedVersion } from './stack';

const clusterScriptPath = path.join(__dirname, '..', '..', 'scripts', 'kube-cluster.mjs');
const STAGES = path.join(__dirname, 'kwok-stages.yaml');
const SETUP = path.join(__dirname, 'kube-cluster-setup.yaml');

function stampOf(): string {
  const hash = createHash('sha256').update(JSON.stringify(['kubernetes', 'etcd', 'kwok'].map(pinnedVersion)));
  for (const file of [STAGES, SETUP, __filename]) hash.update(fs.readFileSync(file));
  return hash.digest('hex');
}

export const DEPLOYER_NAMESPACE = 'col-deployer';

interface ClusterState {
  version: string;
  /** What the cluster was made from: a running one made from other stages or setup is not adopted. */
  stamp: string;
  url: string;
  caPem: string;
  admin: { cert: string; key: string }; // PEM
  deployerToken: string;
}

export interface KubeCluster {
  dir: string;
  /** https://127.0.0.1:<port> */
  url: string;
  caPem: string;
  /** The Kubernetes version the API server reports (v1.35.4). */
  version: string;
  /** Path of a kubeconfig with the admin's client certificate (system:masters). */
  adminKubeconfig: string;
  /** The admin's client certificate and key, PEM. */
  admin: { cert: string; key: string };
  /** The deployer ServiceAccount's token: may manage workloads in DEPLOYER_NAMESPACE only. */
  deployerToken: string;
  /** A client certificate and key (PEM) for `user`, signed by the cluster's CA. */
  clientCertificate(user: string, groups?: string[]): { cert: string; key: string };
  /**
   * A token of the ServiceAccount `name` in `col-auth` (made when missing; `fresh` deletes and makes
   * it again first, which makes every earlier token of it invalid), and the user name it maps to.
   */
  serviceAccountToken(name: string, options?: { fresh?: boolean }): { token: string; username: string };
  /** A kubeconfig (text) for this server with the given credentials. */
  kubeconfig(user: Credentials, namespace?: string): string;
  /** kubectl (the oracle client) as the admin, or with another kubeconfig; throws with its stderr when it fails, unless `allowFailure`. */
  kubectl(args: string[], options?: { kubeconfig?: string; input?: string; allowFailure?: boolean }): { status: number; stdout: string; stderr: string };
  /** `kubectl get -o json` as the admin, managed fields included. */
  get(args: string[]): any;
}

/** The newest kubectl on the machine (the gcloud packaging installs kubectl.1.N beside a dispatcher). */
export function kubectlPath(): string {
  let dir: string;
  try {
    dir = path.dirname(fs.realpathSync('/usr/bin/kubectl'));
  } catch {
    return 'kubectl';
  }
  const versioned = fs
    .readdirSync(dir)
    .map((f) => /^kubectl\.1\.(\d+)$/.exec(f))
    .filter((m): m is RegExpExecArray => m !== null)
    .sort((a, b) => Number(b[1]) - Number(a[1]));
  return versioned.length > 0 ? path.join(dir, versioned[0][0]) : path.join(dir, 'kubectl');
}

type Credentials = { token: string } | { cert: string; key: string } | { exec: Record<string, unknown> };

function kubeconfigText(url: string, caPem: string, user: Credentials, namespace?: string): string {
  const asUser = 'token' in user ? { token: user.token } : 'exec' in user ? { exec: user.exec } : { clientCertificate: user };
  return kubeconfigFor({ url, caPem }, asUser, { namespace });
}

/** The HTTP status of a GET as the admin; 0 when there is no answer. */
function statusOf(url: string, state: Pick<ClusterState, 'caPem' | 'admin'>): Promise<number> {
  return new Promise((resolve) => {
    const req = https.get(url, { ca: state.caPem, cert: state.admin.cert, key: state.admin.key, timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', () => resolve(0));
    req.on('timeout', () => req.destroy());
  });
}

async function waitFor(what: string, check: () => Promise<boolean> | boolean, logFile: string, timeoutMs = 90_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  const tail = fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8').split('\n').slice(-25).join('\n') : '(no log)';
  throw new Error(`test Kubernetes control plane: ${what} was not ready within ${timeoutMs / 1000} s. Log tail (${logFile}):\n${tail}`);
}


class ControlPlane {
  readonly processes: Record<string, number> = {};
  constructor(readonly dir: string) {}

  /** Starts a component detached (it outlives this test file), its output in <dir>/<name>.log. */
  start(name: string, binary: string, args: string[]): string {
    const log = path.join(this.dir, `${name}.log`);
    const out = fs.openSync(log, 'a');
    const child = spawn(binary, args, { detached: true, stdio: ['ignore', out, out] });
    fs.closeSync(out);
    child.unref();
    this.processes[name] = child.pid as number;
    fs.writeFileSync(path.join(this.dir, 'processes.json'), JSON.stringify(this.processes));
    return log;
  }
}

async function startFresh(dir: string): Promise<ClusterState> {
  const tools = await buildTestTools(['kubernetes', 'etcd', 'kwok']);
  const bin = (tool: string, name: string) => path.join(tools[tool], name);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const plane = new ControlPlane(dir);

  const pki = makeCa(path.join(dir, 'pki'), 'col-test-kubernetes-ca');
  const serving = issueCert(pki, 'apiserver', {
    commonName: 'kube-apiserver',
    sans: ['127.0.0.1', 'localhost', 'kubernetes', 'kubernetes.default', 'kubernetes.default.svc', 'kubernetes.default.svc.cluster.local', '10.96.0.1'],
  });
  const admin = issueCert(pki, 'admin', { commonName: 'col-admin', groups: ['system:masters'] });
  const controllerManager = issueCert(pki, 'controller-manager', { commonName: 'system:kube-controller-manager' });
  const scheduler = issueCert(pki, 'scheduler', { commonName: 'system:kube-scheduler' });
  const serviceAccounts = makeKeyPair(pki, 'service-accounts');

  const [etcdClient, etcdPeer, apiPort] = await Promise.all([freePort(), freePort(), freePort()]);
  const url = `https://127.0.0.1:${apiPort}`;
  const kubeconfigFile = (name: string, cert: { certPem: string; keyPem: string }) => {
    const file = path.join(dir, `${name}.kubeconfig`);
    fs.writeFileSync(file, kubeconfigText(url, pki.caPem, { cert: cert.certPem, key: cert.keyPem }), { mode: 0o600 });
    return file;
  };
  const state: ClusterState = { version: pinnedVersion('kubernetes'), stamp: stampOf(), url, caPem: pki.caPem, admin: { cert: admin.certPem, key: admin.keyPem }, deployerToken: '' };

  const etcdLog = plane.start('etcd', bin('etcd', 'etcd'), [
    '--name=col',
    `--data-dir=${path.join(dir, 'etcd')}`,
    `--listen-client-urls=http://127.0.0.1:${etcdClient}`,
    `--advertise-client-urls=http://127.0.0.1:${etcdClient}`,
    `--listen-peer-urls=http://127.0.0.1:${etcdPeer}`,
    `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeer}`,
    `--initial-cluster=col=http://127.0.0.1:${etcdPeer}`,
    '--unsafe-no-fsync', // test data: durability is not wanted, speed is
    '--log-level=warn',
  ]);
  await waitFor('etcd', async () => (await fetch(`http://127.0.0.1:${etcdClient}/health`).then((r) => r.ok, () => false)), etcdLog, 30_000);

  const apiLog = plane.start('kube-apiserver', bin('kubernetes', 'kube-apiserver'), [
    `--etcd-servers=http://127.0.0.1:${etcdClient}`,
    '--bind-address=127.0.0.1',
    '--advertise-address=127.0.0.1',
    `--secure-port=${apiPort}`,
    `--cert-dir=${path.join(dir, 'apiserver-certs')}`,
    `--tls-cert-file=${serving.cert}`,
    `--tls-private-key-file=${serving.key}`,
    `--client-ca-file=${pki.caCert}`,
    '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
    `--service-account-key-file=${serviceAccounts.publicKey}`,
    `--service-account-signing-key-file=${serviceAccounts.privateKey}`,
    '--service-cluster-ip-range=10.96.0.0/16', // room for the benchmark's 400 Services and more
    '--authorization-mode=RBAC',
    '--allow-privileged=true',
    '--profiling=false',
  ]);
  await waitFor('kube-apiserver', async () => (await statusOf(`${url}/readyz`, state)) === 200, apiLog);

  plane.start('kube-controller-manager', bin('kubernetes', 'kube-controller-manager'), [
    `--kubeconfig=${kubeconfigFile('controller-manager', controllerManager)}`,
    `--service-account-private-key-file=${serviceAccounts.privateKey}`,
    `--root-ca-file=${pki.caCert}`,
    '--use-service-account-credentials=true',
    '--leader-elect=false',
    '--secure-port=0',
    // No cloud here. The node lifecycle controller stays: it lifts the not-ready taint that
    // admission puts on new nodes once kwok reports them Ready, and watches kwok's node leases.
    '--controllers=*,-nodeipam,-cloud-node-lifecycle,-service-lb-controller,-node-route-controller',
    '--concurrent-deployment-syncs=10',
    '--concurrent-replicaset-syncs=10',
    // A managed cluster's controllers are not held to client-go's default 20 requests/s: hundreds
    // of pods should not queue behind it (the benchmark deploys 400).
    '--kube-api-qps=200',
    '--kube-api-burst=400',
  ]);
  plane.start('kube-scheduler', bin('kubernetes', 'kube-scheduler'), [
    `--kubeconfig=${kubeconfigFile('scheduler', scheduler)}`,
    '--leader-elect=false',
    '--secure-port=0',
    '--kube-api-qps=200',
    '--kube-api-burst=400',
  ]);
  const adminKubeconfig = kubeconfigFile('admin', admin);
  const kwokLog = plane.start('kwok', bin('kwok', 'kwok'), [
    `--kubeconfig=${adminKubeconfig}`,
    `--config=${STAGES}`,
    '--manage-all-nodes=true',
    '--cidr=10.244.0.0/16',
    '--node-ip=10.0.0.2',
    '--node-lease-duration-seconds=40', // renewed every 10 s: the heartbeat the node lifecycle controller reads
  ]);

  const kubectl = (args: string[], input?: string) => {
    const r = spawnSync(kubectlPath(), [`--kubeconfig=${adminKubeconfig}`, ...args], { input, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`kubectl ${args.join(' ')} failed: ${r.stderr || r.error}`);
    return r.stdout;
  };
  kubectl(['apply', '-f', SETUP]);
  await waitFor(
    'the kwok nodes (Ready, and untainted by the node lifecycle controller)',
    () => {
      const nodes = JSON.parse(kubectl(['get', 'nodes', '-o', 'json'])).items as any[];
      const ready = (n: any) => n.status?.conditions?.some((c: any) => c.type === 'Ready' && c.status === 'True') && !(n.spec.taints ?? []).length;
      return nodes.length === 3 && nodes.every(ready);
    },
    kwokLog,
  );
  state.deployerToken = kubectl(['create', 'token', 'deployer', '-n', DEPLOYER_NAMESPACE, '--duration=48h']).trim();
  fs.writeFileSync(path.join(dir, 'state.json'), JSON.stringify(state), { mode: 0o600 });
  return state;
}

const clusterScript = async () => (await import(clusterScriptPath)) as { kubeClusterDir: string; kubeClusterAlive(dir?: string): boolean; stopKubeCluster(dir?: string): Promise<void> };

async function adopt(dir: string): Promise<ClusterState | undefined> {
  try {
    const state = JSON.parse(fs.readFileSync(path.join(dir, 'state.json'), 'utf8')) as ClusterState;
    if (state.stamp !== stampOf() || !(await clusterScript()).kubeClusterAlive(dir)) return undefined;
    return (await statusOf(`${state.url}/readyz`, state)) === 200 ? state : undefined;
  } catch {
    return undefined;
  }
}


/** Stops the test control plane (scripts/kube-cluster.mjs). */
export async function stopKubeCluster(): Promise<void> {
  await (await clusterScript()).stopKubeCluster();
}

/** The test control plane: the running one, or a new one (any half-dead one is stopped first). */
export async function startKubeCluster(): Promise<KubeCluster> {
  const { kubeClusterDir: dir } = await clusterScript();
  let state = await adopt(dir);
  if (!state) {
    await stopKubeCluster();
    try {
      state = await startFresh(dir);
    } catch (err) {
      await stopKubeCluster().catch(() => undefined);
      throw err;
    }
  }
  const ready = state;
  const adminKubeconfig = path.join(dir, 'admin.kubeconfig');
  const kubectl: KubeCluster['kubectl'] = (args, options = {}) => {
    const r = spawnSync(kubectlPath(), [`--kubeconfig=${options.kubeconfig ?? adminKubeconfig}`, ...args], { input: options.input, encoding: 'utf8' });
    const result = { status: r.status ?? 1, stdout: r.stdout ?? '', stderr: r.stderr ?? String(r.error ?? '') };
    if (result.status !== 0 && !options.allowFailure) throw new Error(`kubectl ${args.join(' ')} failed: ${result.stderr}`);
    return result;
  };
  return {
    dir,
    url: ready.url,
    caPem: ready.caPem,
    version: ready.version,
    adminKubeconfig,
    admin: ready.admin,
    deployerToken: ready.deployerToken,
    clientCertificate: (user, groups) => {
      const issued = issueCert(existingCa(path.join(dir, 'pki')), `client-${user.replace(/[^\w.-]/g, '_')}`, { commonName: user, groups });
      return { cert: issued.certPem, key: issued.keyPem };
    },
    serviceAccountToken: (name, options = {}) => {
      kubectl(['create', 'namespace', 'col-auth'], { allowFailure: true });
      if (options.fresh) kubectl(['delete', 'serviceaccount', name, '-n', 'col-auth', '--ignore-not-found']);
      kubectl(['create', 'serviceaccount', name, '-n', 'col-auth'], { allowFailure: true });
      return { token: kubectl(['create', 'token', name, '-n', 'col-auth', '--duration=2h']).stdout.trim(), username: `system:serviceaccount:col-auth:${name}` };
    },
    kubeconfig: (user, namespace) => kubeconfigText(ready.url, ready.caPem, user, namespace),
    kubectl,
    get: (args) => JSON.parse(kubectl(['get', '-o', 'json', '--show-managed-fields', ...args]).stdout),
  };
}
