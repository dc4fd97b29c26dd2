// The last good release of a project, kept on the target host itself so that a rollback needs
// nothing from the agent, the pipeline or another run: a Docker volume per project,
// `outer-loop-release-<project>` (labelled dev.azure.pipelines.outer-loop.release=<project>),
// holding `current.yml` (the rendered compose file that passed the gate and verification) and
// `current.json` (when, which build, which digests). The files go in and out through the Engine
// API's archive endpoints on a container that is created (never started) with the volume mounted,
// from one of the release's own images, and removed at once: no shell, no extra image, works the
// same over TLS and SSH. `compose down -v` of the project does not remove it (it is not a volume of
// the compose file).
import { Readable } from 'node:stream';
import type Dockerode from 'dockerode';
import { DockerError } from '../errors';
import { lazyRequire } from '../lazy';

const tarStream = lazyRequire<typeof import('tar-stream')>(() => require('tar-stream'));

export const STORE_LABEL = 'dev.azure.pipelines.outer-loop.release';
const MOUNT = '/outer-loop-release';
const MAX_FILE_BYTES = 8 * 1024 * 1024;

export interface ReleaseMeta {
  project: string;
  environment: string;
  deployedAt: string;
  buildNumber?: string;
  /** service → pinned image reference */
  images: Record<string, string>;
  composeCommand?: string;
}

export interface StoredRelease {
  rendered: string;
  meta: ReleaseMeta;
}

export function storeVolumeName(project: string): string {
  return `outer-loop-release-${project}`;
}

async function withHelper<T>(docker: Dockerode, project: string, image: string, fn: (c: Dockerode.Container) => Promise<T>): Promise<T> {
  const container = await docker.createContainer({
    Image: image,
    Entrypoint: ['/outer-loop-release-store-never-runs'],
    Cmd: [],
    Labels: { [STORE_LABEL]: project, 'dev.azure.pipelines.outer-loop.helper': 'release-store' },
    NetworkDisabled: true,
    HostConfig: { Binds: [`${storeVolumeName(project)}:${MOUNT}`], AutoRemove: false },
  });
  try {
    return await fn(container);
  } finally {
    await container.remove({ force: true, v: false }).catch(() => undefined);
  }
}

/** The stored release of the project, or undefined when it has none (first deployment). */
export async function loadRelease(docker: Dockerode, project: string, helperImage: string): Promise<StoredRelease | undefined> {
  try {
    await docker.getVolume(storeVolumeName(project)).inspect();
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 404) return undefined;
    throw new DockerError(`Reading the last good release of ${project} on the target failed: ${(err as Error).message}`, { cause: err });
  }
  return withHelper(docker, project, helperImage, async (c) => {
    let files: Map<string, string>;
    try {
      files = await readTar((await c.getArchive({ path: `${MOUNT}/.` })) as unknown as Readable);
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) return undefined;
      throw err;
    }
    const rendered = files.get('current.yml');
    const metaText = files.get('current.json');
    if (!rendered || !metaText) return undefined;
    return { rendered, meta: JSON.parse(metaText) as ReleaseMeta };
  });
}

/** Shell commands, run against the target host, that bring the project's last good release back by hand. */
export function manualRestoreCommands(project: string): string {
  return `docker run --rm -v ${storeVolumeName(project)}:/release busybox cat /release/current.yml > last-good.yml && docker compose -p ${project} -f last-good.yml up -d --remove-orphans`;
}

/** Keeps `rendered` as the project's last good release. */
export async function saveRelease(docker: Dockerode, project: string, helperImage: string, release: StoredRelease): Promise<void> {
  try {
    await docker.getVolume(storeVolumeName(project)).inspect();
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode !== 404) throw err;
    await docker.createVolume({ Name: storeVolumeName(project), Labels: { [STORE_LABEL]: project } });
  }
  const tar = await makeTar({ 'current.yml': release.rendered, 'current.json': `${JSON.stringify(release.meta, null, 2)}\n` });
  await withHelper(docker, project, helperImage, (c) => c.putArchive(tar, { path: MOUNT }));
}

async function makeTar(files: Record<string, string>): Promise<Buffer> {
  const pack = tarStream().pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => chunks.push(c as Buffer));
  const done = new Promise<void>((resolve, reject) => {
    pack.on('end', () => resolve());
    pack.on('error', reject);
  });
  for (const [name, content] of Object.entries(files)) {
    await new Promise<void>((resolve, reject) => pack.entry({ name, mode: 0o644, mtime: new Date() }, content, (err) => (err ? reject(err) : resolve())));
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

function readTar(stream: Readable): Promise<Map<string, string>> {
  return new Promise((resolve, reject) => {
    const files = new Map<string, string>();
    const extract = tarStream().extract();
    extract.on('entry', (header, body, next) => {
      const name = header.name.replace(/\/+$/, '').split('/').pop() ?? '';
      const chunks: Buffer[] = [];
      let size = 0;
      body.on('data', (chunk: unknown) => {
        const c = chunk as Buffer;
        size += c.length;
        if (size <= MAX_FILE_BYTES) chunks.push(c);
      });
      body.on('end', () => {
        if (header.type === 'file' && size <= MAX_FILE_BYTES) files.set(name, Buffer.concat(chunks).toString('utf8'));
        next();
      });
      body.resume();
    });
    extract.on('finish', () => resolve(files));
    extract.on('error', reject);
    stream.on('error', reject);
    stream.pipe(extract);
  });
}
