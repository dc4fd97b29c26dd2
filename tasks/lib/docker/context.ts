// The build context as the Docker CLI sends it: a tar of the context folder that honours
// `<Dockerfile>.dockerignore` (BuildKit's per-Dockerfile file) or else `.dockerignore`, and always
// carries the Dockerfile (added under a private name when it lives outside the context or is given inline).
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import type * as tarStream from 'tar-stream';
import { lazyRequire } from '../util/lazy';

const tar = lazyRequire<typeof tarStream>(() => require('tar-stream'));
import { InputError } from '../errors';
import { abortError } from '../util/abort';
import type { ReadablePaths } from '../readable-paths';
import { IgnoreMatcher, parseDockerignore } from './ignore';

export interface BuildContext {
  tar: Readable;
  /** The Dockerfile's path inside the tar, for the `dockerfile` build option. */
  dockerfile: string;
}

type EntryHeader = Parameters<tarStream.Pack['entry']>[0];

const OUTSIDE_DOCKERFILE = '.outer-loop.Dockerfile';

export interface PackOptions {
  /** What may be read: the .dockerignore is read through it (context and Dockerfile were checked when the build was planned). */
  readable: ReadablePaths;
  /** The task's abort signal: the walk stops between folders, the packing between files. */
  signal?: AbortSignal;
  /** The Dockerfile's text (compose `dockerfile_inline`): put in the tar under a private name; dockerfilePath is then not read. */
  inlineDockerfile?: string;
}

/** Walks the context (asynchronously, so a cancel is seen between folders), then streams the tar. */
export async function packBuildContext(contextDir: string, dockerfilePath: string, options: PackOptions): Promise<BuildContext> {
  const { readable, signal, inlineDockerfile } = options;
  if (!fs.existsSync(contextDir) || !fs.statSync(contextDir).isDirectory()) {
    throw new InputError(`The build context '${contextDir}' is not a folder. Check the buildContext input (or the compose service's build.context).`);
  }
  if (inlineDockerfile === undefined && (!fs.existsSync(dockerfilePath) || !fs.statSync(dockerfilePath).isFile())) {
    throw new InputError(`The Dockerfile '${dockerfilePath}' does not exist. Check the dockerfile input (or the compose service's build.dockerfile).`);
  }
  const root = path.resolve(contextDir);
  const dockerfileAbs = path.resolve(dockerfilePath);
  const relDockerfile = path.relative(root, dockerfileAbs).split(path.sep).join('/');
  const inside = inlineDockerfile === undefined && !relDockerfile.startsWith('../') && !path.isAbsolute(relDockerfile);
  const ignoreFile = [`${dockerfileAbs}.dockerignore`, path.join(root, '.dockerignore')].find((f) => fs.existsSync(f));
  const matcher = new IgnoreMatcher(ignoreFile ? parseDockerignore(readable.readText(ignoreFile, `The build context's ignore file`)) : [], ignoreFile);
  const stopIfCancelled = () => {
    if (signal?.aborted) throw abortError(signal);
  };

  // The CLI never leaves out the Dockerfile or .dockerignore, whatever the patterns say.
  const alwaysKept = new Set([inside ? relDockerfile : '', '.dockerignore']);
  const files: string[] = [];
  const walk = async (rel: string) => {
    stopIfCancelled();
    const entries = await fs.promises.readdir(path.join(root, rel), { withFileTypes: true });
    for (const entry of entries.sort((a, b) => a.name.localeCompare(b.name))) {
      const child = rel ? `${rel}/${entry.name}` : entry.name;
      const ignored = matcher.ignores(child) && !alwaysKept.has(child);
      if (entry.isDirectory()) {
        if (!ignored) files.push(child);
        if (!ignored || matcher.mustDescend(child)) await walk(child);
      } else if (!ignored) {
        files.push(child);
      }
    }
  };
  await walk('');

  const pack = tar().pack();
  const addAll = async () => {
    for (const rel of files) {
      stopIfCancelled();
      const abs = path.join(root, rel);
      const st = fs.lstatSync(abs);
      const header = { name: rel, mode: st.mode & 0o7777, mtime: st.mtime, uid: 0, gid: 0 };
      if (st.isDirectory()) await entry(pack, { ...header, type: 'directory' });
      else if (st.isSymbolicLink()) await entry(pack, { ...header, type: 'symlink', linkname: fs.readlinkSync(abs) });
      else if (st.isFile()) await fileEntry(pack, { ...header, size: st.size }, abs);
    }
    if (inlineDockerfile !== undefined) await entry(pack, { name: OUTSIDE_DOCKERFILE, mode: 0o644, size: Buffer.byteLength(inlineDockerfile) }, Buffer.from(inlineDockerfile));
    else if (!inside) await fileEntry(pack, { name: OUTSIDE_DOCKERFILE, mode: 0o644, size: fs.statSync(dockerfileAbs).size }, dockerfileAbs);
    pack.finalize();
  };
  addAll().catch((err: unknown) => pack.destroy(err as Error));
  return { tar: pack as unknown as Readable, dockerfile: inside ? relDockerfile : OUTSIDE_DOCKERFILE };
}

function entry(pack: tarStream.Pack, header: EntryHeader, content?: Buffer): Promise<void> {
  return new Promise((resolve, reject) => (content ? pack.entry(header, content, (err) => (err ? reject(err) : resolve())) : pack.entry(header, (err) => (err ? reject(err) : resolve()))));
}

// Streamed, so a large context never sits in memory whole.
function fileEntry(pack: tarStream.Pack, header: EntryHeader, file: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const sink = pack.entry(header, (err) => (err ? reject(err) : resolve()));
    fs.createReadStream(file).on('error', reject).pipe(sink);
  });
}
