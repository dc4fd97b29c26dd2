// KubernetesDeploy: render (convert compose or read manifests), pin every image by digest, apply
// with server-side apply, wait for the rollout with kubectl's rules, verify the running digests,
// roll back on failure; or a canary deploy / promote / reject; or (renderOnly) render, pin and
// publish without any cluster. Before anything is applied, the promotion diff says what the release
// changes. With bakeSeconds (or a smokeTestUrl) the rolled-out pods are watched a while longer, and
// a failure then rolls back as a failed rollout does. A cancel during the apply, the rollout wait or
// the bake window rolls back as a failure does, in the seconds the agent allows, without waiting for
// the rollback's rollout. With notifyUrl, a webhook hears how the deploy ended. (`mode: verify`
// applies nothing and reports drift: drift.ts.)
//
// This file is the flow; its steps live beside it: the options and their checks (deploy-options.ts),
// the namespace and pull secret (namespace.ts), the rolling deploy and its rollback (rolling.ts),
// the canary (canary.ts), the gate after the apply (gate.ts) and the summary (report.ts).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CANCEL_GRACE_MS, TaskContext, cancelDeadline, cancelRollbackTime } from '../context';
import { OuterLoopError } from '../errors';
import { promotionDiff, publishDiff, releaseDecision } from '../release/diff';
import { ReleaseNotes, withNotification } from '../release/notify';
import { KUBE_TRACE_ANNOTATIONS, releaseTrace, traceEntries } from '../release/trace';
import { resolveResources } from './apply';
import { canaryDeploy } from './canary';
import { KubeClient } from './client';
import { DeployRun, DeploymentFailedError, KubernetesDeployOptions, KubernetesDeployResult, validateOptions } from './deploy-options';
import { applyPullSecret, ensureNamespace } from './namespace';
import { render } from './render';
import { deployedDigests, writeSummary } from './report';
import { removeCanaries } from './rollback';
import { rollingDeploy } from './rolling';
import { releaseWorkloads, runningWorkloads } from './running';

export { DeploymentFailedError, MAX_ROLLOUT_TIMEOUT_SECONDS } from './deploy-options';
export type { KubernetesDeployOptions, KubernetesDeployResult, PullSecretSpec } from './deploy-options';
export { pullSecretFrom } from './namespace';

/**
 * Deploys (or, with renderOnly, only renders) and sets the outputs renderedManifests,
 * deployedDigests and rolledBack — also when a rollout fails (then rolledBack says whether the
 * previous revision runs again); any other failure sets rolledBack to false.
 */
export async function kubernetesDeploy(options: KubernetesDeployOptions, ctx: TaskContext): Promise<KubernetesDeployResult> {
  // The environment a notification names: the deployment job's environment, else the namespace.
  const about = { task: 'KubernetesDeploy' as const, environment: ctx.variable('Environment.Name') ?? options.namespace, buildNumber: options.lock?.buildNumber };
  return withNotification(options.renderOnly ? undefined : options.notify, ctx, about, (watched, notes) => deployAndPublish(options, watched, notes));
}

async function deployAndPublish(options: KubernetesDeployOptions, ctx: TaskContext, notes: ReleaseNotes): Promise<KubernetesDeployResult> {
  const publish = (result: KubernetesDeployResult) => {
    ctx.output('renderedManifests', result.renderedManifests);
    ctx.output('deployedDigests', JSON.stringify(result.deployedDigests));
    ctx.output('rolledBack', String(result.rolledBack));
  };
  try {
    const result = await deploy(options, ctx, notes);
    publish(result);
    return result;
  } catch (err) {
    if (err instanceof DeploymentFailedError) publish(err.result);
    else ctx.output('rolledBack', 'false');
    throw err;
  }
}

async function deploy(options: KubernetesDeployOptions, ctx: TaskContext, notes: ReleaseNotes): Promise<KubernetesDeployResult> {
  validateOptions(options);
  const renderedManifests = options.renderedManifests ?? path.join(ctx.variable('Build.ArtifactStagingDirectory') ?? ctx.tempDir, 'kubernetes-deploy', `${options.namespace}-manifests.yaml`);
  const pullSecretNames = [...options.imagePullSecrets, ...(options.pullSecret ? [options.pullSecret.name] : [])];

  // 1. Render and pin: nothing touches the cluster before every image is pinned.
  const rendered = await ctx.group('Render and pin the manifests', async () => {
    const r = render({ ...options, imagePullSecrets: [...new Set(pullSecretNames)] });
    for (const s of r.secretValues) ctx.setSecret(s);
    for (const w of r.warnings) ctx.warn(w);
    if (r.inactiveServices.length) ctx.info(`Not converted (profile not active): ${r.inactiveServices.join(', ')}`);
    for (const p of r.pins.images) {
      ctx.info(`  ${p.object}, container ${p.container}: ${p.source === 'lock' ? `${p.from} → ${p.to}` : p.source === 'manifest-digest' ? `${p.to} (digest in the manifest)` : `${p.to} (NOT pinned)`}`);
    }
    return r;
  });
  fs.mkdirSync(path.dirname(path.resolve(renderedManifests)), { recursive: true });
  fs.writeFileSync(renderedManifests, rendered.text);
  ctx.info(`Rendered ${rendered.items.length} object(s) into ${renderedManifests}.`);
  if (options.publishArtifact) ctx.uploadArtifact(options.artifactName, renderedManifests);

  const result: KubernetesDeployResult = {
    renderedManifests,
    deployedDigests: deployedDigests(rendered),
    rolledBack: false,
    applied: [],
    imageChecks: [],
  };

  if (options.renderOnly) {
    const unpinned = rendered.pins.images.filter((p) => p.source === 'unpinned').length;
    const outcome = `Rendered only (renderOnly): ${rendered.items.length} object(s), ${unpinned ? `${unpinned} image(s) NOT pinned` : 'every image pinned by digest'}${options.publishArtifact ? `, published as the artifact '${options.artifactName}'` : ''}; no cluster was contacted and nothing was applied.`;
    ctx.info(outcome);
    writeSummary(ctx, options, rendered, result, outcome);
    return result;
  }

  // 2. Connect and check every kind against discovery before applying anything.
  const config = await options.kubeconfig!();
  const clientWith = (signal: AbortSignal) => new KubeClient(config, { setSecret: (s) => ctx.setSecret(s), log: ctx, ...options.client, signal });
  const graceEnd = cancelDeadline(ctx.signal);
  const client = clientWith(ctx.signal);
  try {
    ctx.info(`Cluster: ${client.describeTarget()}, namespace '${options.namespace}'.`);
    const resources = await resolveResources(client, rendered.items, options.namespace);

    if (options.action === 'reject') {
      await ctx.group('Reject the canary', async () => {
        const removed = await removeCanaries(client, rendered.items.filter((i) => i.object.kind === 'Deployment').map((i) => i.object));
        ctx.info(removed.length ? `Removed ${removed.join(', ')}.` : 'No canary or baseline workloads were found; nothing to remove.');
      });
      writeSummary(ctx, options, rendered, result, 'Canary rejected: canary and baseline workloads removed; the stable workloads were not changed.');
      return result;
    }

    result.diff = await ctx.group(`Promotion diff: what the release changes in namespace '${options.namespace}'`, async () => {
      // An account that may not list a kind can still deploy the others: the diff says what it cannot see.
      const onForbidden = (kind: string) => ctx.warn(`Promotion diff: the account may not list ${kind}s in '${options.namespace}' (403); a ${kind} of the release is shown as added.`);
      const running = await runningWorkloads(client, options.namespace, { onForbidden });
      const diff = await promotionDiff(running, releaseWorkloads(rendered.items.map((i) => i.object)), options.registryCredentials, ctx);
      publishDiff(diff, ctx, 'kubernetes-deploy-diff', `KubernetesDeploy: what the release changes in ${options.namespace}`);
      return diff;
    });
    const decision = releaseDecision(result.diff, { diffOnly: options.diffOnly, deployIfUnchanged: options.deployIfUnchanged });
    if (!decision.deploy) {
      ctx.info(`${decision.reason} Nothing was applied to namespace '${options.namespace}'.`);
      result.skipped = decision.reason;
      result.deployedDigests = {};
      return result;
    }

    await ensureNamespace(client, options, ctx);
    if (options.pullSecret) await applyPullSecret(client, options, ctx);
    const trace = traceEntries(releaseTrace(ctx, options.lock, options.lockDigest), KUBE_TRACE_ANNOTATIONS);

    const run: DeployRun = { client, rendered, resources, options, ctx, result, notes, inGrace: (undo) => inGraceTime(clientWith, graceEnd, undo) };
    if (options.strategy === 'canary' && options.action === 'deploy') return await canaryDeploy(run, trace);
    return await rollingDeploy(run, trace);
  } finally {
    client.close();
  }
}

/**
 * `undo` after a cancel, with a client whose requests end when the cancelled task's grace time does
 * (the task's own client stops at the cancel).
 */
async function inGraceTime<T>(clientWith: (signal: AbortSignal) => KubeClient, graceEnd: () => number, undo: (client: KubeClient) => Promise<T>): Promise<T> {
  const left = cancelRollbackTime(graceEnd);
  if (left === undefined) throw new OuterLoopError(`no time was left of the ${CANCEL_GRACE_MS / 1000} s a cancelled task has`);
  const client = clientWith(AbortSignal.timeout(left));
  try {
    return await undo(client);
  } finally {
    client.close();
  }
}
