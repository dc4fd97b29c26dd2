import { createCredentialSource } from '../lib/auth';
import { MAX_ROLLOUT_TIMEOUT_SECONDS, kubernetesDeploy, pullSecretFrom } from '../lib/kube';
import { runTask } from '../lib/pipeline';
import { kubernetesConnection } from '../lib/pipeline/cluster-connection';
import { readLockInput } from '../lib/pipeline/lock-input';
import { kubernetesVerify } from '../lib/kube/drift';
import { readNotifyInputs } from '../lib/pipeline/notify-input';
import { MAX_BAKE_SECONDS } from '../lib/release/bake';
import { MAX_RESTARTS_LIMIT } from '../lib/release/drift';
import task from './task.json';

runTask(task, async (inputs, ctx) => {
  const mode = inputs.choice('mode', ['deploy', 'verify'] as const);
  // The cluster first, so that a missing or broken connection fails before anything is read; none to render only.
  const renderOnly = inputs.bool('renderOnly');
  const kubeconfig = renderOnly ? undefined : kubernetesConnection(inputs, ctx);
  const source = inputs.choice('source', ['compose', 'manifests'] as const);
  const strategy = inputs.choice('strategy', ['rolling', 'canary'] as const);
  const { lock, input: lockInput, source: lockName, digest: lockDigest } = await readLockInput(inputs, ctx);
  const registry = inputs.endpoint('createPullSecretFrom');
  const options = {
    kubeconfig,
    renderOnly,
    namespace: inputs.required('namespace'),
    createNamespace: inputs.bool('createNamespace'),
    source,
    composeFiles: source === 'compose' ? inputs.list('composeFiles') : [],
    env: { ...process.env, ...inputs.keyValues('variables') },
    envFile: inputs.path('envFile', { mustExist: true }),
    allowedPaths: inputs.list('allowedPaths'),
    manifests: source === 'manifests' ? inputs.list('manifests') : [],
    baseDir: process.cwd(),
    lock,
    lockInput,
    lockDigest,
    allowUnpinned: inputs.bool('allowUnpinned'),
    imagePullSecrets: inputs.list('imagePullSecrets'),
    pullSecret: registry && pullSecretFrom(registry, inputs.required('pullSecretName'), (s) => ctx.setSecret(s)),
    strategy,
    canaryPercentage: inputs.number('canaryPercentage'),
    action: strategy === 'canary' ? inputs.choice('action', ['deploy', 'promote', 'reject'] as const) : 'deploy',
    rolloutTimeoutSeconds: inputs.int('rolloutTimeoutSeconds', { min: 1, max: MAX_ROLLOUT_TIMEOUT_SECONDS }),
    rollbackOnFailure: inputs.bool('rollbackOnFailure'),
    diffOnly: inputs.bool('diffOnly'),
    deployIfUnchanged: inputs.bool('deployIfUnchanged'),
    bakeSeconds: inputs.int('bakeSeconds', { min: 0, max: MAX_BAKE_SECONDS }),
    smokeTestUrl: inputs.string('smokeTestUrl'),
    notify: renderOnly ? undefined : readNotifyInputs(inputs, ctx),
    registryCredentials: renderOnly ? undefined : createCredentialSource({ endpoint: registry, setSecret: (s) => ctx.setSecret(s) }),
    fieldManager: inputs.required('fieldManager'),
    forceConflicts: inputs.bool('forceConflicts'),
    publishArtifact: inputs.bool('publishManifests'),
    artifactName: inputs.required('manifestsArtifactName'),
    logTailLines: inputs.int('logTailLines', { min: 0, max: 500 }),
  };
  if (mode === 'verify') {
    await kubernetesVerify({ ...options, lockName, maxRestarts: inputs.int('maxRestarts', { min: 0, max: MAX_RESTARTS_LIMIT }), failOnDrift: inputs.bool('failOnDrift') }, ctx);
    return;
  }
  await kubernetesDeploy(options, ctx);
});
