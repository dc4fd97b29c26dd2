// A private OpenSSH server (Debian package openssh-server) on 127.0.0.1 for the SSH deployments:
// its own config, host key, authorized key and pidfile in a temp folder, run in the foreground
// (`sshd -D -e -f <config>`) as the test process's user (root on CI) and stopped at the end. The
// "remote" Docker host is this machine: the test points the task at the test engine's socket.
// Keys are made with ssh-keygen (openssh-client): an authorized ed25519 key, and a second key that
// is not authorized (for the rejected-key case).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePort } from './http-double';

export interface SshHost {
  host: string;
  port: number;
  user: string;
  /** OpenSSH private key (authorized). */
  privateKey: string;
  /** A private key the server does not accept. */
  rejectedKey: string;
  /** SHA256:… fingerprint of the server's host key, as ssh-keygen -l prints it (without padding). */
  hostKeyFingerprint: string;
  stop(): Promise<void>;
}

const SSHD_CANDIDATES = ['/usr/sbin/sshd', '/sbin/sshd'];

export async function startSshHost(): Promise<SshHost> {
  const sshd = SSHD_CANDIDATES.find((p) => fs.existsSync(p));
  if (!sshd) throw new Error('sshd is not installed: install the Debian package openssh-server (see .ci/run)');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'col-sshd-'));
  fs.chmodSync(dir, 0o700);
  const keygen = (file: string, comment: string) => {
    const r = spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', file], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`ssh-keygen failed: ${r.stderr}`);
  };
  keygen(path.join(dir, 'host_key'), 'col-test-host');
  keygen(path.join(dir, 'client_key'), 'col-test-client');
  keygen(path.join(dir, 'rejected_key'), 'col-test-rejected');
  fs.copyFileSync(path.join(dir, 'client_key.pub'), path.join(dir, 'authorized_keys'));
  fs.chmodSync(path.join(dir, 'authorized_keys'), 0o600);
  const fp = spawnSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', path.join(dir, 'host_key.pub')], { encoding: 'utf8' });
  const hostKeyFingerprint = /SHA256:[A-Za-z0-9+/]+/.exec(fp.stdout)?.[0];
  if (!hostKeyFingerprint) throw new Error(`cannot read the host key fingerprint: ${fp.stdout}${fp.stderr}`);

  // sshd insists on its privilege separation directory.
  fs.mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const user = os.userInfo().username;
  const port = await freePort();
  const config = [
    `Port ${port}`,
    'ListenAddress 127.0.0.1',
    `HostKey ${path.join(dir, 'host_key')}`,
    `PidFile ${path.join(dir, 'sshd.pid')}`,
    `AuthorizedKeysFile ${path.join(dir, 'authorized_keys')}`,
    `AllowUsers ${user}`,
    'PermitRootLogin prohibit-password',
    'PubkeyAuthentication yes',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'UsePAM no',
    'StrictModes no',
    'AllowStreamLocalForwarding yes',
    'X11Forwarding no',
    'PermitTTY no',
    'LogLevel VERBOSE',
  ].join('\n');
  fs.writeFileSync(path.join(dir, 'sshd_config'), `${config}\n`);
  const check = spawnSync(sshd, ['-t', '-f', path.join(dir, 'sshd_config')], { encoding: 'utf8' });
  if (check.status !== 0) throw new Error(`sshd rejects the test config: ${check.stderr}`);

  const log = fs.openSync(path.join(dir, 'sshd.log'), 'w');
  const child: ChildProcess = spawn(sshd, ['-D', '-e', '-f', path.join(dir, 'sshd_config')], { stdio: ['ignore', log, log] });
  fs.closeSync(log);
  let exited: string | undefined;
  child.on('exit', (code, signal) => (exited = `exited with ${signal ?? code}`));
  const deadline = Date.now() + 10_000;
  while (!(await banner(port))) {
    if (exited || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`sshd did not start (${exited ?? 'timeout'}): ${fs.readFileSync(path.join(dir, 'sshd.log'), 'utf8')}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    host: '127.0.0.1',
    port,
    user,
    privateKey: fs.readFileSync(path.join(dir, 'client_key'), 'utf8'),
    rejectedKey: fs.readFileSync(path.join(dir, 'rejected_key'), 'utf8'),
    hostKeyFingerprint,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const gone = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await Promise.race([gone, new Promise((r) => setTimeout(r, 5_000))]);
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** true once something on the port greets with an SSH banner. */
function banner(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(1_000, () => done(false));
    sock.once('data', (d) => done(d.toString().startsWith('SSH-')));
    sock.once('error', () => done(false));
  });
}
