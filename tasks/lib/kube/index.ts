// KubernetesDeploy: render (convert compose or read manifests), pin every image by digest, apply
// with server-side apply, wait for the rollout with kubectl's rules, verify the running digests,
// roll back on failure; or a canary deploy / promote / reject; or (renderOnly) render, pin and
// publish without any cluster. Before anything is applied, the promotion diff says what the release
// changes. With bakeSeconds (or a smokeTestUrl) the rolled-out pods are watched a while longer, and
// a failure then rolls back as a failed rollout does. A cancel during the apply, the rollout wait or
// the bake window rolls back as a failure does, in the seconds the agent allows, without waiting for
// the rollback's rollout. With notifyUrl, a webhook hears how the deploy ended. (`mode: verify`
// applies nothing and reports drift: drift.ts.)
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createCredentialSource, dockerServerAddress, endpointRegistry } from '../auth';
import { CANCEL_GRACE_MS, EndpointInfo, TaskContext, cancelDeadline } from '../context';
import { checkArtifactName } from '../artifact-name';
import { InputError, OuterLoopError, errorMessage } from '../errors';
import { abortError } from '../util/abort';
import type { CredentialSource } from '../registry/client';
import { bakeWindow, checkBakeInputs, kubeWatcher } from '../release/bake';
import { ReleaseDiff, promotionDiff, publishDiff, releaseDecision } from '../release/diff';
import { NotifySettings, ReleaseNotes, ServiceImages, withNotification } from '../release/notify';
import { Applied, ApplyItem, applyAll, applyObject, pullSecretObject, resolveResources } from './apply';
import { ClientOptions, KubeApiError, KubeClient } from './client';
import type { ResolvedKubeconfig } from './kubeconfig';
import { KubeObject, MANAGED_BY_LABEL, MANAGED_BY_VALUE, ROLLOUT_KINDS, describe, getPath, podSpecOf } from './objects';
import { isObject } from '../util/object';
import { RenderOptions, Rendered, render } from './render';
import { KUBE_TRACE_ANNOTATIONS, provenanceTable, releaseTrace, traceEntries } from '../release/trace';
import { annotateForTrace } from './trace';
import { releaseWorkloads, runningWorkloads } from './running';
import { BeforeState, canaryObjects, captureBefore, deletePodsOfRevision, planRollback, removeCanaries } from './rollback';
import { ImageCheck, WaitResult, diagnosePods, expectedDigests, formatProblems, verifyImageIds, waitForRollout } from './rollout';

export interface PullSecretSpec {
  /** Name of the Secret to create (and add to every pod's imagePullSecrets). */
  name: string;
  /** Registry host, as it appears in image references. */
  registry: string;
  /** The server address written into .dockerconfigjson. */
  server: string;
  getCredential: () => Promise<{ username: string; password: string } | undefined>;
  /** The input that named the connection, for messages. */
  input: string;
}

/** What to render (RenderOptions: source, files, lock, namespace, imagePullSecrets), and how to deploy it. */
export interface KubernetesDeployOptions extends RenderOptions {
  /** Resolves the connection (may fetch AKS credentials); not needed with renderOnly. */
  kubeconfig?: () => Promise<ResolvedKubeconfig>;
  /** Render, pin and publish the manifests, and stop: no cluster is contacted. */
  renderOnly?: boolean;
  createNamespace: boolean;
  /** Created in the namespace and added to every pod's imagePullSecrets, like the names in imagePullSecrets. */
  pullSecret?: PullSecretSpec;
  strategy: 'rolling' | 'canary';
  canaryPercentage: number;
  action: 'deploy' | 'promote' | 'reject';
  rolloutTimeoutSeconds: number;
  rollbackOnFailure: boolean;
  fieldManager: string;
  forceConflicts: boolean;
  /** Where to write the rendered manifests; default <Build.ArtifactStagingDirectory or temp>/kubernetes-deploy/<namespace>-manifests.yaml. */
  renderedManifests?: string;
  publishArtifact: boolean;
  artifactName: string;
  logTailLines?: number;
  client?: Partial<ClientOptions>;
  /** Credentials for reading the images' labels from their registries (the promotion diff); anonymous without. */
  registryCredentials?: CredentialSource;
  /** Print the promotion diff and apply nothing (default false). */
  diffOnly?: boolean;
  /** Deploy a release that changes nothing (default true); false skips it. */
  deployIfUnchanged?: boolean;
  /** How long the rolled-out pods are watched (default 0: not at all). */
  bakeSeconds?: number;
  /** Must answer 2xx after the rollout and through the bake window. */
  smokeTestUrl?: string;
  /** The webhook told how the deploy ended (notifyUrl, notifyFormat); not used with renderOnly. */
  notify?: NotifySettings;
  /** sha256:<hex> of the lock file's bytes (lockFileDigest), for the trace annotations. */
  lockDigest?: string;
}

export interface KubernetesDeployResult {
  renderedManifests: string;
  /** Image name (the lock's, else the container's) → pinned reference. */
  deployedDigests: Record<string, string>;
  rolledBack: boolean;
  applied: string[];
  imageChecks: ImageCheck[];
  /** What the release changes in the namespace, worked out before anything was applied (not for renderOnly or reject). */
  diff?: ReleaseDiff;
  /** Why nothing was applied (diffOnly, or an unchanged release with deployIfUnchanged: false); undefined otherwise. */
  skipped?: string;
}

/** The deployment failed; `rolledBack` says whether the previous revision was restored. */
export class DeploymentFailedError extends OuterLoopError {
  constructor(
    message: string,
    readonly result: KubernetesDeployResult,
  ) {
    super(message);
  }
}

export const MAX_ROLLOUT_TIMEOUT_SECONDS = 6 * 3600;

/** The pull secret for a Docker registry service connection (createPullSecretFrom); its credential is read when the secret is applied. */
export function pullSecretFrom(endpoint: EndpointInfo, name: string, setSecret: (s: string) => void): PullSecretSpec {
  const credentials = createCredentialSource({ endpoint, setSecret, useDockerConfig: false });
  const registry = endpointRegistry(endpoint);
  return {
    name,
    registry,
    server: dockerServerAddress(registry),
    input: endpoint.input,
    getCredential: async () => {
      const c = await credentials(registry);
      return c && c.password ? { username: c.username, password: c.password } : undefined;
    },
  };
}

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
    const workloads = rendered.items.filter((i) => ROLLOUT_KINDS.has(i.object.kind));
    const deployments = workloads.filter((w) => w.object.kind === 'Deployment').map((w) => w.object);

    if (options.action === 'reject') {
      await ctx.group('Reject the canary', async () => {
        const removed = await removeCanaries(client, deployments);
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
    const decision = releaseDecision(result.diff, { diffOnly: options.diffOnly ?? false, deployIfUnchanged: options.deployIfUnchanged ?? true });
    if (!decision.deploy) {
      ctx.info(`${decision.reason} Nothing was applied to namespace '${options.namespace}'.`);
      result.skipped = decision.reason;
      result.deployedDigests = {};
      return result;
    }

    await ensureNamespace(client, options, ctx);
    if (options.pullSecret) await applyPullSecret(client, options, ctx);
    const trace = traceEntries(releaseTrace(ctx, options.lock, options.lockDigest), KUBE_TRACE_ANNOTATIONS);

    if (options.strategy === 'canary' && options.action === 'deploy') {
      await annotateItems(client, rendered.items, trace, ctx, new Map());
      return await canaryDeploy(client, rendered, resources, options, ctx, result, (undo) => inGraceTime(clientWith, graceEnd, undo), notes);
    }

    const applyOptions = { fieldManager: options.fieldManager, force: options.forceConflicts };

    // 3. Remember what ran before, then apply everything.
    const before = new Map<ApplyItem, BeforeState>();
    for (const w of workloads) before.set(w, await captureBefore(client, w.object));
    await annotateItems(client, rendered.items, trace, ctx, before);
    notes.services(workloadImages(workloads, before));
    let phase = 'apply';
    let failure: string | undefined;
    let cancelled = false;
    try {
      const applied = await ctx.group(`Server-side apply as '${options.fieldManager}'`, () => applyAll(client, rendered.items, resources, applyOptions, ctx));
      result.applied = applied.map((a) => describe(a.object));

      // 4. Wait for every workload, then check the digests the pods run.
      phase = 'rollout wait';
      failure = await waitAndVerify(client, workloads.map((w) => w.object), Date.now() + options.rolloutTimeoutSeconds * 1000, options, ctx, result);
      phase = 'bake window';
      failure ??= await bake(client, workloads.map((w) => w.object), options, ctx);
    } catch (err) {
      if (!ctx.signal.aborted) throw err;
      cancelled = true;
    }
    if (cancelled) {
      // The agent kills the task CANCEL_GRACE_MS after the cancel: the rollback is applied, not waited for.
      let message = `The job was cancelled during the ${phase} in namespace '${options.namespace}'.`;
      if (options.rollbackOnFailure) {
        const rollback = await inGraceTime(clientWith, graceEnd, (grace) => rollbackAll(grace, workloads, before, applyOptions, options, ctx, { wait: false })).catch((err: unknown) => ({
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
    if (!failure) {
      if (options.action === 'promote') {
        await ctx.group('Promote: remove the canary and baseline workloads', async () => {
          const removed = await removeCanaries(client, deployments);
          ctx.info(removed.length ? `Removed ${removed.join(', ')}.` : 'No canary or baseline workloads were found.');
        });
      }
      writeSummary(ctx, options, rendered, result, `${options.action === 'promote' ? 'Promoted' : 'Deployed'}: every workload rolled out and runs the pinned digests.`);
      return result;
    }

    // 5. Roll back what failed.
    let message = failure;
    if (options.rollbackOnFailure) {
      const rollback = await ctx.group('Roll back', () => rollbackAll(client, workloads, before, applyOptions, options, ctx));
      result.rolledBack = rollback.rolledBack.length > 0;
      message += `\n${rollback.message}`;
    } else {
      message += '\nrollbackOnFailure is false: the failed revision was left in place.';
    }
    writeSummary(ctx, options, rendered, result, message);
    throw new DeploymentFailedError(message, result);
  } finally {
    client.close();
  }
}

export function validateOptions(options: KubernetesDeployOptions): void {
  if (!options.renderOnly && !options.kubeconfig) throw new InputError("Input 'kubernetesServiceConnection' (or azureSubscription): no cluster connection was given. Choose one, or set renderOnly: true to render the manifests without a cluster.");
  if (options.publishArtifact) checkArtifactName(options.artifactName, 'manifestsArtifactName');
  if (options.renderOnly && options.diffOnly) throw new InputError("Inputs 'renderOnly' and 'diffOnly' cannot both be true: the promotion diff reads what the namespace runs, and renderOnly contacts no cluster. Set one of them.");
  if (options.source === 'compose' && !options.composeFiles?.length) throw new InputError("Input 'composeFiles' is required when source is 'compose'.");
  if (options.source === 'manifests' && !options.manifests?.length) throw new InputError("Input 'manifests' is required when source is 'manifests': manifest files or globs, one per line.");
  if (!Number.isInteger(options.rolloutTimeoutSeconds) || options.rolloutTimeoutSeconds < 1 || options.rolloutTimeoutSeconds > MAX_ROLLOUT_TIMEOUT_SECONDS) {
    throw new InputError(`Input 'rolloutTimeoutSeconds' must be from 1 to ${MAX_ROLLOUT_TIMEOUT_SECONDS} (a rollout wait is always bounded).`);
  }
  if (options.strategy === 'canary' && (!(options.canaryPercentage > 0) || options.canaryPercentage > 100)) {
    throw new InputError(`Input 'canaryPercentage' must be a number above 0 and at most 100, not '${options.canaryPercentage}'.`);
  }
  if ((options.action === 'promote' || options.action === 'reject') && options.strategy !== 'canary') {
    throw new InputError(`Input 'action': '${options.action}' needs strategy 'canary'.`);
  }
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(options.namespace) || options.namespace.length > 63) {
    throw new InputError(`Input 'namespace': '${options.namespace}' is not a valid namespace name (lower-case letters, digits and '-').`);
  }
  if (!options.fieldManager || options.fieldManager.length > 128) throw new InputError(`Input 'fieldManager' must be 1 to 128 characters.`);
  checkBakeInputs(options.bakeSeconds ?? 0, options.smokeTestUrl);
}

/** The bake window over the rolled-out workloads' pods: why it failed, or undefined. */
function bake(client: KubeClient, objects: KubeObject[], options: KubernetesDeployOptions, ctx: TaskContext): Promise<string | undefined> {
  return bakeWindow(kubeWatcher(client, objects, { tailLines: options.logTailLines ?? 20 }), { seconds: options.bakeSeconds ?? 0, smokeTestUrl: options.smokeTestUrl, signal: ctx.signal, log: ctx });
}

/** Each workload's containers, with the image its template had before this deployment and the pinned one it gets (for the notification). */
function workloadImages(workloads: ApplyItem[], before: Map<ApplyItem, BeforeState>): ServiceImages[] {
  const images = (spec: unknown) => {
    const containers = isObject(spec) && Array.isArray(spec.containers) ? spec.containers : [];
    return new Map(containers.filter(isObject).map((c) => [String(c.name), typeof c.image === 'string' ? c.image : undefined]));
  };
  return workloads.flatMap((w) => {
    const old = images(getPath(before.get(w)?.template, ['spec']));
    return [...images(podSpecOf(w.object))].map(([container, image]) => ({ service: `${w.object.kind.toLowerCase()}/${w.object.metadata.name}/${container}`, before: old.get(container), after: image }));
  });
}

function deployedDigests(rendered: Rendered): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of rendered.pins.images) {
    if (p.source === 'unpinned') continue;
    out[p.lockName ?? p.container] = p.to;
  }
  return out;
}

async function ensureNamespace(client: KubeClient, options: KubernetesDeployOptions, ctx: TaskContext): Promise<void> {
  if (options.createNamespace) {
    await applyObject(
      client,
      { object: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: options.namespace, labels: { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE } } }, where: "input 'createNamespace'" },
      { fieldManager: options.fieldManager, force: false },
    );
    ctx.info(`Namespace '${options.namespace}' applied.`);
    return;
  }
  try {
    const ns = await client.get('v1', 'Namespace', undefined, options.namespace);
    if (!ns) throw new InputError(`Input 'namespace': namespace '${options.namespace}' does not exist in the cluster. Create it, or set createNamespace: true.`);
  } catch (err) {
    // Many deployers may not read namespaces; the apply itself will say if it is missing.
    if (err instanceof KubeApiError && err.status === 403) ctx.debug(`kubernetes: cannot read namespace ${options.namespace} (403); continuing`);
    else throw err;
  }
}

async function applyPullSecret(client: KubeClient, options: KubernetesDeployOptions, ctx: TaskContext): Promise<void> {
  const spec = options.pullSecret!;
  const credential = await spec.getCredential();
  if (!credential) throw new InputError(`Input '${spec.input}': no credential was found for the registry ${spec.registry}.`);
  const secret = pullSecretObject(spec.name, options.namespace, spec.server, credential.username, credential.password, { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE });
  for (const s of secret.secrets) ctx.setSecret(s);
  await applyObject(client, { object: secret.object, where: `input '${spec.input}'` }, { fieldManager: options.fieldManager, force: true });
  ctx.info(`Image pull secret '${spec.name}' for ${spec.registry} applied (created through the API; no password on a command line).`);
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
      const problems = await diagnosePods(client, f.last ?? f.object, { tailLines: options.logTailLines ?? 20 });
      parts.push(`  ${describe(f.object)}: ${f.timedOut ? `not rolled out within rolloutTimeoutSeconds (${options.rolloutTimeoutSeconds} s). ` : ''}${f.message}${problems.length ? `\n${formatProblems(problems)}` : ''}`);
    }
    const message = `The rollout failed:\n${parts.join('\n')}`;
    ctx.info(message);
    return message;
  }
  // Every workload is rolled out: the running pods must carry the lock's digests.
  const checks: ImageCheck[] = [];
  for (const o of objects) checks.push(...(await verifyImageIds(client, o, expectedDigests(o))));
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

async function rollbackAll(
  client: KubeClient,
  workloads: ApplyItem[],
  before: Map<ApplyItem, BeforeState>,
  applyOptions: { fieldManager: string; force: boolean },
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
      await applyObject(client, { object: plan.object, where: `rollback of ${w.where}` }, { fieldManager: applyOptions.fieldManager, force: true });
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

/** Below this much time left, nothing is started after a cancel: a half-done rollback helps no one. */
const MIN_CANCEL_ROLLBACK_MS = 1_000;
/** What a cancelled task keeps of its grace time to report and end. */
const CANCEL_REPORT_MS = 500;

/**
 * `undo` after a cancel, with a client whose requests end when the cancelled task's grace time does
 * (the task's own client stops at the cancel).
 */
async function inGraceTime<T>(clientWith: (signal: AbortSignal) => KubeClient, graceEnd: () => number, undo: (client: KubeClient) => Promise<T>): Promise<T> {
  const left = graceEnd() - Date.now() - CANCEL_REPORT_MS;
  if (left < MIN_CANCEL_ROLLBACK_MS) throw new OuterLoopError(`no time was left of the ${CANCEL_GRACE_MS / 1000} s a cancelled task has`);
  const client = clientWith(AbortSignal.timeout(left));
  try {
    return await undo(client);
  } finally {
    client.close();
  }
}

/** Waits for the rolled-back workloads, with a fresh rolloutTimeoutSeconds. */
async function waitForRollback(client: KubeClient, targets: KubeObject[], options: KubernetesDeployOptions, ctx: TaskContext): Promise<string | undefined> {
  const deadline = Date.now() + options.rolloutTimeoutSeconds * 1000;
  const results = await Promise.all(targets.map((o) => waitForRollout(client, o, deadline, ctx).catch((err): WaitResult => ({ object: o, ok: false, message: errorMessage(err) }))));
  const failed = results.filter((r) => !r.ok);
  return failed.length ? `The rollback's rollout failed: ${failed.map((f) => f.message).join('; ')}` : undefined;
}

async function canaryDeploy(
  client: KubeClient,
  rendered: Rendered,
  resources: Awaited<ReturnType<typeof resolveResources>>,
  options: KubernetesDeployOptions,
  ctx: TaskContext,
  result: KubernetesDeployResult,
  inGrace: <T>(undo: (client: KubeClient) => Promise<T>) => Promise<T>,
  notes: ReleaseNotes,
): Promise<KubernetesDeployResult> {
  const applyOptions = { fieldManager: options.fieldManager, force: options.forceConflicts };
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
  notes.services(workloadImages(deployments, running));
  const variantResources = await resolveResources(client, variants, options.namespace);
  const all = new Map([...resources, ...variantResources]);
  let phase = 'apply';
  let failure: string | undefined;
  let cancelled = false;
  try {
    const applied: Applied[] = await ctx.group(`Canary (${options.canaryPercentage}%): server-side apply as '${options.fieldManager}'`, () => applyAll(client, [...others, ...variants], all, applyOptions, ctx));
    result.applied = applied.map((a) => describe(a.object));
    phase = 'rollout wait';
    failure = await waitAndVerify(client, variants.map((v) => v.object), Date.now() + options.rolloutTimeoutSeconds * 1000, options, ctx, result);
    phase = 'bake window';
    failure ??= await bake(client, variants.map((v) => v.object), options, ctx);
  } catch (err) {
    if (!ctx.signal.aborted) throw err;
    cancelled = true;
  }
  if (cancelled) {
    // As a failed canary: removed (the stable workloads were never changed), in the cancelled task's grace time.
    const byHand = `kubectl delete ${variants.map((v) => `deployment/${v.object.metadata.name}`).join(' ')} -n ${options.namespace}`;
    let message = `The job was cancelled during the canary's ${phase} in namespace '${options.namespace}'; the stable workloads were not changed.`;
    if (options.rollbackOnFailure) {
      message += await inGrace((grace) => removeCanaries(grace, deployments.map((d) => d.object))).then(
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
  if (!failure) {
    writeSummary(ctx, options, rendered, result, `Canary deployed at ${options.canaryPercentage}%: ${variants.map((v) => describe(v.object)).join(', ')}. Promote it (action: promote) or reject it (action: reject).`);
    return result;
  }
  let message = failure;
  if (options.rollbackOnFailure) {
    const removed = await removeCanaries(client, deployments.map((d) => d.object));
    result.rolledBack = removed.length > 0;
    message += `\nThe canary was removed (${removed.join(', ') || 'nothing to remove'}); the stable workloads were not changed.`;
  }
  writeSummary(ctx, options, rendered, result, message);
  throw new DeploymentFailedError(message, result);
}

/** The trace annotations of every object to apply (trace.ts), from its live copy: as `read` holds it, else fetched. */
async function annotateItems(client: KubeClient, items: ApplyItem[], trace: Record<string, string>, ctx: TaskContext, read: Map<ApplyItem, BeforeState>): Promise<void> {
  if (!Object.keys(trace).length) return;
  for (const item of items) {
    const { object } = item;
    annotateForTrace(object, read.has(item) ? read.get(item)!.live : await liveObject(client, object, ctx), trace);
  }
}

/** The object as the cluster has it; undefined when it does not, or the account may not read it (it then gets this run's trace). */
async function liveObject(client: KubeClient, object: KubeObject, ctx: TaskContext): Promise<KubeObject | undefined> {
  try {
    return await client.get(object.apiVersion, object.kind, object.metadata.namespace, object.metadata.name as string);
  } catch (err) {
    if (!(err instanceof KubeApiError && err.status === 403)) throw err;
    ctx.debug(`kubernetes: may not read ${describe(object)} (403); it gets this run's trace annotations`);
    return undefined;
  }
}

function writeSummary(ctx: TaskContext, options: KubernetesDeployOptions, rendered: Rendered, result: KubernetesDeployResult, outcome: string): void {
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  const lines = [
    `### KubernetesDeploy: ${esc(options.namespace)} (${options.renderOnly ? 'render only' : `${options.strategy}${options.strategy === 'canary' ? ` ${options.action}` : ''}`})`,
    '',
    outcome.split('\n')[0],
    '',
    '| object | container | image |',
    '|---|---|---|',
    ...rendered.pins.images.map((p) => `| ${esc(p.object)} | ${esc(p.container)} | \`${esc(p.to)}\`${p.source === 'unpinned' ? ' (not pinned)' : ''} |`),
  ];
  if (result.imageChecks.length) {
    lines.push('', `Running containers verified against the pinned digests: ${result.imageChecks.filter((c) => c.ok === true).length} of ${result.imageChecks.length}.`);
  }
  if (result.rolledBack) lines.push('', '**Rolled back.**');
  if (options.lock) lines.push('', provenanceTable(options.lock, rendered.pins.images.map((p) => ({ service: p.lockName ?? p.container, image: p.to }))));
  ctx.addSummary('kubernetes-deploy', `${lines.join('\n')}\n`);
}
