// KubernetesDeploy's `mode: verify` (the drift report) and `container-outer-loop status --kubeconfig`
// on the real control plane (test/support/kube-cluster.ts; kwok plays the kubelet and reports each
// container's imageID and restartCount): the storefront is deployed, then changed with kubectl the
// ways an operator would, and each change must show as drift.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { before, describe, test } from 'node:test';
import { DeploymentFailedError, kubernetesDeploy } from '../../tasks/lib/kube';
import { kubernetesVerify, KubernetesVerifyOptions } from '../../tasks/lib/kube/drift';
import { writeLock } from '../../tasks/lib/lock/file';
import { DriftError } from '../../tasks/lib/release/drift';
import { runStatus } from '../../runner/status';
import { createTestContext } from '../support/context';
import { KubeCluster, startKubeCluster } from '../support/kube-cluster';
import { D, WEB, baseLock, deployOptions, resolveKubeconfig, testNamespace, webManifestDir, WebRelease } from '../support/kube-deploy';

let cluster: KubeCluster;
before(async () => {
  cluster = await startKubeCluster();
});

/** Deploys the storefront into a fresh namespace; returns the options to verify it with. */
async function deployed(name: string, release: WebRelease = {}, deploy: { rolloutTimeoutSeconds?: number; rollbackOnFailure?: boolean } = {}): Promise<KubernetesVerifyOptions> {
  const options = deployOptions(resolveKubeconfig(cluster.kubeconfig(cluster.admin)), { namespace: testNamespace(name), baseDir: webManifestDir(release), ...deploy });
  const deploying = kubernetesDeploy(options, createTestContext());
  // A release meant to fail is left in place (rollbackOnFailure false) to be verified.
  if (deploy.rollbackOnFailure === false) await assert.rejects(deploying, DeploymentFailedError);
  else await deploying;
  return { ...options, maxRestarts: 0, failOnDrift: true, lockName: 'lock.json' };
}

/** Waits until the namespace's pods are as `ok` wants them (kwok moves them along). */
async function until(ns: string, what: string, ok: (pods: any[]) => boolean): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const pods = (cluster.get(['pods', '-n', ns]).items as any[]).filter((p) => !p.metadata.deletionTimestamp);
    if (ok(pods)) return;
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}: ${JSON.stringify(pods.map((p) => [p.metadata.name, p.status.phase]))}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

describe('KubernetesDeploy mode verify on a real control plane', () => {
  test('right after a deployment: no drift, every pod container in the summary; status --kubeconfig says the same', async () => {
    const options = await deployed('fresh');
    const ctx = createTestContext();
    const report = await kubernetesVerify(options, ctx);
    assert.deepEqual(report.differences, []);
    assert.equal(report.rows.length, 2, 'two replicas of web');
    for (const r of report.rows) {
      assert.equal(r.service, 'web');
      assert.equal(r.running, D('1'));
    }
    assert.equal(ctx.outputs.driftCount, '0');
    assert.match(ctx.summaries.join('\n'), /### KubernetesDeploy verify: fresh-/);
    assert.match(ctx.summaries.join('\n'), /\| web \| web-[a-z0-9]+-[a-z0-9]+\/web \| `111111111111` \| `111111111111` \| running \| 0 \| ✅ none \|/);

    const kubeconfig = path.join(createTestContext().tempDir, 'kubeconfig');
    fs.writeFileSync(kubeconfig, cluster.kubeconfig(cluster.admin));
    const lockFile = path.join(path.dirname(kubeconfig), 'image-lock.json');
    writeLock(lockFile, baseLock);
    const lines: string[] = [];
    // The fixture lock has more images than the storefront runs: --not-deployed leaves them out.
    const notDeployed = baseLock.images.filter((i) => i.name !== 'web').map((i) => i.name);
    const status = await runStatus({ lockFile, kubeconfig, namespace: options.namespace, fieldManager: 'container-outer-loop', maxRestarts: 0, notDeployed }, (l) => lines.push(l));
    assert.deepEqual(status.differences, []);
    assert.match(lines.join('\n'), /\*\*No drift:\*\*/);
    const all = await runStatus({ lockFile, kubeconfig, namespace: options.namespace, fieldManager: 'container-outer-loop', maxRestarts: 0, notDeployed: [] }, () => {});
    assert.ok(all.differences.length > 0 && all.differences.every((d) => d.kind === 'missing'), 'without --not-deployed, the images the namespace does not run are missing');
  });

  test('kubectl set image, a bare pod and a workload made by hand are drift; the task fails and lists each', async () => {
    const options = await deployed('byhand');
    const ns = options.namespace;
    cluster.kubectl(['set', 'image', 'deployment/web', `web=${WEB}@${D('9')}`, '-n', ns]);
    cluster.kubectl(['run', 'debug', `--image=${WEB}@${D('1')}`, '-n', ns]);
    cluster.kubectl(['create', 'deployment', 'extra', `--image=registry.example.com/tools/extra@${D('7')}`, '-n', ns]);
    await until(ns, 'the new pods to run', (pods) => pods.length === 4 && pods.every((p) => p.status.phase === 'Running' && p.status.containerStatuses?.every((s: any) => s.ready)));

    const ctx = createTestContext();
    await assert.rejects(kubernetesVerify(options, ctx), (err: Error) => {
      assert.ok(err instanceof DriftError);
      assert.match(err.message, new RegExp(`web-[a-z0-9-]+/web \\(service web\\) runs ${D('9')}, not the lock's ${D('1')}\\.`));
      assert.match(err.message, /debug\/debug \(service debug\) is not part of the release: the lock has no service 'debug'\./);
      assert.match(err.message, /debug\/debug \(service debug\) was not started by the deploy: it is a bare pod that no workload owns/);
      assert.match(err.message, /extra-[a-z0-9-]+\/extra \(service extra\) was not started by the deploy: Deployment extra was not applied by KubernetesDeploy \(no server-side apply by 'container-outer-loop'\)/);
      return true;
    });
    assert.equal(Number(ctx.outputs.driftCount), 6, 'two web pods of another digest; the bare pod and the extra deployment, each not in the lock and started by hand');
    assert.match(ctx.summaries.join('\n'), /\| extra \| extra-.+ \| — \| `777777777777` \| running \| 0 \| ❌ not in the lock, started by hand \|/);
  });

  test('restarts above maxRestarts are drift; failOnDrift false makes every difference a warning', async () => {
    const options = await deployed('crash', { replicas: 1, podLabels: { 'col.test/behaviour': 'crash-loop' } }, { rolloutTimeoutSeconds: 3, rollbackOnFailure: false });
    await until(options.namespace, 'a restart', (pods) => pods.some((p) => p.status.containerStatuses?.some((s: any) => s.restartCount >= 2)));
    const ctx = createTestContext();
    const report = await kubernetesVerify({ ...options, maxRestarts: 1, failOnDrift: false }, ctx);
    assert.deepEqual(report.differences.map((d) => d.kind).sort(), ['down', 'restarts']);
    assert.ok(ctx.logs.some((l) => /^WARNING: Drift: web-.+\/web \(service web\) restarted \d+ time\(s\), more than maxRestarts \(1\)\./.test(l)));
    assert.ok(ctx.logs.some((l) => /^WARNING: Drift: .*is not serving: it is waiting \(CrashLoopBackOff/.test(l)));
    const allowed = await kubernetesVerify({ ...options, maxRestarts: 1000, failOnDrift: false }, createTestContext());
    assert.deepEqual(allowed.differences.map((d) => d.kind), ['down'], 'restarts up to maxRestarts are not drift');
  });
});
