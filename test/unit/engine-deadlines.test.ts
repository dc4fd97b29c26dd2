// Time limits of the Engine API client against engines that misbehave on a real unix socket: one
// that accepts connections and never answers (frozen), one that starts a build, push or pull
// stream and then sends nothing more (stalled), and one whose connection closes mid-stream (gone).
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { buildAndTag } from '../../tasks/lib/build';
import { engineFromEnvironment } from '../../tasks/lib/docker/engine';
import { followStream } from '../../tasks/lib/docker/stream';
import { transferWithRetries } from '../../tasks/lib/docker/transfer';
import { RegistryError } from '../../tasks/lib/errors';
import { PushOptions, pushWithDigest } from '../../tasks/lib/push';
import { RegistryClient } from '../../tasks/lib/registry/client';
import { createTestContext } from '../support/context';
import { buildOptions } from '../support/images';
import { pushWithDigestDefaults } from '../support/task-defaults';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'col-engine-'));
after(() => fs.rmSync(work, { recursive: true, force: true }));

/** Generous: the limits below are 1 s; a test that ends later than this has hung. */
const BOUND = { timeout: 20_000 };

type Behaviour = 'stall' | 'close';

/** A unix socket; `handler` answers HTTP, or with no handler the socket accepts and never answers. */
async function listen(handler?: http.RequestListener): Promise<{ socket: string; close(): Promise<void> }> {
  const socket = path.join(work, `engine-${Math.random().toString(36).slice(2)}.sock`);
  const sockets = new Set<net.Socket>();
  const server = handler ? http.createServer(handler) : net.createServer(() => undefined);
  server.on('connection', (s: net.Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(socket, resolve));
  return {
    socket,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** An engine that answers ping and version (API 1.38: the classic builder, no BuildKit session), and starts every build, push and pull stream, then stalls or closes. */
function streamingEngine(behaviour: Behaviour): http.RequestListener {
  return (req, res) => {
    req.resume();
    req.on('end', () => {
      const url = req.url ?? '';
      if (url.startsWith('/_ping')) return void res.end('OK');
      if (url.startsWith('/version')) return void res.end(JSON.stringify({ ApiVersion: '1.38', Os: 'linux', Version: '18.06.0' }));
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.write(`${JSON.stringify({ stream: 'Step 1/1 : FROM scratch\n', status: 'Preparing', id: 'layer' })}\n`);
      if (behaviour === 'close') setTimeout(() => res.socket?.destroy(), 100);
    });
  };
}

/**
 * Runs `fn` against an engine on a fresh unix socket (`handler` as for listen) with DOCKER_HOST
 * pointing at it, as the tasks' engines find it; then restores DOCKER_HOST and closes the engine.
 */
async function withEngine<T>(handler: http.RequestListener | undefined, fn: (socket: string) => Promise<T>): Promise<T> {
  const engine = await listen(handler);
  const saved = process.env.DOCKER_HOST;
  process.env.DOCKER_HOST = `unix://${engine.socket}`;
  try {
    return await fn(engine.socket);
  } finally {
    if (saved === undefined) delete process.env.DOCKER_HOST;
    else process.env.DOCKER_HOST = saved;
    await engine.close();
  }
}

/** BuildAndTag of `localhost:5000/<name>:1` from `FROM scratch`, on the engine DOCKER_HOST names. */
function buildScratch(name: string, stallSeconds: number): Promise<unknown> {
  const dir = fs.mkdtempSync(path.join(work, 'ctx-'));
  fs.writeFileSync(path.join(dir, 'Dockerfile'), 'FROM scratch\n');
  const options = buildOptions(engineFromEnvironment({ stallSeconds }), {
    dockerfile: path.join(dir, 'Dockerfile'),
    buildContext: dir,
    imageName: `localhost:5000/${name}`,
    tags: ['1'],
    buildRecordPath: path.join(work, `record-${name}.json`),
  });
  return buildAndTag(options, createTestContext());
}

/** PushWithDigest's options for `localhost:5000/app:1` on `engine`, the lock written to `lockName` in the work folder. */
function pushOptions(engine: PushOptions['engine'], lockName: string): PushOptions {
  return {
    engine,
    client: new RegistryClient(),
    credentials: async () => undefined,
    images: ['localhost:5000/app:1'],
    additionalTags: [],
    lockFile: path.join(work, lockName),
    publishArtifact: false,
    artifactName: 'image-lock',
    pipeline: {},
    ...pushWithDigestDefaults(),
  };
}

describe('an engine that accepts and never answers', () => {
  it('fails the first call after the call deadline, naming the engine and what to do', BOUND, async () => {
    await withEngine(undefined, async (socket) => {
      const connect = engineFromEnvironment({ stallSeconds: 1, callTimeoutSeconds: 1 });
      await assert.rejects(connect(), (err: Error) => {
        assert.match(err.message, new RegExp(`the Docker engine at unix://${socket.replace(/[.]/g, '\\.')} did not answer GET /_ping within 1 s`));
        assert.match(err.message, /Check that the engine is running/);
        return true;
      });
    });
  });
});

describe('an engine that answers the ping, then freezes', () => {
  it('a push says the engine did not answer, not that the image is missing', BOUND, async () => {
    await withEngine((req, res) => {
      if ((req.url ?? '').startsWith('/_ping')) res.end('OK');
    }, async () => {
      const options = pushOptions(engineFromEnvironment({ stallSeconds: 1, callTimeoutSeconds: 1 }), 'lock-frozen.json');
      await assert.rejects(pushWithDigest(options, createTestContext()), /^DockerError: the Docker engine at unix:\/\/.* did not answer GET \/images\/localhost:5000\/app:1\/json within 1 s/);
      options.client.close();
    });
  });
});

describe('a progress stream that stops', () => {
  it('a build with no progress for engineStallSeconds fails: the engine stopped answering', BOUND, async () => {
    await withEngine(streamingEngine('stall'), async () => {
      await assert.rejects(buildScratch('stalled', 1), (err: Error) => {
        assert.match(err.message, /Building .*stalled.* failed: the Docker engine at unix:\/\/.* stopped answering \(no progress for 1 s\)/);
        assert.match(err.message, /engineStallSeconds/);
        return true;
      });
    });
  });

  it('a push with no progress fails the same way', BOUND, async () => {
    await withEngine(streamingEngine('stall'), async () => {
      const docker = await engineFromEnvironment({ stallSeconds: 1 })();
      const stream = await docker.getImage('localhost:5000/app:1').push({});
      await assert.rejects(followStream(stream, 'Pushing localhost:5000/app:1'), /Pushing localhost:5000\/app:1 failed: the Docker engine at .* stopped answering \(no progress for 1 s\)/);
    });
  });
});

describe('an engine that goes away mid-stream', () => {
  it('a build says the engine went away, not just "aborted"', BOUND, async () => {
    await withEngine(streamingEngine('close'), async () => {
      await assert.rejects(buildScratch('gone', 30), (err: Error) => {
        assert.match(err.message, /Building .*gone.* failed: the Docker engine at unix:\/\/.* went away/);
        assert.match(err.message, /crashed or restarted/);
        return true;
      });
    });
  });

  it('a pull says so too', BOUND, async () => {
    await withEngine(streamingEngine('close'), async () => {
      const docker = await engineFromEnvironment({ stallSeconds: 30 })();
      const stream = (await docker.createImage({ fromImage: 'localhost:5000/app:1' })) as NodeJS.ReadableStream;
      await assert.rejects(followStream(stream, 'Pulling localhost:5000/app:1'), /Pulling localhost:5000\/app:1 failed: the Docker engine at .* went away/);
    });
  });
});

describe('what the limits leave alone', () => {
  it('a cancel during a stream stays a cancel, not "went away"', BOUND, async () => {
    await withEngine(streamingEngine('stall'), async () => {
      const docker = await engineFromEnvironment({ stallSeconds: 30 })();
      const cancel = new AbortController();
      const stream = await docker.getImage('localhost:5000/app:1').push({ abortSignal: cancel.signal } as object);
      setTimeout(() => cancel.abort(new Error('The job was cancelled.')), 200);
      await assert.rejects(followStream(stream, 'Pushing localhost:5000/app:1'), (err: Error) => {
        assert.doesNotMatch(err.message, /went away|stopped answering/);
        return true;
      });
    });
  });

  it("a container's wait has no call limit: it lasts as long as the container runs", BOUND, async () => {
    await withEngine((req, res) => {
      if ((req.url ?? '').startsWith('/_ping')) return void res.end('OK');
      setTimeout(() => res.end(JSON.stringify({ StatusCode: 0 })), 2_500); // /containers/x/wait
    }, async () => {
      const docker = await engineFromEnvironment({ stallSeconds: 1, callTimeoutSeconds: 1 })();
      assert.deepEqual(await docker.getContainer('x').wait(), { StatusCode: 0 });
    });
  });
});

/**
 * An engine whose pushes behave like a real engine's against a failing registry: `retrying`
 * streams the engine's own "Retrying in N seconds" lines and never ends; `500` reports the
 * registry's 500 as the stream's error line; `progress` uploads a layer a little at a time and
 * then reports the digest. Ping, image inspect and tag answer as an engine does.
 */
function pushingEngine(behaviour: 'retrying' | '500' | 'progress', pushes: { count: number }): http.RequestListener {
  const digest = `sha256:${'a'.repeat(64)}`;
  return (req, res) => {
    req.resume();
    const url = req.url ?? '';
    if (url.startsWith('/_ping')) return void res.end('OK');
    if (/^\/images\/.+\/json/.test(url)) return void res.end(JSON.stringify({ Id: `sha256:${'b'.repeat(64)}`, Os: 'linux', Architecture: 'amd64' }));
    if (/^\/images\/.+\/tag/.test(url)) return void res.writeHead(201).end();
    if (!/^\/images\/.+\/push/.test(url)) return void res.writeHead(404).end('{}');
    pushes.count++;
    res.writeHead(200, { 'Content-Type': 'application/json' });
    const line = (event: object) => res.write(`${JSON.stringify(event)}\n`);
    line({ status: 'The push refers to repository [localhost:5000/app]' });
    if (behaviour === '500') {
      line({ errorDetail: { message: 'received unexpected HTTP status: 500 Internal Server Error' }, error: 'received unexpected HTTP status: 500 Internal Server Error' });
      return void res.end();
    }
    let n = 0;
    const timer = setInterval(() => {
      n++;
      if (behaviour === 'retrying') return void line({ status: `Retrying in ${5 - (n % 5)} seconds`, progressDetail: {}, id: 'layer' });
      if (n <= 15) return void line({ status: 'Pushing', progressDetail: { current: n * 1000, total: 15_000 }, id: 'layer' });
      clearInterval(timer);
      line({ status: `1: digest: ${digest} size: 528` });
      res.end();
    }, 200);
    res.on('close', () => clearInterval(timer));
  };
}

describe('registryTimeoutSeconds through the engine', () => {
  const transfer = (docker: import('dockerode'), over: Partial<Parameters<typeof transferWithRetries>[0]> = {}) =>
    transferWithRetries({
      what: 'Pushing localhost:5000/app:1',
      registry: 'localhost:5000',
      timeoutSeconds: 2,
      attempts: 5,
      baseDelayMs: 50,
      signal: new AbortController().signal,
      log: { warn: () => undefined, debug: () => undefined },
      start: (signal) => docker.getImage('localhost:5000/app:1').push({ abortSignal: signal } as object),
      ...over,
    });

  it('a push the engine keeps retrying is stopped at the limit, naming the registry and the engine\'s last word', BOUND, async () => {
    const pushes = { count: 0 };
    await withEngine(pushingEngine('retrying', pushes), async () => {
      const ctx = createTestContext();
      const options = { ...pushOptions(engineFromEnvironment({ stallSeconds: 30 }), 'lock.json'), registryTimeoutSeconds: 2 };
      await assert.rejects(pushWithDigest(options, ctx), (err: RegistryError) => {
        assert.ok(err instanceof RegistryError);
        assert.equal(err.registry, 'localhost:5000');
        assert.match(err.message, /^Pushing localhost:5000\/app:1 failed: it did not get through to the registry localhost:5000 within 2 s \(registryTimeoutSeconds; 1 attempt; no attempt finished \(the engine's last word: 'layer: Retrying in \d seconds'\)\)\. Check that the registry is healthy/);
        return true;
      });
      options.client.close();
    });
    assert.equal(pushes.count, 1);
  });

  it('a registry answering 500 on every attempt: retried, then a message that counts the attempts', BOUND, async () => {
    const pushes = { count: 0 };
    await withEngine(pushingEngine('500', pushes), async () => {
      const docker = await engineFromEnvironment({ stallSeconds: 30 })();
      await assert.rejects(
        transfer(docker, { timeoutSeconds: 30, attempts: 3 }),
        /^RegistryError: Pushing localhost:5000\/app:1 failed after 3 attempts: received unexpected HTTP status: 500 Internal Server Error\. Check that the registry localhost:5000 is reachable/,
      );
    });
    assert.equal(pushes.count, 3);
  });

  it('a registry answering 500 with too little time for the attempts: ends at the limit', BOUND, async () => {
    const pushes = { count: 0 };
    await withEngine(pushingEngine('500', pushes), async () => {
      const docker = await engineFromEnvironment({ stallSeconds: 30 })();
      await assert.rejects(
        transfer(docker, { timeoutSeconds: 1, attempts: 50, baseDelayMs: 200 }),
        /did not get through to the registry localhost:5000 within 1 s \(registryTimeoutSeconds; \d attempts?; the last failure: received unexpected HTTP status: 500 Internal Server Error\)/,
      );
    });
    assert.ok(pushes.count < 50);
  });

  it('a push that keeps uploading is not cut off by the limit', BOUND, async () => {
    const pushes = { count: 0 };
    await withEngine(pushingEngine('progress', pushes), async () => {
      const docker = await engineFromEnvironment({ stallSeconds: 30 })();
      const started = Date.now();
      await transfer(docker, { timeoutSeconds: 1 });
      assert.ok(Date.now() - started > 2_000, 'the upload took longer than the limit');
    });
    assert.equal(pushes.count, 1);
  });
});
