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
  const client = new RegistryClient({ credentials, log: ctx, setSecret: (s) => ctx.setSecret(s), signal: ctx.signal });
  try {
    await pushWithDigest(
      {
        engine: engineFromEnvironment(),
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
      },
      ctx,
    );
  } finally {
    client.close();
  }
});
