// The last good releases of a project (keepReleases of them, newest first), kept on the target host
// itself so that a rollback needs nothing from the agent, the pipeline or another run: a Docker volume
// per project, `outer-loop-release-<project>` (labelled dev.azure.pipelines.outer-loop.release=<project>),
// holding `releases.json` (each release's rendered compose file that passed the gate and
// verification, and when, which build, which digests), and `current.yml` / `current.json`, the
// newest of them, for a restore by hand (manualRestoreCommands; a volume from before the history
// holds only these, and reads as a history of one). The files go in and out through the Engine
// API's archive endpoints on a container that is created (never started) with the volume mounted,
// from an image on the host, and removed at once: no shell, no extra image, works the same over TLS
// and SSH. `compose down -v` of the project does not remove it (it is not a volume of the compose file).
import { Readable } from 'node:stream';
import type Dockerode from 'dockerode';
import { unlessMissing } from '../docker/missing';
import { DockerError } from '../errors';
import { lazyRequire } from '../util/lazy';
import type { ImageLock } from '../lock/types';
import { listProjectContainers } from '../compose/containers';

const tarStream = lazyRequire<typeof import('tar-stream')>(() => require('tar-stream'));

export const STORE_LABEL = 'dev.azure.pipelines.outer-loop.release';
const MOUNT = '/outer-loop-release';
const MAX_FILE_BYTES = 8 * 1024 * 1024;
/** The keepReleases input's upper limit: how many good releases a host may keep. */
export const MAX_KEEP_RELEASES = 50;

export interface ReleaseMeta {
  project: string;
  environment: string;
  deployedAt: string;
  buildNumber?: string;
  /** service → pinned image reference */
  images: Record<string, string>;
  composeCommand?: string;
  /** The image lock it was pinned to (for the summary's links to the run that built each image). */
  lock?: ImageLock;
  /** sha256:<hex> of the lock file's bytes. */
  lockDigest?: string;
}

export interface StoredRelease {
  rendered: string;
  meta: ReleaseMeta;
}

export function storeVolumeName(project: string): string {
  return `outer-loop-release-${project}`;
}

/**
 * An image on the host to create the helper from: it is never started, so any image does. The
 * project's own come first; the volume exists only where the project was deployed, so one is there.
 */
async function helperImage(docker: Dockerode, project: string): Promise<string> {
  const own = await listProjectContainers(docker, project);
  const id = own.find((c) => c.ImageID)?.ImageID ?? (await docker.listImages()).find((i) => i.Id)?.Id;
  if (!id) throw new DockerError(`The target has no image to read or write the kept releases of ${project} with (the helper container is created from one, never started). Pull any image there.`);
  return id;
}

async function withHelper<T>(docker: Dockerode, project: string, fn: (c: Dockerode.Container) => Promise<T>): Promise<T> {
  const container = await docker.createContainer({
    Image: await helperImage(docker, project),
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

/** The project's kept releases, newest first; empty when it has none (first deployment). */
export async function loadReleases(docker: Dockerode, project: string): Promise<StoredRelease[]> {
  try {
    await docker.getVolume(storeVolumeName(project)).inspect();
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 404) return [];
    throw new DockerError(`Reading the last good releases of ${project} on the target failed: ${(err as Error).message}`, { cause: err });
  }
  return withHelper(docker, project, async (c) => {
    let files: Map<string, string>;
    try {
      files = await readTar((await c.getArchive({ path: `${MOUNT}/.` })) as unknown as Readable);
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) return [];
      throw err;
    }
    const history = files.get('releases.json');
    if (history) return (JSON.parse(history) as { releases: StoredRelease[] }).releases;
    const rendered = files.get('current.yml');
    const metaText = files.get('current.json');
    if (!rendered || !metaText) return [];
    return [{ rendered, meta: JSON.parse(metaText) as ReleaseMeta }];
  });
}

/**
 * The releases kept once `release` is the newest: at most `keep`, newest first. An earlier release
 * of the same build (a rollbackTo it, or a re-run) is dropped, so each build is listed once.
 */
export function keptReleases(history: StoredRelease[], release: StoredRelease, keep: number): StoredRelease[] {
  const build = release.meta.buildNumber;
  return [release, ...history.filter((r) => !build || r.meta.buildNumber !== build)].slice(0, keep);
}

/** How a kept release is named in messages: its build, and when it was deployed. */
export function describeRelease(release: StoredRelease): string {
  return `${release.meta.buildNumber ? `build ${release.meta.buildNumber}` : 'a release without a build number'} (deployed ${release.meta.deployedAt})`;
}

/** Shell commands, run against the target host, that bring the project's last good release back by hand. */
export function manualRestoreCommands(project: string): string {
  return `docker run --rm -v ${storeVolumeName(project)}:/release busybox cat /release/current.yml > last-good.yml && docker compose -p ${project} -f last-good.yml up -d --remove-orphans`;
}

/** Keeps `release` as the project's newest good release, with the newest of `history` (keptReleases); returns what is kept. */
export async function saveRelease(docker: Dockerode, project: string, history: StoredRelease[], release: StoredRelease, keep: number): Promise<StoredRelease[]> {
  if (!(await unlessMissing(docker.getVolume(storeVolumeName(project)).inspect()))) {
    await docker.createVolume({ Name: storeVolumeName(project), Labels: { [STORE_LABEL]: project } });
  }
  let kept = keptReleases(history, release, keep);
  let text = `${JSON.stringify({ releases: kept }, null, 2)}\n`;
  // A file too large to read back would lose the history: the oldest go first.
  while (kept.length > 1 && Buffer.byteLength(text) > MAX_FILE_BYTES) {
    kept = kept.slice(0, -1);
    text = `${JSON.stringify({ releases: kept }, null, 2)}\n`;
  }
  const tar = await makeTar({ 'releases.json': text, 'current.yml': release.rendered, 'current.json': `${JSON.stringify(release.meta, null, 2)}\n` });
  await withHelper(docker, project, (c) => c.putArchive(tar, { path: MOUNT }));
  return kept;
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
