// Figure 7: how long the tasks take to find Compose on the run's stack, as they look for it:
//   ContainerizedTest: the plugin's `docker compose version` (a docker-compose on PATH is taken
//                      without running it);
//   ComposeDeploy:     the plugin and `docker-compose version` at once (its flags depend on the
//                      major), with its private, empty DOCKER_CONFIG.
// Median of 5 after one warm-up, each call from scratch (nothing is cached between calls).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Summary, since, summarize } from './util';

const RUNS = 5;

export interface FindComposeReport {
  found: string;
  containerizedTest: Summary;
  composeDeploy: Summary;
}

export async function measureFindCompose(): Promise<FindComposeReport> {
  const { composeEnvironment, findCompose } = await import('../tasks/lib/compose/cli');
  const configDir = fs.mkdtempSync(path.join(os.tmpdir(), 'col-bench-find-'));
  try {
    const deployEnv = composeEnvironment({}, configDir);
    const time = async (find: () => Promise<{ display: string; version: string }>) => {
      let found = '';
      const samples: number[] = [];
      for (let i = 0; i <= RUNS; i++) {
        const start = process.hrtime.bigint();
        const cli = await find();
        if (i > 0) samples.push(since(start));
        found = `${cli.display} ${cli.version}`.trim();
      }
      return { found, summary: summarize(samples) };
    };
    const test = await time(() => findCompose({ env: process.env }));
    const deploy = await time(() => findCompose({ env: deployEnv, askVersion: true }));
    return { found: deploy.found || test.found, containerizedTest: test.summary, composeDeploy: deploy.summary };
  } finally {
    fs.rmSync(configDir, { recursive: true, force: true });
  }
}

export function findComposeTable(r: FindComposeReport | undefined): string[] {
  if (!r) return [];
  return [`Finding Compose (${r.found}): ContainerizedTest median ${r.containerizedTest.medianMs} ms, ComposeDeploy median ${r.composeDeploy.medianMs} ms`, ''];
}
