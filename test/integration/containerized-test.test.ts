// ContainerizedTest against a real engine and the real Compose CLI (docker-compose v1 here; the v2
// command form through a `docker compose` stand-in that forwards to it). The fixture app
// (test/fixtures/containerized) is built with BuildAndTag's library first; then web's tag is moved
// to another image, so a run that passes proves the stack ran the built image id, not the tag.
// After every run: no container, network or volume with the run's label (or project) remains.
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type Dockerode from 'dockerode';
import { buildAndTag } from '../../tasks/lib/build';
import { BuildRecord, readBuildRecord } from '../../tasks/lib/build/record';
import { ADDED_RUNNER } from '../../tasks/lib/containerized-test/stack';
import { ContainerizedTestOptions, StackError, TestsFailedError, TimeoutError, containerizedTest, projectNameFor } from '../../tasks/lib/containerized-test';
import { followContainer, startTestContainer } from '../../tasks/lib/containerized-test/container';
import { EXPIRES_LABEL, RUN_LABEL, leftovers, runLabels, sweepByLabel, sweepExpiredRuns } from '../../tasks/lib/containerized-test/teardown';
import { InputError } from '../../tasks/lib/errors';
import { DIST_TASKS, runBundledTask } from '../support/agent';
import { BASE_IMAGE, startEngineWithBaseImage } from '../support/base-image';
import { createTestContext } from '../support/context';
import { stackFromEnv } from '../support/stack';
import type { TestEngine } from '../support/engine';
import { buildOptions } from '../support/images';

const FIXTURE = path.join(__dirname, '..', 'fixtures', 'containerized');
const COMPOSE = path.join(FIXTURE, 'docker-compose.yml');
const WEB_TAG = 'outer-loop/containerized-web:dev';
const RUNNER_TAG = 'outer-loop/containerized-runner:dev';

let engine: TestEngine;
let docker: Dockerode;
let work: string;
let recordPath: string;
let record: BuildRecord;
let env: NodeJS.ProcessEnv;
let runCounter = 0;

before(async () => {
  engine = await startEngineWithBaseImage();
  docker = engine.docker;
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'col-ct-'));
  env = { ...process.env, DOCKER_HOST: engine.dockerHost };
  recordPath = path.join(work, 'build-record.json');
  await buildAndTag(
    buildOptions(docker, { composeFile: COMPOSE, tags: ['dev'], addPipelineLabels: true, buildRecordPath: recordPath, pipeline: { buildNumber: '20261122.1', buildId: '42' }, env }),
    createTestContext(),
  );
  record = readBuildRecord(recordPath);
  assert.deepEqual(record.images.map((i) => i.name).sort(), ['tests', 'web']);
  // Move web's tag away from the built image: only a run pinned to the image id can pass.
  await docker.getImage(BASE_IMAGE).tag({ repo: 'outer-loop/containerized-web', tag: 'dev' });
  assert.notEqual((await docker.getImage(WEB_TAG).inspect()).Id, builtId('web'));
});

after(async () => {
  if (work) fs.rmSync(work, { recursive: true, force: true });
  await engine?.stop();
});

function builtId(name: string): string {
  return record.images.find((i) => i.name === name)!.imageId;
}

function uniqueRunId(): string {
  return `it${process.pid}-${++runCounter}-${Math.random().toString(36).slice(2, 6)}`;
}

function options(over: Partial<ContainerizedTestOptions>): ContainerizedTestOptions {
  return {
    engine: async () => docker,
    mode: 'compose',
    composeFiles: [COMPOSE],
    testService: 'tests',
    waitForHealthy: true,
    startupTimeoutSeconds: 60,
    envVars: {},
    resultsPath: '/results',
    timeoutMinutes: 5,
    testResultsFormat: 'JUnit',
    publishTestResults: true,
    failOnTestFailure: true,
    buildRecordPath: recordPath,
    buildRecordRequired: true,
    env,
    runId: uniqueRunId(),
    ...over,
  };
}

/** Nothing with the run's label, and nothing of its compose project, is left on the engine. */
async function assertNothingLeft(runId: string): Promise<void> {
  assert.deepEqual(await leftovers(docker, runId), { containers: 0, networks: 0, volumes: 0 }, `run ${runId} left something behind`);
  const project = { label: [`com.docker.compose.project=${projectNameFor(runId)}`] };
  const [c, n, v] = await Promise.all([docker.listContainers({ all: true, filters: project }), docker.listNetworks({ filters: project }), docker.listVolumes({ filters: project })]);
  assert.deepEqual([c.length, n.length, (v.Volumes ?? []).length], [0, 0, 0], `project ${projectNameFor(runId)} left something behind`);
}

/** How `work` settled, or a failure when it has not within `ms` (a hang fails the test instead of stalling it). */
async function settlesWithin<T>(work: Promise<T>, ms: number, what: string): Promise<PromiseSettledResult<T>> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} did not end within ${ms / 1000} s`)), ms)));
  try {
    return await Promise.race([Promise.allSettled([work]).then(([r]) => r), hung]);
  } finally {
    clearTimeout(timer);
  }
}

function runIdIn(output: string): string {
  const m = /ContainerizedTest run (\S+) \(/.exec(output);
  assert.ok(m, `the task prints its run id\n${output}`);
  return m[1];
}

/**
 * The logging commands the agent would obey in `output`: per line, the first `##vso[` wherever it
 * is (the agent searches the whole line), or `##[` at the start of the trimmed line. task-lib's
 * own debug lines echo input values, so a `##vso[` inside a `##vso[task.debug]` line is data.
 */
function agentCommands(output: string): string[] {
  const commands: string[] = [];
  for (const line of output.split(/\r?\n/)) {
    const at = line.indexOf('##vso[');
    if (at >= 0) commands.push(line.slice(at));
    else if (line.trimStart().startsWith('##[')) commands.push(line.trimStart());
  }
  return commands;
}

/** The variables the agent would set: `##vso[task.setvariable variable=NAME…]` commands. */
function agentVariables(output: string): string[] {
  return agentCommands(output)
    .map((c) => /^##vso\[task\.setvariable variable=([^;\]]+)/.exec(c)?.[1])
    .filter((v): v is string => v !== undefined);
}

describe('compose mode', () => {
  test('passing run, bundled as the agent runs it: built ids used, results published, outputs set, ##vso lines neutralised, nothing left', async () => {
    const resultsFolder = path.join(work, 'results-pass');
    const run = await runBundledTask('containerized-test', {
      inputs: { mode: 'compose', composeFiles: COMPOSE, testService: 'tests', resultsPath: '/results', resultsFolder, buildRecord: recordPath, testRunTitle: 'Integration (compose)' },
      env: { DOCKER_HOST: engine.dockerHost },
      timeoutMs: 120_000,
    });
    assert.equal(run.result, 'Succeeded', run.visible);
    assert.equal(run.code, 0);
    assert.match(run.output, new RegExp(`Service web runs the built image ${builtId('web')}`));
    assert.match(run.visible, /PASS home_page_greets/, 'the runner reached web over the compose network');
    const publish = run.output.split('\n').filter((l) => l.startsWith('##vso[results.publish '));
    assert.equal(publish.length, 1, run.output);
    assert.match(publish[0], /type=JUnit;/);
    assert.match(publish[0], /runTitle=Integration \(compose\)/);
    assert.ok(publish[0].includes(`resultFiles=${path.join(resultsFolder, 'junit.xml')}`), publish[0]);
    assert.deepEqual(
      { exitCode: run.variables.exitCode, passed: run.variables.testsPassed, failed: run.variables.testsFailed, skipped: run.variables.testsSkipped, folder: run.variables.resultsFolder },
      { exitCode: '0', passed: '3', failed: '0', skipped: '1', folder: resultsFolder },
    );
    assert.match(fs.readFileSync(path.join(resultsFolder, 'junit.xml'), 'utf8'), /<testcase classname="web" name="home_page_greets"/);
    assert.match(run.visible, /Tests: 3 passed, 0 failed, 1 skipped/);
    // The runner printed ##vso[task.setvariable], ##vso[task.complete] and ##[error]: shown, not obeyed.
    assert.equal(run.variables.INJECTED, undefined, 'a container set a pipeline variable');
    assert.ok(run.output.includes('#\u200b#vso[task.setvariable variable=INJECTED]from-the-runner'), 'the line is shown, neutralised');
    assert.ok(!agentCommands(run.output).some((l) => /INJECTED|the runner says so|not an error of the task/.test(l)), agentCommands(run.output).join('\n'));
    assert.ok(!agentVariables(run.output).includes('INJECTED'));
    assert.equal(agentCommands(run.output).filter((l) => l.startsWith('##vso[task.complete')).length, 1, 'only the task completes the task');
    await assertNothingLeft(runIdIn(run.output));
  });

  test('failing run: the task fails with the counts, results are still published, every service log is printed', async () => {
    const ctx = createTestContext();
    const o = options({ envVars: { TEST_MODE: 'fail' } });
    await assert.rejects(containerizedTest(o, ctx), (e: Error) => e instanceof TestsFailedError && /exited with code 1 and 1 test\(s\) failed/.test(e.message) && /3 passed, 1 failed, 1 skipped/.test(e.message));
    assert.deepEqual(ctx.outputs, { exitCode: '1', testsPassed: '3', testsFailed: '1', testsSkipped: '1', resultsFolder: ctx.outputs.resultsFolder });
    assert.equal(ctx.testResults.length, 1, 'failed results are published too');
    assert.ok(ctx.logs.includes('FAIL home_page_has_pricing'));
    const startGroup = /^GROUP Start the stack \((.+) up, project /.exec(ctx.logs.find((l) => l.startsWith('GROUP Start the stack')) ?? '');
    assert.equal(startGroup?.[1], stackFromEnv() === 'current' ? 'docker compose' : 'docker-compose', 'the stack\'s Compose was found, as on an agent');
    const group = ctx.logs.indexOf(ctx.logs.find((l) => l.startsWith('GROUP Log of service web'))!);
    assert.ok(group >= 0, ctx.logs.join('\n'));
    assert.ok(ctx.logs.slice(group).some((l) => /url:\/health/.test(l)), 'web\'s own log (httpd requests) is printed');
    const runFolder = path.join(ctx.tempDir, 'outer-loop', 'containerized-test', projectNameFor(o.runId!));
    assert.ok(ctx.logs.some((l) => l.startsWith('GROUP Tear down')) && !fs.existsSync(runFolder), 'the per-run override is removed');
    await assertNothingLeft(o.runId!);
  });

  test('a service that turns unhealthy fails the run at once, with its log, before startupTimeoutSeconds', async () => {
    const ctx = createTestContext();
    const o = options({ composeFiles: [COMPOSE, path.join(FIXTURE, 'unhealthy.yml')], startupTimeoutSeconds: 90 });
    const started = Date.now();
    await assert.rejects(containerizedTest(o, ctx), (e: Error) => e instanceof StackError && /Service 'web' is unhealthy/.test(e.message));
    assert.ok(Date.now() - started < 60_000, 'failed fast, not at the start-up timeout');
    assert.ok(ctx.logs.some((l) => l.includes('url:/missing')), 'the unhealthy service\'s log is printed');
    assert.ok(!ctx.logs.some((l) => l.startsWith('Test runner')), 'the tests never started');
    await assertNothingLeft(o.runId!);
  });

  test('a stack that never becomes healthy stops at startupTimeoutSeconds, naming the input and the service', async () => {
    const ctx = createTestContext();
    const o = options({ composeFiles: [COMPOSE, path.join(FIXTURE, 'slow-start.yml')], startupTimeoutSeconds: 6 });
    await assert.rejects(containerizedTest(o, ctx), (e: Error) => e instanceof TimeoutError && /startupTimeoutSeconds \(6 s\): web \(running, health: starting\)/.test(e.message));
    assert.ok(ctx.logs.some((l) => l.startsWith('GROUP Log of service web')));
    await assertNothingLeft(o.runId!);
  });

  test('a service that exits while the stack starts fails fast with its log', async () => {
    const ctx = createTestContext();
    const o = options({ composeFiles: [COMPOSE, path.join(FIXTURE, 'crash.yml')] });
    await assert.rejects(containerizedTest(o, ctx), (e: Error) => e instanceof StackError && /Service 'worker' exited with code 3/.test(e.message));
    assert.ok(ctx.logs.includes('worker: cannot reach the queue'));
    await assertNothingLeft(o.runId!);
  });

  test('SIGTERM mid-test (the agent cancels the job): the task tears everything down and ends', async () => {
    const temp = fs.mkdtempSync(path.join(work, 'agent-'));
    const child = spawn(process.execPath, [path.join(DIST_TASKS, 'containerized-test', 'index.js')], {
      cwd: temp,
      env: {
        PATH: process.env.PATH,
        HOME: temp,
        AGENT_TEMPDIRECTORY: temp,
        BUILD_BUILDID: '42',
        DOCKER_HOST: engine.dockerHost,
        INPUT_MODE: 'compose',
        INPUT_COMPOSEFILES: COMPOSE,
        INPUT_TESTSERVICE: 'tests',
        INPUT_ENVVARS: 'TEST_MODE=slow',
        INPUT_RESULTSPATH: '/results',
        INPUT_BUILDRECORD: recordPath,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    let signalled = false;
    const started = new Promise<void>((resolve) => {
      const onData = (c: Buffer) => {
        output += c.toString();
        if (!signalled && output.includes('RUNNER-STARTED')) {
          signalled = true;
          resolve();
        }
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', onData);
    });
    const killer = setTimeout(() => child.kill('SIGKILL'), 90_000);
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    await Promise.race([started, exited]);
    assert.ok(signalled, `the runner never started:\n${output}`);
    const runId = runIdIn(output);
    // The stack and the runner are up: something to tear down.
    assert.ok((await leftovers(docker, runId)).containers >= 2);
    child.kill('SIGTERM');
    const code = await exited;
    clearTimeout(killer);
    assert.notEqual(code, null, 'the task ended by itself after SIGTERM');
    assert.match(output, /received SIGTERM; cleaning up/);
    assert.match(output, /Teardown done/);
    assert.match(output, /##vso\[task\.complete result=Cancelled;\]/);
    assert.doesNotMatch(output, /##vso\[task\.complete result=Succeeded/);
    await assertNothingLeft(runId);
  });

  test('a cancel during teardown (compose down waiting for a container that ignores its stop signal) ends the task within 10 s; nothing is left', async () => {
    const ctx = createTestContext();
    // web ignores SIGTERM and down would wait stopTimeoutSeconds (60 s) for it.
    const o = options({ composeFiles: [COMPOSE, path.join(FIXTURE, 'slow-stop.yml')], stopTimeoutSeconds: 60 });
    let cancelledAt = 0;
    const group = ctx.group;
    ctx.group = async (title, fn) => {
      if (title.startsWith('Tear down')) {
        // Once `down` is stopping web: the agent cancels the job.
        setTimeout(() => {
          cancelledAt = Date.now();
          ctx.abort('ContainerizedTest was cancelled (SIGTERM).');
        }, 1_500);
      }
      return group(title, fn);
    };
    const settled = await settlesWithin(containerizedTest(o, ctx), 120_000, 'the cancelled teardown');
    assert.ok(cancelledAt > 0, `the teardown ended before the cancel came:\n${ctx.logs.join('\n')}`);
    assert.ok(Date.now() - cancelledAt < 10_000, `the task ended ${(Date.now() - cancelledAt) / 1000} s after the cancel:\n${ctx.logs.join('\n')}`);
    if (settled.status === 'rejected') assert.match(String((settled.reason as Error).message), /cancelled/i);
    assert.ok(ctx.logs.some((l) => /Teardown done/.test(l)), ctx.logs.join('\n'));
    await assertNothingLeft(o.runId!);
  });

  test('testImage + testCommand through the `docker compose` (v2) command form', async () => {
    // A stand-in docker CLI whose compose plugin forwards to docker-compose, so the arguments of the v2
    // command form are recorded (the current stack's pass runs the real v2 in every other test).
    const bin = fs.mkdtempSync(path.join(work, 'bin-'));
    const log = path.join(bin, 'calls.log');
    fs.writeFileSync(
      path.join(bin, 'docker'),
      `#!/bin/sh\necho "$*" >> '${log}'\nif [ "$1" = compose ]; then shift; if [ "$1" = version ]; then echo 2.29.7; exit 0; fi; exec docker-compose "$@"; fi\nexit 1\n`,
      { mode: 0o755 },
    );
    const ctx = createTestContext();
    const o = options({
      testService: undefined,
      testImage: RUNNER_TAG,
      testCommand: '["sh", "/runner/integration-tests.sh"]',
      envVars: { TARGET: 'http://web:8080', RESULTS_DIR: '/tmp/out' },
      resultsPath: '/tmp/out',
      env: { ...env, PATH: `${bin}:${process.env.PATH}` },
    });
    const result = await containerizedTest(o, ctx);
    assert.deepEqual([result.exitCode, result.passed, result.failed, result.skipped], [0, 3, 0, 1]);
    assert.ok(ctx.logs.some((l) => l.includes('docker compose 2.29.7')), ctx.logs.join('\n'));
    const calls = fs.readFileSync(log, 'utf8').split('\n');
    for (const sub of ['up -d --no-build web', `up --no-start --no-deps --no-build ${ADDED_RUNNER}`, 'down -v --remove-orphans']) assert.ok(calls.some((c) => c.startsWith('compose -p') && c.includes(sub)), `docker compose … ${sub}\n${calls.join('\n')}`);
    assert.ok(!calls.some((c) => c.includes(' tests')), 'the compose file\'s own runner service is not started');
    assert.ok(ctx.logs.some((l) => l.startsWith(`Test runner ${RUNNER_TAG} started`)), 'the added runner was started');
    await assertNothingLeft(o.runId!);
  });
});

describe('container mode', () => {
  test('passing command in the built image: envVars, workingDirectory and user honoured, results copied out, container removed', async () => {
    const ctx = createTestContext();
    const resultsFolder = path.join(work, 'unit-pass');
    const o = options({
      mode: 'container',
      service: 'tests',
      command: '/runner/unit-tests.sh',
      envVars: { RESULTS_DIR: '/tmp/unit-results' },
      workingDirectory: '/tmp',
      user: '65534',
      resultsPath: '/tmp/unit-results',
      resultsFolder,
    });
    const result = await containerizedTest(o, ctx);
    assert.deepEqual([result.exitCode, result.passed, result.failed, result.skipped], [0, 2, 0, 0]);
    assert.ok(ctx.logs.includes(`Testing image ${builtId('tests')} (from build record (tests)).`), ctx.logs.join('\n'));
    assert.ok(ctx.logs.includes('unit: running as uid 65534 in /tmp'));
    assert.deepEqual(result.resultFiles, [path.join(resultsFolder, 'unit', 'junit-unit.xml')]);
    assert.match(fs.readFileSync(result.resultFiles[0], 'utf8'), /name="greets"/);
    assert.deepEqual(ctx.testResults, [{ format: 'JUnit', files: result.resultFiles, title: undefined, mergeResults: true }]);
    await assertNothingLeft(o.runId!);
  });

  test('failing command: the task fails with the exit code and counts; results still copied and published', async () => {
    const ctx = createTestContext();
    const o = options({ mode: 'container', service: 'tests', command: '["sh", "/runner/unit-tests.sh"]', envVars: { UNIT_MODE: 'fail' }, resultsPath: '/results' });
    await assert.rejects(containerizedTest(o, ctx), (e: Error) => e instanceof TestsFailedError && /exited with code 2 and 1 test\(s\) failed/.test(e.message));
    assert.deepEqual([ctx.outputs.exitCode, ctx.outputs.testsPassed, ctx.outputs.testsFailed], ['2', '2', '1']);
    assert.ok(fs.existsSync(path.join(ctx.outputs.resultsFolder, 'unit', 'junit-unit.xml')));
    assert.equal(ctx.testResults.length, 1);
    await assertNothingLeft(o.runId!);
  });

  test('bundled: ##vso lines from the container are neutralised; failOnTestFailure=false reports the exit code and succeeds', async () => {
    const run = await runBundledTask('containerized-test', {
      inputs: {
        image: RUNNER_TAG,
        command: "echo '##vso[task.setvariable variable=INJECTED]x'; echo '##vso[task.complete result=Failed;]no'; echo '  ##[error]nor this'; exit 3",
        failOnTestFailure: 'false',
        buildRecord: recordPath,
      },
      env: { DOCKER_HOST: engine.dockerHost },
    });
    // (runBundledTask's own result parser would be fooled by task-lib's debug echo of the command input.)
    const complete = agentCommands(run.output).filter((c) => c.startsWith('##vso[task.complete'));
    assert.deepEqual(complete, ['##vso[task.complete result=Succeeded;]'], run.visible);
    assert.ok(run.output.includes('##vso[task.setvariable variable=exitCode;isOutput=true;issecret=false;]3'));
    // task-lib's debug lines echo the command input (as data of a task.debug command); the container's
    // own output must not produce a single command.
    const commands = agentCommands(run.output).filter((c) => !c.startsWith('##vso[task.debug]'));
    assert.ok(!commands.some((l) => /INJECTED|result=Failed;\]no|nor this/.test(l)), commands.join('\n'));
    assert.ok(!agentVariables(run.output).includes('INJECTED'));
    assert.ok(run.output.includes('#\u200b#vso[task.complete result=Failed;]no'), 'the container\'s line is shown, neutralised');
    assert.match(run.output, /##vso\[task\.issue type=warning;[^\]]*\]Tests failed \(the test command exited with code 3\); failOnTestFailure is false/);
    assert.match(run.output, new RegExp(`Testing image ${builtId('tests')}`), 'a tag the job built runs as the built id');
    await assertNothingLeft(runIdIn(run.output));
  });

  test('results folder empty or malformed XML: a warning, and the exit code still decides', async () => {
    const empty = createTestContext();
    const r1 = await containerizedTest(options({ mode: 'container', service: 'tests', command: 'mkdir -p /results', resultsPath: '/results' }), empty);
    assert.equal(r1.exitCode, 0);
    assert.ok(empty.logs.some((l) => l.startsWith('WARNING: No test results') && l.includes('empty')), empty.logs.join('\n'));
    assert.deepEqual(empty.testResults, []);

    const missing = createTestContext();
    await containerizedTest(options({ mode: 'container', service: 'tests', command: 'true', resultsPath: '/no/such/folder' }), missing);
    assert.ok(missing.logs.some((l) => l.startsWith('WARNING: No test results') && l.includes("'/no/such/folder' does not exist")));

    const malformed = createTestContext();
    const o = options({ mode: 'container', service: 'tests', command: 'mkdir -p /r && printf "<testsuite><testcase name=a>" > /r/junit.xml; exit 4', resultsPath: '/r' });
    await assert.rejects(containerizedTest(o, malformed), (e: Error) => e instanceof TestsFailedError && /exited with code 4/.test(e.message));
    assert.ok(malformed.logs.some((l) => l.startsWith('WARNING:') && l.includes('junit.xml') && l.includes('not well-formed')), malformed.logs.join('\n'));
    assert.equal(malformed.outputs.exitCode, '4');
    assert.deepEqual(malformed.testResults, [], 'a malformed file is not published');
    await assertNothingLeft(o.runId!);
  });
  test('a results folder over the size limit: a warning, the task finishes and tears down, nothing is left', async () => {
    const ctx = createTestContext();
    // A sparse 1100 MB file: over the 1024 MB limit at the first tar header.
    const o = options({ mode: 'container', service: 'tests', command: 'mkdir -p /results && echo "<testsuite/>" > /results/a.xml && busybox truncate -s 1100M /results/big.xml', resultsPath: '/results' });
    const settled = await settlesWithin(containerizedTest(o, ctx), 90_000, 'ContainerizedTest with an oversized results folder');
    assert.equal(settled.status, 'fulfilled', settled.status === 'rejected' ? String(settled.reason) : '');
    assert.ok(
      ctx.logs.some((l) => l.startsWith('WARNING: Could not copy the test results') && /larger than 1024 MB/.test(l)),
      ctx.logs.join('\n'),
    );
    assert.ok(ctx.logs.some((l) => /Teardown done/.test(l)));
    assert.equal(ctx.outputs.exitCode, '0');
    await assertNothingLeft(o.runId!);
  });
});

describe('bad input and bounds', () => {
  test('clear errors naming the input; inputs are checked before the engine is contacted, and nothing is left', async () => {
    let connected = 0;
    const engineSpy = async () => {
      connected++;
      return docker;
    };
    const cases: [Partial<ContainerizedTestOptions>, RegExp][] = [
      [{ composeFiles: [path.join(FIXTURE, 'missing.yml')] }, /Input 'composeFiles': '.*missing\.yml' does not exist/],
      [{ testService: 'e2e' }, /Input 'testService': service 'e2e' is not in .*docker-compose\.yml \(services: web, tests\)/],
      [{ mode: 'container', service: 'db' }, /Input 'service': 'db' is not in the build record/],
      [{ mode: 'container', buildRecordPath: path.join(work, 'none.json'), buildRecordRequired: true }, /Input 'buildRecord': '.*none\.json' does not exist/],
      [{ mode: 'container', buildRecordPath: path.join(work, 'none.json'), buildRecordRequired: false }, /Input 'image' is required/],
      [{ mode: 'container', service: 'tests', resultsPath: 'results' }, /Input 'resultsPath' must be an absolute path/],
      [{ mode: 'other' as 'container' }, /Input 'mode' must be 'container' or 'compose'/],
      [{ dockerComposePath: path.join(work, 'no-compose') }, /Input 'dockerComposePath': '.*no-compose' is not an executable file/],
    ];
    for (const [over, pattern] of cases) {
      await assert.rejects(containerizedTest(options({ ...over, engine: engineSpy }), createTestContext()), (e: Error) => e instanceof InputError && pattern.test(e.message), String(pattern));
    }
    assert.equal(connected, 0, 'the engine was contacted for bad input');
    const runId = uniqueRunId();
    await assert.rejects(containerizedTest(options({ mode: 'container', image: 'outer-loop/never-built:1', runId }), createTestContext()), /Input 'image': the image 'outer-loop\/never-built:1' is not on this Docker engine/);
    await assertNothingLeft(runId);
  });

  test('a test container that outlives its deadline is killed; the label sweep removes it', async () => {
    const runId = uniqueRunId();
    const id = await startTestContainer(docker, { name: `coltest-${runId}`, image: BASE_IMAGE, command: ['sleep', '60'], env: {}, labels: runLabels(runId, Date.now() + 60_000) });
    const ctx = createTestContext();
    await assert.rejects(
      followContainer(docker, id, { deadline: Date.now() + 1_000, signal: ctx.signal, log: ctx, timeoutMessage: () => 'timeoutMinutes ran out' }),
      (e: Error) => e instanceof TimeoutError && e.message === 'timeoutMinutes ran out',
    );
    assert.equal((await docker.getContainer(id).inspect()).State.Running, false, 'the container was stopped');
    assert.equal((await sweepByLabel(docker, `${RUN_LABEL}=${runId}`, ctx)).containers, 1);
    await assertNothingLeft(runId);
  });

  test('a later run sweeps what an abandoned (expired) run left behind, and never a live run', async () => {
    const dead = uniqueRunId();
    const live = uniqueRunId();
    const make = async (runId: string, expires: number) => {
      const labels = runLabels(runId, expires);
      await docker.createContainer({ name: `coltest-${runId}`, Image: BASE_IMAGE, Cmd: ['true'], Labels: labels });
      await docker.createNetwork({ Name: `coltest-${runId}`, Labels: labels });
      await docker.createVolume({ Name: `coltest-${runId}`, Labels: labels });
    };
    await make(dead, Date.now() - 1_000);
    await make(live, Date.now() + 3_600_000);
    const ctx = createTestContext();
    const swept = await sweepExpiredRuns(docker, ctx);
    assert.ok(swept.includes(dead) && !swept.includes(live), swept.join(', '));
    await assertNothingLeft(dead);
    assert.deepEqual(await leftovers(docker, live), { containers: 1, networks: 1, volumes: 1 });
    assert.equal((await docker.listContainers({ all: true, filters: { label: [`${EXPIRES_LABEL}`, `${RUN_LABEL}=${live}`] } })).length, 1);
    await sweepByLabel(docker, `${RUN_LABEL}=${live}`, ctx);
    await assertNothingLeft(live);
  });
});
