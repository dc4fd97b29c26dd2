// The private engines never touch another engine's network: a bridge of this test's own stands for
// another engine's docker0, with a third, unrelated dockerd really running on it. The legacy and
// current private engines start and stop beside it, in several orders, one of them from a data
// root whose stored default network names that bridge (which made dockerd delete it before). After
// every step the bridge and its address are still there, and every running engine runs a
// container whose network reaches its gateway.
// Runs on either stack's pass; both private engines live in this test's own folders (own bridges).
import { strict as assert } from 'node:assert';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, test } from 'node:test';
import Dockerode from 'dockerode';
import { BASE_IMAGE, ensureBaseImage } from '../support/base-image';
import { foreignBridgesInStore, startEngine, type TestEngine } from '../support/engine';

const OTHER_BRIDGE = `colx${process.pid % 100000}`;
const OTHER_ADDRESS = '10.250.77.1/24'; // outside every pool of ours and Docker's defaults
const root = fs.mkdtempSync('/tmp/colnet-');
const dirs = { legacy: path.join(root, 'l'), current: path.join(root, 'c'), other: path.join(root, 'o') };

const ip = (...args: string[]) => spawnSync('ip', args, { encoding: 'utf8' });

let other: { docker: Dockerode; child: ChildProcess } | undefined;

/** A plain dockerd (Debian's) on `bridge`, standing for an engine this harness does not own. */
async function startPlainDockerd(dir: string, bridge: string): Promise<{ docker: Dockerode; child: ChildProcess }> {
  fs.mkdirSync(dir, { recursive: true });
  const sock = path.join(dir, 'd.sock');
  const log = fs.openSync(path.join(dir, 'dockerd.log'), 'a');
  const child = spawn('dockerd', ['--data-root', path.join(dir, 'data'), '--exec-root', path.join(dir, 'exec'), '--host', `unix://${sock}`, '--pidfile', path.join(dir, 'd.pid'), '--bridge', bridge, '--default-address-pool', 'base=10.251.0.0/16,size=24'], { stdio: ['ignore', log, log] });
  fs.closeSync(log);
  const docker = new Dockerode({ socketPath: sock });
  for (let i = 0; i < 300; i++) {
    if (child.exitCode !== null) break;
    try {
      if (String(await docker.ping()) === 'OK') return { docker, child };
    } catch {
      /* not yet */
    }
    await sleep(100);
  }
  throw new Error(`plain dockerd did not start: ${fs.readFileSync(path.join(dir, 'dockerd.log'), 'utf8').slice(-2000)}`);
}

async function stopPlainDockerd(d: { child: ChildProcess }): Promise<void> {
  if (d.child.exitCode !== null) return;
  const exited = new Promise((resolve) => d.child.once('exit', resolve));
  d.child.kill('SIGTERM');
  await exited;
}

function assertOtherBridgeIntact(step: string): void {
  const shown = ip('-4', '-o', 'addr', 'show', 'dev', OTHER_BRIDGE);
  assert.equal(shown.status, 0, `${step}: the other engine's bridge ${OTHER_BRIDGE} is gone: ${shown.stderr}`);
  assert.match(shown.stdout, new RegExp(` ${OTHER_ADDRESS.replace(/\./g, '\\.')} `), `${step}: ${OTHER_BRIDGE} lost its address`);
}

/** Runs a container that pings its gateway; returns the container's address. */
async function pingsGateway(docker: Dockerode, step: string): Promise<string> {
  await ensureBaseImage(docker);
  const container = await docker.createContainer({
    Image: BASE_IMAGE,
    Cmd: ['sh', '-c', 'gw=$(ip route | awk "/default/ {print \\$3}"); ip -4 -o addr show eth0 | awk "{print \\$4}"; ping -c 1 -W 3 "$gw" >/dev/null && echo reached "$gw"'],
    HostConfig: { AutoRemove: false },
  });
  try {
    await container.start();
    const { StatusCode } = (await container.wait()) as { StatusCode: number };
    const out = (await container.logs({ stdout: true, stderr: true })).toString('latin1');
    assert.equal(StatusCode, 0, `${step}: the container could not reach its gateway: ${out}`);
    assert.match(out, /reached \d+\.\d+\.\d+\.\d+/);
    return /(\d+\.\d+\.\d+\.\d+)\/\d+/.exec(out)![1];
  } finally {
    await container.remove({ force: true });
  }
}

before(() => {
  if (ip('link', 'show', 'dev', OTHER_BRIDGE).status !== 0) assert.equal(ip('link', 'add', 'name', OTHER_BRIDGE, 'type', 'bridge').status, 0);
  assert.equal(ip('addr', 'add', OTHER_ADDRESS, 'dev', OTHER_BRIDGE).status, 0);
  assert.equal(ip('link', 'set', OTHER_BRIDGE, 'up').status, 0);
});

after(async () => {
  if (other) await stopPlainDockerd(other);
  for (const dir of [dirs.legacy, dirs.current]) {
    try {
      const plan = JSON.parse(fs.readFileSync(path.join(dir, 'network.json'), 'utf8')) as { bridge: string };
      ip('link', 'del', plan.bridge);
    } catch {
      /* never started */
    }
  }
  ip('link', 'del', OTHER_BRIDGE);
  fs.rmSync(root, { recursive: true, force: true });
});

test('a data root whose default network names another bridge is reset, and that bridge survives', async () => {
  // The stale state: this data root's engine once ran on the other bridge (as the old fallback to docker0 did).
  const stale = await startPlainDockerd(dirs.legacy, OTHER_BRIDGE);
  await stopPlainDockerd(stale);
  assert.deepEqual(foreignBridgesInStore(path.join(dirs.legacy, 'data'), 'unused'), [OTHER_BRIDGE]);
  fs.rmSync(path.join(dirs.legacy, 'exec'), { recursive: true, force: true });

  const legacy = await startEngine({ stack: 'legacy', dir: dirs.legacy });
  try {
    assertOtherBridgeIntact('after the legacy engine started from the stale data root');
    assert.match(fs.readFileSync(path.join(dirs.legacy, 'dockerd.log'), 'utf8'), new RegExp(`network state reset: it named bridge ${OTHER_BRIDGE}`));
    const plan = JSON.parse(fs.readFileSync(path.join(dirs.legacy, 'network.json'), 'utf8')) as { bridge: string; bridgeAddress: string };
    const info = await legacy.docker.getNetwork('bridge').inspect();
    assert.equal(info.Options?.['com.docker.network.bridge.name'], plan.bridge);
    await pingsGateway(legacy.docker, 'legacy engine');
  } finally {
    await legacy.stop();
  }
  assertOtherBridgeIntact('after the legacy engine stopped');
});

test('legacy, current and an unrelated engine on its own bridge run side by side, started and stopped in any order', async () => {
  other = await startPlainDockerd(dirs.other, OTHER_BRIDGE);
  const started: Partial<Record<'legacy' | 'current', TestEngine>> = {};
  const check = async (step: string) => {
    assertOtherBridgeIntact(step);
    const addr = await pingsGateway(other!.docker, `${step}: the unrelated engine`);
    assert.match(addr, /^10\.250\.77\./, `${step}: the unrelated engine's container is not on its bridge`);
    for (const [name, engine] of Object.entries(started)) if (engine) await pingsGateway(engine.docker, `${step}: ${name}`);
  };
  const start = async (stack: 'legacy' | 'current') => {
    started[stack] = await startEngine({ stack, dir: dirs[stack] });
    await check(`after starting ${stack}`);
  };
  const stop = async (stack: 'legacy' | 'current') => {
    await started[stack]!.stop();
    delete started[stack];
    await check(`after stopping ${stack}`);
  };
  try {
    await check('the unrelated engine alone');
    await start('legacy');
    await start('current');
    await stop('legacy');
    await start('legacy');
    await stop('current');
    await start('current');
    await stop('current');
    await stop('legacy');
  } finally {
    for (const engine of Object.values(started)) await engine?.stop();
  }
});
