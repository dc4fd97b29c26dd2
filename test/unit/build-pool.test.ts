// The pool BuildAndTag builds compose services with: at most maxParallel at a time, each after the
// services it depends on, one log group per service, and a failure (or the job's cancel) that stops
// the others. Jobs are promises the test ends by hand, so every order below is forced, not timed.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, test } from 'node:test';
import { planBuilds } from '../../tasks/lib/build';
import { PoolJob, runInDependencyOrder } from '../../tasks/lib/build/pool';
import type { Logger } from '../../tasks/lib/context';
import { CancelledError, DockerError, InputError } from '../../tasks/lib/errors';
import { createTestContext } from '../support/context';
import { buildOptions, writeProject } from '../support/images';

/** A Logger that records what reaches the pipeline log, groups included. */
function recordingLog() {
  const lines: string[] = [];
  const log: Logger = {
    info: (m) => void lines.push(m),
    warn: (m) => void lines.push(`WARN ${m}`),
    debug: (m) => void lines.push(`DEBUG ${m}`),
    async group(title, fn) {
      lines.push(`GROUP ${title}`);
      try {
        return await fn();
      } finally {
        lines.push('ENDGROUP');
      }
    },
  };
  return { log, lines };
}

/** Jobs the test starts and ends: `events` lists "start X" / "end X" in the order they happened. */
function harness() {
  const events: string[] = [];
  const finishers = new Map<string, { resolve: () => void; reject: (e: Error) => void }>();
  const started = new Map<string, () => void>();
  const running = new Set<string>();
  let mostAtOnce = 0;
  const signals = new Map<string, AbortSignal>();
  const job = (name: string, after: string[] = [], body?: (log: Logger) => Promise<void>): PoolJob<string> => ({
    name,
    after,
    title: `Build ${name}`,
    run: async (log, signal) => {
      events.push(`start ${name}`);
      running.add(name);
      mostAtOnce = Math.max(mostAtOnce, running.size);
      signals.set(name, signal);
      started.get(name)?.();
      try {
        await new Promise<void>((resolve, reject) => {
          finishers.set(name, { resolve, reject });
          // A build stops when its signal aborts, as buildImage does.
          signal.addEventListener('abort', () => reject(new DockerError(`Building '${name}' was aborted`)), { once: true });
          if (body) body(log).then(resolve, reject);
        });
        return `image of ${name}`;
      } finally {
        running.delete(name);
        events.push(`end ${name}`);
      }
    },
  });
  /** Resolves once `name` has started. */
  const whenStarted = (name: string) => (events.includes(`start ${name}`) ? Promise.resolve() : new Promise<void>((r) => started.set(name, r)));
  const finish = async (name: string) => {
    await whenStarted(name);
    finishers.get(name)?.resolve();
  };
  const fail = async (name: string, error: Error) => {
    await whenStarted(name);
    finishers.get(name)?.reject(error);
  };
  return { events, job, finish, fail, whenStarted, signals, mostAtOnce: () => mostAtOnce, running };
}

const tick = () => new Promise((r) => setImmediate(r));

describe('runInDependencyOrder', () => {
  test('never runs more than maxParallel jobs at once, and fills every free slot', async () => {
    const h = harness();
    const { log } = recordingLog();
    const names = ['a', 'b', 'c', 'd', 'e', 'f', 'g'];
    const pool = runInDependencyOrder(names.map((n) => h.job(n)), { maxParallel: 3, signal: new AbortController().signal, log });
    await h.whenStarted('c');
    await tick();
    assert.deepEqual(h.events, ['start a', 'start b', 'start c'], 'three start at once, the fourth waits');
    for (const n of names) {
      await h.finish(n);
      await tick();
      assert.ok(h.running.size <= 3);
    }
    assert.deepEqual(await pool, names.map((n) => `image of ${n}`), 'the results come in the order of the jobs');
    assert.equal(h.mostAtOnce(), 3);
  });

  test('a job waits for the jobs it depends on; the others start as soon as a slot is free', async () => {
    const h = harness();
    const { log } = recordingLog();
    // web depends on base (FROM base's image); worker depends on web; tool depends on nothing.
    const jobs = [h.job('web', ['base']), h.job('worker', ['web', 'not-built']), h.job('base'), h.job('tool')];
    const pool = runInDependencyOrder(jobs, { maxParallel: 3, signal: new AbortController().signal, log });
    await h.whenStarted('tool');
    await tick();
    assert.deepEqual(h.events, ['start base', 'start tool'], 'web and worker wait although a slot is free');
    await h.finish('tool');
    await tick();
    assert.deepEqual(h.events, ['start base', 'start tool', 'end tool']);
    await h.finish('base');
    await h.whenStarted('web');
    await tick();
    assert.ok(!h.events.includes('start worker'), 'worker waits for web');
    await h.finish('web');
    await h.finish('worker');
    assert.deepEqual(await pool, ['image of web', 'image of worker', 'image of base', 'image of tool']);
    assert.deepEqual(h.events.slice(2), ['end tool', 'end base', 'start web', 'end web', 'start worker', 'end worker']);
  });

  test('a failure aborts the running jobs, waits for them, starts no new one and names the failed job', async () => {
    const h = harness();
    const { log } = recordingLog();
    const jobs = [h.job('api'), h.job('web'), h.job('worker'), h.job('later'), h.job('last', ['api'])];
    const pool = runInDependencyOrder(jobs, { maxParallel: 3, signal: new AbortController().signal, log });
    await h.whenStarted('worker');
    await h.fail('web', new DockerError("Building 'web' failed: process \"/bin/sh -c exit 3\" did not complete successfully: exit code: 3"));
    await assert.rejects(pool, (err: unknown) => {
      assert.ok(err instanceof DockerError, 'the failed job keeps its error class');
      assert.equal(err.message, "Building 'web' failed: process \"/bin/sh -c exit 3\" did not complete successfully: exit code: 3. ('web' failed; stopped 'api', 'worker'; did not start 'later', 'last'.)");
      return true;
    });
    assert.ok(h.signals.get('api')?.aborted && h.signals.get('worker')?.aborted, 'the running jobs were aborted');
    assert.ok(h.events.includes('end api') && h.events.includes('end worker'), 'and had ended before the pool failed');
    assert.ok(!h.events.includes('start later') && !h.events.includes('start last'), 'no job started after the failure');
  });

  test('a job that ends well while the others are stopped keeps its result out of the error', async () => {
    const h = harness();
    const { log, lines } = recordingLog();
    const pool = runInDependencyOrder([h.job('a'), h.job('b')], { maxParallel: 2, signal: new AbortController().signal, log });
    await h.finish('a');
    await tick();
    await h.fail('b', new DockerError("Building 'b' failed: exit code: 3"));
    await assert.rejects(pool, { message: "Building 'b' failed: exit code: 3. ('b' failed.)" });
    assert.ok(lines.includes('GROUP Build a') && lines.includes('GROUP Build b'), 'both logs are written');
  });

  test('the failure of a job alone is its own error, unchanged', async () => {
    const h = harness();
    const error = new DockerError("Building 'only' failed: exit code: 3");
    const pool = runInDependencyOrder([h.job('only')], { maxParallel: 3, signal: new AbortController().signal, log: recordingLog().log });
    await h.fail('only', error);
    await assert.rejects(pool, (err: unknown) => err === error && error.message === "Building 'only' failed: exit code: 3");
  });

  test("cancelling the task's signal stops the running jobs and starts no new one", async () => {
    const h = harness();
    const { log, lines } = recordingLog();
    const task = new AbortController();
    const pool = runInDependencyOrder([h.job('a'), h.job('b'), h.job('c')], { maxParallel: 2, signal: task.signal, log });
    await h.whenStarted('b');
    task.abort(new Error('BuildAndTag was cancelled (SIGTERM).'));
    await assert.rejects(pool, (err: unknown) => err instanceof CancelledError && err.message === 'BuildAndTag was cancelled (SIGTERM).');
    assert.deepEqual(h.events.sort(), ['end a', 'end b', 'start a', 'start b']);
    assert.ok(lines.includes('Stopped: the job was cancelled.'));
  });

  test('a signal aborted before the start runs nothing', async () => {
    const h = harness();
    const task = new AbortController();
    task.abort(new Error('cancelled'));
    await assert.rejects(runInDependencyOrder([h.job('a')], { maxParallel: 3, signal: task.signal, log: recordingLog().log }), CancelledError);
    assert.deepEqual(h.events, []);
  });

  test("each job's log is one group, written when it ends, never interleaved; warnings stay warnings", async () => {
    const h = harness();
    const { log, lines } = recordingLog();
    const talk = (name: string) => async (jobLog: Logger) => {
      for (let i = 1; i <= 3; i++) {
        jobLog.info(`${name} step ${i}`);
        await tick();
      }
      jobLog.warn(`${name} warns`);
      jobLog.debug(`${name} debug`);
    };
    const jobs = [h.job('one', [], talk('one')), h.job('two', [], talk('two'))];
    await runInDependencyOrder(jobs, { maxParallel: 2, signal: new AbortController().signal, log });
    const group = (name: string) => ['GROUP Build ' + name, `${name} step 1`, `${name} step 2`, `${name} step 3`, `WARN ${name} warns`, `DEBUG ${name} debug`, 'ENDGROUP'];
    assert.deepEqual(lines, ["Started 'one'; its log follows when it ends.", "Started 'two'; its log follows when it ends.", ...group('one'), ...group('two')]);
  });

  test('a job that runs alone streams its group live', async () => {
    const h = harness();
    const { log, lines } = recordingLog();
    let seenWhileRunning: string[] = [];
    const pool = runInDependencyOrder(
      [
        h.job('base', [], async (jobLog) => {
          jobLog.info('base step 1');
          await tick();
          seenWhileRunning = [...lines];
        }),
        h.job('app', ['base']),
      ],
      { maxParallel: 3, signal: new AbortController().signal, log },
    );
    await h.whenStarted('app');
    await h.finish('app');
    await pool;
    assert.deepEqual(seenWhileRunning, ['GROUP Build base', 'base step 1'], 'the lines reach the log while the job runs');
    assert.deepEqual(lines, ['GROUP Build base', 'base step 1', 'ENDGROUP', 'GROUP Build app', 'ENDGROUP'], 'app runs alone too, after base');
  });
});

describe('BuildAndTag plans the build order from the compose file', () => {
  const work = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'col-build-pool-')));
  after(() => fs.rmSync(work, { recursive: true, force: true }));
  writeProject(work, '.', {
    'base/Dockerfile': 'FROM outer-loop/busybox:test\n',
    // A stage of its own named like nothing built, and the sibling base read by FROM.
    'web/Dockerfile': 'FROM localhost:5000/base:1 AS runtime\nCOPY --from=runtime /bin/sh /sh\n',
    'worker/Dockerfile': 'FROM outer-loop/busybox:test\n',
    // The base image is a variable without a default: unknown, so depends_on decides.
    'tool/Dockerfile': 'ARG BASE\nFROM ${BASE}\n',
    'copier/Dockerfile': 'FROM outer-loop/busybox:test\nCOPY --from=localhost:5000/worker:1 /bin/sh /sh\nRUN --mount=type=bind,from=localhost:5000/base,target=/b true\n',
    'docker-compose.yml': [
      'services:',
      '  base: { build: base, image: localhost:5000/base:1 }',
      '  cache: { image: localhost:5000/cache:1, depends_on: [base] }',
      '  web: { build: web, image: localhost:5000/web:1, depends_on: { cache: { condition: service_started } } }',
      '  worker: { build: worker, image: localhost:5000/worker:1, links: [web] }',
      '  tool: { build: tool, image: localhost:5000/tool:1, depends_on: [cache] }',
      '  copier: { build: copier, image: localhost:5000/copier:1 }',
      '',
    ].join('\n'),
  });
  const compose = path.join(work, 'docker-compose.yml');
  const plan = (over: Parameters<typeof buildOptions>[1]) => planBuilds(buildOptions(async () => assert.fail('the engine must not be contacted'), over), createTestContext());
  const orderOf = (over: Partial<Parameters<typeof buildOptions>[1]> = {}) => Object.fromEntries(plan({ composeFile: compose, buildRecordPath: path.join(work, 'r.json'), ...over }).map((p) => [p.name, p.after]));

  test("a build waits for the siblings whose image its Dockerfile reads (FROM, COPY --from, RUN --mount from), not for run-time dependencies", () => {
    // worker links to web only at run time: it builds at once. base:1 in copier's mount is base's image (tag latest is not).
    assert.deepEqual(orderOf(), { base: [], web: ['base'], worker: [], tool: ['base'], copier: ['worker'] });
  });

  test('an image named by a variable follows the build args; unresolved, the services it depends on (also through services not built)', () => {
    assert.deepEqual(orderOf({ buildArgs: { BASE: 'localhost:5000/worker:1' } }).tool, ['worker']);
  });

  test('a sibling that is not selected is not waited for', () => {
    assert.deepEqual(orderOf({ services: ['web', 'worker'] }), { web: [], worker: [] });
  });

  for (const bad of [0, -1, 2.5, Number.NaN]) {
    test(`maxParallel ${bad} is refused, naming the input`, () => {
      assert.throws(() => plan({ composeFile: compose, maxParallel: bad, buildRecordPath: path.join(work, 'r.json') }), (err: unknown) => err instanceof InputError && /^Input 'maxParallel' must be a whole number of 1 or more/.test(err.message));
    });
  }
});
