// The image lock of the deploy tasks (ComposeDeploy, KubernetesDeploy), from their lock inputs:
// `lockFile` when it is on disk (or when lockFromBuild is not set), else `lockFromBuild` (+ Run,
// Branch, Project, lockArtifactName) fetches another run's artifact with the job's access token,
// else the image-lock artifact a deployment job downloaded into $(Pipeline.Workspace). Type-only
// imports of the adapter, so this is testable with a stand-in for TaskInputs.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { TaskContext } from '../context';
import { InputError } from '../errors';
import { readLock } from '../lock/file';
import { lockFromBuild } from '../lock/from-build';
import type { ImageLock } from '../lock/types';
import { lockFileDigest } from '../release/trace';
import type { TaskInputs } from './index';

export interface LockInput {
  /** Undefined when no lock was given and none was downloaded. */
  lock?: ImageLock;
  /** The input the lock comes from, for messages. */
  input: 'lockFile' | 'lockFromBuild';
  /** Where it was read: the file, or the artifact and run it was fetched from (and the file). */
  source?: string;
  /** sha256:<hex> of the lock file's bytes (the trace labels and annotations carry it). */
  digest?: string;
}

/** Reads the image lock the deploy task's inputs name; throws InputError naming the input. */
export async function readLockInput(inputs: Pick<TaskInputs, 'path' | 'string' | 'required'>, ctx: TaskContext): Promise<LockInput> {
  const lockFile = inputs.path('lockFile');
  const pipeline = inputs.string('lockFromBuild');
  const artifactName = inputs.required('lockArtifactName');
  if (lockFile && fs.existsSync(lockFile)) return { lock: readLock(lockFile), input: 'lockFile', source: lockFile, digest: lockFileDigest(lockFile) };
  if (lockFile && !pipeline) throw new InputError(`Input 'lockFile': '${lockFile}' does not exist. Download the image-lock artifact first, or set lockFromBuild.`);
  if (pipeline) {
    const runId = inputs.string('lockFromBuildRun');
    const file = await lockFromBuild({
      collectionUri: ctx.variable('System.CollectionUri') ?? ctx.variable('System.TeamFoundationCollectionUri') ?? '',
      project: inputs.string('lockFromBuildProject') ?? ctx.variable('System.TeamProject') ?? '',
      pipeline,
      runId,
      branch: inputs.string('lockFromBuildBranch'),
      artifactName,
      accessToken: ctx.variable('System.AccessToken') ?? process.env.SYSTEM_ACCESSTOKEN ?? '',
      destDir: path.join(ctx.tempDir, 'outer-loop', 'lock-from-build'),
      setSecret: (s) => ctx.setSecret(s),
      log: ctx,
    });
    return { lock: readLock(file), input: 'lockFromBuild', digest: lockFileDigest(file), source: `artifact '${artifactName}' of pipeline '${pipeline}'${runId ? ` run ${runId}` : ''} (${file})` };
  }
  // A deployment job downloads the build's artifacts into $(Pipeline.Workspace): its lock artifact is the default.
  const workspace = ctx.variable('Pipeline.Workspace');
  const downloaded = workspace ? path.join(workspace, artifactName, 'image-lock.json') : undefined;
  if (downloaded && fs.existsSync(downloaded)) {
    ctx.info(`Image lock: ${downloaded} (the ${artifactName} artifact this job downloaded).`);
    return { lock: readLock(downloaded), input: 'lockFile', source: downloaded, digest: lockFileDigest(downloaded) };
  }
  return { input: 'lockFile' };
}
