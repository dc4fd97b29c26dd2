// Builds that the Engine API's /build cannot express: several platforms (one image index), cache
// export, and cache imports in buildx's syntax (with the registry credentials). They run `docker buildx build` with the
// engine's own `docker` driver (the default builder of a private docker config), so the image lands
// in the engine's image store, where ContainerizedTest and PushWithDigest find it as they find a
// /build image. Why buildx and not BuildKit's control API on the engine's /grpc: see the README
// (BuildAndTag, "Backend").
// Nothing secret goes on buildx's command line:
//   registry credentials (cache import and export): the private DOCKER_CONFIG's config.json (0600);
//   build secrets: `--secret id=X,env=COL_BUILD_SECRET_N`, the value only in buildx's environment
//     (a value that is not text, which an environment cannot carry: a 0600 file in the private folder);
//   SSH: the job's agent socket as it is; an agent of ours (a key from a service connection or a
//     file) on a unix socket in the private folder (0700), for the build's duration.
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import type Dockerode from 'dockerode';
import { withPrivateDockerConfig, type Credential, type CredentialSource } from '../auth';
import type { Logger } from '../context';
import { DockerError, InputError, errorMessage } from '../errors';
import { runProgram } from '../util/process';
import { parseReference } from '../reference';
import { containerdStore, type ImageBuildSpec } from './build';
import type { BuildSecret, SshForward } from './session';

/** One `cacheFrom` / `cacheTo` entry in buildx's CSV syntax: `type=registry,ref=…,mode=max`. */
export interface CacheEntry {
  type: string;
  attrs: Record<string, string>;
}

/** What each cache type needs (buildx's cache backends the engine's BuildKit serves). */
const CACHE_TYPES: Record<string, { from?: string; to?: string }> = {
  registry: { from: 'ref', to: 'ref' },
  inline: { to: '' },
  local: { from: 'src', to: 'dest' },
  gha: { from: '', to: '' },
  s3: { from: '', to: '' },
  azblob: { from: '', to: '' },
};

/**
 * A cacheFrom or cacheTo entry: `type=TYPE,key=value,…`; a cacheFrom entry may also be an image
 * reference alone (a registry cache, as /build and buildx take it). Checked before anything is built.
 */
export function parseCacheEntry(text: string, direction: 'from' | 'to', what: string): CacheEntry {
  const line = text.trim();
  const example = direction === 'from' ? 'an image reference, or type=registry,ref=REPOSITORY:TAG' : 'type=registry,ref=REPOSITORY:TAG,mode=max or type=inline';
  if (!line.includes('=')) {
    if (direction === 'to') throw new InputError(`${what}: '${line}' is not a cache export; write ${example} (buildx's syntax).`);
    parseReference(line, what);
    return { type: 'registry', attrs: { ref: line } };
  }
  const attrs: Record<string, string> = {};
  for (const part of line.split(',')) {
    const eq = part.indexOf('=');
    const key = part.slice(0, eq).trim().toLowerCase();
    if (eq <= 0 || key in attrs) throw new InputError(`${what}: '${line}' is not KEY=VALUE pairs separated by commas (e.g. ${example}).`);
    attrs[key] = part.slice(eq + 1).trim();
  }
  const { type = '', ...rest } = attrs;
  const rule = CACHE_TYPES[type];
  const needs = rule?.[direction];
  if (needs === undefined) {
    const known = Object.keys(CACHE_TYPES).filter((t) => CACHE_TYPES[t][direction] !== undefined);
    throw new InputError(`${what}: '${line}' ${type ? `has type=${type}, which buildx cannot ${direction === 'from' ? 'import a cache from' : 'export a cache to'}` : 'has no type='}. Use one of ${known.map((t) => `type=${t}`).join(', ')}.`);
  }
  if (needs && !rest[needs]) throw new InputError(`${what}: '${line}' needs ${needs}= (type=${type},${needs}=…).`);
  if (type === 'registry') parseReference(rest.ref, `${what}: ref`);
  if (rest.mode !== undefined && !['min', 'max'].includes(rest.mode)) throw new InputError(`${what}: '${line}' has mode=${rest.mode}; write mode=min (the image's layers) or mode=max (every stage's).`);
  return { type, attrs: rest };
}

/** Why a build goes through buildx, or undefined when /build expresses it. */
export function buildxReason(spec: Pick<ImageBuildSpec, 'platforms' | 'cacheFrom' | 'cacheTo'>): string | undefined {
  if (spec.platforms.length > 1) return `${spec.platforms.length} platforms (${spec.platforms.join(', ')}) make one image index`;
  if (spec.cacheTo.length) return 'cacheTo exports a build cache';
  // /build imports an image reference (inline cache), without the build's own registry credentials:
  // an entry in buildx's syntax (a registry cache that cacheTo exported, a local one) is buildx's.
  const typed = spec.cacheFrom.find((entry) => entry.includes('='));
  if (typed) return `the cache import '${typed}' is in buildx's syntax`;
  return undefined;
}

/** What of the containerd image store a buildx build needs: several platforms, or a cache export other than inline (docker driver). */
function containerdStoreNeed(spec: Pick<ImageBuildSpec, 'platforms' | 'cacheTo'>): string | undefined {
  if (spec.platforms.length > 1) return `an image index of ${spec.platforms.length} platforms (${spec.platforms.join(', ')})`;
  const exported = spec.cacheTo.map((entry) => parseCacheEntry(entry, 'to', 'cacheTo')).find((entry) => entry.type !== 'inline');
  return exported && `a type=${exported.type} cache export`;
}

/** The image store answers: the containerd one says so in DriverStatus (as `docker info` shows it). */
export async function hasContainerdStore(docker: Dockerode): Promise<boolean> {
  return containerdStore(await docker.info());
}

/**
 * Fails before anything is built when a build that needs buildx cannot run here: an engine without
 * the containerd image store for an index or a cache export, a Windows engine's isolation, or no
 * buildx on the agent. Returns buildx's version line.
 */
export async function checkBuildx(docker: Dockerode, builds: { title: string; spec: Pick<ImageBuildSpec, 'platforms' | 'cacheFrom' | 'cacheTo' | 'isolation'> }[], signal?: AbortSignal): Promise<string> {
  const containerd = await hasContainerdStore(docker);
  const host = await engineHost(docker);
  for (const { title, spec } of builds) {
    const need = containerdStoreNeed(spec);
    if (need && !containerd) {
      throw new DockerError(
        `Building ${title}: ${need} needs the engine's containerd image store, which this engine does not use (it has the classic store, which holds one platform per image and cannot export a cache with the docker driver). Enable it in the engine's daemon.json with "features": {"containerd-snapshotter": true} (Docker 24 or newer) and restart the engine, or build one platform without cacheTo.`,
      );
    }
    if (spec.isolation) throw new DockerError(`Building ${title}: compose 'build.isolation' (${spec.isolation}) is a Windows engine's setting, which buildx does not take. Remove it, or build without several platforms and cacheTo.`);
  }
  const why = `Building ${builds[0].title} needs docker buildx (${buildxReason(builds[0].spec)})`;
  const version = await withPrivateDockerConfig([], (dir) => runProgram('docker', ['buildx', 'version'], { env: buildxEnvironment(dir, host), signal, deadline: Date.now() + 30_000 })).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') throw new DockerError(`${why}, and the agent has no docker CLI. Install the Docker CLI and the docker-buildx-plugin package (Microsoft-hosted agents have both).`);
    throw err;
  });
  if (version.code !== 0) {
    throw new DockerError(`${why}, which this agent does not have ('docker buildx version': ${version.tail.slice(-1)[0] ?? `exit code ${version.code}`}). Install the docker-buildx-plugin package (Docker's apt or yum repository), or put docker-buildx in ~/.docker/cli-plugins.`);
  }
  return version.stdout.trim();
}

/** DOCKER_HOST for a child process that must reach the engine docker-modem talks to. */
export async function engineHost(docker: Dockerode): Promise<string> {
  const modem = (docker as unknown as { modem: { socketPath?: string | (() => Promise<string>) } }).modem;
  const socketPath = typeof modem.socketPath === 'function' ? await modem.socketPath() : modem.socketPath;
  if (socketPath) return `unix://${socketPath}`;
  if (process.env.DOCKER_HOST) return process.env.DOCKER_HOST; // tcp:// (with DOCKER_TLS_VERIFY, DOCKER_CERT_PATH) or ssh://, as given
  throw new DockerError('buildx must reach the same engine as the task, but the engine is neither a unix socket nor DOCKER_HOST. Set DOCKER_HOST.');
}

/** buildx's environment: the agent's, without anything that picks another builder or output, with the private config and the engine. */
export function buildxEnvironment(configDir: string, dockerHost: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!/^(BUILDX_|BUILDKIT_|DOCKER_CONTEXT$|DOCKER_CONFIG$|DOCKER_HOST$|COL_BUILD_SECRET_)/.test(key)) env[key] = value;
  }
  return { ...env, DOCKER_CONFIG: configDir, DOCKER_HOST: dockerHost, ...extra };
}

/** Where buildx's inputs live for one build, in the private folder. */
export interface BuildxFiles {
  metadataFile: string;
  /** The folder for secrets that are not text and for our agents' sockets. */
  dir: string;
}

export interface BuildxInvocation {
  args: string[];
  /** Variables only buildx gets: the secrets' values. */
  env: Record<string, string>;
  /** Secrets that are not text: written (0600) before the build. */
  secretFiles: { file: string; value: Buffer }[];
  /** Agents of ours to serve on a socket for the build. */
  sshServers: { socket: string; forward: SshForward }[];
  /** The Dockerfile on stdin (compose dockerfile_inline). */
  stdin?: string;
}

/** A secret an environment variable can carry: text without NUL. */
const isText = (value: Buffer) => !value.includes(0) && Buffer.from(value.toString('utf8'), 'utf8').equals(value);

/** The `docker buildx build` command line of a spec: settings and references only, never a secret's value. */
export function buildxInvocation(spec: ImageBuildSpec, files: BuildxFiles, rewritesTimestamps = false): BuildxInvocation {
  const args = ['buildx', 'build', '--progress', 'plain', '--metadata-file', files.metadataFile];
  // No attestations: the image is what /build would give (one manifest per platform; compose 'provenance' and 'sbom' are refused).
  args.push('--provenance=false', '--sbom=false');
  args.push('--file', spec.dockerfileInline !== undefined ? '-' : spec.dockerfile);
  for (const tag of spec.tags) args.push('--tag', tag);
  const epoch = spec.sourceDateEpoch === undefined ? {} : { SOURCE_DATE_EPOCH: String(spec.sourceDateEpoch) };
  for (const [key, value] of Object.entries({ ...epoch, ...spec.buildArgs })) args.push('--build-arg', `${key}=${value}`);
  for (const [key, value] of Object.entries(spec.labels)) args.push('--label', `${key}=${value}`);
  if (spec.target) args.push('--target', spec.target);
  if (spec.platforms.length) args.push('--platform', spec.platforms.join(','));
  if (spec.pull) args.push('--pull');
  if (spec.noCache) args.push('--no-cache');
  for (const entry of spec.cacheFrom) args.push('--cache-from', entry.trim());
  for (const entry of spec.cacheTo) args.push('--cache-to', entry.trim());
  if (spec.network) args.push('--network', spec.network);
  for (const host of spec.extraHosts) args.push('--add-host', host);
  if (spec.shmSize !== undefined) args.push('--shm-size', String(spec.shmSize));
  for (const limit of spec.ulimits) args.push('--ulimit', `${limit.Name}=${limit.Soft}:${limit.Hard}`);

  const env: Record<string, string> = {};
  const secretFiles: BuildxInvocation['secretFiles'] = [];
  spec.secrets.forEach((secret: BuildSecret, i) => {
    if (isText(secret.value)) {
      env[`COL_BUILD_SECRET_${i}`] = secret.value.toString('utf8');
      args.push('--secret', `id=${secret.id},env=COL_BUILD_SECRET_${i}`);
    } else {
      const file = path.join(files.dir, `secret-${i}`);
      secretFiles.push({ file, value: secret.value });
      args.push('--secret', `id=${secret.id},src=${file}`);
    }
  });
  const sshServers: BuildxInvocation['sshServers'] = [];
  spec.ssh.forEach((forward, i) => {
    if (forward.socketPath) return void args.push('--ssh', `${forward.id}=${forward.socketPath}`);
    const socket = path.join(files.dir, `ssh-${i}.sock`);
    sshServers.push({ socket, forward });
    args.push('--ssh', `${forward.id}=${socket}`);
  });
  // As with /build: layer timestamps rewritten to SOURCE_DATE_EPOCH by the image exporter, which then leaves the image unpacked.
  const rewrite = rewritesTimestamps && spec.sourceDateEpoch !== undefined;
  args.push(...(rewrite ? ['--output', 'type=image,rewrite-timestamp=true,unpack=false'] : ['--load']), spec.context);
  return { args, env, secretFiles, sshServers, stdin: spec.dockerfileInline };
}

/** The registries a build's caches are imported from or exported to (their credentials go in the private config). */
export function cacheRegistries(spec: Pick<ImageBuildSpec, 'cacheFrom' | 'cacheTo'>): string[] {
  const entries = [...spec.cacheFrom.map((e) => parseCacheEntry(e, 'from', 'cacheFrom')), ...spec.cacheTo.map((e) => parseCacheEntry(e, 'to', 'cacheTo'))];
  return [...new Set(entries.filter((e) => e.type === 'registry').map((e) => parseReference(e.attrs.ref).domain))];
}

/** Serves an agent of ours on a unix socket: each connection gets its own conversation with it. */
function serveAgent(socket: string, forward: SshForward): Promise<net.Server> {
  const server = net.createServer((connection) => {
    const agent = forward.connect();
    connection.on('error', () => agent.destroy());
    agent.on('error', () => connection.destroy());
    connection.pipe(agent).pipe(connection);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(socket, () => resolve(server));
  });
}

/**
 * Builds a spec with `docker buildx build` on the engine's docker driver; returns the image id
 * (buildx's metadata file: `containerimage.digest`, the index or manifest digest on the containerd store).
 */
export async function buildWithBuildx(
  docker: Dockerode,
  spec: ImageBuildSpec,
  log: Logger,
  options: { credentials: CredentialSource; setSecret(value: string): void; rewritesTimestamps?: boolean; signal?: AbortSignal },
): Promise<string> {
  const credentials: { registry: string; credential: Credential }[] = [];
  for (const registry of cacheRegistries(spec)) {
    const credential = await options.credentials(registry);
    if (credential) credentials.push({ registry, credential });
  }
  const host = await engineHost(docker);
  return withPrivateDockerConfig(
    credentials,
    async (dir) => {
      const files = { metadataFile: path.join(dir, 'metadata.json'), dir };
      const invocation = buildxInvocation(spec, files, options.rewritesTimestamps);
      for (const { file, value } of invocation.secretFiles) fs.writeFileSync(file, value, { mode: 0o600, flag: 'wx' });
      const servers = await Promise.all(invocation.sshServers.map(({ socket, forward }) => serveAgent(socket, forward)));
      try {
        log.info(`docker ${invocation.args.join(' ')}`);
        const run = await runProgram('docker', invocation.args, {
          env: buildxEnvironment(dir, host, invocation.env),
          cwd: spec.context,
          input: invocation.stdin,
          signal: options.signal,
          onLine: (line) => log.info(line),
        });
        if (run.code !== 0) {
          throw new DockerError(`Building ${spec.title} with docker buildx failed (${run.signal ?? `exit code ${run.code}`}):\n${run.tail.slice(-15).join('\n')}`);
        }
      } finally {
        for (const server of servers) server.close();
      }
      let metadata: Record<string, unknown>;
      try {
        metadata = JSON.parse(fs.readFileSync(files.metadataFile, 'utf8')) as Record<string, unknown>;
      } catch (err) {
        throw new DockerError(`Building ${spec.title}: buildx wrote no readable metadata file (${errorMessage(err)}).`);
      }
      const digest = metadata['containerimage.digest'];
      if (typeof digest !== 'string' || !/^sha256:[a-f0-9]{64}$/.test(digest)) throw new DockerError(`Building ${spec.title}: buildx's metadata names no image digest (containerimage.digest).`);
      return digest;
    },
    { setSecret: options.setSecret },
  );
}
