import { composeDeploy } from '../lib/compose-deploy';
import { runTask } from '../lib/pipeline';
import { registryCredentials } from '../lib/pipeline/connections';
import { readLockInput } from '../lib/pipeline/lock-input';
import { readNotifyInputs } from '../lib/pipeline/notify-input';
import { MAX_BAKE_SECONDS } from '../lib/release/bake';

runTask('ComposeDeploy', async (inputs, ctx) => {
  const environmentName = inputs.required('environmentName');
  const hostType = inputs.choice('dockerHostType', ['local', 'tls', 'ssh'] as const);
  const credentials = registryCredentials(inputs, ctx);
  const { lock, source: lockName } = await readLockInput(inputs, ctx);
  await composeDeploy(
    {
      composeFiles: inputs.list('composeFiles'),
      environmentName,
      projectName: inputs.string('projectName'),
      repositoryName: ctx.variable('Build.Repository.Name') ?? ctx.variable('Release.PrimaryArtifactSourceAlias'),
      lock,
      lockName,
      envFile: inputs.path('envFile'),
      variables: inputs.keyValues('variables'),
      profiles: inputs.list('profiles'),
      allowedPaths: inputs.list('allowedPaths'),
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
      bakeSeconds: inputs.int('bakeSeconds', { default: 0, min: 0, max: MAX_BAKE_SECONDS }),
      smokeTestUrl: inputs.string('smokeTestUrl'),
      notify: readNotifyInputs(inputs, ctx),
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
