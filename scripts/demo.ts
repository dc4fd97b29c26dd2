// `npm run demo [-- --keep] [-- --stack current] [-- --kubernetes]`: the whole outer loop on this
// machine. Starts (or reuses) a Docker engine and a throwaway registry, runs
// examples/azure-pipelines.yml with the local runner, and shows that the digests pushed are the
// digests running in QA and staging, and the digests of the Kubernetes manifests its Kubernetes
// stage renders (renderOnly: no cluster). `--kubernetes` also starts the local Kubernetes control
// plane (test/support/kube-cluster.ts: built from Go modules, kwok for nodes) and runs the
// pipeline's Kubernetes QA and staging stages against it: one namespace per environment, whose
// running pods' digests are shown next to qa and staging. Cleans up unless --keep.
// The engine: the user's own (DOCKER_HOST, else /var/run/docker.sock, with whatever Compose the
// machine has), else the private Debian engine; no Go needed. `--stack current` runs it on the
// current stack built from Go modules (test/support/stack.ts) instead. It says which it used.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type Dockerode from 'dockerode';
import { REPO_ROOT, runCli } from '../runner/cli';
import { PROJECT_LABEL, SERVICE_LABEL } from '../tasks/lib/compose/containers';
import type { ImageLock } from '../tasks/lib/lock/types';
import { ensureBaseImage, BASE_IMAGE } from '../test/support/base-image';
import { findCompose } from '../tasks/lib/compose/cli';
import { removeComposeProject, startEngine, type TestEngine } from '../test/support/engine';
import { prepareCurrentStack, STACKS, type StackName } from '../test/support/stack';
import { startKubeCluster, stopKubeCluster, type KubeCluster } from '../test/support/kube-cluster';
import { tagAndPush } from '../test/support/images';
import { startRegistry, type TestRegistry } from '../test/support/registry';

const PIPELINE = path.join(REPO_ROOT, 'examples', 'azure-pipelines.yml');

export interface DemoResult {
  ok: boolean;
  lock?: ImageLock;
  lockDigests: Record<string, string>;
  /** The Kubernetes stage's artifact: the rendered, pinned manifests (file → text). */
  kubernetesManifests: Record<string, string>;
  running: Record<string, Record<string, string>>; // environment → service → digest
  reportFile: string;
}

/** The namespaces the pipeline's Kubernetes stages deploy to, by environment. */
const KUBERNETES_NAMESPACES: Record<string, string> = { 'kubernetes-qa': 'shop-qa', 'kubernetes-staging': 'shop-staging' };

export async function runDemo(options: { keep: boolean; stack?: StackName; kubernetes?: boolean; out?: (line: string) => void }): Promise<DemoResult> {
  const out = options.out ?? console.log;
  if (!fs.existsSync(path.join(REPO_ROOT, 'dist', 'tasks'))) {
    out('Bundling the tasks (npm run build) …');
    execFileSync(process.execPath, [path.join(REPO_ROOT, 'scripts', 'bundle.mjs'), '--quiet'], { stdio: 'inherit' });
  }
  if (options.stack === 'current') await prepareCurrentStack();
  const engine = await startEngine({ stack: options.stack ?? 'auto' });
  const projects = new Set<string>();
  let setup: DemoSetup | undefined;
  let cluster: KubeCluster | undefined;
  try {
    out(await describeStack(engine));
    if (options.kubernetes) {
      cluster = await startKubeCluster();
      out(`Kubernetes: ${cluster.url} (local control plane ${cluster.version}, kwok nodes, started for the demo)`);
    }
    setup = await prepareDemo(engine, cluster?.adminKubeconfig);
    out(`Registry: ${setup.registry.host} (htpasswd)`);
    const { record, report, runDir } = await runExample(engine, setup, [], out, { deployToKubernetes: cluster ? 'true' : 'false' });
    const lock = report.locks[0];
    const lockDigests = Object.fromEntries((lock?.images ?? []).map((i) => [i.name, i.digest]));
    const running: DemoResult['running'] = {};
    for (const deployment of record.deployments) {
      const found = await runningDigests(engine.docker, deployment.environment);
      for (const p of found.projects) projects.add(p);
      running[deployment.environment] = cluster && KUBERNETES_NAMESPACES[deployment.environment] ? podDigests(cluster, KUBERNETES_NAMESPACES[deployment.environment]) : found.digests;
    }
    if (cluster && Object.keys(KUBERNETES_NAMESPACES).some((env) => !running[env])) {
      out('The Kubernetes stages did not deploy: see the report.');
      running['kubernetes-qa'] ??= {};
    }
    out('\nDigests: pushed (lock) → running');
    let ok = record.result !== 'Failed' && Object.keys(running).length > 0;
    for (const [service, digest] of Object.entries(running[Object.keys(running)[0]] ?? {})) {
      const cells = Object.entries(running).map(([env, d]) => `${env} ${d[service] === lockDigests[service] ? 'same' : `DIFFERENT (${d[service] ?? 'not running'})`}`);
      if (Object.values(running).some((d) => d[service] !== lockDigests[service])) ok = false;
      out(`  ${service.padEnd(8)} ${digest}  ${cells.join(', ')}`);
    }
    const kubernetesManifests = readArtifact(path.join(record.artifactsDir, 'kubernetes-manifests'));
    const images = [...Object.values(kubernetesManifests).join('\n').matchAll(/^\s*-?\s*image: (\S+)/gm)].map((m) => m[1]);
    const pinned = images.filter((i) => /@sha256:[a-f0-9]{64}$/.test(i));
    out(`\nKubernetes manifests (rendered without a cluster): ${pinned.length} of ${images.length} container image(s) pinned by digest`);
    if (images.length === 0 || pinned.length !== images.length) ok = false;
    out(ok ? '\nThe images that were tested are the images running in every environment, byte for byte.' : '\nThe demo did not end as expected: see the report.');
    out(`Report: ${path.join(runDir, 'report.md')}`);
    return { ok, lock, lockDigests, kubernetesManifests, running, reportFile: path.join(runDir, 'report.md') };
  } finally {
    if (options.keep) {
      setup?.removeSecrets();
      out(`--keep: environments and registry ${setup?.registry.host} left running (Ctrl-C does not stop them; remove the containers of projects ${[...projects].join(', ')} when done).`);
      if (cluster) out(`--keep: the Kubernetes control plane is left running at ${cluster.url} (kubeconfig ${cluster.adminKubeconfig}; node scripts/kube-cluster.mjs stop ends it).`);
    } else {
      for (const project of projects) await removeComposeProject(engine.docker, project);
      await setup?.stop();
      await engine.stop();
      if (cluster) await stopKubeCluster();
    }
  }
}

export interface DemoSetup {
  registry: TestRegistry;
  /** The connections file (the registry's password inside, in a private 0700 folder). */
  connections: string;
  removeSecrets(): void;
  stop(): Promise<void>;
}

/** What the example pipeline needs around it: a throwaway htpasswd registry holding the "third-party" cache image, and its service connection. */
export async function prepareDemo(engine: TestEngine, kubeconfig?: string): Promise<DemoSetup> {
  const registry = await startRegistry('htpasswd');
  const secrets = fs.mkdtempSync(path.join(os.tmpdir(), 'col-demo-'));
  fs.chmodSync(secrets, 0o700);
  const removeSecrets = () => fs.rmSync(secrets, { recursive: true, force: true });
  const stop = async () => {
    removeSecrets();
    await registry.stop();
  };
  try {
    await ensureBaseImage(engine.docker);
    // The cache is a third-party image: pushed once under a tag, as if it came from Docker Hub.
    await tagAndPush(engine.docker, BASE_IMAGE, `${registry.host}/third-party/cache:1.0`, { username: registry.username, password: registry.password, serveraddress: registry.host });
    const connections = path.join(secrets, 'connections.yml');
    const cluster = kubeconfig ? `shop-cluster:\n  type: kubernetes\n  kubeconfig: ${JSON.stringify(kubeconfig)}\n` : '';
    fs.writeFileSync(connections, `shop-registry:\n  type: dockerregistry\n  url: http://${registry.host}\n  username: ${registry.username}\n  password: ${JSON.stringify(registry.password)}\n${cluster}`, { mode: 0o600 });
    return { registry, connections, removeSecrets, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Runs examples/azure-pipelines.yml (only `stages`, when given) with the local runner against the engine and the demo's registry. */
export async function runExample(engine: TestEngine, setup: DemoSetup, stages: string[], out: (line: string) => void, variables: Record<string, string> = {}) {
  process.env.DOCKER_HOST = engine.dockerHost;
  return runCli(
    { pipelineFile: PIPELINE, stages, variables: { REGISTRY: setup.registry.host, BASE_IMAGE, ...variables }, secretVariables: {}, connectionFlags: [], connectionsFile: setup.connections },
    out,
  );
}

/** Which engine and Compose the demo runs on: `Docker engine: … Compose: …`. */
export async function describeStack(engine: TestEngine): Promise<string> {
  const [version, info] = await Promise.all([engine.docker.version(), engine.docker.info()]);
  const containerdStore = (info.DriverStatus ?? []).some(([k, v]: [string, string]) => k === 'driver-type' && v === 'io.containerd.snapshotter.v1');
  const origin = engine.private ? `private ${engine.stack} engine, started for the demo` : 'found running';
  const cli = await findCompose({ env: { ...process.env, DOCKER_HOST: engine.dockerHost }, askVersion: true }).then(
    (c) => `${c.display} ${c.version}`,
    (err: Error) => `none found (${err.message})`,
  );
  return `Docker engine: ${engine.dockerHost} (${origin}): Docker ${version.Version}, API ${version.ApiVersion}, ${containerdStore ? 'containerd' : 'classic'} image store. Compose: ${cli}`;
}

/** Every file of an artifact folder, by name. */
function readArtifact(dir: string): Record<string, string> {
  if (!fs.existsSync(dir)) return {};
  return Object.fromEntries(fs.readdirSync(dir).map((f) => [f, fs.readFileSync(path.join(dir, f), 'utf8')]));
}

/** The digests the namespace's running pods report (containerStatuses[].imageID), by container (= compose service). */
function podDigests(cluster: KubeCluster, namespace: string): Record<string, string> {
  const digests: Record<string, string> = {};
  for (const pod of cluster.get(['pods', '-n', namespace]).items as { status: { phase?: string; containerStatuses?: { name: string; imageID?: string }[] } }[]) {
    if (pod.status.phase !== 'Running') continue;
    for (const c of pod.status.containerStatuses ?? []) {
      const digest = /@(sha256:[a-f0-9]{64})$/.exec(c.imageID ?? '')?.[1];
      if (digest) digests[c.name] = digest;
    }
  }
  return digests;
}

/** Registry digests of the images the environment's containers run (compose project `*-<environment>`). */
export async function runningDigests(docker: Dockerode, environment: string): Promise<{ digests: Record<string, string>; projects: string[] }> {
  const containers = await docker.listContainers({ filters: { label: [PROJECT_LABEL] } });
  const digests: Record<string, string> = {};
  const projects = new Set<string>();
  for (const c of containers) {
    const project = c.Labels[PROJECT_LABEL];
    if (!project.endsWith(`-${environment}`)) continue;
    projects.add(project);
    const image = await docker.getImage(c.ImageID).inspect();
    const digest = (image.RepoDigests ?? []).map((d) => d.split('@')[1]).find(Boolean);
    if (digest) digests[c.Labels[SERVICE_LABEL]] = digest;
  }
  return { digests, projects: [...projects] };
}

if (require.main === module) {
  const at = process.argv.indexOf('--stack');
  const stack = at > 0 ? process.argv[at + 1] : undefined;
  if (stack !== undefined && !(STACKS as readonly string[]).includes(stack)) {
    console.error(`demo: --stack takes one of ${STACKS.join(', ')}, not '${stack ?? ''}'`);
    process.exit(2);
  }
  runDemo({ keep: process.argv.includes('--keep'), stack: stack as StackName | undefined, kubernetes: process.argv.includes('--kubernetes') })
    .then((r) => process.exit(r.ok ? 0 : 1))
    .catch((err: unknown) => {
      console.error(`demo: ${err instanceof Error ? err.message : String(err)}`);
      process.exit(2);
    });
}
