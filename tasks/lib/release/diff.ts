// Promotion diff: what a release will change in an environment, worked out before anything there
// changes. Each deploy task reads what runs now through its own adapter (ComposeDeploy: the
// project's containers through the Engine API, `runningServices`; KubernetesDeploy: the workloads
// of the namespace through the API server, `runningWorkloads`) and hands it here with the images
// of the release (pinned from the lock). Per service: unchanged, changed, added or removed, the
// digests now and to come, and the commit range between the `org.opencontainers.image.revision`
// labels of the two images, read from the registry's config blobs (no pull), linked as a compare
// page when `org.opencontainers.image.source` is a GitHub or Azure Repos repository.
import type { CredentialSource } from '../auth';
import { TaskContext, sanitizeOutput } from '../context';
import { RegistryError, errorMessage } from '../errors';
import { parseReference, repositoryName } from '../reference';
import { RegistryClient } from '../registry/client';
import { NetworkError } from '../util/http';

export const REVISION_LABEL = 'org.opencontainers.image.revision';
export const SOURCE_LABEL = 'org.opencontainers.image.source';

/** One service (compose service, or workload container) as it runs in the environment now. */
export interface RunningImage {
  service: string;
  /** The image reference its containers were created from (`repo@sha256:…`, or a tag). */
  image: string;
  /** The registry digests its containers run, sorted; several while a rollout is half done, none when unknown. */
  digests: string[];
}

/** One service of the release, as the lock pins it. */
export interface ReleaseImage {
  service: string;
  /** The pinned reference (`repo@sha256:…`); a tag when unpinned (allowUnpinned). */
  image: string;
  digest?: string;
}

export type ServiceState = 'unchanged' | 'changed' | 'added' | 'removed';

/** Where an image's code comes from: its OCI labels. */
export interface Provenance {
  revision?: string;
  source?: string;
}

export interface ServiceDiff {
  service: string;
  state: ServiceState;
  imageNow?: string;
  digestsNow: string[];
  imageNext?: string;
  digestNext?: string;
  revisionNow?: string;
  revisionNext?: string;
  /** The source repository of the image to come (else of the one running). */
  source?: string;
  /** A compare page of the range, or the page of the one commit known. */
  link?: string;
}

export interface ReleaseDiff {
  services: ServiceDiff[];
  /** Services the release adds, changes or removes, in table order (the changedServices output). */
  changedServices: string[];
}

/** The state of each service; pure. A digest unknown on either side counts as changed (it cannot be shown equal). */
export function compareRelease(running: RunningImage[], release: ReleaseImage[]): ServiceDiff[] {
  const now = new Map(running.map((r) => [r.service, r]));
  const next = new Map(release.map((r) => [r.service, r]));
  const names = [...new Set([...next.keys(), ...now.keys()])].sort((a, b) => a.localeCompare(b));
  return names.map((service) => {
    const r = now.get(service);
    const n = next.get(service);
    const state: ServiceState = !r ? 'added' : !n ? 'removed' : sameImage(r, n) ? 'unchanged' : 'changed';
    return { service, state, imageNow: r?.image, digestsNow: r?.digests ?? [], imageNext: n?.image, digestNext: n?.digest };
  });
}

function sameImage(now: RunningImage, next: ReleaseImage): boolean {
  if (!next.digest || now.digests.length !== 1 || now.digests[0] !== next.digest) return false;
  // The same content under another repository is still a change of what the service names.
  return repositoryOf(now.image) === repositoryOf(next.image);
}

function repositoryOf(image: string): string | undefined {
  try {
    return repositoryName(parseReference(image)).toLowerCase();
  } catch {
    return undefined;
  }
}

/** `repository@digest` of an image reference, for reading its labels. */
function pinnedRef(image: string | undefined, digest: string | undefined): string | undefined {
  const repository = image && digest ? repositoryOf(image) : undefined;
  return repository && `${repository}@${digest}`;
}

/**
 * The promotion diff: states, then the labels of every image involved, read from the registries'
 * config blobs (each once; a failure is a warning and leaves that commit unknown, never a failed
 * deploy, so the retries are few), then the commit ranges.
 */
export async function promotionDiff(running: RunningImage[], release: ReleaseImage[], credentials: CredentialSource | undefined, ctx: Pick<TaskContext, 'warn' | 'debug' | 'setSecret' | 'signal'>): Promise<ReleaseDiff> {
  const services = compareRelease(running, release);
  const provenance = new Map<string, Provenance>();
  const registry = new RegistryClient({ credentials, log: ctx, setSecret: (s) => ctx.setSecret(s), signal: ctx.signal, retry: { attempts: 2 } });
  /** Reads one image's labels; false when its registry could not be reached at all. */
  const readLabels = async (ref: string): Promise<boolean> => {
    try {
      const labels = await registry.imageLabels(parseReference(ref));
      provenance.set(ref, { revision: labels[REVISION_LABEL] || undefined, source: labels[SOURCE_LABEL] || undefined });
    } catch (err) {
      ctx.warn(`Promotion diff: the labels of ${ref} could not be read from its registry (${errorMessage(err)}); its commit is shown as unknown.`);
      return !(err instanceof RegistryError && err.cause instanceof NetworkError);
    }
    return true;
  };
  const byRegistry = new Map<string, string[]>();
  for (const ref of imageRefs(services)) {
    const domain = parseReference(ref).domain;
    byRegistry.set(domain, [...(byRegistry.get(domain) ?? []), ref]);
  }
  try {
    await Promise.all(
      [...byRegistry].map(async ([domain, [first, ...rest]]) => {
        // One image first: a registry the agent cannot reach (KubernetesDeploy's agent need not reach
        // it at all) costs one failure, not one per image.
        if (await readLabels(first)) await Promise.all(rest.map(readLabels));
        else if (rest.length) ctx.warn(`Promotion diff: ${domain} could not be reached, so the commits of its ${rest.length} other image(s) are shown as unknown too.`);
      }),
    );
  } finally {
    registry.close();
  }
  return withCommits(services, provenance);
}

/** The image now (when its containers agree on one digest) and the image to come, as `repository@digest`. */
function imagesOf(s: ServiceDiff): { now?: string; next?: string } {
  return { now: s.digestsNow.length === 1 ? pinnedRef(s.imageNow, s.digestsNow[0]) : undefined, next: pinnedRef(s.imageNext, s.digestNext) };
}

/** Every image whose labels the commit ranges need, once each. */
export function imageRefs(services: ServiceDiff[]): string[] {
  return [...new Set(services.flatMap((s) => Object.values(imagesOf(s)).filter((r): r is string => !!r)))];
}

/** The diff with each service's commits and link, from the images' labels (by `repository@digest`); pure. */
export function withCommits(services: ServiceDiff[], provenance: Map<string, Provenance>): ReleaseDiff {
  const out = services.map((s) => {
    const refs = imagesOf(s);
    const now = refs.now ? provenance.get(refs.now) : undefined;
    const next = refs.next ? provenance.get(refs.next) : undefined;
    const source = next?.source ?? now?.source;
    // A range is only a range within one repository.
    const sameSource = !now?.source || !next?.source || normaliseSource(now.source) === normaliseSource(next.source);
    const to = s.state === 'removed' ? now?.revision : next?.revision;
    const from = s.state === 'removed' || !sameSource ? undefined : now?.revision;
    return { ...s, revisionNow: now?.revision, revisionNext: next?.revision, source, link: source ? commitLink(source, from, to) : undefined };
  });
  return { services: out, changedServices: out.filter((s) => s.state !== 'unchanged').map((s) => s.service) };
}

// ---- links -------------------------------------------------------------------------------------

function normaliseSource(source: string): string {
  return (repositoryPage(source)?.url ?? source.trim()).toLowerCase();
}

/**
 * The web page of a GitHub or Azure Repos repository from its clone URI, or undefined for any
 * other host. GitHub: `https://github.com/o/r(.git)`, `git@github.com:o/r.git`. Azure Repos:
 * `https://[org@]dev.azure.com/org/project/_git/repo`, `https://org.visualstudio.com/project/_git/repo`,
 * and Azure DevOps Server (`https://host/tfs/collection/project/_git/repo`): a `/_git/<repo>` path.
 */
export function repositoryPage(source: string): { kind: 'github' | 'azure-repos'; url: string } | undefined {
  const text = source.trim();
  const scp = /^git@github\.com:([^/]+)\/([^/]+?)(\.git)?\/?$/i.exec(text);
  if (scp) return { kind: 'github', url: `https://github.com/${scp[1]}/${scp[2]}` };
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return undefined;
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return undefined;
  const parts = url.pathname.split('/').filter(Boolean);
  if (/^(www\.)?github\.com$/i.test(url.hostname) && parts.length >= 2) {
    return { kind: 'github', url: `https://github.com/${parts[0]}/${parts[1].replace(/\.git$/i, '')}` };
  }
  const git = parts.indexOf('_git');
  if (git > 0 && parts[git + 1]) {
    return { kind: 'azure-repos', url: `${url.protocol}//${url.host}/${parts.slice(0, git + 2).join('/')}` };
  }
  return undefined;
}

/**
 * A link for the commits from `from` to `to` in `source`: a compare page when both are known and
 * differ, else the page of the one commit known; undefined for other hosts or without commits.
 */
export function commitLink(source: string, from: string | undefined, to: string | undefined): string | undefined {
  const page = repositoryPage(source);
  if (!page || !to) return undefined;
  const sha = (s: string) => encodeURIComponent(s);
  if (!from || from === to) return `${page.url}/commit/${sha(to)}`;
  return page.kind === 'github'
    ? `${page.url}/compare/${sha(from)}...${sha(to)}`
    : `${page.url}/branchCompare?baseVersion=GC${sha(from)}&targetVersion=GC${sha(to)}&_a=commits`;
}

// ---- presentation ------------------------------------------------------------------------------

const short = (digest: string | undefined) => (digest ? digest.replace(/^(sha\d+:)([a-f0-9]{12})[a-f0-9]*$/, '$1$2') : undefined);
const shortSha = (sha: string | undefined) => (sha && /^[a-f0-9]{40,64}$/.test(sha) ? sha.slice(0, 12) : sha);

function rangeText(s: ServiceDiff): string {
  const from = shortSha(s.revisionNow);
  const to = shortSha(s.revisionNext);
  if (s.state === 'removed') return from ? `was ${from}` : 'unknown';
  if (s.state === 'added') return to ? `${to} (new)` : 'unknown';
  if (from && to) return from === to ? `${to} (same commit)` : `${from}…${to}`;
  return `${from ?? 'unknown'}…${to ?? 'unknown'}`;
}

/** The log's lines: one per service, sanitised (labels come from images, which may be anyone's). */
export function diffLines(diff: ReleaseDiff): string[] {
  return diff.services.map((s) => {
    const now = s.digestsNow.length ? s.digestsNow.join(', ') : s.state === 'added' ? '—' : `${s.imageNow} (digest unknown)`;
    const next = s.digestNext ?? (s.state === 'removed' ? '—' : `${s.imageNext} (not pinned)`);
    return sanitizeOutput(`${s.service}: ${s.state}; ${now} → ${next}; commits ${rangeText(s)}${s.link ? ` (${s.link})` : ''}`);
  });
}

/** The job summary's table. */
export function diffTable(diff: ReleaseDiff): string {
  const esc = (s: string) => s.replace(/\|/g, '\\|').replace(/[\r\n]+/g, ' ');
  const code = (s: string | undefined) => (s ? `\`${esc(s)}\`` : '—');
  const lines = ['| service | state | digest now | digest to come | commits |', '|---|---|---|---|---|'];
  for (const s of diff.services) {
    const now = s.digestsNow.length ? s.digestsNow.map((d) => code(short(d))).join(', ') : s.imageNow ? `${code(s.imageNow)} (digest unknown)` : '—';
    const next = s.digestNext ? code(short(s.digestNext)) : s.imageNext ? `${code(s.imageNext)} (not pinned)` : '—';
    const range = esc(rangeText(s));
    lines.push(`| ${esc(s.service)} | ${s.state} | ${now} | ${next} | ${s.link ? `[${range}](${s.link})` : range} |`);
  }
  return lines.join('\n');
}

/** One sentence on the whole release: how many services change, and which. */
export function diffHeadline(diff: ReleaseDiff): string {
  const count = (state: ServiceState) => diff.services.filter((s) => s.state === state).length;
  if (!diff.changedServices.length) return `The release changes nothing: all ${diff.services.length} service(s) already run the lock's digests.`;
  const parts = (['changed', 'added', 'removed', 'unchanged'] as const).filter((st) => count(st)).map((st) => `${count(st)} ${st}`);
  return `The release changes ${diff.changedServices.join(', ')} (${parts.join(', ')}).`;
}

/** What the task does after the diff, from diffOnly and deployIfUnchanged. */
export function releaseDecision(diff: ReleaseDiff, options: { diffOnly: boolean; deployIfUnchanged: boolean }): { deploy: true } | { deploy: false; reason: string } {
  if (options.diffOnly) return { deploy: false, reason: 'diffOnly is true: the promotion diff is printed and nothing is deployed.' };
  if (!options.deployIfUnchanged && diff.changedServices.length === 0) {
    return { deploy: false, reason: 'Skipped: the release changes nothing (every service already runs the digest of the lock) and deployIfUnchanged is false.' };
  }
  return { deploy: true };
}

/** Prints the diff, sets the changedServices output and adds the summary section `section`. */
export function publishDiff(diff: ReleaseDiff, ctx: Pick<TaskContext, 'info' | 'output' | 'addSummary'>, section: string, title: string): void {
  for (const line of diffLines(diff)) ctx.info(`  ${line}`);
  ctx.info(diffHeadline(diff));
  ctx.output('changedServices', JSON.stringify(diff.changedServices));
  ctx.addSummary(section, `### ${title}\n\n${diffHeadline(diff)}\n\n${diffTable(diff)}\n`);
}
