import { composeDeploy } from '../lib/compose-deploy';
import { composeVerify } from '../lib/compose-deploy/drift';
import { DEFAULT_KEEP_RELEASES, MAX_KEEP_RELEASES } from '../lib/compose-deploy/store';
import { runTask } from '../lib/pipeline';
import { registryCredentials } from '../lib/pipeline/connections';
import { readLockInput } from '../lib/pipeline/lock-input';
import { readNotifyInputs } from '../lib/pipeline/notify-input';
import { MAX_BAKE_SECONDS } from '../lib/release/bake';
import { MAX_RESTARTS_LIMIT } from '../lib/release/drift';

runTask('ComposeDeploy', async (inputs, ctx) => {
  const mode = inputs.choice('mode', ['deploy', 'verify'] as const);
  const environmentName = inputs.required('environmentName');
  const hostType = inputs.choice('dockerHostType', ['local', 'tls', 'ssh'] as const);
  const { lock, source: lockName, digest: lockDigest } = await readLockInput(inputs, ctx);
  // What the application is and where it runs: the same for a deployment and a verification.
  const app = {
    composeFiles: inputs.list('composeFiles'),
    environmentName,
    projectName: inputs.string('projectName'),
    repositoryName: ctx.variable('Build.Repository.Name') ?? ctx.variable('Release.PrimaryArtifactSourceAlias'),
    lock,
    lockName,
    lockDigest,
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
      engineStallSeconds: inputs.int('engineStallSeconds', { default: 300, min: 1, max: 86_400 }),
    },
    allowUnpinned: inputs.bool('allowUnpinned', false),
  };
  if (mode === 'verify') {
    await composeVerify({ ...app, maxRestarts: inputs.int('maxRestarts', { default: 0, min: 0, max: MAX_RESTARTS_LIMIT }), failOnDrift: inputs.bool('failOnDrift', true) }, ctx);
    return;
  }
  await composeDeploy(
    {
      ...app,
      credentials: registryCredentials(inputs, ctx),
      waitTimeoutSeconds: inputs.int('waitTimeoutSeconds', { default: 300, min: 1, max: 3600 }),
      registryTimeoutSeconds: inputs.int('registryTimeoutSeconds', { default: 120, min: 1, max: 3600 }),
      rollbackOnFailure: inputs.bool('rollbackOnFailure', true),
      bakeSeconds: inputs.int('bakeSeconds', { default: 0, min: 0, max: MAX_BAKE_SECONDS }),
      smokeTestUrl: inputs.string('smokeTestUrl'),
      notify: readNotifyInputs(inputs, ctx),
      removeOrphans: inputs.bool('removeOrphans', true),
      diffOnly: inputs.bool('diffOnly', false),
      deployIfUnchanged: inputs.bool('deployIfUnchanged', true),
      keepReleases: inputs.int('keepReleases', { default: DEFAULT_KEEP_RELEASES, min: 1, max: MAX_KEEP_RELEASES }),
      rollbackTo: inputs.string('rollbackTo'),
      publishRenderedFile: inputs.bool('publishRenderedFile', true),
      artifactName: inputs.string('renderedArtifactName'),
      dockerComposePath: inputs.string('dockerComposePath'),
      buildNumber: ctx.variable('Build.BuildNumber'),
    },
    ctx,
  );
});
