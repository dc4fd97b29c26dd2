// A tiny base image made locally (there is no Docker Hub here): Debian's static busybox with its
// common applets, imported into the engine with `POST /images/create?fromSrc=-`; and the test
// engine that holds it, as most integration tests start.
import * as fs from 'node:fs';
import { Readable } from 'node:stream';
import { pack } from 'tar-stream';
import type Dockerode from 'dockerode';
import { followStream } from '../../tasks/lib/docker/stream';
import { startEngine, TestEngine } from './engine';

export const BASE_IMAGE = 'outer-loop/busybox:test';

/** Applets linked in /bin (busybox-static has many more; these are what tests and scripts use). */
const APPLETS = [
  'sh', 'ash', 'echo', 'cat', 'ls', 'sleep', 'true', 'false', 'wget', 'nc', 'mkdir', 'env', 'id',
  'test', '[', '[[', 'grep', 'sed', 'tee', 'printf', 'awk', 'basename', 'dirname', 'cp', 'mv', 'rm',
  'rmdir', 'ln', 'touch', 'chmod', 'chown', 'head', 'tail', 'wc', 'sort', 'uniq', 'cut', 'tr',
  'date', 'hostname', 'pwd', 'kill', 'ps', 'tar', 'gzip', 'gunzip', 'sha256sum', 'md5sum',
  'timeout', 'nslookup', 'ping', 'xargs', 'find', 'stat', 'uname', 'which', 'whoami', 'seq', 'expr',
  'base64', 'readlink', 'realpath', 'mktemp', 'httpd', 'yes', 'diff', 'less', 'vi', 'ip', 'netstat',
  'hexdump', 'od', 'nproc', 'usleep', 'dd', 'df', 'du', 'free', 'top', 'uptime', 'mount',
];

/** Where Debian's busybox-static puts the binary (/bin is /usr/bin on merged-/usr systems). */
const BUSYBOX_CANDIDATES = ['/bin/busybox', '/usr/bin/busybox'];

/**
 * Makes sure `tag` exists in the engine (importing it when missing) and returns its image id.
 * The image: /bin/busybox plus applet links, /usr/bin/env, /tmp (1777), /root, /etc/passwd and
 * /etc/group (root, nobody), PATH set, CMD ["sh"].
 */
export async function ensureBaseImage(docker: Dockerode, tag = BASE_IMAGE): Promise<string> {
  const existing = await inspectId(docker, tag);
  if (existing) return existing;

  const rootfs = await buildRootfsTar(readStaticBusybox());
  const { repo, tagName } = splitTag(tag);
  const stream = (await docker.importImage(Readable.from([rootfs]), {
    repo,
    tag: tagName,
    changes: ['ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'CMD ["sh"]'],
  } as object)) as Readable;
  const lines: string[] = [];
  await followStream(stream, `Importing ${tag}`, { onLine: (l) => lines.push(l) });
  const id = await inspectId(docker, tag);
  if (!id) throw new Error(`Imported ${tag} but the engine does not know it: ${lines.join('\n').slice(0, 500)}`);
  return id;
}

/** The test engine (startEngine), with the base image in it. */
export async function startEngineWithBaseImage(): Promise<TestEngine> {
  const engine = await startEngine();
  try {
    await ensureBaseImage(engine.docker);
    return engine;
  } catch (err) {
    await engine.stop();
    throw err;
  }
}

function readStaticBusybox(): Buffer {
  for (const file of BUSYBOX_CANDIDATES) {
    let bin: Buffer;
    try {
      bin = fs.readFileSync(file);
    } catch {
      continue;
    }
    if (hasInterpreter(bin)) {
      throw new Error(`${file} is dynamically linked: install the Debian package busybox-static (not busybox)`);
    }
    return bin;
  }
  throw new Error(`busybox not found in ${BUSYBOX_CANDIDATES.join(', ')}: install the Debian package busybox-static`);
}

/** true when an ELF file has a PT_INTERP program header (needs a dynamic loader). */
function hasInterpreter(elf: Buffer): boolean {
  if (elf.length < 64 || elf.readUInt32BE(0) !== 0x7f454c46) throw new Error('busybox is not an ELF file');
  const is64 = elf[4] === 2;
  const le = elf[5] === 1;
  const u16 = (o: number) => (le ? elf.readUInt16LE(o) : elf.readUInt16BE(o));
  const u32 = (o: number) => (le ? elf.readUInt32LE(o) : elf.readUInt32BE(o));
  const phoff = is64 ? Number(le ? elf.readBigUInt64LE(0x20) : elf.readBigUInt64BE(0x20)) : u32(0x1c);
  const phentsize = u16(is64 ? 0x36 : 0x2a);
  const phnum = u16(is64 ? 0x38 : 0x2c);
  for (let i = 0; i < phnum; i++) {
    if (u32(phoff + i * phentsize) === 3 /* PT_INTERP */) return true;
  }
  return false;
}

async function buildRootfsTar(busybox: Buffer): Promise<Buffer> {
  const tar = pack();
  const chunks: Buffer[] = [];
  tar.on('data', (c: unknown) => chunks.push(c as Buffer));
  const done = new Promise<void>((resolve, reject) => {
    tar.on('end', () => resolve());
    tar.on('error', reject);
  });
  const mtime = new Date('2024-01-01T00:00:00Z');
  const add = (header: Parameters<typeof tar.entry>[0], content?: string | Buffer) =>
    new Promise<void>((resolve, reject) => {
      const cb = (err?: Error | null) => (err ? reject(err) : resolve());
      if (content === undefined) tar.entry({ mtime, uid: 0, gid: 0, ...header }, cb);
      else tar.entry({ mtime, uid: 0, gid: 0, ...header }, content, cb);
    });
  for (const dir of ['bin', 'sbin', 'usr', 'usr/bin', 'usr/sbin', 'etc', 'root', 'home', 'var', 'proc', 'sys', 'dev', 'run']) {
    await add({ name: `${dir}/`, type: 'directory', mode: dir === 'root' ? 0o700 : 0o755 });
  }
  await add({ name: 'tmp/', type: 'directory', mode: 0o1777 });
  await add({ name: 'var/tmp/', type: 'directory', mode: 0o1777 });
  await add({ name: 'bin/busybox', type: 'file', mode: 0o755 }, busybox);
  for (const applet of APPLETS) {
    await add({ name: `bin/${applet}`, type: 'symlink', linkname: 'busybox', mode: 0o777 });
  }
  await add({ name: 'usr/bin/env', type: 'symlink', linkname: '/bin/busybox', mode: 0o777 });
  await add({ name: 'etc/passwd', type: 'file', mode: 0o644 }, 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n');
  await add({ name: 'etc/group', type: 'file', mode: 0o644 }, 'root:x:0:\nnogroup:x:65534:\n');
  tar.finalize();
  await done;
  return Buffer.concat(chunks);
}

function splitTag(ref: string): { repo: string; tagName: string } {
  const slash = ref.lastIndexOf('/');
  const colon = ref.lastIndexOf(':');
  return colon > slash ? { repo: ref.slice(0, colon), tagName: ref.slice(colon + 1) } : { repo: ref, tagName: 'latest' };
}

async function inspectId(docker: Dockerode, ref: string): Promise<string | undefined> {
  try {
    return (await docker.getImage(ref).inspect()).Id;
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 404) return undefined;
    throw err;
  }
}
