// ComposeDeploy with `mode: verify`: deploys nothing. It renders the compose files against the lock
// exactly as a deployment would (so it knows which services this environment runs and the digest
// each must have), reads what the project runs on the target, and reports the drift
// (tasks/lib/release/drift.ts): in the log, in the job summary, and as a failure with failOnDrift.
import * as path from 'node:path';
import type { Environment } from '../compose/interpolate';
import { loadCompose } from '../compose/load';
import { PinnedService, renderCompose } from '../compose/render';
import type { TaskContext } from '../context';
import { InputError } from '../errors';
import { checkDriftInputs, compareDrift, concludeDrift, DriftReport, driftMarkdown, ExpectedImage } from '../release/drift';
import { readComposeProjectForDrift } from '../release/drift-compose';
import { checkAppInputs, ComposeDeployOptions, projectNameFor } from './options';
import { checkTargetInputs, connectTarget, TargetOptions } from './target';

export type ComposeVerifyOptions = Pick<
  ComposeDeployOptions,
  'composeFiles' | 'environmentName' | 'projectName' | 'repositoryName' | 'lock' | 'lockName' | 'envFile' | 'variables' | 'profiles' | 'allowedPaths' | 'target' | 'engineStallSeconds' | 'allowUnpinned'
> & {
  /** Restarts a container may have had (maxRestarts). */
  maxRestarts: number;
  /** Fail the task when anything differs (failOnDrift); else warn. */
  failOnDrift: boolean;
  /** The agent environment interpolation starts from (default process.env). */
  env?: Environment;
};

/** The images the release's services must run: what the deployment would pin. */
export function expectedFromPins(pins: PinnedService[]): ExpectedImage[] {
  return pins.filter((p) => p.repository).map((p) => ({ service: p.service, repository: p.repository as string, digest: p.digest }));
}

export async function composeVerify(options: ComposeVerifyOptions, ctx: TaskContext): Promise<DriftReport> {
  const environment = checkAppInputs(options);
  checkDriftInputs(options);
  const project = projectNameFor(options, environment, path.dirname(path.resolve(options.composeFiles[0])), ctx);
  const targetOptions: TargetOptions = { ...options.target, engineStallSeconds: options.engineStallSeconds, tempRoot: ctx.tempDir, setSecret: (s) => ctx.setSecret(s), log: ctx };
  checkTargetInputs(targetOptions);
  if (!options.lock && !options.allowUnpinned) {
    throw new InputError("Input 'lockFile': mode 'verify' compares the environment with an image lock; give the lock PushWithDigest@1 wrote (lockFile, or lockFromBuild for another run's artifact).");
  }
  const app = loadCompose(options.composeFiles, { env: { ...(options.env ?? process.env), ...options.variables }, envFile: options.envFile, profiles: options.profiles, allowedPaths: options.allowedPaths });
  const rendered = renderCompose(app, { lock: options.lock, lockName: options.lockName, allowUnpinned: options.allowUnpinned });
  const expected = expectedFromPins(rendered.services);
  for (const p of rendered.services) if (!p.digest) ctx.warn(`${p.service}: ${p.image} is not pinned (allowUnpinned); only its presence is checked.`);

  const target = await connectTarget(targetOptions);
  try {
    const where = `Project '${project}' on ${target.description}`;
    ctx.info(`Verifying ${where} against the image lock${options.lockName ? ` ${options.lockName}` : ''}; nothing is deployed (mode: verify).`);
    const running = await readComposeProjectForDrift(target.docker, project);
    const report = compareDrift(expected, running, { maxRestarts: options.maxRestarts });
    for (const r of report.rows) ctx.info(`  ${r.service}${r.name ? ` ${r.name}` : ''}: ${r.state}${r.kinds.length ? ` — drift: ${r.kinds.join(', ')}` : ''}`);
    const outcome = { title: `ComposeDeploy verify: ${environment}`, where, lockName: options.lockName, failOnDrift: options.failOnDrift };
    ctx.addSummary(`compose-verify-${project}`, driftMarkdown(report, outcome, { maxRestarts: options.maxRestarts }));
    ctx.output('driftCount', String(report.differences.length));
    concludeDrift(report, outcome, ctx);
    return report;
  } finally {
    await target.close();
  }
}
