// The bake window's own rules (tasks/lib/release/bake.ts), with a watcher of the test's own (the
// engine and API server watchers run in the integration tests) and a smoke test target that is a
// real HTTP server on loopback: no window without bakeSeconds or a URL, the first failure ends the
// window with the seconds it came at, the smoke URL must answer 2xx (a redirect is not), and a
// cancel ends the window at once.
import { strict as assert } from 'node:assert';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { CancelledError, InputError } from '../../tasks/lib/errors';
import { BakeWatcher, bakeWindow, checkBakeInputs } from '../../tasks/lib/release/bake';
import { createTestContext } from '../support/context';

let server: http.Server;
let base: string;
const asked: string[] = [];
before(async () => {
  server = http.createServer((req, res) => {
    asked.push(req.url ?? '');
    if (req.url === '/moved') res.writeHead(302, { Location: '/ok' }).end();
    else if (req.url === '/down') res.writeHead(503).end('maintenance');
    else res.writeHead(200).end('ok');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => new Promise<void>((resolve) => server.close(() => resolve())));

/** A watcher whose `look` fails from its `failAt`-th look on (never, without it). */
function watcher(failAt?: number): BakeWatcher & { looks: number; started: boolean } {
  const w = {
    what: 'the test service',
    looks: 0,
    started: false,
    async start() {
      w.started = true;
    },
    async look() {
      w.looks++;
      return failAt !== undefined && w.looks >= failAt ? 'the test service stopped answering' : undefined;
    },
  };
  return w;
}

describe('bake window', () => {
  test('without bakeSeconds and smokeTestUrl there is no window: nothing is looked at, no group', async () => {
    const ctx = createTestContext();
    const w = watcher(1);
    assert.equal(await bakeWindow(w, { seconds: 0, signal: ctx.signal, log: ctx }), undefined);
    assert.equal(w.started, false);
    assert.equal(w.looks, 0);
    assert.deepEqual(ctx.logs, []);
  });

  test('the first failure ends the window, with the seconds into it', async () => {
    const ctx = createTestContext();
    const w = watcher(4);
    const started = Date.now();
    const why = await bakeWindow(w, { seconds: 30, signal: ctx.signal, log: ctx, watchEveryMs: 100 });
    assert.ok(Date.now() - started < 2_000, 'not the whole 30 s');
    assert.match(why ?? '', /^The bake window failed 0\.[2-9] s into its 30 s: the test service stopped answering$/);
    assert.ok(w.started);
    assert.equal(w.looks, 4);
    assert.equal(ctx.logs[0], 'GROUP Bake window: 30 s watching the test service');
  });

  test('a window that passes looks until its end, and asks the smoke URL on its interval', async () => {
    const ctx = createTestContext();
    const w = watcher();
    asked.length = 0;
    const started = Date.now();
    assert.equal(await bakeWindow(w, { seconds: 1, smokeTestUrl: `${base}/ok?token=abc`, signal: ctx.signal, log: ctx, watchEveryMs: 100, smokeEveryMs: 300 }), undefined);
    assert.ok(Date.now() - started >= 1_000);
    assert.ok(w.looks >= 10, `${w.looks} looks`);
    // At 0, 0.3, 0.6 and 0.9 s, and at the end (unless the fourth came too late for another).
    assert.ok(asked.length === 5 || asked.length === 4, `${asked.length} requests`);
    assert.deepEqual(ctx.logs, [`GROUP Bake window: 1 s watching the test service and ${base}/ok`, `Bake window passed: 1 s without a failure; the smoke test answered 2xx ${asked.length} times.`]);
  });

  test('with seconds 0 the smoke URL is asked once; a redirect or a 503 fails it', async () => {
    const ctx = createTestContext();
    asked.length = 0;
    assert.equal(await bakeWindow(watcher(1), { seconds: 0, smokeTestUrl: `${base}/ok`, signal: ctx.signal, log: ctx }), undefined);
    assert.deepEqual(asked, ['/ok']);
    assert.equal(await bakeWindow(watcher(), { seconds: 0, smokeTestUrl: `${base}/moved`, signal: ctx.signal, log: ctx }), `The smoke test failed: the smoke test GET ${base}/moved answered 302, not 2xx`);
    assert.equal(await bakeWindow(watcher(), { seconds: 0, smokeTestUrl: `${base}/down`, signal: ctx.signal, log: ctx }), `The smoke test failed: the smoke test GET ${base}/down answered 503 (maintenance), not 2xx`);
  });

  test('a smoke URL that fails in the window ends it with the seconds into it', async () => {
    const ctx = createTestContext();
    const why = await bakeWindow(watcher(), { seconds: 10, smokeTestUrl: `${base}/down`, signal: ctx.signal, log: ctx, watchEveryMs: 100 });
    assert.match(why ?? '', /^The bake window failed 0\.\d s into its 10 s: the smoke test GET http:\/\/127\.0\.0\.1:\d+\/down answered 503 \(maintenance\), not 2xx$/);
  });

  test('a cancel ends a long window at once', async () => {
    const ctx = createTestContext();
    setTimeout(() => ctx.abort('ComposeDeploy was cancelled (SIGTERM).'), 200);
    const started = Date.now();
    await assert.rejects(bakeWindow(watcher(), { seconds: 600, smokeTestUrl: `${base}/ok`, signal: ctx.signal, log: ctx }), (err: Error) => err instanceof CancelledError && /cancelled \(SIGTERM\)/.test(err.message));
    assert.ok(Date.now() - started < 1_000, `ended ${Date.now() - started} ms after it started`);
  });

  test('bakeSeconds and smokeTestUrl are checked', () => {
    assert.throws(() => checkBakeInputs(-1, undefined), (err: Error) => err instanceof InputError && /Input 'bakeSeconds' must be a whole number from 0 to 3600, not -1/.test(err.message));
    assert.throws(() => checkBakeInputs(1.5, undefined), /not 1\.5/);
    assert.throws(() => checkBakeInputs(0, 'ftp://shop/health'), /Input 'smokeTestUrl': 'ftp:\/\/shop\/health' is not an http:\/\/ or https:\/\/ URL/);
    checkBakeInputs(3600, 'https://qa.shop.example.com/health');
  });
});
