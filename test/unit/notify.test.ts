// Deploy notifications (tasks/lib/release/notify.ts) against a real HTTP server on loopback: the
// body of each format, retries of 5xx within their bound, a webhook that keeps failing or cannot be
// reached is a warning (never an error), and the URL (a secret) never shows in the log.
import { strict as assert } from 'node:assert';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { InputError } from '../../tasks/lib/errors';
import { runUrl } from '../../tasks/lib/context';
import { DeployNotice, notificationBody, notifySettings, sendNotification, withNotification } from '../../tasks/lib/release/notify';
import { createTestContext } from '../support/context';

const D1 = `sha256:${'1'.repeat(64)}`;
const D2 = `sha256:${'2'.repeat(64)}`;
const notice: DeployNotice = {
  task: 'ComposeDeploy',
  environment: 'staging',
  result: 'failed',
  rolledBack: true,
  buildNumber: '20261202.3',
  message: 'The bake window failed: shop-staging-web-1 (service web) exited with code 1, 5.2 s into the 30 s window.',
  runUrl: 'https://dev.azure.com/contoso/Shop%20App/_build/results?buildId=812',
  services: [
    { service: 'web', before: `registry.example.com/shop/web@${D1}`, after: `registry.example.com/shop/web@${D2}` },
    { service: 'worker', before: `registry.example.com/busybox@${D1}`, after: `registry.example.com/busybox@${D1}` },
    { service: 'cache', after: `registry.example.com/redis@${D2}` },
  ],
};

interface Received {
  method: string;
  path: string;
  contentType?: string;
  body: unknown;
}

/** A webhook on 127.0.0.1 answering each POST with the next status of `statuses` (the last one repeats). */
let server: http.Server;
let base: string;
let statuses: number[] = [];
const received: Received[] = [];
before(async () => {
  server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ method: req.method ?? '', path: req.url ?? '', contentType: req.headers['content-type'], body: JSON.parse(Buffer.concat(chunks).toString('utf8')) });
      const status = statuses.length > 1 ? statuses.shift()! : (statuses[0] ?? 200);
      res.writeHead(status, { 'Content-Type': 'text/plain' }).end(status < 300 ? 'ok' : 'no');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => new Promise<void>((resolve) => server.close(() => resolve())));

const fast = { retry: { baseDelayMs: 5, maxDelayMs: 20 } };
const hookUrl = () => `${base}/hooks/T0001/B0002/s3cr3tKeyOfTheHook`;

describe('notification bodies', () => {
  test('json: environment, result, rolled back, each service with its old and new digest, the run URL', () => {
    const body = notificationBody(notice, 'json');
    const { services: _, ...fields } = notice; // task, environment, result, rolledBack, buildNumber, message, runUrl: as they are
    assert.deepEqual(body, {
      schemaVersion: 1,
      ...fields,
      services: [
        { service: 'web', repository: 'registry.example.com/shop/web', oldDigest: D1, newDigest: D2, changed: true },
        { service: 'worker', repository: 'registry.example.com/busybox', oldDigest: D1, newDigest: D1, changed: false },
        { service: 'cache', repository: 'registry.example.com/redis', oldDigest: undefined, newDigest: D2, changed: true },
      ],
    });
  });

  test('teams: a message with an Adaptive Card (title, facts per service, a link to the run)', () => {
    const body = notificationBody(notice, 'teams') as { type: string; attachments: { contentType: string; content: Record<string, any> }[] };
    assert.equal(body.type, 'message');
    assert.equal(body.attachments[0].contentType, 'application/vnd.microsoft.card.adaptive');
    const card = body.attachments[0].content;
    assert.equal(card.type, 'AdaptiveCard');
    assert.equal(card.body[0].text, 'ComposeDeploy of build 20261202.3 to staging failed; rolled back to the previous release');
    assert.equal(card.body[0].color, 'Attention');
    const facts = Object.fromEntries(card.body[1].facts.map((f: { title: string; value: string }) => [f.title, f.value]));
    assert.deepEqual(facts, {
      Environment: 'staging',
      Result: 'failed',
      'Rolled back': 'yes',
      web: 'sha256:111111111111 → sha256:222222222222',
      worker: 'sha256:111111111111 (unchanged)',
      cache: '— → sha256:222222222222',
    });
    assert.equal(card.body[2].text, notice.message);
    assert.deepEqual(card.actions, [{ type: 'Action.OpenUrl', title: 'Open the run', url: notice.runUrl }]);
  });

  test('slack: text for the notification, blocks in mrkdwn with &, < and > escaped, the run linked', () => {
    const body = notificationBody({ ...notice, result: 'succeeded', rolledBack: false, message: undefined, environment: 'qa <eu> & us' }, 'slack') as { text: string; blocks: Record<string, any>[] };
    assert.equal(body.text, 'ComposeDeploy of build 20261202.3 to qa &lt;eu&gt; &amp; us succeeded');
    assert.equal(body.blocks[0].text.text, '*ComposeDeploy of build 20261202.3 to qa &lt;eu&gt; &amp; us succeeded*');
    assert.equal(body.blocks[1].text.text, '• `web` sha256:111111111111 → sha256:222222222222\n• `worker` sha256:111111111111 (unchanged)\n• `cache` — → sha256:222222222222');
    assert.deepEqual(body.blocks[2], { type: 'context', elements: [{ type: 'mrkdwn', text: `<${notice.runUrl}|Open the run>` }] });
  });

  test('the run URL from the pipeline variables; none outside a pipeline', () => {
    assert.equal(runUrl({ collectionUri: 'https://dev.azure.com/contoso/', project: 'Shop App', buildId: '812' }), 'https://dev.azure.com/contoso/Shop%20App/_build/results?buildId=812');
    assert.equal(runUrl({ collectionUri: 'https://tfs.contoso.local/tfs/Default', project: 'shop', buildId: '7' }), 'https://tfs.contoso.local/tfs/Default/shop/_build/results?buildId=7');
    assert.equal(runUrl({ project: 'shop', buildId: '7' }), undefined);
  });

  test('notifyUrl: registered as a secret at once; not a URL is an error that does not repeat it', () => {
    const secrets: string[] = [];
    assert.deepEqual(notifySettings('https://hooks.slack.com/services/T/B/key', 'slack', (s) => secrets.push(s)), { url: 'https://hooks.slack.com/services/T/B/key', format: 'slack' });
    assert.deepEqual(secrets, ['https://hooks.slack.com/services/T/B/key']);
    assert.equal(notifySettings(undefined, 'json', () => undefined), undefined);
    assert.throws(() => notifySettings('hooks/secretkey', 'json', () => undefined), (err: Error) => err instanceof InputError && /Input 'notifyUrl' is not a URL/.test(err.message) && !err.message.includes('secretkey'));
    assert.throws(() => notifySettings('ftp://example.com/x', 'json', () => undefined), /Input 'notifyUrl' must be an https:\/\/ \(or http:\/\/\) URL, not ftp:/);
  });
});

describe('sending', () => {
  test('one POST of the JSON body; the URL is a secret and never printed', async () => {
    received.length = 0;
    statuses = [204];
    const ctx = createTestContext();
    const sent = await sendNotification({ url: hookUrl(), format: 'json' }, notice, ctx, fast);
    assert.equal(sent, true);
    assert.equal(received.length, 1);
    assert.deepEqual(received[0], { method: 'POST', path: '/hooks/T0001/B0002/s3cr3tKeyOfTheHook', contentType: 'application/json', body: JSON.parse(JSON.stringify(notificationBody(notice, 'json'))) });
    assert.ok(ctx.secrets.has(hookUrl()));
    assert.deepEqual(ctx.logs, ['Notification (json) sent to the notifyUrl webhook: it answered 204.']);
  });

  test('500 then 503 are retried; the third attempt is delivered', async () => {
    received.length = 0;
    statuses = [500, 503, 200];
    const ctx = createTestContext();
    assert.equal(await sendNotification({ url: hookUrl(), format: 'slack' }, notice, ctx, fast), true);
    assert.equal(received.length, 3);
    assert.ok(received.every((r) => typeof (r.body as { text?: string }).text === 'string'));
  });

  test('a webhook that keeps answering 500 gets 3 attempts, then a warning; nothing is thrown', async () => {
    received.length = 0;
    statuses = [500];
    const ctx = createTestContext();
    assert.equal(await sendNotification({ url: hookUrl(), format: 'teams' }, notice, ctx, fast), false);
    assert.equal(received.length, 3, 'bounded: three attempts in all');
    assert.deepEqual(ctx.logs, ["WARNING: The notification could not be delivered: the notifyUrl webhook answered 500 after 3 attempts. The deploy's result is not changed by it."]);
    assert.ok(!ctx.logs.join('\n').includes('s3cr3t'), 'the URL is not printed');
  });

  test('a 404 is not retried; a webhook nobody listens on is a warning naming the network error only', async () => {
    received.length = 0;
    statuses = [404];
    const ctx = createTestContext();
    assert.equal(await sendNotification({ url: hookUrl(), format: 'json' }, notice, ctx, fast), false);
    assert.equal(received.length, 1);
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const gone = createTestContext();
    assert.equal(await sendNotification({ url: `http://127.0.0.1:${port}/hooks/s3cr3t`, format: 'json' }, notice, gone, fast), false);
    assert.deepEqual(gone.logs, ["WARNING: The notification could not be delivered: the notifyUrl webhook could not be reached (ECONNREFUSED) after 3 attempts. The deploy's result is not changed by it."]);
  });

  test('a webhook that does not answer in the time a notification has is a warning', async () => {
    const silent = http.createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const ctx = createTestContext();
      const started = Date.now();
      const url = `http://127.0.0.1:${(silent.address() as AddressInfo).port}/hook`;
      assert.equal(await sendNotification({ url, format: 'json' }, notice, ctx, { ...fast, deadline: Date.now() + 1_000 }), false);
      assert.ok(Date.now() - started < 3_000, 'bounded by its deadline');
      assert.match(ctx.logs.join('\n'), /^WARNING: The notification could not be delivered: the notifyUrl webhook did not answer within the 1 s a notification has\./);
    } finally {
      silent.closeAllConnections();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  });
});

describe('withNotification around a deploy', () => {
  const variables = { 'System.CollectionUri': 'https://dev.azure.com/contoso/', 'System.TeamProject': 'shop', 'Build.BuildId': '42' };
  const about = { task: 'KubernetesDeploy' as const, environment: 'prod', buildNumber: '7' };

  test('a success: result succeeded, the services the deploy recorded, the run URL; the value is passed on', async () => {
    received.length = 0;
    statuses = [200];
    const ctx = createTestContext(variables);
    const value = await withNotification({ url: hookUrl(), format: 'json' }, ctx, about, async (c, notes) => {
      notes.services([{ service: 'web', before: `r.example/web@${D1}`, after: `r.example/web@${D2}` }]);
      c.output('rolledBack', 'false');
      return 'deployed';
    });
    assert.equal(value, 'deployed');
    assert.equal(ctx.outputs.rolledBack, 'false', 'outputs still reach the task');
    const body = received[0].body as Record<string, any>;
    assert.equal(body.result, 'succeeded');
    assert.equal(body.rolledBack, false);
    assert.equal(body.runUrl, 'https://dev.azure.com/contoso/shop/_build/results?buildId=42');
    assert.deepEqual(body.services, [{ service: 'web', repository: 'r.example/web', oldDigest: D1, newDigest: D2, changed: true }]);
  });

  test('a failure that rolled back: result failed, rolledBack from the task output, the first line of the error; the error is rethrown unchanged', async () => {
    received.length = 0;
    statuses = [500];
    const ctx = createTestContext(variables);
    const failure = new Error('The rollout failed:\n  Deployment prod/web: CrashLoopBackOff');
    await assert.rejects(
      withNotification({ url: hookUrl(), format: 'json' }, ctx, about, async (c) => {
        c.output('rolledBack', 'true');
        throw failure;
      }, fast),
      (err) => err === failure,
    );
    const body = received[0].body as Record<string, any>;
    assert.equal(body.result, 'failed');
    assert.equal(body.rolledBack, true);
    assert.equal(body.message, 'The rollout failed:');
    assert.match(ctx.logs.join('\n'), /WARNING: The notification could not be delivered: the notifyUrl webhook answered 500 after 3 attempts/);
  });

  test('a cancelled deploy notifies "cancelled"; without notifyUrl nothing is sent', async () => {
    received.length = 0;
    statuses = [200];
    const ctx = createTestContext(variables);
    await assert.rejects(
      withNotification({ url: hookUrl(), format: 'json' }, ctx, about, async () => {
        ctx.abort('KubernetesDeploy was cancelled (SIGTERM).');
        throw new Error('cancelled');
      }),
    );
    assert.equal((received[0].body as Record<string, any>).result, 'cancelled');
    received.length = 0;
    assert.equal(await withNotification(undefined, createTestContext(variables), about, async () => 1), 1);
    assert.equal(received.length, 0);
  });
});
