// When a release fails (`up`, the health gate, the digest check or the bake window), the last good
// release kept on the target is brought back: pulled, brought up, gated and verified like any
// release; after a cancel, only brought up, in the seconds the agent allows. Either way the task
// fails, and its error says what runs now and how to roll back by hand where the task could not.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { upTimeoutMessage } from '../compose/cli';
import { bounded } from '../util/bounds';
import { CANCEL_GRACE_MS, cancelRollbackTime, sanitizeOutput } from '../context';
import { CancelledError, TimeoutError, errorMessage } from '../errors';
import { DeployError } from './options';
import { pullImages } from './pull';
import { keptRelease } from './release';
import { rollbackFileName } from './rendered-file';
import { ReleaseRun, deployRelease, upRelease } from './run';
import { StoredRelease, manualRestoreCommands } from './store';
import { summaryTable } from './verify';

/**
 * The error a failed deploy ends with, after the rollback to the last good release (pulled, brought
 * up, gated and verified) where rollbackOnFailure allows one; after a cancel, rollBackOnCancel.
 */
export async function handleFailure(
  run: ReleaseRun,
  failure: unknown,
  previous: StoredRelease | undefined,
  about: { environment: string; buildNumber?: string; target: string },
): Promise<unknown> {
  const { ctx, project } = run;
  const release = `${about.buildNumber ? `build ${about.buildNumber}` : 'the release'} to ${about.environment} (project '${project}' on ${about.target})`;
  if (ctx.signal.aborted) return rollBackOnCancel(run, previous, `The job was cancelled while deploying ${release}.`);
  const what = `Deploying ${release} failed: ${sanitizeOutput(errorMessage(failure))}`;
  if (!run.options.rollbackOnFailure) return new DeployError(`${what}\nrollbackOnFailure is off: the failed release is left as it is for inspection (docker compose -p ${project} ps).`);
  if (!previous) {
    return new DeployError(`${what}\nThere is no earlier good release of '${project}' on this host to roll back to: the failed release is left as it is for inspection (docker compose -p ${project} ps).`);
  }
  const label = releaseLabel(previous);
  ctx.warn(`${what.split('\n')[0]} Rolling back to ${label}.`);
  try {
    const rows = await ctx.group(`Roll back ${about.environment} to ${label}`, async () => {
      const { restoring, file } = rollbackOf(run, previous);
      const kept = keptRelease(previous);
      await pullImages(run.docker, kept.services.map((s) => s.image), run.options.credentials, run.options, ctx);
      return deployRelease(restoring, file, kept.services, kept.model);
    });
    ctx.output('rolledBack', 'true');
    ctx.output('deployedDigests', JSON.stringify(previous.meta.images));
    const markdown = [
      `### ComposeDeploy: ${about.environment} — rolled back`,
      '',
      `Deploying ${about.buildNumber ? `build ${about.buildNumber}` : 'the release'} failed; project \`${project}\` runs ${label} again.`,
      '',
      '```',
      sanitizeOutput(errorMessage(failure)).slice(0, 4000),
      '```',
      '',
      summaryTable(rows),
      '',
    ].join('\n');
    run.ctx.addSummary(`compose-deploy-${project}`, markdown);
    return new DeployError(`${what}\nRolled back to ${label}: its services passed the health gate and run its pinned digests. The task fails because the new release was not deployed.`);
  } catch (rollbackFailure) {
    return new DeployError(`${what}\nThe rollback to ${label} failed too: ${sanitizeOutput(errorMessage(rollbackFailure))}\nProject '${project}' needs attention (docker compose -p ${project} ps).`);
  }
}

function releaseLabel(previous: StoredRelease): string {
  return `the previous release (${previous.meta.buildNumber ? `build ${previous.meta.buildNumber}, ` : ''}deployed ${previous.meta.deployedAt})`;
}

/**
 * The run that brings the last good release back, and its rendered file written out. Services the
 * failed release added go too (--remove-orphans): the host returns to the previous release exactly.
 */
function rollbackOf(run: ReleaseRun, previous: StoredRelease): { restoring: ReleaseRun; file: string } {
  const file = path.join(run.projectDir, rollbackFileName(run.project));
  fs.writeFileSync(file, previous.rendered);
  return { restoring: { ...run, options: { ...run.options, removeOrphans: true } }, file };
}

/**
 * The job was cancelled during `up` or the health gate, and the agent kills the task CANCEL_GRACE_MS
 * after the cancel. With rollbackOnFailure and a last good release, that release is brought up again
 * (the rollback's `up`, without pulling and without the gate, for which there is no time) within
 * what is left of that time. Either way the returned error says what runs now, and how to roll back
 * by hand when the task could not.
 */
async function rollBackOnCancel(run: ReleaseRun, previous: StoredRelease | undefined, head: string): Promise<CancelledError> {
  const { ctx, project } = run;
  const check = `docker compose -p ${project} ps`;
  if (!previous || !run.options.rollbackOnFailure) {
    const why = previous ? 'rollbackOnFailure is off' : `there is no earlier good release of '${project}' on this host to roll back to`;
    const byHand = previous ? `Roll back by hand on the host: ${manualRestoreCommands(project)}` : `Remove it by hand: docker compose -p ${project} down`;
    return new CancelledError(`${head}\nNothing was rolled back (${why}): the new release is left as it is, perhaps only partly started, and not health-gated (${check}). ${byHand}`);
  }
  const label = releaseLabel(previous);
  const timeoutMs = cancelRollbackTime(run.graceEnd);
  try {
    if (timeoutMs === undefined) throw new TimeoutError('no time was left to start it');
    ctx.warn(`${head} Rolling back to ${label} within the ${CANCEL_GRACE_MS / 1000} s a cancelled task has, without the health gate.`);
    await ctx.group(`Roll back to ${label} (cancelled)`, () => {
      const { restoring, file } = rollbackOf(run, previous);
      // At the end of the time the CLI is stopped; the task reports without waiting for it to exit
      // (whichever of the two ends first, the message is the same).
      return bounded(upRelease(restoring, file, { timeoutMs }), {
        deadline: Date.now() + timeoutMs,
        onTimeout: () => new TimeoutError(upTimeoutMessage(run.cli, timeoutMs)),
      });
    });
  } catch (err) {
    return new CancelledError(
      `${head}\nThe rollback to ${label} did not finish (${sanitizeOutput(errorMessage(err)).replace(/\.$/, '')}): '${project}' may run parts of both releases, not health-gated (${check}). Roll back by hand on the host: ${manualRestoreCommands(project)}`,
    );
  }
  ctx.output('rolledBack', 'true');
  ctx.output('deployedDigests', JSON.stringify(previous.meta.images));
  return new CancelledError(`${head}\nRolled back to ${label}: its containers run again, but they were not health-gated (a cancelled task has no time for it); check them: ${check}.`);
}
