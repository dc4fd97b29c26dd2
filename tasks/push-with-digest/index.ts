import * as fs from 'node:fs';
import * as path from 'node:path';
import { defaultBuildRecordPath } from '../lib/build/record';
import { pipelineInfo } from '../lib/context';
import { engineFromEnvironment } from '../lib/docker/engine';
import { runTask } from '../lib/pipeline';
import { readEngineStallSeconds, readRegistryTimeoutSeconds } from '../lib/pipeline/limit-inputs';
import { registryCredentials } from '../lib/pipeline/connections';
import { pushWithDigest } from '../lib/push';
import { RegistryClient } from '../lib/registry/client';
import task from './task.json';

runTask(task, async (inputs, ctx) => {
  const credentials = registryCredentials(inputs, ctx);
  const namedRecord = inputs.path('buildRecord');
  const recordPath = namedRecord ?? defaultBuildRecordPath(ctx.tempDir);
  const registryTimeoutSeconds = readRegistryTimeoutSeconds(inputs);
  const client = new RegistryClient({ credentials, log: ctx, setSecret: (s) => ctx.setSecret(s), signal: ctx.signal, timeoutSeconds: registryTimeoutSeconds });
  try {
    await pushWithDigest(
      {
        engine: engineFromEnvironment({ stallSeconds: readEngineStallSeconds(inputs) }),
        client,
        credentials,
        buildRecordPath: namedRecord || fs.existsSync(recordPath) ? recordPath : undefined,
        images: inputs.list('images'),
        additionalTags: inputs.list('additionalTags'),
        composeFile: inputs.path('composeFile', { mustExist: true }),
        allowedPaths: inputs.list('allowedPaths'),
        // task.json's default is in Build.ArtifactStagingDirectory; a run without that folder (local) writes to the temp folder.
        lockFile: inputs.path('lockFile') ?? path.join(ctx.tempDir, 'image-lock.json'),
        publishArtifact: inputs.bool('publishArtifact'),
        artifactName: inputs.required('artifactName'),
        pipeline: pipelineInfo(ctx),
        registryTimeoutSeconds,
      },
      ctx,
    );
  } finally {
    client.close();
  }
});
