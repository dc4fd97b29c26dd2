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
import * as fs from 'node:fs';
import * as path from 'node:path';
import type Dockerode from 'dockerode';
import { ComposeCli, composeEnvironment, composeUp, findCompose, normaliseProjectName } from '../compose/cli';
import type { Environment } from '../compose/interpolate';
import { loadCompose } from '../compose/load';
import { PinnedService, RenderResult, renderCompose, withServiceLabels } from '../compose/render';
import { parseYaml, toPlain } from '../util/yaml';
import { CANCEL_GRACE_MS, TaskContext, cancelDeadline, sanitizeOutput } from '../context';
import { checkArtifactName } from '../artifact-name';
import { linkCliPlugins } from '../auth';
import { CancelledError, InputError, OuterLoopError, TimeoutError, errorMessage } from '../errors';
import type { ImageLock } from '../lock/types';
import { parseReference, repositoryName } from '../reference';
import type { CredentialSource } from '../registry/client';
import { bounded } from '../util/bounds';
import { bakeWindow, checkBakeInputs, composeWatcher } from '../release/bake';
import { ReleaseDiff, promotionDiff, publishDiff, releaseDecision } from '../release/diff';
import { NotifySettings, ReleaseNotes, withNotification } from '../release/notify';
import { COMPOSE_TRACE_LABELS, provenanceTable, releaseTrace, traceEntries } from '../release/trace';
import { healthGate } from './health';
import { pullImages } from './pull';
import { renderedFileName, rollbackFileName } from './rendered-file';
import { runningServices } from './running';
import { DEFAULT_KEEP_RELEASES, describeRelease, loadReleases, manualRestoreCommands, MAX_KEEP_RELEASES, ReleaseMeta, saveRelease, StoredRelease } from './store';
import { checkTargetInputs, connectTarget, Target, TargetOptions } from './target';
import { renderedServices, serviceTraceLabels } from './trace';
import { summaryTable, VerifiedContainer, verifyDigests } from './verify';

export type { DockerHostType, TargetOptions } from './target';
export { normaliseProjectName };

export class DeployError extends OuterLoopError {}

export interface ComposeDeployOptions {
  composeFiles: string[];
  environmentName: string;
  /** The compose project; default `<repository>-<environment>`. Normalised to what Compose v2 accepts. */
  projectName?: string;
  /** For the default project name: the repository (Build.Repository.Name), else the project folder's name. */
  repositoryName?: string;
  /** The image lock; undefined only with allowUnpinned. */
  lock?: ImageLock;
  /** Where the lock was read, for messages (a file, or another run's artifact). */
  lockName?: string;
  /** sha256:<hex> of the lock file's bytes (lockFileDigest), for the trace labels. */
  lockDigest?: string;
  envFile?: string;
  /** Interpolation variables; they win over the agent's environment and the env file. */
  variables: Record<string, string>;
  /** Active compose profiles. */
  profiles: string[];
  /** Folders outside the project directory whose files the compose files may name (the allowedPaths input). */
  allowedPaths?: string[];
  target: Omit<TargetOptions, 'tempRoot' | 'setSecret' | 'log'>;
  credentials: CredentialSource;
  waitTimeoutSeconds: number;
  /** The time one pull may take in all, retries included (the registryTimeoutSeconds input; default REGISTRY_TIMEOUT_SECONDS). */
  registryTimeoutSeconds?: number;
  rollbackOnFailure: boolean;
  allowUnpinned: boolean;
  removeOrphans: boolean;
  publishRenderedFile: boolean;
  /** Artifact for the rendered file; default `rendered-compose-<environment>`. */
  artifactName?: string;
  /** Folder for the rendered file; default <temp>/outer-loop/compose-deploy. */
  renderedDir?: string;
  dockerComposePath?: string;
  /** The agent environment interpolation starts from (default process.env). */
  env?: Environment;
  buildNumber?: string;
  /** Bound of one `compose up` (default 600 s). */
  upTimeoutSeconds?: number;
  /** Print the promotion diff and deploy nothing (default false). */
  diffOnly?: boolean;
  /** Deploy a release that changes nothing (default true); false skips it. */
  deployIfUnchanged?: boolean;
  /** How long the release is watched after the gate (default 0: not at all). */
  bakeSeconds?: number;
  /** Must answer 2xx after the gate and through the bake window. */
  smokeTestUrl?: string;
  /** The webhook told how the deploy ended (notifyUrl, notifyFormat). */
  notify?: NotifySettings;
  /** How many good releases the host keeps (default DEFAULT_KEEP_RELEASES). */
  keepReleases?: number;
  /** Redeploy the kept release of this build number instead of rendering the compose files. */
  rollbackTo?: string;
}

export interface ComposeDeployResult {
  project: string;
  renderedFile: string;
  /** What the release changes, worked out before anything changed. */
  diff: ReleaseDiff;
  /** Why nothing was deployed (diffOnly, or an unchanged release with deployIfUnchanged: false); undefined when deployed. */
  skipped?: string;
  /** Empty when nothing was deployed. */
  deployedDigests: Record<string, string>;
  rolledBack: boolean;
  rows: VerifiedContainer[];
  markdown: string;
}

export const MAX_WAIT_SECONDS = 3600;

export function composeDeploy(options: ComposeDeployOptions, ctx: TaskContext): Promise<ComposeDeployResult> {
  const about = { task: 'ComposeDeploy' as const, environment: options.environmentName.trim(), buildNumber: options.rollbackTo?.trim() || (options.lock?.buildNumber ?? options.buildNumber) };
  return withNotification(options.notify, ctx, about, (watched, notes) => deployCompose(options, watched, notes));
}

async function deployCompose(options: ComposeDeployOptions, ctx: TaskContext, notes: ReleaseNotes): Promise<ComposeDeployResult> {
  // ---- inputs, before anything is contacted
  const environment = checkAppInputs(options);
  if (options.publishRenderedFile && options.artifactName) checkArtifactName(options.artifactName, 'renderedArtifactName');
  if (!Number.isInteger(options.waitTimeoutSeconds) || options.waitTimeoutSeconds < 1 || options.waitTimeoutSeconds > MAX_WAIT_SECONDS) {
    throw new InputError(`Input 'waitTimeoutSeconds' must be from 1 to ${MAX_WAIT_SECONDS}, not ${options.waitTimeoutSeconds}.`);
  }
  const keep = options.keepReleases ?? DEFAULT_KEEP_RELEASES;
  if (!Number.isInteger(keep) || keep < 1 || keep > MAX_KEEP_RELEASES) throw new InputError(`Input 'keepReleases' must be from 1 to ${MAX_KEEP_RELEASES}, not ${keep}.`);
  const rollbackTo = options.rollbackTo?.trim() || undefined;
  const projectDir = path.dirname(path.resolve(options.composeFiles[0]));
  const project = projectNameFor(options, environment, projectDir, ctx);
  const targetOptions: TargetOptions = { ...options.target, tempRoot: ctx.tempDir, setSecret: (s) => ctx.setSecret(s), log: ctx };
  checkTargetInputs(targetOptions);
  checkBakeInputs(options.bakeSeconds ?? 0, options.smokeTestUrl);
  if (!options.lock && !options.allowUnpinned && !rollbackTo) {
    throw new InputError("Input 'lockFile': no image lock was given. Give the lock PushWithDigest@1 wrote (lockFile, or lockFromBuild for another run's artifact), or set allowUnpinned: true to deploy the tags of the compose file.");
  }

  // ---- the rendered file (rollbackTo deploys a kept release instead: it is read from the target)
  const { lockName } = options;
  const timings = new Timings();
  let release: Release | undefined;
  if (!rollbackTo) {
    const lock = options.lock;
    const rendered = await ctx.group(`Render ${options.composeFiles.map((f) => path.basename(f)).join(' + ')} for ${environment}`, async () => {
      const app = loadCompose(options.composeFiles, { env: { ...(options.env ?? process.env), ...options.variables }, envFile: options.envFile, profiles: options.profiles, allowedPaths: options.allowedPaths });
      const result = renderCompose(app, {
        lock,
        lockName,
        allowUnpinned: options.allowUnpinned,
        header: [
          `Rendered by ComposeDeploy@1 for environment '${environment}' (compose project '${project}').`,
          `From ${options.composeFiles.map((f) => path.basename(f)).join(', ')}${lock ? `; images pinned by digest to the image lock${lock.buildNumber ? ` of build ${lock.buildNumber}` : ''}` : ''}.`,
          `Redeploy by hand: docker compose -p ${project} -f <this file> up -d`,
        ],
      });
      for (const w of result.warnings) ctx.warn(w);
      if (app.inactiveServices.length) ctx.info(`Not deployed (profile not active): ${app.inactiveServices.join(', ')}`);
      for (const p of result.services) ctx.info(`${p.service}: ${p.image}${p.source === 'lock' && p.declared && p.declared !== p.image ? `  (compose: ${p.declared})` : ''}`);
      return result;
    });
    release = { ...rendered, buildNumber: lock?.buildNumber ?? options.buildNumber, lock, lockDigest: options.lockDigest };
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
    if (rollbackTo) {
      const chosen = history.find((r) => r.meta.buildNumber === rollbackTo);
      if (!chosen) {
        throw new InputError(
          `Input 'rollbackTo': build '${rollbackTo}' is not among the releases of '${project}' kept on ${target.description}: ${history.length ? `the host keeps ${history.map(describeRelease).join(', ')}` : 'it keeps none (ComposeDeploy never deployed this project there)'}. Give one of their build numbers.`,
        );
      }
      ctx.info(`rollbackTo: redeploying ${describeRelease(chosen)} as it was kept, trace labels included.`);
      release = keptRelease(chosen);
    } else {
      // This run's trace labels, on the services it creates or changes (trace.ts).
      const labels = traceEntries(releaseTrace(ctx, release!.lock, release!.lockDigest), COMPOSE_TRACE_LABELS);
      const before = previous && renderedServices(previous.rendered, `The kept release of '${project}'`);
      release = { ...release!, ...withServiceLabels(release!, serviceTraceLabels(release!.model, before, labels)) };
    }
    const rendered = release;
    const buildNumber = rendered.buildNumber;
    fs.writeFileSync(renderedFile, rendered.text);
    if (options.publishRenderedFile) ctx.uploadArtifact(options.artifactName || `rendered-compose-${normaliseProjectName(environment) || 'env'}`, renderedFile);

    const diff = await ctx.group(`Promotion diff: what the release changes in ${environment}`, async () => {
      const d = await composeReleaseDiff(docker, project, rendered.services, options.credentials, ctx);
      publishDiff(d, ctx, `compose-deploy-diff-${project}`, `ComposeDeploy: what the release changes in ${environment}`);
      return d;
    });
    timings.lap('diff');
    const decision = releaseDecision(diff, { diffOnly: options.diffOnly ?? false, deployIfUnchanged: options.deployIfUnchanged ?? true });
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
      const baked = await bakeWindow(composeWatcher(docker, project, rendered.model), { seconds: options.bakeSeconds ?? 0, smokeTestUrl: options.smokeTestUrl, signal: ctx.signal, log: ctx });
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

/** What one deploy releases: the rendered file (as text and data), its pinned services, and where it comes from. */
interface Release extends Pick<RenderResult, 'text' | 'model' | 'services'> {
  buildNumber?: string;
  lock?: ImageLock;
  lockDigest?: string;
}

/** A kept release, to deploy again (rollbackTo). */
function keptRelease(kept: StoredRelease): Release {
  const model = toPlain(parseYaml(kept.rendered, 'The kept release'), 'The kept release') as Record<string, unknown>;
  return { text: kept.rendered, model, services: pinsFromMeta(kept.meta), buildNumber: kept.meta.buildNumber, lock: kept.meta.lock, lockDigest: kept.meta.lockDigest };
}

/** The promotion diff of the project on the target against the release's pinned services. */
async function composeReleaseDiff(docker: Dockerode, project: string, pins: PinnedService[], credentials: CredentialSource, ctx: TaskContext): Promise<ReleaseDiff> {
  const running = await runningServices(docker, project);
  return promotionDiff(running, pins.map((p) => ({ service: p.service, image: p.image, digest: p.digest })), credentials, ctx);
}

interface ReleaseRun {
  docker: Dockerode;
  cli: ComposeCli;
  env: NodeJS.ProcessEnv;
  project: string;
  projectDir: string;
  options: ComposeDeployOptions;
  ctx: TaskContext;
  timings: Timings;
  /** When a cancelled task must be done (cancelDeadline). */
  graceEnd: () => number;
}

/** A cancelled task's rollback leaves this much of the grace time for the task to report and end. */
const CANCEL_REPORT_MS = 500;
/** Below this much time, a rollback after a cancel is not started (it could only leave a mix of releases). */
const MIN_CANCEL_ROLLBACK_MS = 1_000;

/** Where the time of a deployment went, for the log. */
class Timings {
  private last = Date.now();
  private readonly laps: [string, number][] = [];
  lap(name: string): void {
    const now = Date.now();
    this.laps.push([name, now - this.last]);
    this.last = now;
  }
  toString(): string {
    return this.laps.map(([n, ms]) => `${n} ${ms} ms`).join(', ');
  }
}

/** `compose up -d` of one rendered file, ended by `bound` (its time, and a signal). */
async function upRelease(run: ReleaseRun, file: string, bound: { timeoutMs: number; signal?: AbortSignal }): Promise<void> {
  await composeUp(run.cli, {
    project: run.project,
    file,
    projectDir: run.projectDir,
    env: run.env,
    removeOrphans: run.options.removeOrphans,
    timeoutMs: bound.timeoutMs,
    signal: bound.signal,
    onLine: (l) => run.ctx.info(l),
  });
  run.timings.lap('compose up');
}

/** up → gate → verify of one rendered file. */
async function deployRelease(run: ReleaseRun, file: string, pins: PinnedService[], model: Record<string, unknown>): Promise<VerifiedContainer[]> {
  const { ctx } = run;
  await upRelease(run, file, { timeoutMs: (run.options.upTimeoutSeconds ?? 600) * 1000, signal: ctx.signal });
  const states = await healthGate(run.docker, {
    project: run.project,
    model,
    timeoutMs: run.options.waitTimeoutSeconds * 1000,
    signal: ctx.signal,
    log: ctx,
  });
  run.timings.lap('health gate');
  ctx.info(`Health gate passed: ${states.map((s) => `${s.name} ${s.health ?? s.status}`).join(', ')}`);
  const rows = await verifyDigests(run.docker, states, pins);
  run.timings.lap('verify');
  return rows;
}

async function handleFailure(
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
      await pullImages(run.docker, Object.values(previous.meta.images), run.options.credentials, run.options, ctx);
      return deployRelease(restoring, file, pinsFromMeta(previous.meta), keptRelease(previous).model);
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
  const timeoutMs = run.graceEnd() - Date.now() - CANCEL_REPORT_MS;
  try {
    if (timeoutMs < MIN_CANCEL_ROLLBACK_MS) throw new TimeoutError('no time was left to start it');
    ctx.warn(`${head} Rolling back to ${label} within the ${CANCEL_GRACE_MS / 1000} s a cancelled task has, without the health gate.`);
    await ctx.group(`Roll back to ${label} (cancelled)`, () => {
      const { restoring, file } = rollbackOf(run, previous);
      // At the end of the time the CLI is stopped; the task reports without waiting for it to exit.
      return bounded(upRelease(restoring, file, { timeoutMs }), {
        deadline: Date.now() + timeoutMs,
        onTimeout: () => new TimeoutError(`${run.cli.display} up did not finish within ${(timeoutMs / 1000).toFixed(1)} s`),
      });
    });
  } catch (err) {
    return new CancelledError(
      `${head}\nThe rollback to ${label} did not finish (${sanitizeOutput(errorMessage(err))}): '${project}' may run parts of both releases, not health-gated (${check}). Roll back by hand on the host: ${manualRestoreCommands(project)}`,
    );
  }
  ctx.output('rolledBack', 'true');
  ctx.output('deployedDigests', JSON.stringify(previous.meta.images));
  return new CancelledError(`${head}\nRolled back to ${label}: its containers run again, but they were not health-gated (a cancelled task has no time for it); check them: ${check}.`);
}

function pinsFromMeta(meta: ReleaseMeta): PinnedService[] {
  return Object.entries(meta.images).map(([service, image]) => {
    try {
      const ref = parseReference(image);
      return ref.digest ? { service, image, repository: repositoryName(ref), digest: ref.digest, source: 'lock' as const } : { service, image, repository: repositoryName(ref), source: 'unpinned' as const };
    } catch {
      return { service, image, source: 'unpinned' as const };
    }
  });
}

/** The inputs that say what the application is (ComposeDeploy's deploy and verify modes); returns the environment. */
export function checkAppInputs(options: Pick<ComposeDeployOptions, 'environmentName' | 'composeFiles' | 'envFile'>): string {
  const environment = options.environmentName.trim();
  if (!environment) throw new InputError("Input 'environmentName' is required: name the environment this step deploys (qa, staging, prod).");
  if (options.composeFiles.length === 0) throw new InputError("Input 'composeFiles' is required: the compose file, then this environment's override files, one per line.");
  for (const file of options.composeFiles) {
    if (!fs.existsSync(file)) throw new InputError(`Input 'composeFiles': '${file}' does not exist. Check the path (relative paths start at the working directory) and that the artifact holding it was downloaded.`);
  }
  if (options.envFile && !fs.existsSync(options.envFile)) throw new InputError(`Input 'envFile': '${options.envFile}' does not exist.`);
  return environment;
}

export function projectNameFor(options: Pick<ComposeDeployOptions, 'projectName' | 'repositoryName'>, environment: string, projectDir: string, ctx: TaskContext): string {
  const given = options.projectName?.trim();
  const wanted = given || `${options.repositoryName?.trim() || path.basename(projectDir)}-${environment}`;
  const name = normaliseProjectName(wanted);
  if (!name) throw new InputError(`Input 'projectName': '${wanted}' has no letter or digit to make a compose project name from. Set projectName (lower case letters, digits, - and _).`);
  if (given && name !== given) ctx.warn(`Input 'projectName': '${given}' is not a valid compose project name; using '${name}' (lower case letters, digits, - and _, as Compose v2 requires).`);
  return name;
}



