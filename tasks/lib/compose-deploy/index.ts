// ComposeDeploy: release the digest-pinned compose application to one Docker host for one
// environment. Render (load, interpolate, merge, pin to the lock) → connect to the target (local,
// TLS, SSH) → pull every pinned image through the Engine API with X-Registry-Auth → `compose up -d`
// of the rendered file under the environment's project name → health gate → verify the running
// digests → keep the rendered file on the target as the last good release. When the gate or the
// verification fails (or `up` itself), the last good release is redeployed and gated, and the task
// still fails, saying what happened. Before anything changes, the promotion diff says what the
// release changes (diffOnly, deployIfUnchanged). With bakeSeconds (or a smokeTestUrl) the release is
// watched a while longer before it is kept, and a failure then rolls back the same way. When the
// job is cancelled during `up`, the gate or the bake window, the last good release is brought up
// again in the seconds the agent allows, without the gate; the log says what runs then, and how to
// roll back by hand when there was no time. With notifyUrl, a webhook hears how the deploy ended.
// The host keeps the last keepReleases good releases (store.ts); rollbackTo redeploys one of them,
// gated, verified and rolled back on failure like any release. Every container carries the trace
// labels (trace.ts: the run, build, commit and lock digest of the deploy that created it), and the
// summary links the run that built each image.
// (`mode: verify` deploys nothing and reports drift: drift.ts.)
//
// This file is the flow; its steps live beside it: the options and their checks (options.ts), the
// release rendered or chosen (release.ts), bringing a release up, gated and verified (run.ts), and
// the rollback after a failure or a cancel (rollback.ts).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { composeEnvironment, findCompose, normaliseProjectName } from '../compose/cli';
import { TaskContext, cancelDeadline } from '../context';
import { linkCliPlugins } from '../auth';
import { errorMessage } from '../errors';
import { bakeWindow, composeWatcher } from '../release/bake';
import { publishDiff, releaseDecision } from '../release/diff';
import { ReleaseNotes, withNotification } from '../release/notify';
import { provenanceTable } from '../release/trace';
import { ComposeDeployOptions, ComposeDeployResult, DeployError, checkDeployInputs } from './options';
import { pullImages } from './pull';
import { Release, chosenRelease, composeReleaseDiff, renderRelease, tracedRelease } from './release';
import { renderedFileName } from './rendered-file';
import { handleFailure } from './rollback';
import { ReleaseRun, Timings, deployRelease } from './run';
import { describeRelease, loadReleases, ReleaseMeta, saveRelease } from './store';
import { connectTarget, Target } from './target';
import { summaryTable, VerifiedContainer } from './verify';

export { DeployError } from './options';
export type { ComposeDeployOptions, ComposeDeployResult } from './options';
export { normaliseProjectName };

export function composeDeploy(options: ComposeDeployOptions, ctx: TaskContext): Promise<ComposeDeployResult> {
  const about = { task: 'ComposeDeploy' as const, environment: options.environmentName.trim(), buildNumber: options.rollbackTo?.trim() || (options.lock?.buildNumber ?? options.buildNumber) };
  return withNotification(options.notify, ctx, about, (watched, notes) => deployCompose(options, watched, notes));
}

async function deployCompose(options: ComposeDeployOptions, ctx: TaskContext, notes: ReleaseNotes): Promise<ComposeDeployResult> {
  const { environment, project, keep, rollbackTo, targetOptions } = checkDeployInputs(options, ctx);

  // ---- the rendered file (rollbackTo deploys a kept release instead: it is read from the target)
  const timings = new Timings();
  let release: Release | undefined;
  if (!rollbackTo) {
    release = await renderRelease(options, environment, project, ctx);
    timings.lap('render');
  }
  const renderedDir = options.renderedDir ?? path.join(ctx.tempDir, 'outer-loop', 'compose-deploy');
  fs.mkdirSync(renderedDir, { recursive: true });
  const renderedFile = path.join(renderedDir, renderedFileName(project));
  // Written now, so that it is there when the target cannot be reached; the trace labels (which
  // depend on the releases kept there) are added, and the file published, once it is read.
  if (release) fs.writeFileSync(renderedFile, release.text);
  ctx.output('renderedComposeFile', renderedFile);
  ctx.output('rolledBack', 'false');

  // ---- the target
  const graceEnd = cancelDeadline(ctx.signal);
  const configDir = fs.mkdtempSync(path.join(ctx.tempDir, 'col-compose-config-'));
  fs.chmodSync(configDir, 0o700);
  linkCliPlugins(configDir);
  // Finding Compose (for v1 a Python start-up, ~0.4 s) runs while the target is contacted, the
  // images are pulled and the last release is read. The probe needs no engine.
  const finding = findCompose({ path: options.dockerComposePath, env: composeEnvironment({}, configDir), signal: ctx.signal, askVersion: true }).then(
    (cli) => ({ cli }),
    (error: unknown) => ({ error }),
  );
  let target: Target | undefined;
  try {
    target = await connectTarget(targetOptions);
    timings.lap('connect');
    ctx.info(`Target: ${target.description}; compose project '${project}'.`);
    const docker = target.docker;
    const env = composeEnvironment(target.env, configDir);
    const history = await loadReleases(docker, project);
    timings.lap('read kept releases');
    const previous = history[0];
    if (previous) ctx.info(`Releases of '${project}' kept on the target: ${history.map(describeRelease).join(', ')}.`);
    // rollbackTo deploys a kept release as it was kept; a rendered one gets this run's trace labels.
    const rendered = rollbackTo ? chosenRelease(history, rollbackTo, project, target.description, ctx) : tracedRelease(release!, previous, project, ctx);
    const buildNumber = rendered.buildNumber;
    fs.writeFileSync(renderedFile, rendered.text);
    if (options.publishRenderedFile) ctx.uploadArtifact(options.artifactName || `rendered-compose-${normaliseProjectName(environment) || 'env'}`, renderedFile);

    const diff = await ctx.group(`Promotion diff: what the release changes in ${environment}`, async () => {
      const d = await composeReleaseDiff(docker, project, rendered.services, options.credentials, ctx);
      publishDiff(d, ctx, `compose-deploy-diff-${project}`, `ComposeDeploy: what the release changes in ${environment}`);
      return d;
    });
    timings.lap('diff');
    const decision = releaseDecision(diff, { diffOnly: options.diffOnly, deployIfUnchanged: options.deployIfUnchanged });
    if (!decision.deploy) {
      ctx.info(`${decision.reason} Project '${project}' on ${target.description} was not touched.`);
      return { project, renderedFile, diff, skipped: decision.reason, deployedDigests: {}, rolledBack: false, rows: [], markdown: '' };
    }

    const refs = rendered.services.map((s) => s.image);
    await ctx.group(`Pull ${refs.length} image${refs.length === 1 ? '' : 's'} on the target`, async () => {
      const pulled = await pullImages(docker, refs, options.credentials, options, ctx);
      ctx.info(`Pulled ${pulled.pulled.length}, already present ${pulled.present.length}.`);
    });
    timings.lap('pull');
    const found = await finding;
    if ('error' in found) throw found.error;
    const cli = found.cli;
    timings.lap('find compose');
    ctx.info(`Compose: ${cli.display} ${cli.version}`);
    notes.services(rendered.services.map((s) => ({ service: s.service, before: previous?.meta.images[s.service], after: s.image })));

    const run: ReleaseRun = { docker, cli, env, project, projectDir: renderedDir, options, ctx, timings, graceEnd };
    let rows: VerifiedContainer[];
    try {
      rows = await ctx.group(`Deploy ${rollbackTo ? `build ${rollbackTo} again ` : ''}to ${environment}`, () => deployRelease(run, renderedFile, rendered.services, rendered.model));
      const baked = await bakeWindow(composeWatcher(docker, project, rendered.model), { seconds: options.bakeSeconds, smokeTestUrl: options.smokeTestUrl, signal: ctx.signal, log: ctx });
      if (baked) throw new DeployError(baked);
    } catch (failure) {
      throw await handleFailure(run, failure, previous, { environment, buildNumber, target: target.description });
    }
    const meta: ReleaseMeta = {
      project,
      environment,
      deployedAt: new Date().toISOString(),
      buildNumber,
      images: Object.fromEntries(rendered.services.map((s) => [s.service, s.image])),
      composeCommand: `${cli.display} ${cli.version}`,
      lock: rendered.lock,
      lockDigest: rendered.lockDigest,
    };
    try {
      const kept = await saveRelease(docker, project, history, { rendered: rendered.text, meta }, keep);
      timings.lap('keep release');
      ctx.info(`Kept on the target for a rollback (keepReleases: ${keep}): ${kept.map(describeRelease).join(', ')}.`);
    } catch (err) {
      // The release runs and is verified; only a later rollback to it would be impossible.
      ctx.warn(`Deployed, but the release could not be kept on the target for a later rollback: ${errorMessage(err)}`);
    }
    const deployedDigests = meta.images;
    ctx.output('deployedDigests', JSON.stringify(deployedDigests));
    const markdown = [
      `### ComposeDeploy: ${environment}${rollbackTo ? ` — build ${rollbackTo} redeployed (rollbackTo)` : ''}`,
      '',
      `Project \`${project}\` on ${target.description}${buildNumber ? `, build ${buildNumber}` : ''}; ${cli.display} ${cli.version}.`,
      '',
      summaryTable(rows),
      '',
      ...(rendered.lock ? [provenanceTable(rendered.lock, rendered.services), ''] : []),
    ].join('\n');
    ctx.addSummary(`compose-deploy-${project}`, markdown);
    ctx.info(`Deployed ${rows.length} container${rows.length === 1 ? '' : 's'} of '${project}'; every pinned digest verified.`);
    ctx.info(`Timings: ${timings.toString()}`);
    return { project, renderedFile, diff, deployedDigests, rolledBack: false, rows, markdown };
  } finally {
    await target?.close();
    await finding; // never rejects; let the probe end before its folder goes
    fs.rmSync(configDir, { recursive: true, force: true });
  }
}

