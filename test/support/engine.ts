// A real Docker engine for the integration tests.
//
// Order of preference (COL_TEST_ENGINE=auto, the default):
//   1. DOCKER_HOST, when set and answering /_ping within a few seconds (any scheme dockerode
//      understands: unix://, tcp:// with DOCKER_TLS_VERIFY/DOCKER_CERT_PATH, ssh://);
//   2. /var/run/docker.sock, when it answers;
//   3. the harness's own private dockerd (Debian package docker.io).
// COL_TEST_ENGINE=private skips 1 and 2; COL_TEST_ENGINE=external fails instead of starting one.
//
// The private engine is SHARED between test processes (node's runner runs each test file in its
// own process; several engineers may run tests on one machine at once):
//   - it lives in a fixed, short folder (COL_TEST_ENGINE_DIR, default /tmp/col-engine: a unix
//     socket path must stay under ~100 characters): data/ (the data-root, kept between runs so
//     base images and build cache survive), exec/ (exec-root, removed on stop), docker.sock,
//     dockerd.pid, dockerd.log, leases/, lock;
//   - every startEngine() takes a lease (leases/<pid>-<n>); stop() returns it, and the process
//     returning the LAST live lease stops dockerd (SIGTERM, wait, SIGKILL after 30 s) and removes
//     the exec-root. Leases of dead processes do not count (a crashed test cannot keep it alive
//     for ever) and a process removes its leases on exit;
//   - starting, adopting and stopping happen under an exclusive lock file, so two dockerds never
//     share the data-root and one is never stopped while another process holds a lease.
//   dockerd starts in ~0.5 s here, so with `--test-concurrency=1` restarting it per file is cheap;
//   the data-root cache is what saves time.
// The private dockerd gets its own bridge (col-docker0, 10.213.0.1/24 or another free /24) and
// its own address pool for user-defined networks (10.214.0.0/16 in /24s), so it does not fight
// over docker0 and 172.17-31.x with another dockerd on the same machine. If `ip` is missing it
// falls back to docker0.
// If the cached data-root ever gets corrupted: stop the tests and `rm -rf /tmp/col-engine`.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import Dockerode from 'dockerode';
import { PROJECT_LABEL } from '../../tasks/lib/compose/containers';
import { STORE_LABEL } from '../../tasks/lib/compose-deploy/store';
import type { Logger } from '../../tasks/lib/context';
import { sweepByLabel } from '../../tasks/lib/containerized-test/teardown';

export interface TestEngine {
  docker: Dockerode;
  /** What DOCKER_HOST should be for a child process (docker CLI, docker-compose) to reach it. */
  dockerHost: string;
  /** true when this is the harness's private dockerd, false for an engine found already running. */
  private: boolean;
  stop(): Promise<void>;
}

const ENGINE_DIR = process.env.COL_TEST_ENGINE_DIR ?? '/tmp/col-engine';
const PING_TIMEOUT_MS = 3_000;
const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 30_000;
const LOCK_TIMEOUT_MS = 120_000;
const BRIDGE_NAME = 'col-docker0';
const BRIDGE_CANDIDATES = ['10.213.0.1/24', '10.231.0.1/24', '172.30.213.1/24'];
const POOL_CANDIDATES = ['10.214.0.0/16', '10.232.0.0/16', '172.29.0.0/16'];

const paths = {
  dir: ENGINE_DIR,
  data: path.join(ENGINE_DIR, 'data'),
  exec: path.join(ENGINE_DIR, 'exec'),
  sock: path.join(ENGINE_DIR, 'docker.sock'),
  pid: path.join(ENGINE_DIR, 'dockerd.pid'),
  log: path.join(ENGINE_DIR, 'dockerd.log'),
  leases: path.join(ENGINE_DIR, 'leases'),
  lock: path.join(ENGINE_DIR, 'lock'),
};

export async function startEngine(): Promise<TestEngine> {
  const choice = (process.env.COL_TEST_ENGINE ?? 'auto').toLowerCase();
  if (choice !== 'private') {
    const external = await findExternalEngine();
    if (external) return external;
    if (choice === 'external') {
      throw new Error(
        `COL_TEST_ENGINE=external but no engine answered (DOCKER_HOST=${process.env.DOCKER_HOST ?? '(unset)'}, /var/run/docker.sock)`,
      );
    }
  }
  return startPrivateEngine();
}

// ---------------------------------------------------------------- external engines

async function findExternalEngine(): Promise<TestEngine | undefined> {
  const candidates: { host: string; make: () => Dockerode }[] = [];
  const envHost = process.env.DOCKER_HOST;
  if (envHost) candidates.push({ host: envHost, make: () => new Dockerode() }); // docker-modem reads DOCKER_* itself
  if (fs.existsSync('/var/run/docker.sock') && envHost !== 'unix:///var/run/docker.sock') {
    candidates.push({ host: 'unix:///var/run/docker.sock', make: () => new Dockerode({ socketPath: '/var/run/docker.sock' }) });
  }
  for (const c of candidates) {
    let docker: Dockerode;
    try {
      docker = c.make();
    } catch {
      continue;
    }
    if (await pingOnce(docker, PING_TIMEOUT_MS)) {
      return { docker, dockerHost: c.host, private: false, stop: async () => {} };
    }
    if (c.host === envHost) {
      process.emitWarning(`DOCKER_HOST=${envHost} did not answer /_ping; trying another engine`);
    }
  }
  return undefined;
}

async function pingOnce(docker: Dockerode, timeoutMs: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  try {
    const answer = await Promise.race([
      docker.ping(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('ping timed out')), timeoutMs);
      }),
    ]);
    return String(answer).trim() === 'OK';
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------- the private, shared engine

let leaseCounter = 0;
const myLeases = new Set<string>();
let exitHookInstalled = false;

async function startPrivateEngine(): Promise<TestEngine> {
  fs.mkdirSync(paths.leases, { recursive: true, mode: 0o700 });
  installExitHook();
  const docker = new Dockerode({ socketPath: paths.sock });
  const lease = path.join(paths.leases, `${process.pid}-${++leaseCounter}`);
  await withLock(async () => {
    if (!(await privateEngineRunning(docker))) {
      await stopDockerd(); // a hung or half-dead one, if any
      await launchDockerd(docker);
    }
    fs.writeFileSync(lease, `${process.pid}\n`);
    myLeases.add(lease);
  });
  let stopped = false;
  return {
    docker,
    dockerHost: `unix://${paths.sock}`,
    private: true,
    async stop() {
      if (stopped) return;
      stopped = true;
      await withLock(async () => {
        removeLease(lease);
        if (liveLeases().length === 0) await stopDockerd();
      });
    },
  };
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const lease of myLeases) {
      try {
        fs.unlinkSync(lease);
      } catch {
        /* already gone */
      }
    }
  });
}

function removeLease(lease: string): void {
  myLeases.delete(lease);
  fs.rmSync(lease, { force: true });
}

/** Leases whose process still runs; stale ones are deleted on the way. */
function liveLeases(): string[] {
  const live: string[] = [];
  for (const name of fs.readdirSync(paths.leases)) {
    const pid = Number.parseInt(name, 10);
    if (Number.isInteger(pid) && processAlive(pid)) live.push(name);
    else fs.rmSync(path.join(paths.leases, name), { force: true });
  }
  return live;
}

/** The dockerd of our pidfile, if it is alive and really ours (its --data-root is ours). */
function ourDockerdPid(): number | undefined {
  let pid: number;
  try {
    pid = Number.parseInt(fs.readFileSync(paths.pid, 'utf8').trim(), 10);
  } catch {
    return undefined;
  }
  if (!Number.isInteger(pid) || pid <= 0 || !processAlive(pid)) return undefined;
  try {
    const argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    const i = argv.indexOf('--data-root');
    if (i < 0 || argv[i + 1] !== paths.data) return undefined;
  } catch {
    return undefined;
  }
  return pid;
}

async function privateEngineRunning(docker: Dockerode): Promise<boolean> {
  return ourDockerdPid() !== undefined && (await pingOnce(docker, PING_TIMEOUT_MS));
}

/** Alive and not a zombie (a dockerd we spawned and that exited stays a zombie until reaped). */
function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return fs.existsSync('/proc/self') ? false : true; // no procfs: trust kill(0)
  }
}

async function launchDockerd(docker: Dockerode): Promise<void> {
  const which = spawnSync('sh', ['-c', 'command -v dockerd'], { encoding: 'utf8' });
  if (which.status !== 0) {
    throw new Error('No Docker engine is reachable and dockerd is not installed: install the Debian package docker.io (see .ci/run)');
  }
  fs.mkdirSync(paths.data, { recursive: true, mode: 0o711 });
  fs.rmSync(paths.exec, { recursive: true, force: true });
  fs.rmSync(paths.pid, { force: true });
  fs.rmSync(paths.sock, { force: true });

  const args = [
    '--data-root', paths.data,
    '--exec-root', paths.exec,
    '--host', `unix://${paths.sock}`,
    '--pidfile', paths.pid,
    '--shutdown-timeout', '5',
  ];
  const net = networkPlan();
  if (net.bridge) args.push('--bridge', net.bridge);
  if (net.pool) args.push('--default-address-pool', `base=${net.pool},size=24`);

  const logFd = fs.openSync(paths.log, 'w');
  let child: ChildProcess;
  try {
    fs.writeSync(logFd, `# dockerd ${args.join(' ')}\n`);
    // detached + unref: the engine may outlive this process while other processes hold leases.
    child = spawn('dockerd', args, { detached: true, stdio: ['ignore', logFd, logFd] });
  } finally {
    fs.closeSync(logFd);
  }
  let exited: string | undefined;
  child.on('error', (err) => (exited = `could not start: ${err.message}`));
  child.on('exit', (code, signal) => (exited = `exited with ${signal ?? `code ${code}`}`));
  child.unref();

  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (exited) break;
    if (fs.existsSync(paths.sock) && (await pingOnce(docker, 1_000))) return;
    await sleep(100);
  }
  if (!exited && child.pid) {
    try {
      process.kill(child.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  throw new Error(
    `The private dockerd did not answer /_ping on ${paths.sock} within ${START_TIMEOUT_MS / 1000} s` +
      `${exited ? ` (it ${exited})` : ''}. Last lines of ${paths.log}:\n${tail(paths.log, 40)}`,
  );
}

async function stopDockerd(): Promise<void> {
  const pid = ourDockerdPid();
  if (pid !== undefined) {
    process.kill(pid, 'SIGTERM');
    const deadline = Date.now() + STOP_TIMEOUT_MS;
    while (processAlive(pid) && Date.now() < deadline) await sleep(50);
    if (processAlive(pid)) {
      process.kill(pid, 'SIGKILL');
      while (processAlive(pid)) await sleep(50);
    }
  }
  fs.rmSync(paths.pid, { force: true });
  fs.rmSync(paths.sock, { force: true });
  try {
    fs.rmSync(paths.exec, { recursive: true, force: true });
  } catch {
    // A mount (netns) left behind by a killed dockerd: the next start will try again.
  }
}

// ---------------------------------------------------------------- the private bridge

interface NetworkPlan {
  bridge?: string;
  bridgeAddress?: string;
  pool?: string;
}

/**
 * The bridge and address pool of the private engine. Chosen once (free of the host's routes at
 * that time) and remembered in ENGINE_DIR/network.json, so that networks kept in the data-root
 * stay inside the pool on later starts.
 */
function networkPlan(): NetworkPlan {
  const file = path.join(paths.dir, 'network.json');
  let plan: NetworkPlan | undefined;
  try {
    plan = JSON.parse(fs.readFileSync(file, 'utf8')) as NetworkPlan;
  } catch {
    plan = undefined;
  }
  if (!plan) {
    if (spawnSync('ip', ['-V']).error) return {}; // no iproute2: dockerd uses docker0 and its default pools
    const routes = ipv4Routes().filter((r) => r.dev !== BRIDGE_NAME);
    const free = (cidr: string) => !routes.some((r) => cidrOverlap(r.cidr, cidr));
    plan = { bridgeAddress: BRIDGE_CANDIDATES.find(free), pool: POOL_CANDIDATES.find(free) };
    if (plan.bridgeAddress) plan.bridge = BRIDGE_NAME;
    fs.writeFileSync(file, `${JSON.stringify(plan)}\n`);
  }
  if (plan.bridge && plan.bridgeAddress && !ensureBridge(plan.bridge, plan.bridgeAddress)) {
    return { pool: plan.pool };
  }
  return plan;
}

/** Creates the bridge with its address (or keeps it when it is there) and brings it up. */
function ensureBridge(name: string, address: string): boolean {
  const ip = (args: string[]) => spawnSync('ip', args, { encoding: 'utf8' });
  const show = ip(['-4', '-o', 'addr', 'show', 'dev', name]);
  if (show.error) return false;
  if (show.status !== 0 && ip(['link', 'add', 'name', name, 'type', 'bridge']).status !== 0) return false;
  if (!show.stdout?.includes(` ${address} `) && ip(['addr', 'add', address, 'dev', name]).status !== 0) return false;
  return ip(['link', 'set', name, 'up']).status === 0;
}

/** IPv4 destinations of the main routing table ("default" left out). */
function ipv4Routes(): { cidr: string; dev: string }[] {
  const out = spawnSync('ip', ['-4', '-o', 'route', 'show'], { encoding: 'utf8' });
  if (out.status !== 0) return [];
  const routes: { cidr: string; dev: string }[] = [];
  for (const line of out.stdout.split('\n')) {
    const dest = line.trim().split(/\s+/)[0];
    if (!dest || !/^\d+\.\d+\.\d+\.\d+(\/\d+)?$/.test(dest)) continue;
    routes.push({ cidr: dest.includes('/') ? dest : `${dest}/32`, dev: /\bdev (\S+)/.exec(line)?.[1] ?? '' });
  }
  return routes;
}

function cidrOverlap(a: string, b: string): boolean {
  const parse = (cidr: string): [number, number] => {
    const [addr, bits] = cidr.split('/');
    const n = addr.split('.').reduce((acc, o) => (acc << 8) + Number(o), 0) >>> 0;
    const len = Number(bits ?? 32);
    const mask = len === 0 ? 0 : (~0 << (32 - len)) >>> 0;
    return [(n & mask) >>> 0, mask];
  };
  const [na, ma] = parse(a);
  const [nb, mb] = parse(b);
  const common = (ma & mb) >>> 0; // the shorter prefix
  return ((na & common) >>> 0) === ((nb & common) >>> 0);
}

// ---------------------------------------------------------------- lock and small helpers

/**
 * An exclusive lock over ENGINE_DIR: a file created with O_EXCL that holds the owner's pid.
 * A lock whose owner died is broken. (Two waiters breaking the same stale lock at the same
 * instant could both proceed; a stale lock needs a process killed inside the ~1 s it holds it.)
 */
async function withLock<T>(fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + LOCK_TIMEOUT_MS;
  const me = `${process.pid}`;
  for (;;) {
    try {
      fs.writeFileSync(paths.lock, me, { flag: 'wx' });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    let owner = Number.NaN;
    let age = 0;
    try {
      owner = Number.parseInt(fs.readFileSync(paths.lock, 'utf8'), 10);
      age = Date.now() - fs.statSync(paths.lock).mtimeMs;
    } catch {
      continue; // released meanwhile
    }
    if ((Number.isInteger(owner) && !processAlive(owner)) || (!Number.isInteger(owner) && age > 5_000)) {
      fs.rmSync(paths.lock, { force: true });
      continue;
    }
    if (Date.now() > deadline) {
      throw new Error(`Timed out waiting for the test engine lock ${paths.lock} held by pid ${owner}`);
    }
    await sleep(50 + Math.random() * 100);
  }
  try {
    return await fn();
  } finally {
    try {
      if (fs.readFileSync(paths.lock, 'utf8') === me) fs.rmSync(paths.lock, { force: true });
    } catch {
      /* gone */
    }
  }
}

function tail(file: string, lines: number): string {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch (err) {
    return `(cannot read: ${(err as Error).message})`;
  }
}

// ---------------------------------------------------------------- clean-up

const quiet: Logger = { info() {}, warn() {}, debug() {}, group: (_title, fn) => fn() };

/** Removes a compose project from the engine: its containers, networks and volumes, and ComposeDeploy's release store for it. */
export async function removeComposeProject(docker: Dockerode, project: string): Promise<void> {
  await sweepByLabel(docker, `${PROJECT_LABEL}=${project}`, quiet);
  await sweepByLabel(docker, `${STORE_LABEL}=${project}`, quiet);
}
