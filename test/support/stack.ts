// The two Docker stacks the integration tests run on (scripts/test.mjs runs them one after the
// other; COL_STACK=legacy|current picks one):
//   legacy   Debian's dockerd 20.10 and docker-compose 1.29, no compose plugin (the runner hides
//            the system plugin folders in a private mount namespace, as on a machine without it);
//   current  dockerd of the current moby major + containerd 2 with the containerd image store,
//            and Compose v2 as a docker CLI plugin in the system plugin folder, where the agent's
//            docker CLI finds it even with ComposeDeploy's private, empty DOCKER_CONFIG.
// The current stack's binaries come from scripts/test-tools.mjs (built from Go modules, cached).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

export type StackName = 'legacy' | 'current';
// The same list as scripts/stacks.mjs, which the .mjs runners import (they cannot import TypeScript).
export const STACKS: readonly StackName[] = ['legacy', 'current'];

/** COL_STACK, checked; undefined when unset. */
export function stackFromEnv(): StackName | undefined {
  const value = process.env.COL_STACK;
  if (!value) return undefined;
  if (!(STACKS as readonly string[]).includes(value)) throw new Error(`COL_STACK=${value}: use one of ${STACKS.join(', ')}`);
  return value as StackName;
}

interface TestTools {
  ensureTools(names?: string[], log?: (m: string) => void): Promise<Record<string, string>>;
  installPlugins(log?: (m: string) => void): void;
}

async function toolsScript(): Promise<TestTools> {
  return (await import(path.join(__dirname, '..', '..', 'scripts', 'test-tools.mjs'))) as TestTools;
}

/** Builds every test tool that is missing and links Compose v2 as the system docker CLI plugin. */
export async function prepareCurrentStack(): Promise<void> {
  const tools = await toolsScript();
  await tools.ensureTools();
  tools.installPlugins();
  assertStackCompose('current');
}

/** Builds the named test tools that are missing; returns {name: folder}. */
export async function buildTestTools(names: string[]): Promise<Record<string, string>> {
  return (await toolsScript()).ensureTools(names);
}

/** The current engine's dockerd, and the PATH folders it needs (containerd, its shim, runc, docker-proxy). */
export async function currentEngineBinaries(): Promise<{ dockerd: string; path: string }> {
  const folders = await buildTestTools(['dockerd', 'containerd', 'runc']);
  return { dockerd: path.join(folders.dockerd, 'dockerd'), path: [folders.dockerd, folders.containerd, folders.runc].join(':') };
}

/** Compose v2's binary (built first if missing): the oracle for compose semantics (`config --format json` needs no engine). */
export async function composeV2Binary(): Promise<string> {
  const folders = await buildTestTools(['compose']);
  return path.join(folders.compose, 'docker-compose');
}

/** The version test/tools/versions.json pins for a tool. */
export function pinnedVersion(tool: string): string {
  const spec = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'tools', 'versions.json'), 'utf8')) as { tools: Record<string, { version: string }> };
  return spec.tools[tool].version;
}

/** The Compose command line of the stack a test run is on: `docker compose` on current, `docker-compose` otherwise. */
export function stackComposeCommand(): string[] {
  return stackFromEnv() === 'current' ? ['docker', 'compose'] : ['docker-compose'];
}

/** How the tasks name the Compose they should find on the stack a test run is on, in their logs. */
export function expectedComposeDisplay(): RegExp {
  return stackFromEnv() === 'current' ? new RegExp(`^docker compose ${pinnedVersion('compose').replace(/^v/, '').replace(/\./g, '\\.')}$`) : /^docker-compose (1\.29\.\d+)?$/;
}

/** The manifest type the stack's engine pushes: OCI from the containerd image store, Docker's v2 schema from the classic one. */
export function pushedManifestType(): string {
  return stackFromEnv() === 'current' ? 'application/vnd.oci.image.manifest.v1+json' : 'application/vnd.docker.distribution.manifest.v2+json';
}

/**
 * Fails clearly when the Compose the agent would find is not the stack's. Runs in every test file's
 * first startEngine, so it asks only the plugin (a Go binary, milliseconds); docker-compose v1 is a
 * Python start-up of ~0.5 s, so on legacy it is only looked for on PATH (the tests assert its version).
 */
export function assertStackCompose(stack: StackName): void {
  const expectedPluginVersion = pinnedVersion('compose');
  const r = spawnSync('docker', ['compose', 'version', '--short'], { encoding: 'utf8', timeout: 20_000 });
  const plugin = r.status === 0 ? r.stdout.trim() : '';
  if (stack === 'legacy' && plugin) {
    throw new Error(`The legacy stack must have no compose plugin, but 'docker compose' answered ${plugin}: run the legacy tests through scripts/test.mjs (it hides the plugin folders)`);
  }
  if (stack === 'legacy' && spawnSync('sh', ['-c', 'command -v docker-compose']).status !== 0) {
    throw new Error('The legacy stack needs docker-compose 1.29 (Debian package docker-compose); none is on PATH');
  }
  if (stack === 'current' && plugin.replace(/^v/, '') !== expectedPluginVersion.replace(/^v/, '')) {
    throw new Error(`The current stack needs Compose ${expectedPluginVersion} as a docker CLI plugin; 'docker compose version' answered '${plugin || 'nothing'}': run node scripts/test-tools.mjs`);
  }
}
