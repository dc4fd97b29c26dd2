// The registry's own word on a digest, from a second client: `skopeo inspect`. Credentials go in an
// auth file (never on the command line).
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface SkopeoAuth {
  registry: string;
  username: string;
  password: string;
}

/** `skopeo inspect ARGS docker://REF`'s output, with the credentials in a private auth file. */
async function inspect(args: string[], ref: string, auth?: SkopeoAuth): Promise<string> {
  const all = ['inspect', '--tls-verify=false', ...args];
  let dir: string | undefined;
  if (auth) {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'col-skopeo-'));
    const file = path.join(dir, 'auth.json');
    fs.writeFileSync(file, JSON.stringify({ auths: { [auth.registry]: { auth: Buffer.from(`${auth.username}:${auth.password}`).toString('base64') } } }), { mode: 0o600 });
    all.push('--authfile', file);
  }
  try {
    return (await run('skopeo', [...all, `docker://${ref}`], { timeout: 60_000 })).stdout;
  } finally {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  }
}

export async function skopeoDigest(ref: string, auth?: SkopeoAuth): Promise<string> {
  return (JSON.parse(await inspect(['--no-tags'], ref, auth)) as { Digest: string }).Digest;
}

/** The manifest (or index) as the registry stores it: `skopeo inspect --raw`. */
export async function skopeoRaw(ref: string, auth?: SkopeoAuth): Promise<string> {
  return inspect(['--raw'], ref, auth);
}

/** The image config of a manifest: `skopeo inspect --config --raw` (its architecture, os, history). */
export async function skopeoConfig(ref: string, auth?: SkopeoAuth): Promise<{ architecture: string; os: string; variant?: string }> {
  return JSON.parse(await inspect(['--config', '--raw'], ref, auth)) as { architecture: string; os: string; variant?: string };
}
