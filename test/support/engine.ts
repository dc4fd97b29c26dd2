// A real Docker engine for the integration tests, on one of two stacks (test/support/stack.ts):
//   legacy   Debian's dockerd 20.10 (package docker.io), classic image store;
//   current  dockerd of the current moby major with containerd 2 and the containerd image store,
//            built from Go modules by scripts/test-tools.mjs.
//
// startEngine({ stack }) (or COL_STACK) starts that stack's private engine. Without a stack
// (the demo's quick start, a test file run by hand) the order is (COL_TEST_ENGINE=auto):
//   1. DOCKER_HOST, when set and answering /_ping within a few seconds (any scheme dockerode
//      understands: unix://, tcp:// with DOCKER_TLS_VERIFY/DOCKER_CERT_PATH, ssh://);
//   2. /var/run/docker.sock, when it answers;
//   3. the harness's own private legacy dockerd.
// COL_TEST_ENGINE=private skips 1 and 2; COL_TEST_ENGINE=external fails instead of starting one.
//
// A private engine is SHARED between test processes (node's runner runs each test file in its
// own process; several engineers may run tests on one machine at once):
//   - it lives in a fixed, short folder per stack (${COL_TEST_ENGINE_DIR:-/tmp/col-engine}/<stack>:
//     a unix socket path must stay under ~100 characters): data/ (the data-root, kept between
//     runs so base images and build cache survive), exec/ (exec-root, removed on stop),
//     docker.sock, dockerd.pid, dockerd.log, network.json, leases/, lock;
//   - every startEngine() takes a lease (leases/<pid>-<n>); stop() returns it, and the process
//     returning the LAST live lease stops dockerd (SIGTERM, wait, SIGKILL after 30 s) and removes
//     the exec-root. Leases of dead processes do not count (a crashed test cannot keep it alive
//     for ever) and a process removes its leases on exit;
//   - starting, adopting and stopping happen under an exclusive lock file, so two dockerds never
//     share the data-root and one is never stopped while another process holds a lease.
//   dockerd starts in ~0.5 s here, so with `--test-concurrency=1` restarting it per file is cheap;
//   the data-root cache is what saves time.
// Networks: each private engine owns one bridge (col-legacy0, col-current0) and one address pool
// for user-defined networks, chosen free of the host's routes and recorded in network.json beside
// its data root. It never creates, adopts or deletes another interface: no fallback to docker0
// (a bridge that cannot be made is an error), and a data root whose stored networks name another
// bridge has its network state reset before dockerd starts, since dockerd would otherwise delete
// that bridge (another engine's docker0) when it replaces the stale default network.
// If a cached data-root ever gets corrupted: stop the tests and `rm -rf /tmp/col-engine`.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import Dockerode from 'dockerode';
import { PROJECT_LABEL } from '../../tasks/lib/compose/containers';
import { STORE_LABEL } from '../../tasks/lib/compose-deploy/store';
import type { Logger } from '../../tasks/lib/context';
import { sweepByLabel } from '../../tasks/lib/containerized-test/teardown';
import { assertStackCompose, currentEngineBinaries, stackFromEnv, type StackName } from './stack';

export interface TestEngine {
  docker: Dockerode;
  /** What DOCKER_HOST should be for a child process (docker CLI, docker compose) to reach it. */
  dockerHost: string;
  /** true when this is the harness's private dockerd, false for an engine found already running. */
  private: boolean;
  /** The private engine's stack; undefined for an engine found already running. */
  stack?: StackName;
  stop(): Promise<void>;
}

export interface EngineOptions {
  /** Start this stack's private engine; 'auto' for the order above (default: COL_STACK, else 'auto'). */
  stack?: StackName | 'auto';
  /** The folder of the private engine (default ${COL_TEST_ENGINE_DIR:-/tmp/col-engine}/<stack>). */
  dir?: string;
  /** false: no bridge network and no iptables rules (`--bridge none --iptables=false`), for an extra engine that only builds: it takes none of the host's addresses and leaves the other engines' chains alone. */
  bridge?: boolean;
}

const PING_TIMEOUT_MS = 3_000;
const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 30_000;
const LOCK_TIMEOUT_MS = 120_000;

/** Each stack's own bridge and the candidates for its address and pool (disjoint between stacks). */
const NETWORKS: Record<StackName, { bridge: string; addresses: string[]; pools: string[] }> = {
  legacy: { bridge: 'col-legacy0', addresses: ['10.213.0.1/24', '10.231.0.1/24', '172.30.213.1/24'], pools: ['10.214.0.0/16', '10.232.0.0/16', '172.29.0.0/16'] },
  current: { bridge: 'col-current0', addresses: ['10.215.0.1/24', '10.233.0.1/24', '172.30.215.1/24'], pools: ['10.216.0.0/16', '10.234.0.0/16', '172.28.0.0/16'] },
};

/**
 * The stack's bridge for its usual folder. An engine in another folder (a test's second engine) gets
 * a bridge named after that folder, and first tries an address and a pool derived from it (in
 * 10.240.0.0/12 and 10.224.0.0/12, apart from the stacks' own), since bridges of earlier such
 * engines stay behind and hold the stack's candidates.
 */
function ownNetwork(stack: StackName, dir: string): (typeof NETWORKS)[StackName] {
  if (path.resolve(dir) === path.resolve(engineDir(stack))) return NETWORKS[stack];
  const hash = crypto.createHash('sha256').update(path.resolve(dir)).digest();
  return {
    bridge: `col${stack[0]}${hash.toString('hex').slice(0, 8)}`,
    addresses: [`10.${240 + (hash[0] % 16)}.${hash[1]}.1/24`, ...NETWORKS[stack].addresses],
    pools: [`10.${224 + (hash[2] % 16)}.0.0/16`, ...NETWORKS[stack].pools],
  };
}

interface EnginePaths {
  dir: string;
  data: string;
  exec: string;
  sock: string;
  pid: string;
  log: string;
  leases: string;
  lock: string;
  network: string;
}

function enginePaths(dir: string): EnginePaths {
  return {
    dir,
    data: path.join(dir, 'data'),
    exec: path.join(dir, 'exec'),
    sock: path.join(dir, 'docker.sock'),
    pid: path.join(dir, 'dockerd.pid'),
    log: path.join(dir, 'dockerd.log'),
    leases: path.join(dir, 'leases'),
    lock: path.join(dir, 'lock'),
    network: path.join(dir, 'network.json'),
  };
}

/** The folder of a stack's private engine. */
export function engineDir(stack: StackName): string {
  return path.join(process.env.COL_TEST_ENGINE_DIR ?? '/tmp/col-engine', stack);
}

export async function startEngine(options: EngineOptions = {}): Promise<TestEngine> {
  const stack = options.stack === 'auto' ? undefined : (options.stack ?? stackFromEnv());
  const choice = (process.env.COL_TEST_ENGINE ?? 'auto').toLowerCase();
  if (choice === 'external' || (choice === 'auto' && !stack)) {
    const external = await findExternalEngine();
    if (external) return external;
    if (choice === 'external') {
      throw new Error(
        `COL_TEST_ENGINE=external but no engine answered (DOCKER_HOST=${process.env.DOCKER_HOST ?? '(unset)'}, /var/run/docker.sock)`,
      );
    }
  }
  if (stack && !options.stack) assertStackCompose(stack); // the stack a whole test run is on
  const chosen = stack ?? 'legacy';
  return startPrivateEngine(chosen, enginePaths(options.dir ?? engineDir(chosen)), options.bridge ?? true);
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

async function startPrivateEngine(stack: StackName, paths: EnginePaths, bridge: boolean): Promise<TestEngine> {
  fs.mkdirSync(paths.leases, { recursive: true, mode: 0o700 });
  installExitHook();
  const docker = new Dockerode({ socketPath: paths.sock });
  const lease = path.join(paths.leases, `${process.pid}-${++leaseCounter}`);
  await withLock(paths, async () => {
    if (!(await privateEngineRunning(paths, docker))) {
      await stopDockerd(paths); // a hung or half-dead one, if any
      await launchDockerd(stack, paths, docker, bridge);
    }
    fs.writeFileSync(lease, `${process.pid}\n`);
    myLeases.add(lease);
  });
  let stopped = false;
  return {
    docker,
    dockerHost: `unix://${paths.sock}`,
    private: true,
    stack,
    async stop() {
      if (stopped) return;
      stopped = true;
      await withLock(paths, async () => {
        removeLease(lease);
        if (liveLeases(paths).length === 0) await stopDockerd(paths);
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
function liveLeases(paths: EnginePaths): string[] {
  const live: string[] = [];
  for (const name of fs.readdirSync(paths.leases)) {
    const pid = Number.parseInt(name, 10);
    if (Number.isInteger(pid) && processAlive(pid)) live.push(name);
    else fs.rmSync(path.join(paths.leases, name), { force: true });
  }
  return live;
}

/** The dockerd of our pidfile, if it is alive and really ours (its --data-root is ours). */
function ourDockerdPid(paths: EnginePaths): number | undefined {
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

async function privateEngineRunning(paths: EnginePaths, docker: Dockerode): Promise<boolean> {
  return ourDockerdPid(paths) !== undefined && (await pingOnce(docker, PING_TIMEOUT_MS));
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

/** What differs between the stacks' dockerd: the program, its PATH (containerd, shims) and its config. */
async function dockerdCommand(stack: StackName, paths: EnginePaths): Promise<{ program: string; args: string[]; env: NodeJS.ProcessEnv }> {
  if (stack === 'legacy') {
    if (spawnSync('sh', ['-c', 'command -v dockerd']).status !== 0) {
      throw new Error('The legacy stack needs dockerd: install the Debian package docker.io (see .ci/run)');
    }
    return { program: 'dockerd', args: [], env: process.env };
  }
  const tools = await currentEngineBinaries();
  // The containerd image store; dockerd starts its own containerd 2 from PATH, with our shim.
  const config = path.join(paths.dir, 'daemon.json');
  fs.writeFileSync(config, `${JSON.stringify({ features: { 'containerd-snapshotter': true } }, null, 2)}\n`);
  return {
    program: tools.dockerd,
    args: ['--config-file', config],
    env: { ...process.env, PATH: `${tools.path}:${process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin'}` },
  };
}

async function launchDockerd(stack: StackName, paths: EnginePaths, docker: Dockerode, bridge: boolean): Promise<void> {
  const command = await dockerdCommand(stack, paths);
  fs.mkdirSync(paths.data, { recursive: true, mode: 0o711 });
  fs.rmSync(paths.exec, { recursive: true, force: true });
  fs.rmSync(paths.pid, { force: true });
  fs.rmSync(paths.sock, { force: true });
  const net = bridge ? networkPlan(stack, paths) : undefined;
  const args = [
    ...command.args,
    '--data-root', paths.data,
    '--exec-root', paths.exec,
    '--host', `unix://${paths.sock}`,
    '--pidfile', paths.pid,
    '--shutdown-timeout', '5',
    ...(net ? ['--bridge', net.bridge, '--default-address-pool', `base=${net.pool},size=24`] : ['--bridge', 'none', '--iptables=false']),
  ];

  const logFd = fs.openSync(paths.log, 'w');
  let child: ChildProcess;
  try {
    fs.writeSync(logFd, `# ${command.program} ${args.join(' ')}\n${net?.reset ? `# ${net.reset}\n` : ''}`);
    // detached + unref: the engine may outlive this process while other processes hold leases.
    child = spawn(command.program, args, { detached: true, stdio: ['ignore', logFd, logFd], env: command.env });
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
    `The private ${stack} dockerd did not answer /_ping on ${paths.sock} within ${START_TIMEOUT_MS / 1000} s` +
      `${exited ? ` (it ${exited})` : ''}. Last lines of ${paths.log}:\n${tail(paths.log, 40)}`,
  );
}

async function stopDockerd(paths: EnginePaths): Promise<void> {
  const pid = ourDockerdPid(paths);
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
  bridge: string;
  bridgeAddress: string;
  pool: string;
}

/**
 * The bridge and address pool of a private engine: chosen once (free of the host's routes at that
 * time), recorded in network.json beside the data root so that networks kept there stay inside
 * the pool, and made ready before dockerd starts. Also resets a stored network state that names
 * another bridge (`reset` says so, for the log).
 */
function networkPlan(stack: StackName, paths: EnginePaths): NetworkPlan & { reset?: string } {
  const own = ownNetwork(stack, paths.dir);
  if (spawnSync('ip', ['-V']).error) {
    throw new Error(`The private ${stack} engine needs its own bridge ${own.bridge} and \`ip\` is missing: install the Debian package iproute2 (see .ci/run)`);
  }
  let plan: NetworkPlan | undefined;
  try {
    plan = JSON.parse(fs.readFileSync(paths.network, 'utf8')) as NetworkPlan;
    if (plan.bridge !== own.bridge || !plan.bridgeAddress || !plan.pool) plan = undefined; // an older layout, or docker0
  } catch {
    plan = undefined;
  }
  if (!plan) {
    const routes = ipv4Routes().filter((r) => r.dev !== own.bridge);
    const free = (cidr: string) => !routes.some((r) => cidrOverlap(r.cidr, cidr));
    const bridgeAddress = own.addresses.find(free);
    const pool = own.pools.find(free);
    if (!bridgeAddress || !pool) {
      throw new Error(`The private ${stack} engine found no free address for its bridge ${own.bridge} (tried ${own.addresses.join(', ')}) or pool (tried ${own.pools.join(', ')}): the host's routes cover them all`);
    }
    plan = { bridge: own.bridge, bridgeAddress, pool };
    fs.writeFileSync(paths.network, `${JSON.stringify(plan)}\n`);
  }
  ensureBridge(plan.bridge, plan.bridgeAddress);
  return { ...plan, reset: resetForeignNetworkState(paths, plan.bridge) };
}

/** Creates the bridge with its address (or keeps it when it is there) and brings it up; throws with ip's words when it cannot. */
function ensureBridge(name: string, address: string): void {
  const ip = (args: string[]) => {
    const r = spawnSync('ip', args, { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`Cannot make the private engine's bridge ${name} (${address}): ip ${args.join(' ')}: ${(r.stderr || r.error?.message || '').trim()}`);
    return r.stdout;
  };
  const exists = spawnSync('ip', ['link', 'show', 'dev', name]).status === 0;
  if (!exists) ip(['link', 'add', 'name', name, 'type', 'bridge']);
  if (!ip(['-4', '-o', 'addr', 'show', 'dev', name]).includes(` ${address} `)) ip(['addr', 'add', address, 'dev', name]);
  ip(['link', 'set', name, 'up']);
}

/**
 * Bridge names a data root's network store (libnetwork's bolt file) holds, other than the
 * per-network `br-<id>` bridges dockerd makes and owns itself.
 */
export function foreignBridgesInStore(dataRoot: string, ownBridge: string): string[] {
  let bytes: string;
  try {
    bytes = fs.readFileSync(path.join(dataRoot, 'network', 'files', 'local-kv.db'), 'latin1');
  } catch {
    return [];
  }
  const names = new Set<string>();
  for (const m of bytes.matchAll(/(?:BridgeName|com\.docker\.network\.bridge\.name)\\*"\s*:\s*\\*"([^"\\]+)/g)) names.add(m[1]);
  return [...names].filter((n) => n !== ownBridge && !/^br-[0-9a-f]{12}$/.test(n));
}

/** Removes the data root's network state when it names another bridge; says what it did. */
function resetForeignNetworkState(paths: EnginePaths, ownBridge: string): string | undefined {
  const foreign = foreignBridgesInStore(paths.data, ownBridge);
  if (foreign.length === 0) return undefined;
  fs.rmSync(path.join(paths.data, 'network'), { recursive: true, force: true });
  return `network state reset: it named bridge ${foreign.join(', ')}, not ${ownBridge}`;
}

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
 * An exclusive lock over an engine folder: a file created with O_EXCL that holds the owner's pid.
 * A lock whose owner died is broken. (Two waiters breaking the same stale lock at the same
 * instant could both proceed; a stale lock needs a process killed inside the ~1 s it holds it.)
 */
async function withLock<T>(paths: EnginePaths, fn: () => Promise<T>): Promise<T> {
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
