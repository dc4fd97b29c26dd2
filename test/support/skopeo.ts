// The registry's own word on a digest, from a second client: `skopeo inspect`. Credentials go in an
// auth file (never on the command line).
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export async function skopeoDigest(ref: string, auth?: { registry: string; username: string; password: string }): Promise<string> {
  const args = ['inspect', '--tls-verify=false', '--no-tags'];
  let dir: string | undefined;
  if (auth) {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'col-skopeo-'));
    const file = path.join(dir, 'auth.json');
    fs.writeFileSync(file, JSON.stringify({ auths: { [auth.registry]: { auth: Buffer.from(`${auth.username}:${auth.password}`).toString('base64') } } }), { mode: 0o600 });
    args.push('--authfile', file);
  }
  try {
    const { stdout } = await run('skopeo', [...args, `docker://${ref}`], { timeout: 60_000 });
    return (JSON.parse(stdout) as { Digest: string }).Digest;
  } finally {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  }
}
