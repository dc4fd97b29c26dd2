// KubernetesDeploy with `mode: verify`: deploys nothing. It renders the manifests against the lock
// exactly as a deployment would (so it knows the workloads and the digest each container must run),
// reads the namespace's pods, and reports the drift (tasks/lib/release/drift.ts): in the log, in the
// job summary, and as a failure with failOnDrift.
import type { TaskContext } from '../context';
import { InputError } from '../errors';
import { checkDriftInputs, compareDrift, concludeDrift, DriftReport, driftMarkdown } from '../release/drift';
import { expectedFromObjects, readNamespaceForDrift } from '../release/drift-kube';
import { KubeClient } from './client';
import { KubernetesDeployOptions, validateOptions } from './deploy-options';
import { render } from './render';

export interface KubernetesVerifyOptions extends KubernetesDeployOptions {
  maxRestarts: number;
  failOnDrift: boolean;
  /** Where the lock was read, for the report. */
  lockName?: string;
}

export async function kubernetesVerify(options: KubernetesVerifyOptions, ctx: TaskContext): Promise<DriftReport> {
  if (options.renderOnly) throw new InputError("Input 'mode': 'verify' reads the cluster, so it cannot be combined with renderOnly: true.");
  validateOptions(options);
  checkDriftInputs(options);
  if (!options.lock && !options.allowUnpinned) {
    throw new InputError("Input 'lockFile': mode 'verify' compares the namespace with an image lock; give the lock PushWithDigest@1 wrote (lockFile, or lockFromBuild for another run's artifact).");
  }
  const rendered = render(options);
  for (const s of rendered.secretValues) ctx.setSecret(s);
  const expected = expectedFromObjects(rendered.items.map((i) => i.object));
  const config = await options.kubeconfig!();
  const client = new KubeClient(config, { setSecret: (s) => ctx.setSecret(s), log: ctx, ...options.client, signal: ctx.signal });
  try {
    const where = `Namespace '${options.namespace}' on ${client.describeTarget()}`;
    ctx.info(`Verifying ${where} against the image lock; nothing is applied (mode: verify).`);
    const running = await readNamespaceForDrift(client, options.namespace, options.fieldManager);
    const report = compareDrift(expected, running, { maxRestarts: options.maxRestarts });
    for (const r of report.rows) ctx.info(`  ${r.service}${r.name ? ` ${r.name}` : ''}: ${r.state}${r.kinds.length ? ` — drift: ${r.kinds.join(', ')}` : ''}`);
    const outcome = { title: `KubernetesDeploy verify: ${options.namespace}`, where, lockName: options.lockName, failOnDrift: options.failOnDrift };
    ctx.addSummary('kubernetes-verify', driftMarkdown(report, outcome, { maxRestarts: options.maxRestarts }));
    ctx.output('driftCount', String(report.differences.length));
    concludeDrift(report, outcome, ctx);
    return report;
  } finally {
    client.close();
  }
}
