// The canary deploy (strategy canary, action deploy): beside each Deployment a canary running the
// new template and a baseline running the current one (rollback.ts makes them), applied with the
// other objects and gated (gate.ts). The stable workloads are not changed; a failed or cancelled
// canary is removed. Promote and reject are the rolling deploy (rolling.ts) and removeCanaries.
import { errorMessage, InputError } from '../errors';
import { ApplyItem, resolveResources } from './apply';
import { DeployRun, DeploymentFailedError, KubernetesDeployResult } from './deploy-options';
import { applyAndGate } from './gate';
import { ROLLOUT_KINDS, describe, getPath } from './objects';
import { imageChanges, writeSummary } from './report';
import { BeforeState, canaryObjects, removeCanaries } from './rollback';
import { annotateItems } from './trace';

/** The canary and baseline of every Deployment, applied and gated; `trace`: this run's trace annotations. */
export async function canaryDeploy(run: DeployRun, trace: Record<string, string>): Promise<KubernetesDeployResult> {
  const { client, rendered, options, ctx, result } = run;
  await annotateItems(client, rendered.items, trace, ctx, new Map());
  const deployments = rendered.items.filter((i) => i.object.kind === 'Deployment');
  if (!deployments.length) throw new InputError(`Input 'strategy': a canary needs at least one Deployment; the manifests have none.`);
  const others = rendered.items.filter((i) => !ROLLOUT_KINDS.has(i.object.kind));
  for (const w of rendered.items.filter((i) => ROLLOUT_KINDS.has(i.object.kind) && i.object.kind !== 'Deployment')) {
    ctx.warn(`${describe(w.object)} is not a Deployment, so it gets no canary; it is applied when the canary is promoted.`);
  }
  const variants: ApplyItem[] = [];
  const running = new Map<ApplyItem, BeforeState>(); // the baseline runs what the Deployment runs now
  for (const d of deployments) {
    const { canary, baseline } = await canaryObjects(client, d.object, options.canaryPercentage);
    running.set(d, { existed: !!baseline, template: getPath(baseline, ['spec', 'template']) });
    variants.push({ object: canary, where: `canary of ${d.where}` });
    if (baseline) variants.push({ object: baseline, where: `baseline of ${d.where}` });
    else ctx.warn(`${describe(d.object)} does not run yet, so there is no baseline to compare the canary with.`);
  }
  run.notes.services(imageChanges(deployments, running));
  const variantResources = await resolveResources(client, variants, options.namespace);
  const outcome = await applyAndGate(
    { ...run, resources: new Map([...run.resources, ...variantResources]) },
    [...others, ...variants],
    variants.map((v) => v.object),
    `Canary (${options.canaryPercentage}%): server-side apply as '${options.fieldManager}'`,
  );
  if (outcome.cancelledIn) {
    // As a failed canary: removed (the stable workloads were never changed), in the cancelled task's grace time.
    const byHand = `kubectl delete ${variants.map((v) => `deployment/${v.object.metadata.name}`).join(' ')} -n ${options.namespace}`;
    let message = `The job was cancelled during the canary's ${outcome.cancelledIn} in namespace '${options.namespace}'; the stable workloads were not changed.`;
    if (options.rollbackOnFailure) {
      message += await run.inGrace((grace) => removeCanaries(grace, deployments.map((d) => d.object))).then(
        (removed) => {
          result.rolledBack = removed.length > 0;
          return `\nThe canary was removed (${removed.join(', ') || 'nothing to remove'}).`;
        },
        (err: unknown) => `\nThe canary could not be removed (${errorMessage(err)}); remove it by hand: ${byHand}.`,
      );
    } else {
      message += `\nrollbackOnFailure is false: the canary is left as it is; remove it by hand: ${byHand}.`;
    }
    writeSummary(ctx, options, rendered, result, message);
    throw new DeploymentFailedError(message, result);
  }
  if (!outcome.failure) {
    writeSummary(ctx, options, rendered, result, `Canary deployed at ${options.canaryPercentage}%: ${variants.map((v) => describe(v.object)).join(', ')}. Promote it (action: promote) or reject it (action: reject).`);
    return result;
  }
  let message = outcome.failure;
  if (options.rollbackOnFailure) {
    const removed = await removeCanaries(client, deployments.map((d) => d.object));
    result.rolledBack = removed.length > 0;
    message += `\nThe canary was removed (${removed.join(', ') || 'nothing to remove'}); the stable workloads were not changed.`;
  }
  writeSummary(ctx, options, rendered, result, message);
  throw new DeploymentFailedError(message, result);
}
