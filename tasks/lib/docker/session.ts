// A BuildKit session: how a build gets secrets and SSH agents without them ever reaching a build
// arg, a layer, the cache key or a command line. The engine's /session endpoint upgrades an HTTP
// request to h2c; the engine then dials back over that connection as a gRPC client and calls the
// services we list in the X-Docker-Expose-Session-Grpc-Method headers (what the Docker CLI and
// buildx do: moby/buildkit session/session.go). We serve:
//   moby.buildkit.secrets.v1.Secrets/GetSecret   RUN --mount=type=secret
//   moby.sshforward.v1.SSH/CheckAgent, ForwardAgent  RUN --mount=type=ssh (bytes of the agent protocol)
//   grpc.health.v1.Health/Check                  the engine's liveness probe of the session
// A build names the session with the /build query parameter `session`.
import { randomBytes, createHash } from 'node:crypto';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import { Duplex } from 'node:stream';
import type Dockerode from 'dockerode';
import { DockerError } from '../errors';
import { abortError } from '../util/abort';
import { ENGINE_CALL_TIMEOUT_SECONDS } from './engine';
import { decode, field, text } from './protobuf';

export interface BuildSecret {
  id: string;
  value: Buffer;
}

export interface SshForward {
  id: string;
  /** Opens a connection that speaks the SSH agent protocol: the agent's socket, or an agent of our own holding a key. */
  connect(): Duplex;
  /** The agent's socket, when it is one (buildx is given it as it is). */
  socketPath?: string;
}

export interface BuildSession {
  id: string;
  close(): void;
}

const SECRETS = '/moby.buildkit.secrets.v1.Secrets/GetSecret';
const CHECK_AGENT = '/moby.sshforward.v1.SSH/CheckAgent';
const FORWARD_AGENT = '/moby.sshforward.v1.SSH/ForwardAgent';
const HEALTH = '/grpc.health.v1.Health/Check';

// gRPC status codes (grpc/codes).
const NOT_FOUND = 5;
const INTERNAL = 13;
const UNIMPLEMENTED = 12;

/** A gRPC message on the wire: compressed flag, 4-byte big-endian length, the message. */
function frame(message: Buffer): Buffer {
  const header = Buffer.alloc(5);
  header.writeUInt32BE(message.length, 1);
  return Buffer.concat([header, message]);
}

/** Calls `onMessage` for each gRPC message of a request stream. */
function readMessages(stream: http2.ServerHttp2Stream, onMessage: (message: Buffer) => void): void {
  let pending = Buffer.alloc(0);
  stream.on('data', (chunk: Buffer) => {
    pending = Buffer.concat([pending, chunk]);
    while (pending.length >= 5) {
      const length = pending.readUInt32BE(1);
      if (pending.length < 5 + length) break;
      if (pending[0] !== 0) return fail(stream, INTERNAL, 'compressed gRPC messages are not accepted');
      onMessage(pending.subarray(5, 5 + length));
      pending = pending.subarray(5 + length);
    }
  });
}

function fail(stream: http2.ServerHttp2Stream, status: number, message: string): void {
  if (stream.destroyed || stream.closed) return;
  if (stream.headersSent) {
    stream.end();
    return;
  }
  stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': String(status), 'grpc-message': encodeURIComponent(message) }, { endStream: true });
}

/** Answers a unary call with one message once its request has come. */
function unary(stream: http2.ServerHttp2Stream, answer: (request: Buffer) => Buffer | { status: number; message: string }): void {
  readMessages(stream, (request) => {
    let reply: Buffer | { status: number; message: string };
    try {
      reply = answer(request);
    } catch (err) {
      reply = { status: INTERNAL, message: (err as Error).message };
    }
    if (!Buffer.isBuffer(reply)) return fail(stream, reply.status, reply.message);
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
    stream.end(frame(reply));
  });
}

/** Pipes a ForwardAgent stream (BytesMessage both ways) to a connection to the agent. */
function forwardAgent(stream: http2.ServerHttp2Stream, agent: Duplex): void {
  stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
  stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
  readMessages(stream, (message) => {
    const data = decode(message).find((f) => f.number === 1 && 'bytes' in f);
    if (data && 'bytes' in data) agent.write(data.bytes);
  });
  agent.on('data', (chunk: Buffer) => {
    if (!stream.closed) stream.write(frame(field(1, chunk)));
  });
  const end = () => {
    if (!stream.closed) stream.end();
  };
  agent.on('end', end);
  agent.on('error', end);
  stream.on('end', () => agent.end());
  stream.on('close', () => agent.destroy());
}

function serve(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, secrets: BuildSecret[], ssh: SshForward[]): void {
  stream.on('error', () => undefined); // the engine ended the call: nothing to answer
  const sshFor = (id: string) => ssh.find((s) => s.id === (id || 'default'));
  switch (headers[':path']) {
    case HEALTH:
      return unary(stream, () => field(1, 1)); // SERVING
    case SECRETS:
      return unary(stream, (request) => {
        const id = text(decode(request), 1); // field 2, annotations, asks for nothing we could match
        const secret = secrets.find((s) => s.id === id);
        return secret ? field(1, secret.value) : { status: NOT_FOUND, message: `secret ${id} not found: give it in the secrets input (id=${id},env=VARIABLE or id=${id},file=PATH) or the service's build.secrets` };
      });
    case CHECK_AGENT:
      return unary(stream, (request) => {
        const id = text(decode(request), 1);
        return sshFor(id) ? Buffer.alloc(0) : { status: NOT_FOUND, message: `no SSH agent or key with id '${id || 'default'}': give it in the ssh input or the service's build.ssh` };
      });
    case FORWARD_AGENT: {
      const id = String(headers['buildkit.ssh.id'] ?? '');
      const forward = sshFor(id);
      if (!forward) return fail(stream, NOT_FOUND, `no SSH agent or key with id '${id || 'default'}'`);
      let agent: Duplex;
      try {
        agent = forward.connect();
      } catch (err) {
        return fail(stream, INTERNAL, (err as Error).message);
      }
      return forwardAgent(stream, agent);
    }
    default:
      return fail(stream, UNIMPLEMENTED, `${headers[':path']} is not served by this session`);
  }
}

type Modem = {
  socketPath?: string | (() => string | Promise<string>);
  host?: string;
  port?: number | string;
  protocol?: string;
  ca?: string | Buffer;
  cert?: string | Buffer;
  key?: string | Buffer;
  agent?: http.Agent;
  version?: string;
};

/** The HTTP request options that reach the engine docker-modem talks to: its socket, TCP (with TLS) or SSH agent. */
async function engineRequest(docker: Dockerode): Promise<http.RequestOptions & { https: boolean }> {
  const modem = (docker as unknown as { modem: Modem }).modem;
  const socketPath = typeof modem.socketPath === 'function' ? await modem.socketPath() : modem.socketPath;
  const https = modem.protocol === 'https';
  return {
    https,
    ...(socketPath ? { socketPath } : { host: modem.host, port: modem.port }),
    ...(https ? { ca: modem.ca, cert: modem.cert, key: modem.key } : {}),
    ...(modem.agent ? { agent: modem.agent } : {}),
    path: `${modem.version ? `/v${modem.version.replace(/^v/, '')}` : ''}/session`,
  } as http.RequestOptions & { https: boolean };
}

/**
 * Opens a session serving these secrets and SSH agents to the builds that name its id. The engine
 * holds it open until close(). `name` and `sharedKey` are what BuildKit shows and scopes local
 * caches by; the Docker CLI uses the context folder, and so do we.
 */
export async function openBuildSession(docker: Dockerode, provides: { secrets: BuildSecret[]; ssh: SshForward[]; contextDir: string; signal?: AbortSignal }): Promise<BuildSession> {
  const id = randomBytes(16).toString('hex');
  const request = await engineRequest(docker);
  const methods = [HEALTH, ...(provides.secrets.length ? [SECRETS] : []), ...(provides.ssh.length ? [CHECK_AGENT, FORWARD_AGENT] : [])];
  const headers = {
    Connection: 'Upgrade',
    Upgrade: 'h2c',
    'X-Docker-Expose-Session-Uuid': id,
    'X-Docker-Expose-Session-Name': 'container-outer-loop',
    'X-Docker-Expose-Session-Sharedkey': createHash('sha256').update(provides.contextDir).digest('hex'),
    'X-Docker-Expose-Session-Grpc-Method': methods,
  };
  const { https, ...options } = request;
  const transport = https ? (await import('node:https')) : http;
  // The upgrade is not a docker-modem call, so it gets the engine calls' deadline here.
  const deadline = AbortSignal.timeout(ENGINE_CALL_TIMEOUT_SECONDS * 1000);
  const socket = await new Promise<Duplex>((resolve, reject) => {
    const req = transport.request({ ...options, method: 'POST', headers, signal: provides.signal ? AbortSignal.any([provides.signal, deadline]) : deadline });
    req.on('upgrade', (_res, upgraded: net.Socket, head: Buffer) => {
      if (head.length) upgraded.unshift(head);
      resolve(upgraded);
    });
    req.on('response', (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => reject(new DockerError(`The Docker engine refused a BuildKit session (HTTP ${res.statusCode}: ${body.trim() || res.statusMessage}). Build secrets and SSH need an engine with BuildKit (Docker 18.09 or newer on Linux).`)));
    });
    req.on('error', (err) => {
      if (provides.signal?.aborted) return reject(abortError(provides.signal));
      const timedOut = deadline.aborted ? `it did not answer within ${ENGINE_CALL_TIMEOUT_SECONDS} s` : err.message;
      reject(new DockerError(`Opening a BuildKit session with the Docker engine failed: ${timedOut}. Check that the engine is running and not overloaded ('docker info' on its host), then run the job again.`, { cause: err }));
    });
    req.end();
  });

  // A plain Duplex around the upgraded connection: http2 serves any stream that way (a TLS
  // socket without ALPN would otherwise be taken for HTTP/1.1).
  const connection = new Duplex({
    read() {
      socket.resume();
    },
    write(chunk, _encoding, done) {
      socket.write(chunk, done);
    },
    final(done) {
      socket.end();
      done();
    },
    destroy(err, done) {
      socket.destroy();
      done(err);
    },
  });
  socket.on('data', (chunk) => {
    if (!connection.push(chunk)) socket.pause();
  });
  socket.on('end', () => connection.push(null));
  socket.on('error', (err) => connection.destroy(err));

  const server = http2.createServer();
  server.on('stream', (stream, streamHeaders) => serve(stream, streamHeaders, provides.secrets, provides.ssh));
  server.on('sessionError', () => undefined);
  server.emit('connection', connection);
  return {
    id,
    close() {
      connection.destroy();
      server.close();
    },
  };
}
