// ContainerizedTest: unit tests in a container of the built image (container mode), or integration
// tests from a runner container against the whole compose stack (compose mode). The image under test
// is the image that was built, by id. Results are copied out through the Engine API, counted and
// published. Teardown always happens: after success, failure, timeout and cancellation.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type Dockerode from 'dockerode';
import { BuildRecord, readBuildRecord } from '../build/record';
import { ComposeError, ComposeProject, compose, findCompose, normaliseProjectName } from '../compose/cli';
import { PROJECT_LABEL, SERVICE_LABEL } from '../compose/containers';
import { isActive } from '../compose/load';
import { CANCEL_GRACE_MS, LOG_TAIL_LINES, TaskContext } from '../context';
import type { EngineConnector } from '../docker/engine';
import { CancelledError, InputError, OuterLoopError, TimeoutError, errorMessage } from '../errors';
import { bounded } from '../util/bounds';
import { chooseImage, followContainer, localImageId, parseCommand, startTestContainer } from './container';
import { copyResultsOut, publishBatches, resultFiles, summarizeResults } from './results';
import { ADDED_RUNNER, StackError, StackPlan, StackPlanInput, overrideDocument, planStack, printStackLogs, stackProblem, waitForStack, writeOverride } from './stack';
import { EXPIRY_ALLOWANCE_MS, RUN_LABEL, SweepCounts, describeCounts, runLabels, sweepByLabel, sweepExpiredRuns } from './teardown';
import { RESULTS_FORMATS, ResultsFormat } from './xml-count';

export { RESULTS_FORMATS };
export type { ResultsFormat };

export interface ContainerizedTestOptions {
  engine: EngineConnector;
  mode: 'container' | 'compose';
  // container mode
  image?: string;
  service?: string;
  command?: string;
  // compose mode
  composeFiles: string[];
  testService?: string;
  testImage?: string;
  testCommand?: string;
  waitForHealthy: boolean;
  startupTimeoutSeconds: number;
  dockerComposePath?: string;
  /** Folders outside the project directory whose files the compose files may name (the allowedPaths input). */
  allowedPaths?: string[];
  // both
  envVars: Record<string, string>;
  workingDirectory?: string;
  user?: string;
  resultsPath?: string;
  /** Local folder the results are copied into (default: Common.TestResultsDirectory or the temp folder, per run). */
  resultsFolder?: string;
  timeoutMinutes: number;
  testResultsFormat: ResultsFormat;
  publishTestResults: boolean;
  testRunTitle?: string;
  failOnTestFailure: boolean;
  buildRecordPath: string;
  /** true when the user named the build record (then it must exist). */
  buildRecordRequired: boolean;
  /** Environment for compose interpolation and the Compose CLI (process.env by default). */
  env?: NodeJS.ProcessEnv;
  /** For tests: a fixed run id. */
  runId?: string;
  /** Compose `down --timeout` (seconds a container gets to stop before it is killed). */
  stopTimeoutSeconds?: number;
}

export interface ContainerizedTestResult {
  runId: string;
  projectName: string;
  exitCode: number;
  passed: number;
  failed: number;
  skipped: number;
  resultsFolder?: string;
  resultFiles: string[];
  teardown: SweepCounts & { ms: number };
}

/** The tests ran and failed (non-zero exit code or failed test cases) and failOnTestFailure is on. */
export class TestsFailedError extends OuterLoopError {}

/** A run id: the build id (when there is one) and random hex; also the compose project name's suffix. */
export function newRunId(buildId: string | undefined): string {
  const build = (buildId ?? '').toLowerCase().replace(/[^a-z0-9]/g, '').slice(0, 12);
  return `${build || 'local'}-${crypto.randomBytes(4).toString('hex')}`;
}

/** The run's compose project name (one both Compose versions accept). */
export function projectNameFor(runId: string): string {
  return normaliseProjectName(`coltest-${runId}`);
}

const TEARDOWN_BOUND_MS = 120_000;
/** `compose down` gets at most this long of the teardown; the label sweep then removes what is left. */
const DOWN_BOUND_MS = 90_000;

export async function containerizedTest(options: ContainerizedTestOptions, ctx: TaskContext): Promise<ContainerizedTestResult> {
  const started = Date.now();
  // ---- inputs, checked before the engine is contacted ------------------------------------------
  if (!Number.isInteger(options.timeoutMinutes) || options.timeoutMinutes < 1 || options.timeoutMinutes > 24 * 60) {
    throw new InputError(`Input 'timeoutMinutes' must be a whole number of minutes from 1 to 1440, not '${options.timeoutMinutes}'.`);
  }
  if (!RESULTS_FORMATS.includes(options.testResultsFormat)) {
    throw new InputError(`Input 'testResultsFormat' must be one of ${RESULTS_FORMATS.join(', ')}, not '${options.testResultsFormat}'.`);
  }
  if (options.resultsPath && !options.resultsPath.startsWith('/') && !/^[A-Za-z]:[\\/]/.test(options.resultsPath)) {
    throw new InputError(`Input 'resultsPath' must be an absolute path inside the container (e.g. /app/test-results), not '${options.resultsPath}'.`);
  }
  const env = options.env ?? process.env;
  const recordExists = fs.existsSync(options.buildRecordPath);
  if (options.buildRecordRequired && !recordExists) {
    throw new InputError(`Input 'buildRecord': '${options.buildRecordPath}' does not exist. Run BuildAndTag@1 earlier in the job, or clear buildRecord.`);
  }
  const record: BuildRecord | undefined = recordExists ? readBuildRecord(options.buildRecordPath) : undefined;

  let stackInput: StackPlanInput | undefined;
  let plan: StackPlan | undefined;
  let chosen: ReturnType<typeof chooseImage> | undefined;
  let command: string[] | undefined;
  let testImageRef: string | undefined;
  if (options.mode === 'compose') {
    stackInput = {
      composeFiles: options.composeFiles,
      testService: options.testService,
      testImage: options.testImage,
      testCommand: parseCommand(options.testCommand, 'testCommand'),
      envVars: options.envVars,
      workingDirectory: options.workingDirectory,
      user: options.user,
      record,
      env,
      allowedPaths: options.allowedPaths,
    };
    plan = planStack(stackInput);
    // A test image this job built runs by id, like the app's services.
    if (options.testImage) testImageRef = chooseImage({ image: options.testImage, record, recordPath: options.buildRecordPath }).ref;
    if (!Number.isInteger(options.startupTimeoutSeconds) || options.startupTimeoutSeconds < 1) {
      throw new InputError(`Input 'startupTimeoutSeconds' must be a whole number of seconds of at least 1, not '${options.startupTimeoutSeconds}'.`);
    }
  } else if (options.mode === 'container') {
    chosen = chooseImage({ image: options.image, service: options.service, record, recordPath: options.buildRecordPath });
    command = parseCommand(options.command, 'command');
  } else {
    throw new InputError(`Input 'mode' must be 'container' or 'compose', not '${options.mode as string}'.`);
  }

  // The compose CLI is found before anything is created, so a missing one fails at once.
  const cli = options.mode === 'compose' ? await findCompose({ path: options.dockerComposePath, env, signal: ctx.signal }) : undefined;
  const docker = await options.engine();

  const runId = options.runId ?? newRunId(ctx.variable('Build.BuildId'));
  const projectName = projectNameFor(runId);
  const deadline = started + options.timeoutMinutes * 60_000;
  const labels = runLabels(runId, deadline + EXPIRY_ALLOWANCE_MS);
  const workDir = path.join(ctx.tempDir, 'outer-loop', 'containerized-test', projectName);
  const resultsFolder = options.resultsPath
    ? (options.resultsFolder ?? path.join(ctx.variable('Common.TestResultsDirectory') ?? path.join(ctx.tempDir, 'outer-loop', 'test-results'), projectName))
    : undefined;
  ctx.info(`ContainerizedTest run ${runId} (${options.mode} mode${cli ? `, ${cli.display}${cli.version ? ` ${cli.version}` : ''}, project ${projectName}` : ''}); everything it creates is labelled ${RUN_LABEL}=${runId}.`);
  await sweepExpiredRuns(docker, ctx);

  let outcome: { exitCode: number; containerId: string } | undefined;
  let failure: unknown;
  let project: ComposeProject | undefined;
  try {
    if (options.mode === 'compose') {
      project = { cli: cli!, name: projectName, files: [...plan!.app.files, path.join(workDir, 'override.yml')], projectDir: plan!.app.projectDir, env };
      outcome = await runCompose(docker, project, plan!, stackInput!, options, { labels, deadline, testImageRef }, ctx);
    } else {
      outcome = await runContainer(docker, chosen!, command, options, { labels, deadline, name: projectName }, ctx);
    }
  } catch (err) {
    failure = err;
  }

  // Results are copied before teardown (the container goes with it).
  // Only the files copied in this run are counted and published: resultsFolder may be a folder
  // the user shares with other steps, so nothing in it is deleted either.
  let copied: string[] | undefined;
  if (outcome && options.resultsPath && resultsFolder) {
    try {
      const copy = await copyResultsOut(docker, outcome.containerId, options.resultsPath, resultsFolder, ctx);
      if (copy.missing) ctx.warn(`No test results: ${copy.missing}. Check resultsPath.`);
      else if (copy.files.length === 0) ctx.warn(`No test results: '${options.resultsPath}' in the test container is empty.`);
      else {
        copied = copy.files.map((f) => path.join(resultsFolder, f));
        ctx.info(`Copied ${copy.files.length} file(s) from ${options.resultsPath} to ${resultsFolder}.`);
      }
    } catch (err) {
      ctx.warn(`Could not copy the test results out of the container: ${errorMessage(err)}`);
    }
  }

  if (failure && project && !(failure instanceof CancelledError)) {
    await printStackLogs(docker, projectName, ctx, LOG_TAIL_LINES).catch(() => undefined);
  }
  const teardown = await tearDown(docker, { runId, project, stopTimeoutSeconds: options.stopTimeoutSeconds ?? 10, workDir }, ctx);
  if (failure) throw failure;
  const exitCode = outcome!.exitCode;

  // ---- results, outputs, summary ------------------------------------------------------------
  const files = copied ? resultFiles(copied, options.testResultsFormat) : [];
  if (copied && files.length === 0) ctx.warn(`No ${options.testResultsFormat} result files (${options.testResultsFormat === 'VSTest' ? '*.trx' : '*.xml'}) in ${options.resultsPath}.`);
  const summary = summarizeResults(files, options.testResultsFormat, ctx);
  if (options.publishTestResults && summary.files.length > 0) {
    const batches = publishBatches(summary.files, ctx);
    batches.forEach((files, i) => {
      const title = batches.length > 1 ? `${options.testRunTitle || 'Test results'} (part ${i + 1} of ${batches.length})` : options.testRunTitle;
      ctx.publishTestResults({ format: options.testResultsFormat, files, title, mergeResults: true });
    });
  }
  ctx.output('exitCode', String(exitCode));
  ctx.output('testsPassed', String(summary.passed));
  ctx.output('testsFailed', String(summary.failed));
  ctx.output('testsSkipped', String(summary.skipped));
  if (resultsFolder && copied) ctx.output('resultsFolder', resultsFolder);
  const line = `Tests: ${summary.passed} passed, ${summary.failed} failed, ${summary.skipped} skipped (${summary.files.length} result file(s)); the test command exited with code ${exitCode}.`;
  ctx.info(line);
  writeSummary(ctx, { mode: options.mode, exitCode, ...summary, runId, teardown });

  const result: ContainerizedTestResult = {
    runId,
    projectName,
    exitCode,
    passed: summary.passed,
    failed: summary.failed,
    skipped: summary.skipped,
    resultsFolder: copied ? resultsFolder : undefined,
    resultFiles: summary.files,
    teardown,
  };
  if (exitCode !== 0 || summary.failed > 0) {
    const why = `${exitCode !== 0 ? `the test command exited with code ${exitCode}` : ''}${exitCode !== 0 && summary.failed > 0 ? ' and ' : ''}${summary.failed > 0 ? `${summary.failed} test(s) failed` : ''}`;
    if (options.failOnTestFailure) throw new TestsFailedError(`Tests failed: ${why}. ${line}`);
    ctx.warn(`Tests failed (${why}); failOnTestFailure is false, so the task succeeds.`);
  }
  return result;
}

interface RunInfo {
  labels: Record<string, string>;
  deadline: number;
}

async function runContainer(
  docker: Dockerode,
  chosen: ReturnType<typeof chooseImage>,
  command: string[] | undefined,
  options: ContainerizedTestOptions,
  run: RunInfo & { name: string },
  ctx: TaskContext,
): Promise<{ exitCode: number; containerId: string }> {
  const imageId = await localImageId(docker, chosen.ref, chosen.built ? 'service' : 'image');
  ctx.info(`Testing image ${imageId} (from ${chosen.source}).`);
  const containerId = await startTestContainer(docker, {
    name: run.name,
    image: imageId,
    command,
    env: options.envVars,
    workingDirectory: options.workingDirectory,
    user: options.user,
    labels: run.labels,
  });
  const { exitCode } = await followContainer(docker, containerId, {
    deadline: run.deadline,
    signal: ctx.signal,
    log: ctx,
    timeoutMessage: () => `The tests did not finish within timeoutMinutes (${options.timeoutMinutes} min); the container was stopped.`,
  });
  return { exitCode, containerId };
}

async function runCompose(
  docker: Dockerode,
  project: ComposeProject,
  plan: StackPlan,
  input: StackPlanInput,
  options: ContainerizedTestOptions,
  run: RunInfo & { testImageRef?: string },
  ctx: TaskContext,
): Promise<{ exitCode: number; containerId: string }> {
  // Pinned images must be on this engine: an id is never pulled.
  await Promise.all([...plan.pinned.values()].map((image) => localImageId(docker, image.imageId, 'buildRecord')));
  for (const [service, image] of plan.pinned) ctx.info(`Service ${service} runs the built image ${image.imageId} (${image.repository}).`);
  for (const service of plan.unpinnedBuilds) {
    ctx.warn(`Service '${service}' has a build: section but is not in the build record; it runs whatever its image tag names on this engine (nothing is built). Build it with BuildAndTag@1 to test exactly what will be pushed.`);
  }
  writeOverride(
    project.files[project.files.length - 1],
    overrideDocument(plan, { ...input, labels: run.labels, testImageRef: run.testImageRef }),
  );

  const timeoutMessage = () => `The run did not finish within timeoutMinutes (${options.timeoutMinutes} min).`;
  // The app services, named one by one (not the runner: `--scale runner=0` would still make compose
  // wait on the runner's depends_on conditions, unbounded). Services of profiles that are not
  // active (COMPOSE_PROFILES) stay out, as they would with a plain `compose up`.
  const profiles = new Set((project.env.COMPOSE_PROFILES ?? '').split(',').map((p) => p.trim()).filter(Boolean));
  const appServices = plan.app.services
    .filter((s) => s.name !== plan.runner)
    .filter((s) => isActive(s.raw, profiles))
    .map((s) => s.name);
  // The runner is created (`up --no-start --no-deps`) while the stack gets ready, and started
  // through the Engine API the moment it is: a `compose run` after the wait would add a CLI start-up
  // (~0.5 s) to every run. It gets the configuration compose gives the service, with `restart: "no"`
  // from the override; unlike `run`, `up` also publishes the service's `ports:` (see the README).
  const createRunner = () =>
    compose(project, ['up', '--no-start', '--no-deps', '--no-build', plan.runner], { onLine: (l) => ctx.debug(l), signal: ctx.signal, deadline: run.deadline, what: `Creating the test runner '${plan.runner}'`, timeoutMessage });
  if (appServices.length > 0) {
    // startupTimeoutSeconds bounds `up` (which itself waits for depends_on conditions) and the health wait.
    const startupDeadline = Math.min(run.deadline, Date.now() + options.startupTimeoutSeconds * 1000);
    const startupMessage = () => `The stack did not start within startupTimeoutSeconds (${options.startupTimeoutSeconds} s): ${project.cli.display} up was still running. Raise startupTimeoutSeconds, or fix the services' healthchecks; logs are below.`;
    try {
      await ctx.group(`Start the stack (${project.cli.display} up, project ${project.name})`, () =>
        compose(project, ['up', '-d', '--no-build', ...appServices], { onLine: (l) => ctx.info(l), signal: ctx.signal, deadline: startupDeadline, what: 'Starting the stack', timeoutMessage: startupMessage }),
      );
    } catch (err) {
      // compose reports "container is unhealthy" for a depends_on condition; say which service and why.
      if (err instanceof ComposeError) {
        const problem = await stackProblem(docker, project, plan).catch(() => undefined);
        if (problem) throw new StackError(`${problem} (${project.cli.display} up failed).`);
      }
      throw err;
    }
    const waitForReady = async () => {
      if (!options.waitForHealthy) return;
      const states = await waitForStack(docker, project, plan, { deadline: startupDeadline, startupTimeoutSeconds: options.startupTimeoutSeconds, signal: ctx.signal, log: ctx });
      ctx.info(`The stack is ready: ${states.map((s) => `${s.service} ${s.health ?? s.status}`).join(', ') || 'no app containers'}.`);
    };
    // After the app's `up`, which made the project's networks and volumes that the runner joins.
    const [ready, created] = await Promise.allSettled([waitForReady(), createRunner()]);
    if (ready.status === 'rejected') throw ready.reason;
    if (created.status === 'rejected') throw created.reason;
  } else {
    await createRunner();
  }
  const [runner] = await docker.listContainers({ all: true, filters: { label: [`${PROJECT_LABEL}=${project.name}`, `${SERVICE_LABEL}=${plan.runner}`] } });
  if (!runner) throw new StackError(`${project.cli.display} created no container for the test runner '${plan.runner}'.`);
  await docker.getContainer(runner.Id).start();
  const runnerName = runner.Names[0]?.replace(/^\//, '') ?? runner.Id;
  ctx.info(`Test runner ${plan.runner === ADDED_RUNNER ? options.testImage : plan.runner} started (${runnerName}); its output follows.`);
  const { exitCode } = await followContainer(docker, runner.Id, { deadline: run.deadline, signal: ctx.signal, log: ctx, timeoutMessage });
  if (exitCode !== 0) await printStackLogs(docker, project.name, ctx, LOG_TAIL_LINES, plan.runner);
  return { exitCode, containerId: runner.Id };
}

/**
 * Compose `down -v --remove-orphans`, then an Engine API sweep of everything with the run label (and,
 * in compose mode, the project label). Every step ends at a deadline. A cancel (before or during
 * teardown) stops `down` at once and leaves the sweep, which kills and removes at once, what the
 * agent allows (CANCEL_GRACE_MS). Never throws: problems are warnings; what is left is swept by a
 * later run once this one has expired.
 */
async function tearDown(
  docker: Dockerode,
  options: { runId: string; project?: ComposeProject; stopTimeoutSeconds: number; workDir: string },
  ctx: TaskContext,
): Promise<SweepCounts & { ms: number }> {
  const start = Date.now();
  const total: SweepCounts = { containers: 0, networks: 0, volumes: 0 };
  const add = (c: SweepCounts) => {
    total.containers += c.containers;
    total.networks += c.networks;
    total.volumes += c.volumes;
  };
  const end = teardownEnd(TEARDOWN_BOUND_MS, ctx.signal);
  try {
    await ctx.group(`Tear down (run ${options.runId})`, async () => {
      if (options.project && !ctx.signal.aborted) {
        const cli = options.project.cli.display;
        try {
          const deadline = Math.min(start + TEARDOWN_BOUND_MS, Date.now() + DOWN_BOUND_MS);
          const down = compose(options.project, ['down', '-v', '--remove-orphans', '--timeout', String(options.stopTimeoutSeconds)], {
            onLine: (l) => ctx.debug(l),
            signal: ctx.signal,
            deadline,
            what: 'Tearing down the stack',
          });
          // At a cancel or the deadline the sweep starts at once; the Compose CLI is stopped meanwhile.
          await bounded(down, { deadline, signal: ctx.signal, onTimeout: () => new TimeoutError(`${cli} down did not finish within ${Math.round((deadline - start) / 1000)} s`) });
        } catch (err) {
          ctx.warn(`Teardown: ${ctx.signal.aborted ? `the job was cancelled while ${cli} down ran; removing what is left at once` : errorMessage(err)}`);
        }
      }
      const labels = [`${RUN_LABEL}=${options.runId}`, ...(options.project ? [`${PROJECT_LABEL}=${options.project.name}`] : [])];
      for (const label of labels) {
        try {
          add(await sweepByLabel(docker, label, ctx, { signal: end.signal }));
        } catch (err) {
          ctx.warn(`Teardown: could not remove what has the label ${label}: ${errorMessage(err)}`);
        }
      }
      fs.rmSync(options.workDir, { recursive: true, force: true });
      ctx.info(`Teardown done in ${((Date.now() - start) / 1000).toFixed(2)} s${total.containers + total.networks + total.volumes ? `; removed by label: ${describeCounts(total)}` : ''}.`);
    });
  } finally {
    end.dispose();
  }
  return { ...total, ms: Date.now() - start };
}

/** Aborts `signal` after `boundMs`, or CANCEL_GRACE_MS after `cancel` aborts, whichever comes first. */
function teardownEnd(boundMs: number, cancel: AbortSignal): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  const endsAt = Date.now() + boundMs;
  const stop = () => controller.abort(new TimeoutError('Teardown ran out of time.'));
  let timer = setTimeout(stop, boundMs);
  const onCancel = () => {
    clearTimeout(timer);
    timer = setTimeout(stop, Math.min(CANCEL_GRACE_MS, Math.max(0, endsAt - Date.now())));
  };
  if (cancel.aborted) onCancel();
  else cancel.addEventListener('abort', onCancel, { once: true });
  return {
    signal: controller.signal,
    dispose: () => {
      clearTimeout(timer);
      cancel.removeEventListener('abort', onCancel);
    },
  };
}

function writeSummary(ctx: TaskContext, s: { mode: string; exitCode: number; passed: number; failed: number; skipped: number; runId: string; teardown: { ms: number } }): void {
  ctx.addSummary(
    `containerized-test-${s.runId}`,
    [
      `### ContainerizedTest (${s.mode} mode)`,
      '',
      '| passed | failed | skipped | exit code |',
      '|---:|---:|---:|---:|',
      `| ${s.passed} | ${s.failed} | ${s.skipped} | ${s.exitCode} |`,
      '',
      `Run \`${s.runId}\`; torn down in ${(s.teardown.ms / 1000).toFixed(1)} s.`,
      '',
    ].join('\n'),
  );
}

export { TimeoutError, StackError };
