// KubernetesDeploy against kubectl on the real test control plane (test/support/kube-cluster.ts):
// the 200-service compose app (bench/kubernetes.ts's file: 200 Deployments of 2 replicas, 200
// Services, 20 claims — about 420 objects), applied and rolled out into a fresh namespace each.
//   task:    KubernetesDeploy (convert, pin, server-side apply, wait for every rollout, check imageIDs)
//   kubectl: `kubectl apply --server-side -f <the task's rendered manifests>`, then
//            `kubectl rollout status` for each workload, one after another (as a pipeline script does)
// Reported: wall time of each and the ratio (target ≤ 0.8), and the apply alone. The two take turns,
// kubectl first, for `rounds` rounds; the medians are compared.
//   node --import tsx bench/kube-cluster.ts     (or as part of npm run bench)
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { kubernetesDeploy } from '../tasks/lib/kube';
import type { ImageLock } from '../tasks/lib/lock/types';
import { createTestContext } from '../test/support/context';
import { KubeCluster, kubectlPath, startKubeCluster } from '../test/support/kube-cluster';
import { deployOptions, resolveKubeconfig } from '../test/support/kube-deploy';
import { composeFile, digest } from './kubernetes';
import { median, progress, round, runTimed } from './util';

export const KUBE_CLUSTER_TARGET_RATIO = 0.8;

export interface KubeClusterReport {
  kubernetesVersion: string;
  services: number;
  objects: number;
  workloads: number;
  rounds: number;
  task: { wallMs: number; applyMs: number };
  kubectl: { wallMs: number; applyMs: number; version: string };
  ratio: number;
  applyRatio: number;
  targetRatio: number;
  meetsTarget: boolean;
}

function lockFor(services: number): ImageLock {
  const images = Array.from({ length: services }, (_, i) => {
    const repository = `registry.example.com/bench/svc-${i}`;
    return { name: `svc-${i}`, repository, tags: ['1.0'], digest: digest(i + 1), ref: `${repository}@${digest(i + 1)}`, source: 'built' as const, platforms: ['linux/amd64'] };
  });
  return { schemaVersion: 1, createdAt: new Date().toISOString(), buildNumber: 'bench', images } as ImageLock;
}

async function runTask(cluster: KubeCluster, dir: string, lock: ImageLock, namespace: string): Promise<{ wallMs: number; applyMs: number; rendered: string; objects: number; workloads: number }> {
  const ctx = createTestContext();
  let applyStarted = 0;
  let applyEnded = 0;
  const group = ctx.group.bind(ctx);
  ctx.group = async (title, fn) => {
    if (title.startsWith('Server-side apply')) applyStarted = performance.now();
    if (title.startsWith('Wait for')) applyEnded = performance.now();
    return group(title, fn);
  };
  const options = deployOptions(resolveKubeconfig(cluster.kubeconfig(cluster.admin)), {
    namespace,
    source: 'compose',
    composeFiles: [path.join(dir, 'docker-compose.yml')],
    env: {},
    baseDir: dir,
    lock,
    rolloutTimeoutSeconds: 600,
    rollbackOnFailure: false,
    renderedManifests: path.join(dir, `${namespace}.yaml`),
    publishArtifact: false,
    client: undefined,
  });
  const started = performance.now();
  const result = await kubernetesDeploy(options, ctx);
  const wallMs = performance.now() - started;
  const workloads = result.applied.filter((a) => /^(Deployment|StatefulSet|DaemonSet|Job) /.test(a)).length;
  return { wallMs, applyMs: applyEnded - applyStarted, rendered: result.renderedManifests, objects: result.applied.length, workloads };
}

async function runKubectl(cluster: KubeCluster, rendered: string, namespace: string): Promise<{ wallMs: number; applyMs: number }> {
  const kubectl = (args: string[]) => runTimed(kubectlPath(), [`--kubeconfig=${cluster.adminKubeconfig}`, ...args], { timeoutMs: 900_000 });
  const started = performance.now();
  const created = await kubectl(['create', 'namespace', namespace]);
  if (created.code !== 0) throw new Error(`kubectl create namespace: ${created.stderr}`);
  const apply = await kubectl(['apply', '--server-side', '--field-manager=kubectl', '-n', namespace, '-f', rendered]);
  if (apply.code !== 0) throw new Error(`kubectl apply: ${apply.stderr.slice(-800)}`);
  const applyMs = performance.now() - started;
  const workloads = apply.stdout
    .split('\n')
    .map((l) => /^(deployment|statefulset|daemonset)\.apps\/(\S+)/.exec(l))
    .filter((m): m is RegExpExecArray => m !== null);
  for (const [, kind, name] of workloads) {
    const status = await kubectl(['rollout', 'status', `${kind}/${name}`, '-n', namespace, '--timeout=600s']);
    if (status.code !== 0) throw new Error(`kubectl rollout status ${kind}/${name}: ${status.stderr}`);
  }
  return { wallMs: performance.now() - started, applyMs };
}

export async function measureKubeCluster(options: { services?: number; rounds?: number } = {}): Promise<KubeClusterReport> {
  const services = options.services ?? 200;
  const rounds = options.rounds ?? 2;
  progress('KubernetesDeploy on the real control plane: starting it (etcd, kube-apiserver, controller-manager, scheduler, kwok)');
  const cluster = await startKubeCluster();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'col-bench-kcluster-'));
  const run = `${process.pid.toString(36)}-${Date.now().toString(36)}`;
  const namespaces: string[] = [];
  try {
    fs.writeFileSync(path.join(dir, 'docker-compose.yml'), composeFile(services));
    const lock = lockFor(services);
    const task: { wallMs: number; applyMs: number }[] = [];
    const kubectl: { wallMs: number; applyMs: number }[] = [];
    let objects = 0;
    let workloads = 0;
    for (let r = 0; r < rounds; r++) {
      // kubectl applies what the task rendered (pinned, converted): the same objects.
      const renderNs = `bench-render-${run}-${r}`;
      namespaces.push(renderNs);
      progress(`  round ${r + 1}/${rounds}: KubernetesDeploy, ${services} services`);
      const t = await runTask(cluster, dir, lock, renderNs);
      task.push(t);
      objects = t.objects;
      workloads = t.workloads;
      const kubectlNs = `bench-kubectl-${run}-${r}`;
      namespaces.push(kubectlNs);
      progress(`  round ${r + 1}/${rounds}: kubectl apply --server-side + rollout status × ${workloads}`);
      kubectl.push(await runKubectl(cluster, t.rendered, kubectlNs));
    }
    const m = (xs: { wallMs: number; applyMs: number }[]) => ({ wallMs: round(median(xs.map((x) => x.wallMs)), 0), applyMs: round(median(xs.map((x) => x.applyMs)), 0) });
    const taskM = m(task);
    const kubectlM = m(kubectl);
    const ratio = round(taskM.wallMs / kubectlM.wallMs, 2);
    const version = (await runTimed(kubectlPath(), ['version', '--client', '-o', 'json'])).stdout;
    return {
      kubernetesVersion: cluster.version,
      services,
      objects,
      workloads,
      rounds,
      task: taskM,
      kubectl: { ...kubectlM, version: (JSON.parse(version).clientVersion?.gitVersion as string) ?? '?' },
      ratio,
      applyRatio: round(taskM.applyMs / kubectlM.applyMs, 2),
      targetRatio: KUBE_CLUSTER_TARGET_RATIO,
      meetsTarget: ratio <= KUBE_CLUSTER_TARGET_RATIO,
    };
  } finally {
    // Namespaces go in the background; the cluster stays for the rest of the run.
    for (const ns of namespaces) await runTimed(kubectlPath(), [`--kubeconfig=${cluster.adminKubeconfig}`, 'delete', 'namespace', ns, '--wait=false']).catch(() => undefined);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export function kubeClusterMissed(r: KubeClusterReport | undefined): string[] {
  return r && !r.meetsTarget ? [`KubernetesDeploy on the control plane: ${r.ratio}× kubectl's wall time > ${r.targetRatio}×`] : [];
}

export function kubeClusterTable(r: KubeClusterReport | undefined): string[] {
  if (!r) return [];
  return [
    `KubernetesDeploy on a real control plane (Kubernetes ${r.kubernetesVersion}, kwok nodes): ${r.services} services → ${r.objects} objects, ${r.workloads} workloads; median of ${r.rounds} rounds`,
    `  apply + rollout: task ${r.task.wallMs} ms, kubectl ${r.kubectl.version} apply --server-side + rollout status each ${r.kubectl.wallMs} ms → ${r.ratio}× (target ≤ ${r.targetRatio}×)  ${r.meetsTarget ? 'ok' : 'MISSED'}`,
    `  apply alone: task ${r.task.applyMs} ms, kubectl ${r.kubectl.applyMs} ms → ${r.applyRatio}×`,
    '',
  ];
}

if (require.main === module) {
  measureKubeCluster().then(
    (r) => {
      process.stderr.write(`${kubeClusterTable(r).join('\n')}\n`);
      process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
    },
    (err) => {
      process.stderr.write(`${(err as Error).stack}\n`);
      process.exit(1);
    },
  );
}
