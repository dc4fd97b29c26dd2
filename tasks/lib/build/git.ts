// What git says about the sources folder (a commit's time, its tag), for BuildAndTag's tags and
// timestamps. Synchronous, so bounded: a git stuck on a slow folder must not hold the task.
import { execFileSync } from 'node:child_process';

const GIT_TIMEOUT_MS = 10_000;

/** git's trimmed output in `dir`, or undefined: no git, no repository, a failing command or one over 10 s. */
export function gitOutput(dir: string | undefined, args: string[]): string | undefined {
  if (!dir) return undefined;
  try {
    return execFileSync('git', args, { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: GIT_TIMEOUT_MS }).trim() || undefined;
  } catch {
    return undefined;
  }
}
