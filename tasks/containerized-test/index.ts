import * as path from 'node:path';
import { defaultBuildRecordPath } from '../lib/build/record';
import { containerizedTest, RESULTS_FORMATS } from '../lib/containerized-test';
import { engineFromEnvironment } from '../lib/docker/engine';
import { runTask } from '../lib/pipeline';
import { readEngineStallSeconds } from '../lib/pipeline/limit-inputs';
import task from './task.json';

runTask(task, async (inputs, ctx) => {
  const namedRecord = inputs.path('buildRecord');
  const buildRecordPath = namedRecord ?? defaultBuildRecordPath(ctx.tempDir);
  await containerizedTest(
    {
      engine: engineFromEnvironment({ stallSeconds: readEngineStallSeconds(inputs) }),
      mode: inputs.choice('mode', ['container', 'compose'] as const),
      image: inputs.string('image'),
      service: inputs.string('service'),
      command: inputs.string('command'),
      composeFiles: inputs.list('composeFiles').map((f) => path.resolve(f)),
      allowedPaths: inputs.list('allowedPaths'),
      testService: inputs.string('testService'),
      testImage: inputs.string('testImage'),
      testCommand: inputs.string('testCommand'),
      waitForHealthy: inputs.bool('waitForHealthy'),
      startupTimeoutSeconds: inputs.int('startupTimeoutSeconds', { min: 1, max: 24 * 3600 }),
      dockerComposePath: inputs.string('dockerComposePath'),
      envVars: inputs.keyValues('envVars'),
      workingDirectory: inputs.string('workingDirectory'),
      user: inputs.string('user'),
      resultsPath: inputs.string('resultsPath'),
      resultsFolder: inputs.path('resultsFolder'),
      timeoutMinutes: inputs.int('timeoutMinutes', { min: 1, max: 1440 }),
      testResultsFormat: inputs.choice('testResultsFormat', RESULTS_FORMATS),
      publishTestResults: inputs.bool('publishTestResults'),
      testRunTitle: inputs.string('testRunTitle'),
      failOnTestFailure: inputs.bool('failOnTestFailure'),
      buildRecordPath,
      buildRecordRequired: namedRecord !== undefined,
    },
    ctx,
  );
});
