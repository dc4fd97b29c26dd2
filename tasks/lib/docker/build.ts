// One image build through the Engine API: BuildKit (`version=2`) where the engine has it, the
// classic builder otherwise; every stream line checked; the image id taken from the stream.
import type Dockerode from 'dockerode';
import type { Logger } from '../context';
import { DockerError } from '../errors';
import type { ReadablePaths } from '../readable-paths';
import { packBuildContext } from './context';
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
  platform?: string;
  pull: boolean;
  noCache: boolean;
  cacheFrom: string[];
  /** The network of RUN steps: default, host, none (or, with the classic builder, a network's name). */
  network?: string;
  /** `host:ip` entries for /etc/hosts in RUN steps. */
  extraHosts: string[];
  /** Size of /dev/shm in RUN steps, in bytes. */
  shmSize?: number;
  ulimits: { Name: string; Soft: number; Hard: number }[];
  isolation?: string;
}

export interface EngineBuilder {
  /** BuildKit needs API 1.39+ on a Linux engine (Windows engines have only the classic builder). */
  buildKit: boolean;
  /** '1.41' */
  apiVersion: string;
  /** BuildKit applies `shmsize` and `ulimits` to RUN steps from API 1.42 (Docker 23) on; 20.10's ignores both. */
  appliesRunLimits: boolean;
}

export async function engineBuilder(docker: Dockerode): Promise<EngineBuilder> {
  const version = await docker.version();
  const [major, minor] = String(version.ApiVersion).split('.').map(Number);
  const atLeast = (m: number) => major > 1 || (major === 1 && minor >= m);
  const buildKit = version.Os !== 'windows' && atLeast(39);
  return { buildKit, apiVersion: String(version.ApiVersion), appliesRunLimits: !buildKit || atLeast(42) };
}

/** The Engine API's /build query for a spec (dockerode sends a list as repeated parameters, an object as JSON). */
export function buildQuery(spec: ImageBuildSpec, contextDockerfile: string, buildKit: boolean): Record<string, unknown> {
  const query: Record<string, unknown> = {
    t: spec.tags,
    dockerfile: contextDockerfile,
    buildargs: spec.buildArgs,
    labels: spec.labels,
    pull: spec.pull,
    nocache: spec.noCache,
    rm: true,
    forcerm: true,
  };
  if (spec.target) query.target = spec.target;
  if (spec.platform) query.platform = spec.platform;
  if (spec.cacheFrom.length) query.cachefrom = spec.cacheFrom;
  if (spec.network) query.networkmode = spec.network;
  if (spec.extraHosts.length) query.extrahosts = spec.extraHosts;
  if (spec.shmSize !== undefined) query.shmsize = spec.shmSize;
  if (spec.ulimits.length) query.ulimits = JSON.stringify(spec.ulimits);
  if (spec.isolation) query.isolation = spec.isolation;
  if (buildKit) query.version = '2';
  return query;
}

export async function buildImage(docker: Dockerode, spec: ImageBuildSpec, log: Logger, options: { buildKit: boolean; signal?: AbortSignal }): Promise<string> {
  const context = await packBuildContext(spec.context, spec.dockerfile, { readable: spec.readable, signal: options.signal, inlineDockerfile: spec.dockerfileInline });
  const buildOptions = { ...buildQuery(spec, context.dockerfile, options.buildKit), abortSignal: options.signal };

  let imageId: string | undefined;
  const stream = await docker.buildImage(context.tar as NodeJS.ReadableStream, buildOptions as Dockerode.ImageBuildOptions).catch((err: Error) => {
    throw new DockerError(`Building ${spec.title} failed: ${err.message}`, { cause: err });
  });
  await followStream(stream, `Building ${spec.title}`, {
    onLine: (line) => log.info(line),
    onEvent: (event: StreamEvent) => {
      const aux = event.aux as { ID?: string } | undefined;
      if (aux && typeof aux === 'object' && typeof aux.ID === 'string') imageId = aux.ID; // classic: aux.ID; BuildKit: id 'moby.image.id'
    },
  });
  if (!imageId) {
    // Engines that do not report the id still tagged the result.
    imageId = (await docker.getImage(spec.tags[0]).inspect()).Id;
  }
  return imageId;
}
