// What KubernetesDeploy is given and what it returns, and the checks of its options before anything
// is rendered or contacted.
import { checkArtifactName } from '../artifact-name';
import type { TaskContext } from '../context';
import { InputError, OuterLoopError } from '../errors';
import type { CredentialSource } from '../auth';
import { checkBakeInputs } from '../release/bake';
import type { ReleaseDiff } from '../release/diff';
import type { ReleaseNotes } from '../release/notify';
import type { ReleaseOptions } from '../release/options';
import type { ApplyItem } from './apply';
import { DNS_LABEL } from './convert-context';
import type { ApiResource, ClientOptions, KubeClient } from './client';
import type { ResolvedKubeconfig } from './kubeconfig';
import type { RenderOptions, Rendered } from './render';
import type { ImageCheck } from './rollout';

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

/** What to render (RenderOptions: source, files, lock, namespace, imagePullSecrets), how to deploy it, and the release inputs (ReleaseOptions). */
export interface KubernetesDeployOptions extends RenderOptions, ReleaseOptions {
  /** Resolves the connection (may fetch AKS credentials); not needed with renderOnly. */
  kubeconfig?: () => Promise<ResolvedKubeconfig>;
  /** Render, pin and publish the manifests, and stop: no cluster is contacted, and no notification sent. */
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
  /** Log lines of each failing pod's containers in a failure report (the logTailLines input). */
  logTailLines: number;
  client?: Partial<ClientOptions>;
  /** Credentials for reading the images' labels from their registries (the promotion diff); anonymous without. */
  registryCredentials?: CredentialSource;
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

/** Every check of the options that needs no cluster (the verify mode, drift.ts, makes them too). */
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
  if (!DNS_LABEL.test(options.namespace) || options.namespace.length > 63) {
    throw new InputError(`Input 'namespace': '${options.namespace}' is not a valid namespace name (lower-case letters, digits and '-').`);
  }
  if (!options.fieldManager || options.fieldManager.length > 128) throw new InputError(`Input 'fieldManager' must be 1 to 128 characters.`);
  checkBakeInputs(options.bakeSeconds, options.smokeTestUrl);
}

/** One deploy against the cluster, once the manifests are rendered and every kind resolved: what the rolling and canary flows work with. */
export interface DeployRun {
  client: KubeClient;
  rendered: Rendered;
  resources: Map<ApplyItem, ApiResource>;
  options: KubernetesDeployOptions;
  ctx: TaskContext;
  /** Filled in as the deploy goes (applied, imageChecks, rolledBack). */
  result: KubernetesDeployResult;
  notes: ReleaseNotes;
  /** Runs `undo` after a cancel, with a client that lasts the cancelled task's grace time. */
  inGrace: <T>(undo: (client: KubeClient) => Promise<T>) => Promise<T>;
}
