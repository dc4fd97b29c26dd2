// Compose v2 as the oracle of the differential tests (test/unit/compose-v2-*.test.ts): a project
// is written to a folder, read by `docker compose config --format json` (the harness's Compose v2,
// -f for each file, --project-directory, an environment holding only what the project sets) and by
// loadCompose; our model, brought to Compose's canonical form (compose-canonical.ts), must equal
// Compose's output field by field. A project Compose refuses must be refused by us too.
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { loadCompose } from '../../tasks/lib/compose/load';
import { isObject } from '../../tasks/lib/util/object';
import { toComposeCanonical } from './compose-canonical';

export interface ComposeProject {
  name: string;
  /** The files of the project (path → content); the compose files are `compose` in order. */
  files: Record<string, string>;
  compose: string[];
  /** The whole environment of both loaders (nothing from the test runner's). */
  env?: Record<string, string>;
  profiles?: string[];
  /** Compose refuses the project; so must we, with a message matching this. */
  refused?: RegExp;
}

export interface Oracle {
  ok: boolean;
  data?: Record<string, unknown>;
  stderr: string;
}

/** `lines('a', 'b')` is the file text "a\nb\n". */
export const lines = (...l: string[]): string => `${l.join('\n')}\n`;

function slug(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 50);
}

/** Writes the project under `root` in a folder of its own (its name is the Compose project name); returns the folder. */
export function writeProject(root: string, project: ComposeProject, i: number): string {
  const dir = path.join(root, `c${String(i).padStart(3, '0')}-${slug(project.name)}`);
  for (const [name, content] of Object.entries(project.files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), content);
  }
  return dir;
}

export function composeConfig(binary: string, dir: string, files: string[], env: Record<string, string>, profiles: string[] = []): Promise<Oracle> {
  const args = [...files.flatMap((f) => ['-f', path.join(dir, f)]), '--project-directory', dir, ...profiles.flatMap((p) => ['--profile', p]), 'config', '--format', 'json'];
  return new Promise((resolve, reject) => {
    const child = spawn(binary, args, { cwd: dir, env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ ok: code === 0, data: code === 0 ? (JSON.parse(stdout) as Record<string, unknown>) : undefined, stderr }));
  });
}

/** Runs `work` for each item, `limit` at a time. */
export async function pool<T, R>(items: T[], limit: number, work: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await work(items[i], i);
      }
    }),
  );
  return out;
}

/** Where two JSON values differ, one line per field: `services.web.shm_size: ours "128m", Compose "134217728"`. */
export function differences(ours: unknown, theirs: unknown, at = ''): string[] {
  if (isDeepStrictEqual(ours, theirs)) return [];
  if (isObject(ours) && isObject(theirs)) {
    return [...new Set([...Object.keys(ours), ...Object.keys(theirs)])].flatMap((k) => differences(ours[k], theirs[k], at ? `${at}.${k}` : k));
  }
  if (Array.isArray(ours) && Array.isArray(theirs) && ours.length === theirs.length) return ours.flatMap((o, i) => differences(o, theirs[i], `${at}[${i}]`));
  const show = (v: unknown) => (v === undefined ? 'nothing' : JSON.stringify(v));
  return [`${at || '(the whole model)'}: ours ${show(ours)}, Compose ${show(theirs)}`];
}

/** Our reading of the project, in Compose's canonical form. */
export function oursCanonical(project: ComposeProject, dir: string): Record<string, unknown> {
  const env = project.env ?? {};
  const app = loadCompose(
    project.compose.map((f) => path.join(dir, f)),
    // no profile given is no profile active, as for `docker compose config` without --profile
    { env, profiles: project.profiles ?? [] },
  );
  return toComposeCanonical(app.model, { projectDir: dir, projectName: path.basename(dir), env: app.env });
}

/** Asserts that we read the project as Compose did (or refuse it as Compose did). */
export function assertAgreesWithCompose(project: ComposeProject, dir: string, oracle: Oracle): void {
  const composeSays = oracle.stderr
    .split('\n')
    .filter((l) => l && !l.includes('level=warning'))
    .join('\n');
  if (project.refused) {
    assert.equal(oracle.ok, false, `Compose accepts the project, so must we: ${JSON.stringify(oracle.data)}`);
    assert.throws(() => oursCanonical(project, dir), project.refused, `Compose refuses it: ${composeSays}`);
    return;
  }
  let ours: Record<string, unknown>;
  try {
    ours = oursCanonical(project, dir);
  } catch (err) {
    assert.fail(`We refuse a project Compose ${oracle.ok ? 'accepts' : `refuses too (${composeSays})`}: ${(err as Error).message}`);
  }
  assert.ok(oracle.ok, `Compose refuses the project (${composeSays}); we accept it`);
  const diff = differences(ours, oracle.data);
  assert.ok(diff.length === 0, `${diff.length} field(s) differ from Compose:\n  ${diff.join('\n  ')}`);
}
