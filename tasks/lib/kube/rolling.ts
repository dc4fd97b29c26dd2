// The rolling deploy (strategy rolling, and the promote of a canary): what ran before remembered,
// every object applied, every workload through the gate (gate.ts); when the gate fails, or the job is
// cancelled, each workload is rolled back to what ran before (rollback.ts plans each one), or the
// log says how to roll back by hand.
import type { TaskContext } from '../context';
import { errorMessage } from '../errors';
import { ApplyItem, applyObject } from './apply';
import type { KubeClient } from './client';
import { DeployRun, DeploymentFailedError, KubernetesDeployOptions, KubernetesDeployResult } from './deploy-options';
import { applyAndGate } from './gate';
import { KubeObject, ROLLOUT_KINDS, describe } from './objects';
import { imageChanges, writeSummary } from './report';
import { BeforeState, captureBefore, deletePodsOfRevision, planRollback, removeCanaries } from './rollback';
import { WaitResult, waitForRollout } from './rollout';
import { annotateItems } from './trace';

/** Applies everything and gates the workloads; rolls back on failure (rollbackOnFailure). `trace`: this run's trace annotations. */
export async function rollingDeploy(run: DeployRun, trace: Record<string, string>): Promise<KubernetesDeployResult> {
  const { client, rendered, options, ctx, result } = run;
  const workloads = rendered.items.filter((i) => ROLLOUT_KINDS.has(i.object.kind));

  // Remember what ran before, then apply everything and wait for every workload.
  const states = await Promise.all(workloads.map((w) => captureBefore(client, w.object)));
  const before = new Map<ApplyItem, BeforeState>(workloads.map((w, i) => [w, states[i]]));
  await annotateItems(client, rendered.items, trace, ctx, before);
  run.notes.services(imageChanges(workloads, before));
  const outcome = await applyAndGate(
    run,
    rendered.items,
    workloads.map((w) => w.object),
    `Server-side apply as '${options.fieldManager}'`,
  );

  if (outcome.cancelledIn) {
    // The agent kills the task CANCEL_GRACE_MS after the cancel: the rollback is applied, not waited for.
    let message = `The job was cancelled during the ${outcome.cancelledIn} in namespace '${options.namespace}'.`;
    if (options.rollbackOnFailure) {
      const rollback = await run.inGrace((grace) => rollbackAll(grace, workloads, before, options, ctx, { wait: false })).catch((err: unknown) => ({
        rolledBack: [],
        message: `Nothing was rolled back (${errorMessage(err)}). Roll back by hand: ${undoCommands(workloads, before)}.`,
      }));
      result.rolledBack = rollback.rolledBack.length > 0;
      message += `\n${rollback.message}`;
    } else {
      message += `\nNothing was rolled back (rollbackOnFailure is false): what was applied is left as it is, not rolled out. Roll back by hand: ${undoCommands(workloads, before)}.`;
    }
    writeSummary(ctx, options, rendered, result, message);
    throw new DeploymentFailedError(message, result);
  }
  if (!outcome.failure) {
    if (options.action === 'promote') {
      await ctx.group('Promote: remove the canary and baseline workloads', async () => {
        const removed = await removeCanaries(client, workloads.filter((w) => w.object.kind === 'Deployment').map((w) => w.object));
        ctx.info(removed.length ? `Removed ${removed.join(', ')}.` : 'No canary or baseline workloads were found.');
      });
    }
    writeSummary(ctx, options, rendered, result, `${options.action === 'promote' ? 'Promoted' : 'Deployed'}: every workload rolled out and runs the pinned digests.`);
    return result;
  }

  // Roll back what failed.
  let message = outcome.failure;
  if (options.rollbackOnFailure) {
    const rollback = await ctx.group('Roll back', () => rollbackAll(client, workloads, before, options, ctx));
    result.rolledBack = rollback.rolledBack.length > 0;
    message += `\n${rollback.message}`;
  } else {
    message += '\nrollbackOnFailure is false: the failed revision was left in place.';
  }
  writeSummary(ctx, options, rendered, result, message);
  throw new DeploymentFailedError(message, result);
}

/** Each workload back to what ran before (forced, under the task's field manager), then waited for unless `how.wait` is false. */
async function rollbackAll(
  client: KubeClient,
  workloads: ApplyItem[],
  before: Map<ApplyItem, BeforeState>,
  options: KubernetesDeployOptions,
  ctx: TaskContext,
  how: { wait: boolean } = { wait: true },
): Promise<{ rolledBack: string[]; message: string }> {
  const rolledBack: string[] = [];
  const notes: string[] = [];
  const targets: KubeObject[] = [];
  const undone = new Set<ApplyItem>();
  const notUndone: ApplyItem[] = [];
  for (const w of workloads) {
    try {
      const plan = await planRollback(client, w.object, before.get(w) ?? { existed: false });
      if (!plan.object) {
        if (w.object.kind !== 'Job') notes.push(`  ${plan.reason}.`);
        continue;
      }
      await applyObject(client, { object: plan.object, where: `rollback of ${w.where}` }, { fieldManager: options.fieldManager, force: true });
      ctx.info(`  ${describe(w.object)}: rolled back to ${plan.target}.`);
      undone.add(w);
      rolledBack.push(`${describe(w.object)} to ${plan.target}`);
      targets.push(plan.object);
      if (plan.failedRevision) {
        const pods = await deletePodsOfRevision(client, w.object, plan.failedRevision);
        if (pods.length) ctx.info(`  ${describe(w.object)}: deleted its pods of the failed revision (${pods.join(', ')}), which the controller does not replace while they are not Ready.`);
      }
    } catch (err) {
      if (!undone.has(w)) notUndone.push(w);
      notes.push(`  ${describe(w.object)}: ${undone.has(w) ? 'rolled back, but its pods of the failed revision were not deleted' : 'not rolled back'}: ${errorMessage(err)}`);
    }
  }
  const byHand = notUndone.length ? [`Roll back by hand: ${undoCommands(notUndone, before)}.`] : [];
  if (!rolledBack.length) return { rolledBack, message: [`Nothing was rolled back:`, ...notes, ...byHand].join('\n') };
  if (!how.wait) {
    const status = targets.map((t) => `kubectl rollout status ${t.kind.toLowerCase()}/${t.metadata.name} -n ${t.metadata.namespace}`).join('; ');
    return { rolledBack, message: [`Rolled back ${rolledBack.join(', ')}; not waited for (a cancelled task has no time for it): ${status}.`, ...notes, ...byHand].join('\n') };
  }
  const failure = await waitForRollback(client, targets, options, ctx);
  const head = `Rolled back ${rolledBack.join(', ')}${failure ? ', but the rollback did not complete either' : '; the previous revision is running again'}.`;
  return { rolledBack, message: [head, ...notes, ...(failure ? [failure] : []), ...byHand].join('\n') };
}

/** `kubectl rollout undo` of each workload that ran before this deployment (what a rollback by hand is). */
function undoCommands(workloads: ApplyItem[], before: Map<ApplyItem, BeforeState>): string {
  const existed = workloads.filter((w) => before.get(w)?.existed && w.object.kind !== 'Job');
  const created = workloads.filter((w) => !before.get(w)?.existed && w.object.kind !== 'Job');
  const undo = existed.map((w) => `kubectl rollout undo ${w.object.kind.toLowerCase()}/${w.object.metadata.name} -n ${w.object.metadata.namespace}`);
  const remove = created.map((w) => `kubectl delete ${w.object.kind.toLowerCase()}/${w.object.metadata.name} -n ${w.object.metadata.namespace}`);
  return [...undo, ...(remove.length ? [`(created by this deployment, nothing to go back to: ${remove.join('; ')})`] : [])].join('; ') || 'no workload ran before this deployment';
}

/** Waits for the rolled-back workloads, with a fresh rolloutTimeoutSeconds. */
async function waitForRollback(client: KubeClient, targets: KubeObject[], options: KubernetesDeployOptions, ctx: TaskContext): Promise<string | undefined> {
  const deadline = Date.now() + options.rolloutTimeoutSeconds * 1000;
  const results = await Promise.all(targets.map((o) => waitForRollout(client, o, deadline, ctx).catch((err): WaitResult => ({ object: o, ok: false, message: errorMessage(err) }))));
  const failed = results.filter((r) => !r.ok);
  return failed.length ? `The rollback's rollout failed: ${failed.map((f) => f.message).join('; ')}` : undefined;
}
