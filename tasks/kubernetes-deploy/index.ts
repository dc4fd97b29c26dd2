import * as fs from 'node:fs';
import * as path from 'node:path';
import { createCredentialSource, dockerServerAddress, normalizeRegistryHost } from '../lib/auth';
import { createPipelineOidcTokenGetter } from '../lib/auth/acr';
import { InputError } from '../lib/errors';
import { aksKubeconfig } from '../lib/kube/aks';
import { DeploymentFailedError, KubernetesDeployResult, PullSecretSpec, kubernetesDeploy } from '../lib/kube';
import { ResolvedKubeconfig, kubeconfigFromEndpoint } from '../lib/kube/kubeconfig';
import { readLock } from '../lib/lock/file';
import { lockFromBuild } from '../lib/lock/from-build';
import type { ImageLock } from '../lib/lock/types';
import { runTask } from '../lib/pipeline';

function pick<T extends string>(value: string | undefined, name: string, options: readonly T[]): T {
  const v = (value ?? options[0]) as T;
  if (!options.includes(v)) throw new InputError(`Input '${name}' must be one of ${options.join(', ')}, not '${value}'.`);
  return v;
}

runTask('KubernetesDeploy', async (inputs, ctx) => {
  const setSecret = (s: string) => ctx.setSecret(s);

  // The cluster: checked first, so a missing or broken connection fails before anything is read.
  const connectionType = pick(inputs.string('connectionType'), 'connectionType', ['kubernetesServiceConnection', 'azureResourceManager'] as const);
  let kubeconfig: () => Promise<ResolvedKubeconfig>;
  let connectionInput: string;
  if (connectionType === 'azureResourceManager') {
    connectionInput = 'azureSubscription';
    const azure = inputs.endpoint('azureSubscription');
    if (!azure) throw new InputError("Input 'azureSubscription' is required when the connection type is Azure Resource Manager.");
    const resourceGroup = inputs.required('azureResourceGroup');
    const cluster = inputs.required('kubernetesCluster');
    const admin = inputs.bool('useClusterAdmin', false);
    kubeconfig = () =>
      aksKubeconfig({
        endpoint: azure,
        resourceGroup,
        cluster,
        admin,
        getOidcToken: createPipelineOidcTokenGetter({ requestUri: ctx.variable('System.OidcRequestUri'), accessToken: ctx.variable('System.AccessToken'), serviceConnectionId: azure.id, setSecret }),
        setSecret,
        log: ctx,
        signal: ctx.signal,
      });
  } else {
    connectionInput = 'kubernetesServiceConnection';
    const endpoint = inputs.endpoint('kubernetesServiceConnection');
    if (!endpoint) throw new InputError("Input 'kubernetesServiceConnection' is required: choose the Kubernetes service connection to deploy with.");
    const resolved = kubeconfigFromEndpoint(endpoint, setSecret);
    kubeconfig = async () => resolved;
  }
  const namespace = inputs.string('namespace', { default: 'default' }) as string;

  // What to deploy.
  const source = pick(inputs.string('source'), 'source', ['compose', 'manifests'] as const);
  const composeFiles = source === 'compose' ? inputs.list('composeFiles') : [];
  if (source === 'compose' && composeFiles.length === 0) throw new InputError("Input 'composeFiles' is required when source is 'compose'.");
  const manifests = source === 'manifests' ? inputs.list('manifests') : [];
  if (source === 'manifests' && manifests.length === 0) throw new InputError("Input 'manifests' is required when source is 'manifests': manifest files or globs, one per line.");
  const variables = inputs.keyValues('variables');

  const strategy = pick(inputs.string('strategy'), 'strategy', ['rolling', 'canary'] as const);
  const action = strategy === 'canary' ? pick(inputs.string('action'), 'action', ['deploy', 'promote', 'reject'] as const) : 'deploy';
  const canaryText = inputs.string('canaryPercentage', { default: '10' }) as string;
  const canaryPercentage = Number(canaryText);
  if (strategy === 'canary' && !(canaryPercentage > 0 && canaryPercentage <= 100)) throw new InputError(`Input 'canaryPercentage' must be a number above 0 and at most 100, not '${canaryText}'.`);

  // The image lock: a file on disk, else another run's artifact.
  const lockPath = inputs.path('lockFile');
  const pipeline = inputs.string('lockFromBuild');
  let lock: ImageLock | undefined;
  let lockInput = 'lockFile';
  if (lockPath && (fs.existsSync(lockPath) || !pipeline)) {
    if (!fs.existsSync(lockPath)) throw new InputError(`Input 'lockFile': '${lockPath}' does not exist. Download the image-lock artifact first, or set lockFromBuild.`);
    lock = readLock(lockPath);
  } else if (pipeline) {
    lockInput = 'lockFromBuild';
    const file = await lockFromBuild({
      collectionUri: ctx.variable('System.CollectionUri') ?? ctx.variable('System.TeamFoundationCollectionUri') ?? '',
      project: inputs.string('lockFromBuildProject') ?? ctx.variable('System.TeamProject') ?? '',
      pipeline,
      runId: inputs.string('lockFromBuildRun'),
      branch: inputs.string('lockFromBuildBranch'),
      artifactName: inputs.string('lockArtifactName', { default: 'image-lock' }) as string,
      accessToken: ctx.variable('System.AccessToken') ?? process.env.SYSTEM_ACCESSTOKEN ?? '',
      destDir: path.join(ctx.tempDir, 'outer-loop', 'kubernetes-lock'),
      setSecret,
      log: ctx,
    });
    lock = readLock(file);
  }

  // Pull secrets.
  let pullSecret: PullSecretSpec | undefined;
  const registryEndpoint = inputs.endpoint('createPullSecretFrom');
  if (registryEndpoint) {
    const credentials = createCredentialSource({ endpoint: registryEndpoint, setSecret, useDockerConfig: false });
    const registry = normalizeRegistryHost(registryEndpoint.auth.registry || registryEndpoint.data.registry || registryEndpoint.url || 'docker.io');
    pullSecret = {
      name: inputs.string('pullSecretName', { default: 'outer-loop-registry' }) as string,
      registry,
      server: dockerServerAddress(registry),
      input: 'createPullSecretFrom',
      getCredential: async () => {
        const c = await credentials(registry);
        return c && c.password ? { username: c.username, password: c.password } : undefined;
      },
    };
  }

  const publish = (result: KubernetesDeployResult) => {
    ctx.output('renderedManifests', result.renderedManifests);
    ctx.output('deployedDigests', JSON.stringify(result.deployedDigests));
    ctx.output('rolledBack', String(result.rolledBack));
  };
  try {
    const result = await kubernetesDeploy(
      {
        kubeconfig,
        connectionInput,
        namespace,
        createNamespace: inputs.bool('createNamespace', false),
        source,
        composeFiles,
        env: { ...process.env, ...variables },
        envFile: inputs.path('envFile', { mustExist: true }),
        manifests,
        baseDir: process.cwd(),
        lock,
        lockInput,
        allowUnpinned: inputs.bool('allowUnpinned', false),
        imagePullSecrets: inputs.list('imagePullSecrets'),
        pullSecret,
        strategy,
        canaryPercentage,
        action,
        rolloutTimeoutSeconds: inputs.int('rolloutTimeoutSeconds', { default: 600, min: 1, max: 21600 }),
        rollbackOnFailure: inputs.bool('rollbackOnFailure', true),
        fieldManager: inputs.string('fieldManager', { default: 'container-outer-loop' }) as string,
        forceConflicts: inputs.bool('forceConflicts', false),
        renderedManifests: path.join(ctx.variable('Build.ArtifactStagingDirectory') ?? ctx.tempDir, 'kubernetes-deploy', `${namespace}-manifests.yaml`),
        publishArtifact: inputs.bool('publishManifests', true),
        artifactName: inputs.string('manifestsArtifactName', { default: 'kubernetes-manifests' }) as string,
        logTailLines: inputs.int('logTailLines', { default: 20, min: 0, max: 500 }),
      },
      ctx,
    );
    publish(result);
  } catch (err) {
    if (err instanceof DeploymentFailedError) publish(err.result);
    else ctx.output('rolledBack', 'false');
    throw err;
  }
});
