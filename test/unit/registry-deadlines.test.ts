// registryTimeoutSeconds bounds one registry operation as a whole (every attempt and every wait
// between them), against real sockets: a registry that accepts and never answers, and one that
// answers 500 to everything, with and without a Retry-After longer than the time left.
import assert from 'node:assert/strict';
import * as http from 'node:http';
import * as net from 'node:net';
import { describe, it } from 'node:test';
import { RegistryError } from '../../tasks/lib/errors';
import { parseReference } from '../../tasks/lib/reference';
import { RegistryClient } from '../../tasks/lib/registry/client';

/** Generous: the limits below are 2 s; a test that ends later than this has hung. */
const BOUND = { timeout: 20_000 };

async function listen(server: net.Server): Promise<{ host: string; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  server.on('connection', (s: net.Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    host: `127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

function answering500(headers: Record<string, string> = {}): { server: http.Server; requests: () => number } {
  let requests = 0;
  const server = http.createServer((req, res) => {
    requests++;
    req.resume();
    res.writeHead(500, { 'Content-Type': 'application/json', ...headers });
    res.end(JSON.stringify({ errors: [{ code: 'UNKNOWN', message: 'internal error' }] }));
  });
  return { server, requests: () => requests };
}

describe('registryTimeoutSeconds', () => {
  it('a registry that never answers fails within the time limit, saying so', BOUND, async () => {
    const registry = await listen(net.createServer(() => undefined));
    const client = new RegistryClient({ timeoutSeconds: 2 });
    try {
      await assert.rejects(client.resolve(parseReference(`${registry.host}/team/app:1`)), (err: RegistryError) => {
        assert.ok(err instanceof RegistryError);
        assert.equal(err.registry, registry.host);
        assert.match(err.message, new RegExp(`^${registry.host} did not answer within 2 s`));
        assert.match(err.message, /registryTimeoutSeconds/);
        return true;
      });
    } finally {
      client.close();
      await registry.close();
    }
  });

  it('a registry answering 500 is tried until the attempts run out, and the message counts them', BOUND, async () => {
    const fake = answering500();
    const registry = await listen(fake.server);
    const client = new RegistryClient({ timeoutSeconds: 10, retry: { baseDelayMs: 5, maxDelayMs: 20 } });
    try {
      await assert.rejects(client.resolve(parseReference(`${registry.host}/team/app:1`)), (err: RegistryError) => {
        assert.equal(err.status, 500);
        assert.match(err.message, new RegExp(`^${registry.host} answered 500 for ${registry.host}/team/app:1, still after 5 attempts\\.`));
        assert.match(err.message, /try again later/);
        return true;
      });
      assert.equal(fake.requests(), 5);
    } finally {
      client.close();
      await registry.close();
    }
  });

  it('a registry answering 500 with a long Retry-After: no wait past the time limit', BOUND, async () => {
    const fake = answering500({ 'Retry-After': '30' });
    const registry = await listen(fake.server);
    const client = new RegistryClient({ timeoutSeconds: 2 });
    try {
      await assert.rejects(client.resolve(parseReference(`${registry.host}/team/app:1`)), (err: RegistryError) => {
        assert.equal(err.status, 500);
        assert.match(err.message, new RegExp(`^${registry.host} answered 500 for .*, still after 1 attempt when the time limit of 2 s \\(registryTimeoutSeconds\\) ran out`));
        return true;
      });
      assert.equal(fake.requests(), 1, 'no second attempt: the wait it asked for ends after the time limit');
    } finally {
      client.close();
      await registry.close();
    }
  });

  it('resolveMany over a hanging registry ends within the limit too', BOUND, async () => {
    const registry = await listen(net.createServer(() => undefined));
    const client = new RegistryClient({ timeoutSeconds: 2, concurrency: 2 });
    try {
      const refs = ['a', 'b', 'c', 'd', 'e'].map((n) => parseReference(`${registry.host}/team/${n}:1`));
      await assert.rejects(client.resolveMany(refs), new RegExp(`${registry.host} did not answer within 2 s`));
    } finally {
      client.close();
      await registry.close();
    }
  });
});
