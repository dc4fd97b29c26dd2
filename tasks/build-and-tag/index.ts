import { buildAndTag } from '../lib/build';
import { defaultBuildRecordPath } from '../lib/build/record';
import { pipelineInfo } from '../lib/context';
import { engineFromEnvironment } from '../lib/docker/engine';
import { runTask } from '../lib/pipeline';
import { readEngineStallSeconds } from '../lib/pipeline/limit-inputs';
import { sshEndpointKey } from '../lib/pipeline/connections';
import task from './task.json';

runTask(task, async (inputs, ctx) => {
  await buildAndTag(
    {
      engine: engineFromEnvironment({ stallSeconds: readEngineStallSeconds(inputs) }),
      dockerfile: inputs.path('dockerfile', { required: true }) as string,
      buildContext: inputs.path('buildContext', { required: true }) as string,
      composeFile: inputs.path('composeFile', { mustExist: true }),
      allowedPaths: inputs.list('allowedPaths'),
      services: inputs.list('services'),
      imageName: inputs.string('imageName'),
      tags: inputs.list('tags'),
      buildArgs: inputs.keyValues('buildArgs'),
      target: inputs.string('target'),
      labels: inputs.keyValues('labels'),
      platform: inputs.string('platform'),
      pull: inputs.bool('pull'),
      noCache: inputs.bool('noCache'),
      cacheFrom: inputs.lines('cacheFrom'),
      cacheTo: inputs.lines('cacheTo'),
      secrets: inputs.lines('secrets'),
      ssh: inputs.list('ssh'),
      sshKey: sshEndpointKey(inputs, 'sshEndpoint', ctx),
      maxParallel: inputs.number('maxParallel'),
      reproducible: inputs.bool('reproducible'),
      addPipelineLabels: inputs.bool('addPipelineLabels'),
      buildRecordPath: inputs.path('buildRecord') ?? defaultBuildRecordPath(ctx.tempDir),
      pipeline: pipelineInfo(ctx),
      sourcesDirectory: ctx.variable('Build.SourcesDirectory'),
    },
    ctx,
  );
});
