// The gate a deploy passes once its objects are applied: every workload rolled out (kubectl's
// rules, rollout.ts), its running pods on the pinned digests, then the bake window. A failure is
// returned as the message the task fails with, after the pods' diagnosis.
import type { TaskContext } from '../context';
import { errorMessage } from '../errors';
import { abortError } from '../util/abort';
import { bakeWindow, kubeWatcher } from '../release/bake';
import { ApplyItem, applyAll } from './apply';
import type { DeployRun, KubernetesDeployOptions, KubernetesDeployResult } from './deploy-options';
import type { KubeClient } from './client';
import { KubeObject, describe } from './objects';
import { ImageCheck, WaitResult, diagnosePods, expectedDigests, formatProblems, verifyImageIds, waitForRollout } from './rollout';

/** How an apply and its gate ended: passed (no failure), failed (why), or cancelled (during which phase). */
export type GateOutcome = { failure?: string; cancelledIn?: undefined } | { cancelledIn: 'apply' | 'rollout wait' | 'bake window' };

/** Server-side apply of `items` (in the log group `title`), then the gate over the `watched` workloads. */
export async function applyAndGate(run: DeployRun, items: ApplyItem[], watched: KubeObject[], title: string): Promise<GateOutcome> {
  const { client, options, ctx, result } = run;
  let phase: 'apply' | 'rollout wait' | 'bake window' = 'apply';
  try {
    const applied = await ctx.group(title, () => applyAll(client, items, run.resources, { fieldManager: options.fieldManager, force: options.forceConflicts }, ctx));
    result.applied = applied.map((a) => describe(a.object));
    phase = 'rollout wait';
    const failure = await waitAndVerify(client, watched, Date.now() + options.rolloutTimeoutSeconds * 1000, options, ctx, result);
    phase = 'bake window';
    return { failure: failure ?? (await bake(client, watched, options, ctx)) };
  } catch (err) {
    if (!ctx.signal.aborted) throw err;
    return { cancelledIn: phase };
  }
}

/** Waits for every workload concurrently, then verifies imageIDs. Returns a failure message, or undefined. */
async function waitAndVerify(client: KubeClient, objects: KubeObject[], deadline: number, options: KubernetesDeployOptions, ctx: TaskContext, result: KubernetesDeployResult): Promise<string | undefined> {
  if (!objects.length) return undefined;
  const results = await ctx.group(`Wait for ${objects.length} rollout(s) (at most ${Math.round((deadline - Date.now()) / 1000)} s)`, () =>
    Promise.all(objects.map((o) => waitForRollout(client, o, deadline, ctx).catch((err): WaitResult => ({ object: o, ok: false, message: `${describe(o)}: ${errorMessage(err)}` })))),
  );
  if (ctx.signal.aborted) throw abortError(ctx.signal);
  const failed = results.filter((r) => !r.ok);
  if (failed.length) {
    const parts: string[] = [];
    for (const f of failed) {
      const problems = await diagnosePods(client, f.last ?? f.object, { tailLines: options.logTailLines });
      parts.push(`  ${describe(f.object)}: ${f.timedOut ? `not rolled out within rolloutTimeoutSeconds (${options.rolloutTimeoutSeconds} s). ` : ''}${f.message}${problems.length ? `\n${formatProblems(problems)}` : ''}`);
    }
    const message = `The rollout failed:\n${parts.join('\n')}`;
    ctx.info(message);
    return message;
  }
  // Every workload is rolled out: the running pods must carry the lock's digests.
  // All at once, in the workloads' order: one after another, 200 workloads took longer than their rollouts.
  const checks: ImageCheck[] = (await Promise.all(objects.map((o) => verifyImageIds(client, o, expectedDigests(o))))).flat();
  result.imageChecks = checks;
  const wrong = checks.filter((c) => c.ok === false);
  const unknown = checks.filter((c) => c.ok === 'unknown');
  for (const u of unknown) ctx.warn(`${u.workload}, pod ${u.pod}, container ${u.container}: the runtime reports imageID '${u.imageID}', which carries no registry digest; it could not be verified.`);
  ctx.info(`Verified ${checks.filter((c) => c.ok === true).length} running container(s) against the pinned digests.`);
  if (wrong.length) {
    const message = `Running pods do not carry the pinned digests:\n${wrong.map((w) => `  ${w.workload}, pod ${w.pod}, container ${w.container}: runs ${w.imageID}, expected ${w.expected}`).join('\n')}`;
    ctx.info(message);
    return message;
  }
  return undefined;
}

/** The bake window over the rolled-out workloads' pods: why it failed, or undefined. */
function bake(client: KubeClient, objects: KubeObject[], options: KubernetesDeployOptions, ctx: TaskContext): Promise<string | undefined> {
  return bakeWindow(kubeWatcher(client, objects, { tailLines: options.logTailLines }), { seconds: options.bakeSeconds, smokeTestUrl: options.smokeTestUrl, signal: ctx.signal, log: ctx });
}
