// BuildAndTag's parallel compose builds on a real engine: three services at once, one failing.
// `quick` and `slow` start together; `fails` depends on `quick` and builds FROM its image, so it
// can only reach its `RUN exit 3` if it started after `quick` was built. Its failure must stop
// `slow` (which would otherwise sleep for an hour), name the service, and leave no build record.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import type Dockerode from 'dockerode';
import { buildAndTag } from '../../tasks/lib/build';
import { DockerError } from '../../tasks/lib/errors';
import { BASE_IMAGE, startEngineWithBaseImage } from '../support/base-image';
import { createTestContext } from '../support/context';
import type { TestEngine } from '../support/engine';
import { buildOptions, writeProject } from '../support/images';

let engine: TestEngine;
let docker: Dockerode;
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'col-parallel-'));
const run = Math.random().toString(36).slice(2, 8);
const image = (service: string) => `outer-loop-parallel/${service}:${run}`;

before(async () => {
  engine = await startEngineWithBaseImage();
  docker = engine.docker;
});

after(async () => {
  for (const service of ['quick', 'slow', 'fails']) await docker?.getImage(image(service)).remove({ force: true }).catch(() => undefined);
  fs.rmSync(work, { recursive: true, force: true });
  await engine?.stop();
});

const inspectId = (ref: string) => docker.getImage(ref).inspect().then((i) => i.Id, () => undefined);

test('three services built at once, one failing: the error names it, the others are stopped or finished, no build record', { timeout: 300_000 }, async () => {
  const dockerfiles: Record<string, string> = {
    quick: `FROM ${BASE_IMAGE}\nRUN echo quick-was-here > /quick.txt && echo "quick ${run} output"\n`,
    slow: `FROM ${BASE_IMAGE}\nRUN echo "slow ${run} output" && sleep 3600\n`,
    fails: `FROM ${image('quick')}\nRUN cat /quick.txt && echo "fails ${run} output" && exit 3\n`,
  };
  writeProject(work, '.', {
    ...Object.fromEntries(Object.entries(dockerfiles).map(([service, text]) => [`${service}/Dockerfile`, text])),
    'docker-compose.yml': ['services:', ...Object.keys(dockerfiles).map((s) => `  ${s}:\n    build: ${s}\n    image: ${image(s)}${s === 'fails' ? '\n    depends_on: [quick]' : ''}`), ''].join('\n'),
  });
  const compose = path.join(work, 'docker-compose.yml');
  const recordPath = path.join(work, 'build-record.json');
  const ctx = createTestContext();

  await assert.rejects(buildAndTag(buildOptions(docker, { composeFile: compose, maxParallel: 3, buildRecordPath: recordPath }), ctx), (err: unknown) => {
    assert.ok(err instanceof DockerError, String(err));
    assert.match(err.message, /^Building 'fails' failed: .*exit code: 3/, 'the RUN step of fails ran, so it was built FROM the image of quick');
    assert.match(err.message, /\('fails' failed; stopped 'slow'\.\)$/);
    return true;
  });

  assert.equal(fs.existsSync(recordPath), false, 'no build record when a build failed');
  assert.equal(ctx.outputs.buildRecord, undefined);
  assert.ok(await inspectId(image('quick')), 'quick was built and tagged');
  assert.equal(await inspectId(image('slow')), undefined, 'slow was stopped before its hour of sleep');
  assert.equal(await inspectId(image('fails')), undefined);

  // Each service's output sits in its own group: after its title, before the next group's.
  const groups = ctx.logs.map((line, i) => [line, i] as const).filter(([line]) => line.startsWith('GROUP '));
  assert.deepEqual(groups.map(([line]) => line.replace(/ \(.*/, '')).sort(), ['GROUP Build fails', 'GROUP Build quick', 'GROUP Build slow']);
  for (const service of Object.keys(dockerfiles)) {
    const start = groups.findIndex(([line]) => line.startsWith(`GROUP Build ${service} `));
    const end = groups[start + 1]?.[1] ?? ctx.logs.length;
    const own = ctx.logs.slice(groups[start][1], end);
    assert.ok(own.some((l) => l.includes(`${service} ${run} output`)), `the output of ${service}'s RUN step is in its group:\n${own.join('\n')}`);
    assert.ok(!own.some((l) => /(quick|slow|fails) \w+ output/.test(l) && !l.includes(`${service} ${run} output`)), `and nothing of another service's:\n${own.join('\n')}`);
  }
  assert.ok(ctx.logs.includes("Stopped: 'fails' failed."), "slow's group says why it stopped");
});
