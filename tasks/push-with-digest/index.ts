import * as fs from 'node:fs';
import * as path from 'node:path';
import { defaultBuildRecordPath } from '../lib/build/record';
import { pipelineInfo } from '../lib/context';
import { engineFromEnvironment } from '../lib/docker/engine';
import { runTask } from '../lib/pipeline';
import { registryCredentials } from '../lib/pipeline/connections';
import { pushWithDigest } from '../lib/push';
import { RegistryClient } from '../lib/registry/client';

runTask('PushWithDigest', async (inputs, ctx) => {
  const credentials = registryCredentials(inputs, ctx);
  const namedRecord = inputs.path('buildRecord');
  const recordPath = namedRecord ?? defaultBuildRecordPath(ctx.tempDir);
  const registryTimeoutSeconds = inputs.int('registryTimeoutSeconds', { default: 120, min: 1, max: 3600 });
  const client = new RegistryClient({ credentials, log: ctx, setSecret: (s) => ctx.setSecret(s), signal: ctx.signal, timeoutSeconds: registryTimeoutSeconds });
  try {
    await pushWithDigest(
      {
        engine: engineFromEnvironment({ stallSeconds: inputs.int('engineStallSeconds', { default: 300, min: 1, max: 86_400 }) }),
        client,
        credentials,
        buildRecordPath: namedRecord || fs.existsSync(recordPath) ? recordPath : undefined,
        images: inputs.list('images'),
        additionalTags: inputs.list('additionalTags'),
        composeFile: inputs.path('composeFile', { mustExist: true }),
        allowedPaths: inputs.list('allowedPaths'),
        lockFile: inputs.path('lockFile') ?? path.join(ctx.variable('Build.ArtifactStagingDirectory') ?? ctx.tempDir, 'image-lock.json'),
        publishArtifact: inputs.bool('publishArtifact', true),
        artifactName: inputs.string('artifactName', { default: 'image-lock' }) as string,
        pipeline: pipelineInfo(ctx),
        registryTimeoutSeconds,
      },
      ctx,
    );
  } finally {
    client.close();
  }
});
