// Tags from the pipeline, as DockerComposeV1's includeSourceTags and docker/metadata-action give
// them: the `tags` input may use {{branch}}, {{sha7}}, {{buildNumber}}, and {{semver}}, {{major}},
// {{minor}} from a version tag on the commit (refs/tags/v1.2.3, or `git describe --exact-match --tags`).
import type { Logger } from '../context';
import { InputError } from '../errors';
import { validateTag } from '../reference';
import { gitOutput } from './git';

export interface TagSources {
  /** Build.SourceBranch: refs/heads/…, refs/tags/…, refs/pull/N/merge. */
  branch?: string;
  /** Build.SourceVersion. */
  commit?: string;
  /** Build.BuildNumber. */
  buildNumber?: string;
  /** Build.SourcesDirectory: where `git describe` looks for a tag on the commit. */
  sourcesDirectory?: string;
}

const TEMPLATE = /\{\{\s*([A-Za-z0-9]+)\s*\}\}/g;
const VERSION_KEYS = ['semver', 'major', 'minor'];
const KNOWN = ['branch', 'sha7', 'buildNumber', ...VERSION_KEYS];
// semver.org's grammar, with an optional leading `v` as git tags are written.
const SEMVER = /^v?((0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?)$/;

/**
 * The tags with their templates filled in, each checked as a tag. A tag line with a version
 * template is left out, with a warning, when the commit has no version tag (the same pipeline runs
 * for branches and tags), and a {{major}} or {{minor}} line for a pre-release, so that `1` never
 * moves to `1.3.0-rc.1`. Anything else that cannot be filled in is an error naming the input.
 */
export function expandTagTemplates(lines: string[], sources: TagSources, log: Logger, gitTag: (sources: TagSources) => string | undefined = gitTagOfCommit): string[] {
  let version: { semver: string; major: string; minor: string; prerelease: boolean } | null | undefined;
  const versionOf = () => {
    if (version === undefined) {
      const tag = sources.branch?.startsWith('refs/tags/') ? sources.branch.slice('refs/tags/'.length) : gitTag(sources);
      const m = tag === undefined ? null : SEMVER.exec(tag);
      version = m ? { semver: m[1], major: m[2], minor: m[3], prerelease: m[5] !== undefined } : null;
      if (!m) log.warn(tag === undefined ? 'The commit has no git tag, so tags with {{semver}}, {{major}} or {{minor}} are left out.' : `The commit's git tag '${tag}' is not a version (v1.2.3), so tags with {{semver}}, {{major}} or {{minor}} are left out.`);
    }
    return version;
  };
  const out: string[] = [];
  for (const line of lines) {
    const names = [...line.matchAll(TEMPLATE)].map((m) => m[1]);
    const unknown = names.find((n) => !KNOWN.includes(n));
    if (unknown) throw new InputError(`Input 'tags': '${line}' uses {{${unknown}}}, which is not a tag template. Use ${KNOWN.map((k) => `{{${k}}}`).join(', ')}.`);
    const v = names.some((n) => VERSION_KEYS.includes(n)) ? versionOf() : undefined;
    if (v === null) continue;
    if (v?.prerelease && names.some((n) => n === 'major' || n === 'minor')) {
      log.warn(`Input 'tags': '${line}' is left out: ${v.semver} is a pre-release, and {{major}} and {{minor}} tags follow releases only.`);
      continue;
    }
    const tag = line.replace(TEMPLATE, (_, name: string) => valueOf(name, line, sources, v));
    out.push(validateTag(tag, line === tag ? "Input 'tags'" : `Input 'tags': '${line}' gives '${tag}'`));
  }
  return out;
}

function valueOf(name: string, line: string, sources: TagSources, version: { semver: string; major: string; minor: string } | undefined): string {
  const missing = (why: string): never => {
    throw new InputError(`Input 'tags': '${line}' uses {{${name}}}, but ${why}.`);
  };
  switch (name) {
    case 'branch': {
      const ref = sources.branch ?? missing('Build.SourceBranch is not set');
      const pull = /^refs\/pull\/(\d+)\//.exec(ref);
      if (pull) return `pr-${pull[1]}`;
      if (!ref.startsWith('refs/heads/') && ref.startsWith('refs/')) missing(`the build is of ${ref}, not of a branch`);
      // A branch name may hold characters a tag may not (feature/x): they become '-', as metadata-action does.
      return ref.replace(/^refs\/heads\//, '').replace(/[^A-Za-z0-9_.-]/g, '-');
    }
    case 'sha7': {
      const commit = sources.commit ?? missing('Build.SourceVersion is not set');
      if (!/^[0-9a-f]{7,}$/i.test(commit)) missing(`Build.SourceVersion '${commit}' is not a commit id`);
      return commit.slice(0, 7).toLowerCase();
    }
    case 'buildNumber':
      return sources.buildNumber ?? missing('Build.BuildNumber is not set');
    default:
      return (version as Record<string, string>)[name];
  }
}

/** The tag `git describe --exact-match --tags` finds on the commit in the sources folder, if git and the repository are there. */
export function gitTagOfCommit(sources: TagSources): string | undefined {
  return gitOutput(sources.sourcesDirectory, ['describe', '--exact-match', '--tags', sources.commit ?? 'HEAD']); // none: no tag on the commit, no repository, or no git
}
