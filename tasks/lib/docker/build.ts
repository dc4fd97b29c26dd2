// One image build through the Engine API: BuildKit (`version=2`) where the engine has it, the
// classic builder otherwise; every stream line checked; the image id taken from the stream.
import type Dockerode from 'dockerode';
import type { Logger } from '../context';
import { DockerError } from '../errors';
import type { ReadablePaths } from '../readable-paths';
import { packBuildContext } from './context';
import { BuildSecret, openBuildSession, SshForward } from './session';
import { StreamEvent, followStream } from './stream';

export interface ImageBuildSpec {
  /** What is built, for messages: an image name or a compose service. */
  title: string;
  context: string;
  dockerfile: string;
  /** The Dockerfile's text, when it is given inline (compose `dockerfile_inline`) rather than read from `dockerfile`. */
  dockerfileInline?: string;
  /** What the build may read (context and Dockerfile were checked against it; the .dockerignore is read through it). */
  readable: ReadablePaths;
  /** Full references to tag the result with. */
  tags: string[];
  buildArgs: Record<string, string>;
  labels: Record<string, string>;
  target?: string;
  /** Platforms to build for ('linux/arm64'); empty: the engine's. Several make one image index (buildx). */
  platforms: string[];
  pull: boolean;
  noCache: boolean;
  /** Cache sources: image references (/build), or buildx's CSV syntax (`type=registry,ref=…`; tasks/lib/docker/buildx.ts). */
  cacheFrom: string[];
  /** Cache exports in buildx's CSV syntax (`type=registry,ref=…,mode=max`, `type=inline`); only buildx exports a cache. */
  cacheTo: string[];
  /** The network of RUN steps: default, host, none (or, with the classic builder, a network's name). */
  network?: string;
  /** `host:ip` entries for /etc/hosts in RUN steps. */
  extraHosts: string[];
  /** Size of /dev/shm in RUN steps, in bytes. */
  shmSize?: number;
  ulimits: { Name: string; Soft: number; Hard: number }[];
  isolation?: string;
  /** SOURCE_DATE_EPOCH: image config and history timestamps (BuildKit 0.11+), and layer timestamps where the engine rewrites them. */
  sourceDateEpoch?: number;
  /** Served to RUN --mount=type=secret through a BuildKit session, never as build args. */
  secrets: BuildSecret[];
  /** Served to RUN --mount=type=ssh through a BuildKit session. */
  ssh: SshForward[];
}

export interface EngineBuilder {
  /** BuildKit needs API 1.39+ on a Linux engine (Windows engines have only the classic builder). */
  buildKit: boolean;
  /** '1.41' */
  apiVersion: string;
  /** BuildKit applies `shmsize` and `ulimits` to RUN steps from API 1.42 (Docker 23) on; 20.10's ignores both. */
  appliesRunLimits: boolean;
  /**
   * The exporter can rewrite layer file timestamps to SOURCE_DATE_EPOCH (BuildKit 0.13, API 1.45,
   * with the containerd image store; the classic store's exporter cannot), so a rebuild of the
   * same sources gives the same digest.
   */
  rewritesTimestamps: boolean;
}

export async function engineBuilder(docker: Dockerode): Promise<EngineBuilder> {
  const version = await docker.version();
  const [major, minor] = String(version.ApiVersion).split('.').map(Number);
  const atLeast = (m: number) => major > 1 || (major === 1 && minor >= m);
  const buildKit = version.Os !== 'windows' && atLeast(39);
  const rewritesTimestamps = buildKit && atLeast(45) && containerdStore(await docker.info()); // info only where it can matter
  return { buildKit, apiVersion: String(version.ApiVersion), appliesRunLimits: !buildKit || atLeast(42), rewritesTimestamps };
}

/** The engine keeps images in containerd (`containerd-snapshotter`), not the classic graph driver store. */
export function containerdStore(info: { DriverStatus?: [string, string][] | null }): boolean {
  return (info.DriverStatus ?? []).some(([key, value]) => key === 'driver-type' && value.startsWith('io.containerd.snapshotter'));
}

/** The Engine API's /build query for a spec (docker-modem sends a list as repeated parameters, an object as JSON). */
export function buildQuery(spec: ImageBuildSpec, contextDockerfile: string, buildKit: boolean, rewritesTimestamps = false): Record<string, unknown> {
  const epoch = spec.sourceDateEpoch === undefined ? {} : { SOURCE_DATE_EPOCH: String(spec.sourceDateEpoch) };
  const query: Record<string, unknown> = {
    t: spec.tags,
    dockerfile: contextDockerfile,
    buildargs: { ...epoch, ...spec.buildArgs },
    labels: spec.labels,
    pull: spec.pull,
    nocache: spec.noCache,
    rm: true,
    forcerm: true,
  };
  if (spec.target) query.target = spec.target;
  if (spec.platforms.length > 1) throw new DockerError(`Building ${spec.title}: the Engine API's /build builds one platform; ${spec.platforms.length} platforms go through buildx.`);
  if (spec.platforms.length) query.platform = spec.platforms[0];
  if (spec.cacheFrom.length) query.cachefrom = JSON.stringify(spec.cacheFrom);
  if (spec.network) query.networkmode = spec.network;
  if (spec.extraHosts.length) query.extrahosts = spec.extraHosts;
  if (spec.shmSize !== undefined) query.shmsize = spec.shmSize;
  if (spec.ulimits.length) query.ulimits = JSON.stringify(spec.ulimits);
  if (spec.isolation) query.isolation = spec.isolation;
  if (buildKit) query.version = '2';
  // The containerd exporter rewrites timestamps only into an image it does not unpack (the engine unpacks it on first run).
  if (rewritesTimestamps && spec.sourceDateEpoch !== undefined) query.outputs = JSON.stringify([{ Type: 'moby', Attrs: { 'rewrite-timestamp': 'true', unpack: 'false' } }]);
  return query;
}

export async function buildImage(docker: Dockerode, spec: ImageBuildSpec, log: Logger, options: { buildKit: boolean; rewritesTimestamps?: boolean; signal?: AbortSignal }): Promise<string> {
  const context = await packBuildContext(spec.context, spec.dockerfile, { readable: spec.readable, signal: options.signal, inlineDockerfile: spec.dockerfileInline });
  const query = buildQuery(spec, context.dockerfile, options.buildKit, options.rewritesTimestamps);
  if ((spec.secrets.length || spec.ssh.length) && !options.buildKit) {
    throw new DockerError(`Building ${spec.title}: build secrets and SSH mounts need BuildKit, which this engine does not offer (a Windows engine, or Engine API older than 1.39). Build on a Linux engine of Docker 18.09 or newer.`);
  }
  // Every BuildKit build has a session of ours, as with the Docker CLI: it serves the secrets and SSH agents.
  const session = options.buildKit ? await openBuildSession(docker, { secrets: spec.secrets, ssh: spec.ssh, contextDir: spec.context, signal: options.signal }) : undefined;
  if (session) query.session = session.id;

  let imageId: string | undefined;
  try {
    const stream = await postBuild(docker, context.tar as NodeJS.ReadableStream, query, options.signal).catch((err: Error) => {
      throw new DockerError(`Building ${spec.title} failed: ${err.message}`, { cause: err });
    });
    await followStream(stream, `Building ${spec.title}`, {
      onLine: (line) => log.info(line),
      onEvent: (event: StreamEvent) => {
        const aux = event.aux as { ID?: string } | undefined;
        if (aux && typeof aux === 'object' && typeof aux.ID === 'string') imageId = aux.ID; // classic: aux.ID; BuildKit: id 'moby.image.id'
      },
    });
  } finally {
    session?.close();
  }
  if (!imageId) {
    // Engines that do not report the id still tagged the result.
    imageId = (await docker.getImage(spec.tags[0]).inspect()).Id;
  }
  return imageId;
}

/**
 * POST /build with the context tar, through docker-modem (whatever DOCKER_HOST is). Not through
 * dockerode's buildImage: that opens a BuildKit session of its own for `version=2` and puts its id
 * in place of ours.
 */
function postBuild(docker: Dockerode, tar: NodeJS.ReadableStream, query: Record<string, unknown>, signal?: AbortSignal): Promise<NodeJS.ReadableStream> {
  const modem = (docker as unknown as { modem: { dial(options: object, callback: (err: Error | null, stream: NodeJS.ReadableStream) => void): void } }).modem;
  return new Promise((resolve, reject) =>
    modem.dial({ path: '/build?', method: 'POST', file: tar, options: query, abortSignal: signal, isStream: true, statusCodes: { 200: true, 400: 'bad parameter', 500: 'server error' } }, (err, stream) => (err ? reject(err) : resolve(stream))),
  );
}
