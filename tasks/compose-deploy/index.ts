import * as fs from 'node:fs';
import * as path from 'node:path';
import { createCredentialSource } from '../lib/auth';
import { createPipelineOidcTokenGetter } from '../lib/auth/acr';
import { composeDeploy, DockerHostType, LockSource } from '../lib/compose-deploy';
import { InputError } from '../lib/errors';
import { lockFromBuild } from '../lib/lock/from-build';
import { runTask } from '../lib/pipeline';

runTask('ComposeDeploy', async (inputs, ctx) => {
  const setSecret = (s: string) => ctx.setSecret(s);
  const environmentName = inputs.required('environmentName');
  const composeFiles = inputs.list('composeFiles');
  if (composeFiles.length === 0) throw new InputError("Input 'composeFiles' is required: the compose file, then this environment's override files.");

  const hostType = (inputs.string('dockerHostType', { default: 'local' }) as string).toLowerCase() as DockerHostType;
  if (!['local', 'tls', 'ssh'].includes(hostType)) throw new InputError(`Input 'dockerHostType' must be local, tls or ssh, not '${hostType}'.`);

  const useAcr = inputs.string('containerRegistryType', { default: 'dockerRegistry' }) === 'azureContainerRegistry';
  const azure = useAcr ? inputs.endpoint('azureSubscription') : undefined;
  if (useAcr && !azure) throw new InputError("Input 'azureSubscription' is required when the registry type is Azure Container Registry.");
  const credentials = createCredentialSource({
    endpoint: useAcr ? undefined : inputs.endpoint('containerRegistry'),
    acr: azure && {
      endpoint: azure,
      loginServer: inputs.required('azureContainerRegistry'),
      getOidcToken: createPipelineOidcTokenGetter({
        requestUri: ctx.variable('System.OidcRequestUri'),
        accessToken: ctx.variable('System.AccessToken'),
        serviceConnectionId: azure.id,
        setSecret,
      }),
    },
    setSecret,
  });

  // The lock: a file on disk, else another run's artifact.
  const lockFile = inputs.path('lockFile');
  const pipeline = inputs.string('lockFromBuild');
  let lock: LockSource | undefined;
  // A deployment job downloads the build's artifacts into $(Pipeline.Workspace): its image-lock is the default.
  const workspace = ctx.variable('Pipeline.Workspace');
  const downloaded = workspace ? path.join(workspace, 'image-lock', 'image-lock.json') : undefined;
  if (lockFile && (fs.existsSync(lockFile) || !pipeline)) lock = { file: lockFile };
  else if (!lockFile && !pipeline && downloaded && fs.existsSync(downloaded)) {
    ctx.info(`Image lock: ${downloaded} (the image-lock artifact this job downloaded).`);
    lock = { file: downloaded };
  }
  if (!lock && pipeline) {
    const artifactName = inputs.string('lockArtifactName', { default: 'image-lock' }) as string;
    const runId = inputs.string('lockFromBuildRun');
    lock = {
      description: `artifact '${artifactName}' of pipeline '${pipeline}'${runId ? ` run ${runId}` : ''}`,
      fetch: () =>
        lockFromBuild({
          collectionUri: ctx.variable('System.CollectionUri') ?? ctx.variable('System.TeamFoundationCollectionUri') ?? '',
          project: inputs.string('lockFromBuildProject') ?? ctx.variable('System.TeamProject') ?? '',
          pipeline,
          runId,
          branch: inputs.string('lockFromBuildBranch'),
          artifactName,
          accessToken: ctx.variable('System.AccessToken') ?? process.env.SYSTEM_ACCESSTOKEN ?? '',
          destDir: path.join(ctx.tempDir, 'outer-loop', 'lock-from-build'),
          setSecret,
          log: ctx,
        }),
    };
  }

  await composeDeploy(
    {
      composeFiles,
      environmentName,
      projectName: inputs.string('projectName'),
      repositoryName: ctx.variable('Build.Repository.Name') ?? ctx.variable('Release.PrimaryArtifactSourceAlias'),
      lock,
      envFile: inputs.path('envFile'),
      variables: inputs.keyValues('variables'),
      profiles: inputs.list('profiles'),
      target: {
        type: hostType,
        dockerHostEndpoint: hostType === 'tls' ? inputs.endpoint('dockerHostEndpoint') : undefined,
        sshEndpoint: hostType === 'ssh' ? inputs.endpoint('sshEndpoint') : undefined,
        sshHostKey: inputs.string('sshHostKey'),
        remoteDockerSocket: inputs.string('remoteDockerSocket'),
      },
      credentials,
      waitTimeoutSeconds: inputs.int('waitTimeoutSeconds', { default: 300, min: 1, max: 3600 }),
      rollbackOnFailure: inputs.bool('rollbackOnFailure', true),
      allowUnpinned: inputs.bool('allowUnpinned', false),
      removeOrphans: inputs.bool('removeOrphans', true),
      publishRenderedFile: inputs.bool('publishRenderedFile', true),
      artifactName: inputs.string('renderedArtifactName'),
      dockerComposePath: inputs.string('dockerComposePath'),
      buildNumber: ctx.variable('Build.BuildNumber'),
    },
    ctx,
  );
});
