// SOURCE_DATE_EPOCH for reproducible images: the commit time of Build.SourceVersion, so rebuilding a
// commit gives the same timestamps (and, where the engine's BuildKit rewrites layer timestamps, the
// same digest). An explicit SOURCE_DATE_EPOCH variable wins, as with buildx.
import type { Logger } from '../context';
import { InputError } from '../errors';
import { gitOutput } from './git';

export interface SourceDateOptions {
  commit?: string;
  sourcesDirectory?: string;
  env: Record<string, string | undefined>;
}

/** Seconds since 1970 for the build's timestamps, or undefined (with a warning) when no commit time can be read. */
export function sourceDateEpoch(options: SourceDateOptions, log: Logger): number | undefined {
  const given = options.env.SOURCE_DATE_EPOCH;
  if (given !== undefined && given !== '') {
    if (!/^\d{1,12}$/.test(given)) throw new InputError(`The variable SOURCE_DATE_EPOCH must be whole seconds since 1970 (e.g. 1700000000), not '${given}'.`);
    return Number(given);
  }
  const commitTime = gitCommitTime(options.sourcesDirectory, options.commit);
  if (commitTime === undefined) {
    log.warn(`No commit time for ${options.commit ? `commit ${options.commit.slice(0, 12)}` : 'the build'} (git and the repository in Build.SourcesDirectory are needed): image timestamps come from the clock, so a rebuild gets another digest. Set SOURCE_DATE_EPOCH, or turn reproducible off to silence this.`);
  }
  return commitTime;
}

function gitCommitTime(sourcesDirectory: string | undefined, commit: string | undefined): number | undefined {
  const out = gitOutput(sourcesDirectory, ['show', '-s', '--format=%ct', commit ?? 'HEAD', '--']);
  return out && /^\d+$/.test(out) ? Number(out) : undefined;
}

/** The image's creation time: SOURCE_DATE_EPOCH when there is one, else now (ISO 8601). */
export function sourceDate(epoch: number | undefined): string {
  return (epoch === undefined ? new Date() : new Date(epoch * 1000)).toISOString();
}
