// abortError: an aborted signal becomes one error, whichever wait notices it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { CancelledError, OuterLoopError, TimeoutError } from '../../tasks/lib/errors';
import { abortError } from '../../tasks/lib/util/abort';
import { bounded } from '../../tasks/lib/util/bounds';
import { HttpTransport } from '../../tasks/lib/util/http';
import { runProgram } from '../../tasks/lib/util/process';
import { DeadlinePassed, retry, sleep } from '../../tasks/lib/util/retry';

const aborted = (reason?: unknown) => {
  const controller = new AbortController();
  controller.abort(reason);
  return controller.signal;
};

test("the job's cancel, as runTask gives it, is the error as it is", () => {
  const cancel = new CancelledError('ComposeDeploy was cancelled (SIGTERM).');
  assert.equal(abortError(aborted(cancel)), cancel);
});

test("a reason of ours keeps its class: a deadline's TimeoutError, the retry loop's DeadlinePassed, a sibling's failure", () => {
  for (const reason of [new TimeoutError('Teardown ran out of time.'), new DeadlinePassed(), new OuterLoopError("'web' failed.")]) {
    assert.equal(abortError(aborted(reason)), reason);
  }
});

test('any other reason keeps its message: a CancelledError, or a TimeoutError for AbortSignal.timeout', async () => {
  const plain = abortError(aborted(new Error('KubernetesDeploy was cancelled (SIGINT).')));
  assert.ok(plain instanceof CancelledError);
  assert.equal(plain.message, 'KubernetesDeploy was cancelled (SIGINT).');

  const bare = abortError(aborted());
  assert.ok(bare instanceof CancelledError);
  assert.match(bare.message, /aborted/);

  assert.deepEqual(abortError(aborted('no Error')), new CancelledError('The job was cancelled.'));

  const timeout = AbortSignal.timeout(1);
  await new Promise((resolve) => timeout.addEventListener('abort', resolve, { once: true }));
  const timedOut = abortError(timeout);
  assert.ok(timedOut instanceof TimeoutError);
  assert.match(timedOut.message, /timeout/);
});

test('every wait rejects with that same error: sleep, retry, bounded, runProgram and an HTTP request', async (t) => {
  // A server that never answers: only the cancel can end the request.
  const server = http.createServer(() => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const transport = new HttpTransport();
  t.after(() => {
    transport.close();
    server.closeAllConnections();
    server.close();
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;

  const controller = new AbortController();
  const signal = controller.signal;
  const waits: Record<string, Promise<unknown>> = {
    sleep: sleep(60_000, signal),
    retry: retry(() => sleep(60_000, signal), { signal, isTransient: () => ({}) }),
    bounded: bounded(new Promise(() => undefined), { signal, onTimeout: () => new TimeoutError('not this') }),
    runProgram: runProgram(process.execPath, ['-e', 'setTimeout(() => {}, 60_000)'], { signal }),
    request: transport.request({ method: 'GET', url, signal, timeoutMs: 60_000 }),
  };
  const cancel = new CancelledError('BuildAndTag was cancelled (SIGTERM).');
  setTimeout(() => controller.abort(cancel), 100);
  const outcomes = await Promise.allSettled(Object.values(waits));
  assert.deepEqual(
    Object.fromEntries(Object.keys(waits).map((name, i) => [name, outcomes[i].status === 'rejected' && outcomes[i].reason === cancel])),
    Object.fromEntries(Object.keys(waits).map((name) => [name, true])),
  );
  // Already aborted: the same error at once.
  const late = await Promise.allSettled([sleep(1, signal), bounded(Promise.resolve(), { signal, onTimeout: () => new TimeoutError('not this') }), transport.request({ method: 'GET', url, signal }), runProgram(process.execPath, ['-e', ''], { signal })]);
  assert.deepEqual(late.map((o) => o.status === 'rejected' && o.reason === cancel), [true, true, true, true]);
});
