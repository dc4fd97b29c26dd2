#!/usr/bin/env node
// Where the test Kubernetes control plane lives (test/support/kube-cluster.ts starts it, or adopts
// the one already running), and how it is stopped: scripts/test.mjs stops it when a test run
// ends, .ci/run before one starts. `node scripts/kube-cluster.mjs stop` does it by hand.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export const kubeClusterDir = process.env.COL_KUBE_DIR ?? '/tmp/col-kube';

const alive = (pid) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** The pids the cluster's processes file lists (none when nothing was started, or it was stopped). */
function processesOf(dir) {
  try {
    return Object.values(JSON.parse(fs.readFileSync(path.join(dir, 'processes.json'), 'utf8')));
  } catch {
    return [];
  }
}

/** Whether every process of the cluster in `dir` is still running. */
export function kubeClusterAlive(dir = kubeClusterDir) {
  const pids = processesOf(dir);
  return pids.length > 0 && pids.every(alive);
}

/** Stops the processes the cluster's state file lists (TERM, then KILL after 10 s) and removes its folder. */
export async function stopKubeCluster(dir = kubeClusterDir) {
  const pids = processesOf(dir);
  for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + 10_000;
  while (pids.some(alive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGKILL');
  fs.rmSync(dir, { recursive: true, force: true });
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  if (process.argv[2] !== 'stop') {
    console.error('usage: node scripts/kube-cluster.mjs stop');
    process.exit(2);
  }
  await stopKubeCluster();
}
