import * as fs from 'node:fs';
import * as path from 'node:path';
import { createCredentialSource } from '../lib/auth';
import { createPipelineOidcTokenGetter } from '../lib/auth/acr';
import { defaultBuildRecordPath } from '../lib/build/record';
import { pipelineInfo } from '../lib/context';
import { engineFromEnvironment } from '../lib/docker/engine';
import { InputError } from '../lib/errors';
import { runTask } from '../lib/pipeline';
import { pushWithDigest } from '../lib/push';
import { RegistryClient } from '../lib/registry/client';

runTask('PushWithDigest', async (inputs, ctx) => {
  const useAcr = inputs.string('containerRegistryType', { default: 'dockerRegistry' }) === 'azureContainerRegistry';
  const setSecret = (s: string) => ctx.setSecret(s);
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
  const recordPath = inputs.path('buildRecord') ?? defaultBuildRecordPath(ctx.tempDir);
  const pipeline = pipelineInfo(ctx);
  const client = new RegistryClient({ credentials, log: ctx, setSecret, signal: ctx.signal });
  try {
    await pushWithDigest(
      {
        engine: engineFromEnvironment(),
        client,
        credentials,
        buildRecordPath: fs.existsSync(recordPath) || inputs.path('buildRecord') ? recordPath : undefined,
        images: inputs.list('images'),
        additionalTags: inputs.list('additionalTags'),
        composeFile: inputs.path('composeFile', { mustExist: true }),
        lockFile: inputs.path('lockFile') ?? path.join(ctx.variable('Build.ArtifactStagingDirectory') ?? ctx.tempDir, 'image-lock.json'),
        publishArtifact: inputs.bool('publishArtifact', true),
        artifactName: inputs.string('artifactName', { default: 'image-lock' }) as string,
        pipeline: { ...pipeline, runId: pipeline.buildId },
      },
      ctx,
    );
  } finally {
    client.close();
  }
});
