// The Docker host a release goes to, reached the same way by the Engine API client (pull, health
// gate, verification, release store) and by the Compose CLI:
//   local  the agent's engine: DOCKER_HOST as the agent has it, else /var/run/docker.sock;
//   tls    a `dockerhost` service connection (tcp://host:port plus CA, client certificate and key):
//          the PEM files go into a private folder (0700, files 0600) for DOCKER_CERT_PATH and are
//          removed when the deployment ends; the key is registered as a secret;
//   ssh    an `ssh` service connection (host, port, user, private key or password): one SSH
//          connection (ssh2, in process) forwards a private unix socket on the agent to the remote
//          engine's socket (OpenSSH `direct-streamlocal`), and both clients use that socket.
//
// Why a tunnel and not DOCKER_HOST=ssh://: Compose v1 needs paramiko for ssh:// (not installed with
// Debian's docker-compose), Compose v2 and the docker CLI shell out to `ssh`, which would need the
// key in a file or an agent and the host in known_hosts. The tunnel needs none of that, the key
// never touches the disk, the host key is checked here (sshHostKey), and every client (v1, v2, the
// Engine API) sees an ordinary unix socket.
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import type Dockerode from 'dockerode';
import type { Client as SshClient, ConnectConfig } from 'ssh2';
import type { EndpointInfo, Logger } from '../context';
import { dockerode, guardEngine } from '../docker/engine';
import { DockerError, InputError, OuterLoopError } from '../errors';
import { lazyRequire } from '../util/lazy';

const ssh2 = lazyRequire<typeof import('ssh2')>(() => require('ssh2'));

export type DockerHostType = 'local' | 'tls' | 'ssh';

export interface TargetOptions {
  type: DockerHostType;
  /** local: the engine to use instead of the agent's DOCKER_HOST (tests). */
  dockerHost?: string;
  /** tls: the `dockerhost` service connection. */
  dockerHostEndpoint?: EndpointInfo;
  /** ssh: the `ssh` service connection. */
  sshEndpoint?: EndpointInfo;
  /** ssh: the engine's socket on the remote host (the remoteDockerSocket input); required with ssh. */
  remoteDockerSocket?: string;
  /** ssh: the host key's SHA256 fingerprint (`SHA256:…` as ssh-keygen -l prints it); unset: any key, with a warning. */
  sshHostKey?: string;
  /** Where private folders (certificates, the tunnel socket) go. */
  tempRoot: string;
  setSecret: (secret: string) => void;
  log: Logger;
  /** Seconds to wait for the SSH handshake or the first answer of the engine (default CONNECT_TIMEOUT_SECONDS). */
  connectTimeoutSeconds?: number;
  /** Seconds a pull may go without progress (the engineStallSeconds input). */
  engineStallSeconds: number;
}

export interface Target {
  /** For messages: `the local engine (unix:///var/run/docker.sock)`, `tcp://host:2376 (TLS)`, `ssh://deploy@host:22`. */
  description: string;
  docker: Dockerode;
  /** DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH for the Compose CLI (DOCKER_HOST unset: the local default). */
  env: Record<string, string>;
  close(): Promise<void>;
}

/** Seconds to wait for the SSH handshake or the engine's first answer; no input sets it. */
export const CONNECT_TIMEOUT_SECONDS = 30;

/** The target could not be reached, refused our credentials, or is not who it should be. */
export class TargetError extends OuterLoopError {}

/** Checks the inputs of the target (no connection yet), so that bad input fails before any work. */
export function checkTargetInputs(options: TargetOptions): void {
  if (options.type === 'tls') tlsSettings(options);
  if (options.type === 'ssh') sshSettings(options);
}

export async function connectTarget(options: TargetOptions): Promise<Target> {
  let target: Target;
  if (options.type === 'local') target = localTarget(options);
  else if (options.type === 'tls') target = tlsTarget(options);
  else if (options.type === 'ssh') target = await sshTarget(options);
  else throw new InputError(`Input 'dockerHostType' must be local, tls or ssh, not '${String(options.type)}'.`);
  guardEngine(target.docker, target.description, { stallSeconds: options.engineStallSeconds });
  try {
    await ping(target, options);
  } catch (err) {
    await target.close();
    throw err;
  }
  return target;
}

async function ping(target: Target, options: TargetOptions): Promise<void> {
  const timeoutMs = (options.connectTimeoutSeconds ?? CONNECT_TIMEOUT_SECONDS) * 1000;
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      target.docker.ping(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs / 1000} s`)), timeoutMs);
      }),
    ]);
  } catch (err) {
    const why = describeConnectError(err as Error);
    const hint =
      options.type === 'tls'
        ? ' Check the URL of the Docker host connection, that the engine listens there with --tlsverify, and that the connection\'s CA signed the engine\'s certificate (for this host name or IP) and the engine trusts the client certificate.'
        : options.type === 'ssh'
          ? ` Check that the SSH user may use the engine socket ${options.remoteDockerSocket} (root, or a member of the docker group) and that the SSH server allows stream-local forwarding (AllowStreamLocalForwarding).`
          : ' Run the job on an agent with Docker, or set DOCKER_HOST.';
    throw new TargetError(`The Docker engine at ${target.description} did not answer: ${why}.${hint}`, { cause: err });
  } finally {
    clearTimeout(timer);
  }
}

function describeConnectError(err: Error & { code?: string; reason?: string }): string {
  const code = err.code ?? '';
  if (code === 'ECONNREFUSED') return 'connection refused (nothing listens there)';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'the host name does not resolve';
  if (code === 'ETIMEDOUT' || code === 'EHOSTUNREACH' || code === 'ENETUNREACH') return `the host is unreachable (${code})`;
  if (code === 'ENOENT') return 'the socket does not exist';
  if (code === 'EACCES') return 'permission denied on the socket';
  if (/^ERR_TLS_|CERT|SSL|alert/i.test(code) || /certificate|alert|handshake|self.signed|unable to verify/i.test(err.message)) return `TLS failed: ${err.message}`;
  return err.message || String(err);
}

// ---------------------------------------------------------------------------------------------
// local

function localTarget(options: TargetOptions): Target {
  const Docker = dockerode();
  const host = options.dockerHost;
  if (host) {
    let docker: Dockerode;
    if (host.startsWith('unix://')) docker = new Docker({ socketPath: host.slice('unix://'.length) });
    else {
      const url = new URL(host.replace(/^tcp:/, 'http:'));
      docker = new Docker({ host: url.hostname, port: Number(url.port || 2375), protocol: 'http' });
    }
    return { description: `the local engine (${host})`, docker, env: { DOCKER_HOST: host }, close: async () => {} };
  }
  // The agent's engine as the docker CLI finds it: docker-modem reads DOCKER_HOST, DOCKER_TLS_VERIFY
  // and DOCKER_CERT_PATH (else the local socket); Compose gets the same variables.
  const env: Record<string, string> = {};
  if (process.env.DOCKER_HOST) {
    for (const key of ['DOCKER_HOST', 'DOCKER_TLS_VERIFY', 'DOCKER_CERT_PATH']) if (process.env[key]) env[key] = process.env[key] as string;
  }
  return { description: `the local engine (${env.DOCKER_HOST ?? 'unix:///var/run/docker.sock'})`, docker: new Docker(), env, close: async () => {} };
}

// ---------------------------------------------------------------------------------------------
// tls

interface TlsSettings {
  host: string;
  port: number;
  ca: string;
  cert: string;
  key: string;
}

function tlsSettings(options: TargetOptions): TlsSettings {
  const e = options.dockerHostEndpoint;
  if (!e) throw new InputError("Input 'dockerHostEndpoint' is required when dockerHostType is tls: choose a Docker host service connection (URL plus CA, certificate and key).");
  let url: URL;
  try {
    url = new URL(e.url.trim());
  } catch {
    throw new InputError(`Input 'dockerHostEndpoint': the service connection '${e.id}' has the URL '${e.url}', which is not tcp://host:port.`);
  }
  if (!['tcp:', 'https:'].includes(url.protocol) || !url.hostname) {
    throw new InputError(`Input 'dockerHostEndpoint': the service connection '${e.id}' must have a URL such as tcp://docker-host.example.com:2376, not '${e.url}'.`);
  }
  const ca = e.auth.cacert ?? e.data.cacert ?? '';
  const cert = e.auth.cert ?? e.data.cert ?? '';
  const key = e.auth.key ?? e.data.key ?? '';
  if (key) options.setSecret(key);
  const missing = [!ca && 'CA certificate', !cert && 'certificate', !key && 'key'].filter(Boolean);
  if (missing.length) {
    throw new InputError(`Input 'dockerHostEndpoint': the service connection '${e.id}' has no ${missing.join(', ')}. A TLS Docker host needs the CA certificate, the client certificate and its key (PEM).`);
  }
  for (const [what, pem] of [['CA certificate', ca], ['certificate', cert]] as const) {
    if (!/-----BEGIN CERTIFICATE-----/.test(pem)) throw new InputError(`Input 'dockerHostEndpoint': the ${what} of service connection '${e.id}' is not a PEM certificate.`);
  }
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(key)) throw new InputError(`Input 'dockerHostEndpoint': the key of service connection '${e.id}' is not a PEM private key.`);
  const port = url.port ? Number(url.port) : 2376;
  return { host: url.hostname.replace(/^\[|\]$/g, ''), port, ca, cert, key };
}

function tlsTarget(options: TargetOptions): Target {
  const s = tlsSettings(options);
  const dir = privateDir(options.tempRoot, 'tls');
  writePrivate(path.join(dir, 'ca.pem'), s.ca);
  writePrivate(path.join(dir, 'cert.pem'), s.cert);
  writePrivate(path.join(dir, 'key.pem'), s.key);
  const Docker = dockerode();
  const docker = new Docker({ host: s.host, port: s.port, protocol: 'https', ca: s.ca, cert: s.cert, key: s.key });
  const hostPart = s.host.includes(':') ? `[${s.host}]` : s.host;
  return {
    description: `tcp://${hostPart}:${s.port} (TLS)`,
    docker,
    env: { DOCKER_HOST: `tcp://${hostPart}:${s.port}`, DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: dir },
    close: async () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}

// ---------------------------------------------------------------------------------------------
// ssh

interface SshSettings {
  host: string;
  port: number;
  username: string;
  password?: string;
  privateKey?: string;
  remoteSocket: string;
}

function sshSettings(options: TargetOptions): SshSettings {
  const e = options.sshEndpoint;
  if (!e) throw new InputError("Input 'sshEndpoint' is required when dockerHostType is ssh: choose an SSH service connection (host, port, user, private key or password).");
  let host = e.data.host ?? '';
  let port = e.data.port ?? '';
  if (!host && e.url) {
    try {
      const u = new URL(e.url.includes('://') ? e.url : `ssh://${e.url}`);
      host = u.hostname.replace(/^\[|\]$/g, '');
      port ||= u.port;
    } catch {
      /* reported below */
    }
  }
  const username = e.auth.username ?? '';
  const password = e.auth.password || undefined;
  const privateKey = (e.data.privatekey ?? e.auth.privatekey ?? '').trim() || undefined;
  if (password) options.setSecret(password);
  if (privateKey) options.setSecret(privateKey);
  if (!host) throw new InputError(`Input 'sshEndpoint': the service connection '${e.id}' has no host.`);
  if (!username) throw new InputError(`Input 'sshEndpoint': the service connection '${e.id}' has no user name.`);
  if (!password && !privateKey) throw new InputError(`Input 'sshEndpoint': the service connection '${e.id}' has neither a private key nor a password.`);
  const portNumber = port ? Number(port) : 22;
  if (!Number.isInteger(portNumber) || portNumber < 1 || portNumber > 65535) throw new InputError(`Input 'sshEndpoint': the port '${port}' of service connection '${e.id}' is not a port number.`);
  if (options.sshHostKey && !/^SHA256:[A-Za-z0-9+/]{43}=?$/.test(options.sshHostKey.trim())) {
    throw new InputError(`Input 'sshHostKey' must be the host key's SHA256 fingerprint as \`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub\` prints it (SHA256:…), not '${options.sshHostKey}'.`);
  }
  const remoteSocket = options.remoteDockerSocket?.trim();
  if (!remoteSocket) throw new InputError("Input 'remoteDockerSocket' is required with an SSH host: give the path of the engine's socket on that host.");
  return { host, port: portNumber, username, password, privateKey, remoteSocket };
}

async function sshTarget(options: TargetOptions): Promise<Target> {
  const s = sshSettings(options);
  const where = `ssh://${s.username}@${s.host.includes(':') ? `[${s.host}]` : s.host}:${s.port}`;
  const { Client } = ssh2();
  const client: SshClient = new Client();
  let presented: string | undefined;
  const expected = options.sshHostKey?.trim().replace(/=$/, '');
  const config: ConnectConfig = {
    host: s.host,
    port: s.port,
    username: s.username,
    readyTimeout: (options.connectTimeoutSeconds ?? CONNECT_TIMEOUT_SECONDS) * 1000,
    keepaliveInterval: 15_000,
    hostVerifier: (key: Buffer) => {
      presented = `SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}`;
      return expected === undefined || presented === expected;
    },
  };
  if (s.privateKey) {
    config.privateKey = s.privateKey;
    if (s.password) config.passphrase = s.password;
  } else config.password = s.password;

  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error & { level?: string; code?: string }) => {
      client.removeListener('ready', onReady);
      reject(sshError(err, where, s, expected, presented));
    };
    const onReady = () => {
      client.removeListener('error', onError);
      resolve();
    };
    client.once('ready', onReady);
    client.once('error', onError);
    try {
      client.connect(config);
    } catch (err) {
      // ssh2 throws synchronously for a key it cannot parse (or a wrong passphrase).
      client.removeListener('ready', onReady);
      client.removeListener('error', onError);
      reject(new InputError(`Input 'sshEndpoint': the private key of the service connection cannot be used: ${(err as Error).message}. Give an OpenSSH or PEM private key (and its passphrase as the password).`));
    }
  });
  if (expected === undefined) {
    options.log.warn(`SSH: accepted the host key of ${s.host} (${presented}) without checking it. Set sshHostKey to that fingerprint so that a different host is refused.`);
  }
  client.on('error', (err) => options.log.debug(`SSH connection to ${where}: ${err.message}`));

  const dir = privateDir(options.tempRoot, 'ssh');
  const socketPath = path.join(dir, 'docker.sock');
  let lastForwardError: string | undefined;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((local) => {
    sockets.add(local);
    local.on('close', () => sockets.delete(local));
    local.on('error', () => local.destroy());
    local.pause();
    client.openssh_forwardOutStreamLocal(s.remoteSocket, (err, remote) => {
      if (err) {
        lastForwardError = err.message;
        options.log.debug(`SSH: forwarding to ${s.remoteSocket} failed: ${err.message}`);
        local.destroy();
        return;
      }
      remote.on('error', () => local.destroy());
      local.pipe(remote).pipe(local);
      remote.on('close', () => local.destroy());
      local.on('close', () => remote.end());
      local.resume();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => resolve());
  });
  fs.chmodSync(socketPath, 0o600);
  const Docker = dockerode();
  const docker = new Docker({ socketPath });
  let closed = false;
  const target: Target = {
    description: `${where} (engine socket ${s.remoteSocket})`,
    docker,
    env: { DOCKER_HOST: `unix://${socketPath}` },
    close: async () => {
      if (closed) return;
      closed = true;
      for (const sock of sockets) sock.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      client.end();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  // The first request tells whether the remote socket can be reached; say why not.
  const originalPing = docker.ping.bind(docker);
  (docker as unknown as { ping: () => Promise<unknown> }).ping = async () => {
    try {
      return await originalPing();
    } catch (err) {
      if (lastForwardError) throw new DockerError(`${where} accepted the login but cannot forward to ${s.remoteSocket}: ${lastForwardError}`, { cause: err });
      throw err;
    }
  };
  return target;
}

function sshError(err: Error & { level?: string; code?: string }, where: string, s: SshSettings, expected: string | undefined, presented: string | undefined): OuterLoopError {
  if (expected !== undefined && presented !== undefined && presented !== expected) {
    return new TargetError(`Input 'sshHostKey': ${where} presented the host key ${presented}, not ${expected}. If the host was rebuilt on purpose, update sshHostKey; otherwise something is in the way.`, { cause: err });
  }
  if (err.level === 'client-authentication') {
    return new TargetError(`Input 'sshEndpoint': ${where} rejected the ${s.privateKey ? 'private key' : 'password'} of user '${s.username}' (${err.message}). Check the SSH service connection and the user's authorized_keys on the host.`, { cause: err });
  }
  if (err.level === 'client-timeout') return new TargetError(`Input 'sshEndpoint': ${where} did not complete the SSH handshake in time. Is it an SSH server, and reachable from the agent?`, { cause: err });
  return new TargetError(`Input 'sshEndpoint': cannot connect to ${where}: ${describeConnectError(err)}.`, { cause: err });
}

// ---------------------------------------------------------------------------------------------

/** A fresh folder only this process can read; short enough for a unix socket path inside it. */
function privateDir(tempRoot: string, kind: string): string {
  let root = tempRoot;
  if (path.join(root, 'col-deploy-ssh-XXXXXX', 'docker.sock').length > 100) root = os.tmpdir();
  fs.mkdirSync(root, { recursive: true });
  const dir = fs.mkdtempSync(path.join(root, `col-deploy-${kind}-`));
  fs.chmodSync(dir, 0o700);
  return dir;
}

function writePrivate(file: string, content: string): void {
  const fd = fs.openSync(file, 'wx', 0o600);
  try {
    fs.writeSync(fd, content.endsWith('\n') ? content : `${content}\n`);
  } finally {
    fs.closeSync(fd);
  }
}
