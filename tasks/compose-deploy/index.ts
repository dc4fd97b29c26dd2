import { composeDeploy } from '../lib/compose-deploy';
import { composeVerify } from '../lib/compose-deploy/drift';
import { MAX_KEEP_RELEASES } from '../lib/compose-deploy/store';
import { runTask } from '../lib/pipeline';
import { readEngineStallSeconds, readRegistryTimeoutSeconds } from '../lib/pipeline/limit-inputs';
import { registryCredentials } from '../lib/pipeline/connections';
import { readLockInput } from '../lib/pipeline/lock-input';
import { readNotifyInputs } from '../lib/pipeline/notify-input';
import { MAX_BAKE_SECONDS } from '../lib/release/bake';
import { MAX_RESTARTS_LIMIT } from '../lib/release/drift';
import task from './task.json';

runTask(task, async (inputs, ctx) => {
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
    },
    engineStallSeconds: readEngineStallSeconds(inputs),
    allowUnpinned: inputs.bool('allowUnpinned'),
  };
  if (mode === 'verify') {
    await composeVerify({ ...app, maxRestarts: inputs.int('maxRestarts', { min: 0, max: MAX_RESTARTS_LIMIT }), failOnDrift: inputs.bool('failOnDrift') }, ctx);
    return;
  }
  await composeDeploy(
    {
      ...app,
      credentials: registryCredentials(inputs, ctx),
      waitTimeoutSeconds: inputs.int('waitTimeoutSeconds', { min: 1, max: 3600 }),
      registryTimeoutSeconds: readRegistryTimeoutSeconds(inputs),
      rollbackOnFailure: inputs.bool('rollbackOnFailure'),
      bakeSeconds: inputs.int('bakeSeconds', { min: 0, max: MAX_BAKE_SECONDS }),
      smokeTestUrl: inputs.string('smokeTestUrl'),
      notify: readNotifyInputs(inputs, ctx),
      removeOrphans: inputs.bool('removeOrphans'),
      diffOnly: inputs.bool('diffOnly'),
      deployIfUnchanged: inputs.bool('deployIfUnchanged'),
      keepReleases: inputs.int('keepReleases', { min: 1, max: MAX_KEEP_RELEASES }),
      rollbackTo: inputs.string('rollbackTo'),
      publishRenderedFile: inputs.bool('publishRenderedFile'),
      artifactName: inputs.string('renderedArtifactName'),
      dockerComposePath: inputs.string('dockerComposePath'),
      buildNumber: ctx.variable('Build.BuildNumber'),
    },
    ctx,
  );
});
