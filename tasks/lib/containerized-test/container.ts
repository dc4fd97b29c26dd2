// Running one test container and following it: output streamed (sanitised) as it comes, the exit
// code awaited within the deadline, the container killed when time runs out or the job is cancelled.
// Container mode creates the container itself from the image id; compose mode follows the runner
// that compose created and the task started.
import type { Readable } from 'node:stream';
import type Dockerode from 'dockerode';
import type { BuildRecord, BuiltImage } from '../build/record';
import { Demultiplexer } from '../compose/containers';
import { LineSink, Logger } from '../context';
import { DockerError, InputError, TimeoutError } from '../errors';
import { parseReference, repositoryName } from '../reference';
import { bounded } from '../util/bounds';

/** `command` as the user wrote it: a JSON array (exec form) or text for `/bin/sh -c` (shell form). */
export function parseCommand(text: string | undefined, input: string): string[] | undefined {
  const value = text?.trim();
  if (!value) return undefined;
  if (value.startsWith('[')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(value);
    } catch (err) {
      throw new InputError(`Input '${input}' starts with '[' but is not a JSON array (${(err as Error).message}). Write ["npm", "test"], or a shell command without the brackets.`);
    }
    if (!Array.isArray(parsed) || parsed.length === 0 || !parsed.every((p) => typeof p === 'string')) {
      throw new InputError(`Input '${input}' must be a non-empty JSON array of strings, e.g. ["npm", "test"].`);
    }
    return parsed as string[];
  }
  return ['/bin/sh', '-c', value];
}

/**
 * The image container mode tests: `image` (a reference or id; the build record's id when it names a
 * built repository), else the build record's only image, or the one `service` names.
 */
export function chooseImage(options: { image?: string; service?: string; record?: BuildRecord; recordPath: string }): { ref: string; built?: BuiltImage; source: string } {
  const { image, service, record } = options;
  if (image) {
    if (/^(sha256:)?[a-f0-9]{64}$/.test(image)) return { ref: image.startsWith('sha256:') ? image : `sha256:${image}`, source: `input 'image'` };
    let parsed: ReturnType<typeof parseReference>;
    try {
      parsed = parseReference(image, "Input 'image'");
    } catch (err) {
      throw new InputError((err as Error).message);
    }
    const repository = repositoryName(parsed);
    // A reference to an image this job built: test the built image by id, wherever the tag has moved since.
    const built = parsed.digest ? undefined : record?.images.find((i) => i.repository === repository && (parsed.tag === undefined || i.tags.includes(parsed.tag)));
    if (built) return { ref: built.imageId, built, source: `build record (${built.name}, built as ${image})` };
    return { ref: image, source: `input 'image'` };
  }
  if (!record) {
    throw new InputError(`Input 'image' is required: name the image to test, or run BuildAndTag@1 earlier in the job (no build record at '${options.recordPath}').`);
  }
  if (service) {
    const found = record.images.find((i) => i.name === service);
    if (!found) throw new InputError(`Input 'service': '${service}' is not in the build record '${options.recordPath}' (it has: ${record.images.map((i) => i.name).join(', ') || 'no images'}).`);
    return { ref: found.imageId, built: found, source: `build record (${found.name})` };
  }
  if (record.images.length !== 1) {
    throw new InputError(`Input 'service' is required: the build record '${options.recordPath}' has ${record.images.length} images (${record.images.map((i) => i.name).join(', ')}); name the one to test.`);
  }
  return { ref: record.images[0].imageId, built: record.images[0], source: `build record (${record.images[0].name})` };
}

/** The local image id of `ref`; a clear error when the engine does not have it. */
export async function localImageId(docker: Dockerode, ref: string, input: string): Promise<string> {
  try {
    return (await docker.getImage(ref).inspect()).Id;
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 404) {
      throw new InputError(
        `Input '${input}': the image '${ref}' is not on this Docker engine. Build it in the same job (BuildAndTag@1) or pull it in an earlier step; ContainerizedTest never pulls the image under test.`,
      );
    }
    throw new DockerError(`Could not inspect image '${ref}': ${(err as Error).message}`, { cause: err });
  }
}

export interface FollowResult {
  exitCode: number;
  tail: string[];
}

/**
 * Streams the container's output (from its start) into the log and waits for it to exit, within
 * `deadline`. On timeout or cancellation the container is killed and the error rethrown.
 */
export async function followContainer(
  docker: Dockerode,
  id: string,
  options: { deadline: number; signal: AbortSignal; log: Logger; timeoutMessage: () => string; prefix?: string },
): Promise<FollowResult> {
  const container = docker.getContainer(id);
  const sink = new LineSink((l) => options.log.info(l), options.prefix ?? '');
  const info = await container.inspect();
  const logs = (await container.logs({ follow: true, stdout: true, stderr: true, timestamps: false })) as unknown as Readable;
  const demux = new Demultiplexer((chunk) => sink.write(chunk));
  const ended = new Promise<void>((resolve) => {
    logs.on('data', (c: Buffer) => (info.Config.Tty ? sink.write(c) : demux.push(Buffer.from(c))));
    logs.on('end', () => resolve());
    logs.on('close', () => resolve());
    logs.on('error', () => resolve());
  });
  try {
    const status = (await bounded(container.wait() as Promise<{ StatusCode: number }>, {
      deadline: options.deadline,
      signal: options.signal,
      onTimeout: () => new TimeoutError(options.timeoutMessage()),
    })) as { StatusCode: number };
    // Let the last lines arrive (the log stream ends when the container has stopped).
    await Promise.race([ended, new Promise((r) => setTimeout(r, 5_000).unref())]);
    return { exitCode: status.StatusCode, tail: sink.tail };
  } catch (err) {
    await container.kill().catch(() => undefined);
    throw err;
  } finally {
    sink.end();
    (logs as Readable & { destroy?: () => void }).destroy?.();
  }
}

export interface TestContainerSpec {
  name: string;
  image: string;
  command?: string[];
  env: Record<string, string>;
  workingDirectory?: string;
  user?: string;
  labels: Record<string, string>;
}

/** Creates and starts the container of container mode; returns its id. */
export async function startTestContainer(docker: Dockerode, spec: TestContainerSpec): Promise<string> {
  let container: Dockerode.Container;
  try {
    container = await docker.createContainer({
      name: spec.name,
      Image: spec.image,
      Cmd: spec.command,
      Env: Object.entries(spec.env).map(([k, v]) => `${k}=${v}`),
      WorkingDir: spec.workingDirectory,
      User: spec.user,
      Labels: spec.labels,
      Tty: false,
      AttachStdout: false,
      AttachStderr: false,
      OpenStdin: false,
      HostConfig: { AutoRemove: false },
    });
  } catch (err) {
    throw new DockerError(`Could not create the test container from ${spec.image}: ${(err as Error).message}`, { cause: err });
  }
  try {
    await container.start();
  } catch (err) {
    const message = (err as { json?: { message?: string } }).json?.message ?? (err as Error).message;
    throw new DockerError(`The test container did not start: ${message}. Check command, workingDirectory and user.`, { cause: err });
  }
  return container.id;
}
