// Images for tests, benchmarks and the demo: BuildAndTag options with plain defaults, pushes
// through the Engine API that fail on the stream's error lines (the engine answers 200 regardless),
// and the output of a container run from an image. The steps a buildx log shows CACHED.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import type Dockerode from 'dockerode';
import type { BuildAndTagOptions } from '../../tasks/lib/build';
import { Demultiplexer } from '../../tasks/lib/compose/containers';
import { followStream, pushedDigest } from '../../tasks/lib/docker/stream';

/**
 * BuildAndTag options for `docker` (or an engine connector of the test's own): Dockerfile and
 * context '.', no services picked, no tags, build args, labels, pipeline labels or pipeline info,
 * no pull, cache on, three builds at a time (the task's default); `over` sets the rest.
 */
export function buildOptions(docker: Dockerode | BuildAndTagOptions['engine'], over: Partial<BuildAndTagOptions> & Pick<BuildAndTagOptions, 'buildRecordPath'>): BuildAndTagOptions {
  return {
    engine: typeof docker === 'function' ? docker : async () => docker,
    dockerfile: 'Dockerfile',
    buildContext: '.',
    services: [],
    tags: [],
    buildArgs: {},
    labels: {},
    pull: false,
    noCache: false,
    cacheFrom: [],
    maxParallel: 3,
    reproducible: false,
    addPipelineLabels: false,
    pipeline: {},
    ...over,
  };
}

export interface PushAuth {
  username?: string;
  password?: string;
  serveraddress?: string;
}

/** Pushes a local image (repository:tag); returns the manifest digest the push reported. */
export async function pushImage(docker: Dockerode, ref: string, auth: PushAuth = {}): Promise<string> {
  const stream = (await docker.getImage(ref).push({ authconfig: auth } as Dockerode.ImagePushOptions)) as Readable;
  let digest: string | undefined;
  await followStream(stream, `Pushing ${ref}`, {
    onEvent: (e) => (digest = pushedDigest(e, ref.slice(ref.lastIndexOf(':') + 1)) ?? digest),
  });
  if (!digest) throw new Error(`Pushing ${ref}: the stream reported no digest`);
  return digest;
}

/** Tags a local image as `ref` (repository:tag) and pushes it, e.g. the base image as a "third-party" image in a test registry. */
export async function tagAndPush(docker: Dockerode, image: string, ref: string, auth: PushAuth = {}): Promise<string> {
  const colon = ref.lastIndexOf(':');
  await docker.getImage(image).tag({ repo: ref.slice(0, colon), tag: ref.slice(colon + 1) });
  return pushImage(docker, ref, auth);
}

/** A non-TTY container's logs (the Engine API's multiplexed stream) as text, stdout and stderr in order. */
export function logText(raw: Buffer): string {
  const parts: Buffer[] = [];
  new Demultiplexer((chunk) => parts.push(chunk)).push(raw);
  return Buffer.concat(parts).toString('utf8');
}

/** The Dockerfile steps (RUN, COPY) buildx's plain log shows CACHED: `#7 [build 2/3] RUN …`, then `#7 CACHED`. */
export function cachedBuildSteps(logs: string[]): string[] {
  const names = new Map<string, string>();
  const cached: string[] = [];
  for (const line of logs.map((l) => l.trim())) {
    const step = /^#(\d+) \[[^\]]+\] ((?:RUN|COPY) .*)$/.exec(line);
    if (step) names.set(step[1], step[2]);
    const hit = /^#(\d+) CACHED$/.exec(line);
    if (hit && names.has(hit[1])) cached.push(names.get(hit[1]) as string);
  }
  return cached;
}

/** The output (stdout and stderr, trimmed) of `cmd` run in a container of `image`, removed afterwards. */
export async function outputOf(docker: Dockerode, image: string, cmd: string[]): Promise<string> {
  const container = await docker.createContainer({ Image: image, Cmd: cmd });
  try {
    await container.start();
    await container.wait();
    return logText((await container.logs({ stdout: true, stderr: true })) as unknown as Buffer).trim();
  } finally {
    await container.remove({ force: true });
  }
}

/** Writes `files` (path → text) under `root/name`; returns that folder. */
export function writeProject(root: string, name: string, files: Record<string, string>): string {
  const dir = path.join(root, name);
  for (const [file, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
    fs.writeFileSync(path.join(dir, file), text);
  }
  return dir;
}
