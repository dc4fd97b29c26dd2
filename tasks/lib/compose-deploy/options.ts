// What ComposeDeploy is given and what it returns, and the checks of its inputs before anything is
// rendered or contacted.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { normaliseProjectName } from '../compose/cli';
import type { Environment } from '../compose/interpolate';
import type { TaskContext } from '../context';
import { checkArtifactName } from '../artifact-name';
import { InputError, OuterLoopError } from '../errors';
import type { ImageLock } from '../lock/types';
import type { CredentialSource } from '../auth';
import { checkBakeInputs } from '../release/bake';
import type { ReleaseDiff } from '../release/diff';
import type { ReleaseOptions } from '../release/options';
import { MAX_KEEP_RELEASES } from './store';
import { checkTargetInputs, TargetOptions } from './target';
import type { VerifiedContainer } from './verify';

/** A deploy that failed: its release, its gate or the bake window; the message says what runs now. */
export class DeployError extends OuterLoopError {}

/** What to deploy where, and how; with the release inputs (ReleaseOptions: the diff's gate, the bake window after the health gate, the notification). */
/** Bound of one `compose up`; no input sets it. */
export const UP_TIMEOUT_SECONDS = 600;

export interface ComposeDeployOptions extends ReleaseOptions {
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
  target: Omit<TargetOptions, 'tempRoot' | 'setSecret' | 'log' | 'engineStallSeconds'>;
  /** Seconds a pull may go without progress (the engineStallSeconds input). */
  engineStallSeconds: number;
  credentials: CredentialSource;
  waitTimeoutSeconds: number;
  /** The time one pull may take in all, retries included (the registryTimeoutSeconds input). */
  registryTimeoutSeconds: number;
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
  /** Bound of one `compose up` (default UP_TIMEOUT_SECONDS). */
  upTimeoutSeconds?: number;
  /** How many good releases the host keeps. */
  keepReleases: number;
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

/** The compose project: projectName, else `<repository>-<environment>`, normalised to what Compose v2 accepts (a change is warned about). */
export function projectNameFor(options: Pick<ComposeDeployOptions, 'projectName' | 'repositoryName'>, environment: string, projectDir: string, ctx: TaskContext): string {
  const given = options.projectName?.trim();
  const wanted = given || `${options.repositoryName?.trim() || path.basename(projectDir)}-${environment}`;
  const name = normaliseProjectName(wanted);
  if (!name) throw new InputError(`Input 'projectName': '${wanted}' has no letter or digit to make a compose project name from. Set projectName (lower case letters, digits, - and _).`);
  if (given && name !== given) ctx.warn(`Input 'projectName': '${given}' is not a valid compose project name; using '${name}' (lower case letters, digits, - and _, as Compose v2 requires).`);
  return name;
}

/** What the deploy mode's inputs come to, all checked. */
export interface DeployInputs {
  environment: string;
  project: string;
  /** How many good releases the host keeps. */
  keep: number;
  /** The build number of the kept release to redeploy, if one is asked for. */
  rollbackTo?: string;
  targetOptions: TargetOptions;
}

/** Every check of the deploy mode's inputs, before anything is rendered or contacted. */
export function checkDeployInputs(options: ComposeDeployOptions, ctx: TaskContext): DeployInputs {
  const environment = checkAppInputs(options);
  if (options.publishRenderedFile && options.artifactName) checkArtifactName(options.artifactName, 'renderedArtifactName');
  if (!Number.isInteger(options.waitTimeoutSeconds) || options.waitTimeoutSeconds < 1 || options.waitTimeoutSeconds > MAX_WAIT_SECONDS) {
    throw new InputError(`Input 'waitTimeoutSeconds' must be from 1 to ${MAX_WAIT_SECONDS}, not ${options.waitTimeoutSeconds}.`);
  }
  const keep = options.keepReleases;
  if (!Number.isInteger(keep) || keep < 1 || keep > MAX_KEEP_RELEASES) throw new InputError(`Input 'keepReleases' must be from 1 to ${MAX_KEEP_RELEASES}, not ${keep}.`);
  const rollbackTo = options.rollbackTo?.trim() || undefined;
  const projectDir = path.dirname(path.resolve(options.composeFiles[0]));
  const project = projectNameFor(options, environment, projectDir, ctx);
  const targetOptions: TargetOptions = { ...options.target, engineStallSeconds: options.engineStallSeconds, tempRoot: ctx.tempDir, setSecret: (s) => ctx.setSecret(s), log: ctx };
  checkTargetInputs(targetOptions);
  checkBakeInputs(options.bakeSeconds, options.smokeTestUrl);
  if (!options.lock && !options.allowUnpinned && !rollbackTo) {
    throw new InputError("Input 'lockFile': no image lock was given. Give the lock PushWithDigest@1 wrote (lockFile, or lockFromBuild for another run's artifact), or set allowUnpinned: true to deploy the tags of the compose file.");
  }
  return { environment, project, keep, rollbackTo, targetOptions };
}
