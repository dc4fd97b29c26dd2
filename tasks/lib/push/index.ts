// PushWithDigest: push every built image's tags through the Engine API, take each manifest digest
// from the push stream, confirm it with the registry, resolve third-party images of a compose file
// to digests without pulling, and write the image lock.
import * as path from 'node:path';
import type Dockerode from 'dockerode';
import { registryAuthHeader, type CredentialSource } from '../auth';
import { readBuildRecord, BuiltImage } from '../build/record';
import { sourceDate } from '../build/source-date';
import { loadCompose } from '../compose/load';
import type { PipelineInfo, TaskContext } from '../context';
import type { EngineConnector } from '../docker/engine';
import { unlessMissing } from '../docker/missing';
import { isRegistryAuthFailure, pushedDigest } from '../docker/stream';
import { transferWithRetries } from '../docker/transfer';
import { checkArtifactName } from '../artifact-name';
import { DockerError, InputError, RegistryError } from '../errors';
import { writeLock } from '../lock/file';
import type { ImageLock, LockedImage } from '../lock/types';
import { parseReference, pinnedReference, repositoryName, validateTag } from '../reference';
import type { RegistryClient } from '../registry/client';
import { isIndexMediaType } from '../registry/manifest';
import { DEFAULT_RETRY } from '../util/retry';

export interface PushOptions {
  /** The engine, connected once the inputs are checked. */
  engine: EngineConnector;
  client: RegistryClient;
  credentials: CredentialSource;
  /** The build record to push; ignored when `images` is given. */
  buildRecordPath?: string;
  /** Local image references (repository:tag) to push instead of the build record. */
  images: string[];
  additionalTags: string[];
  composeFile?: string;
  lockFile: string;
  publishArtifact: boolean;
  artifactName: string;
  pipeline: PipelineInfo;
  env?: Record<string, string | undefined>;
  /** Folders outside the project directory whose files the compose files may name (the allowedPaths input). */
  allowedPaths?: string[];
  /** Attempts of one push when the registry answers 429/5xx or the connection drops. */
  pushAttempts?: number;
  /** The time one push of a tag may take in all, retries included (the registryTimeoutSeconds input; the registry client has its own). */
  registryTimeoutSeconds: number;
}

export interface PushResult {
  lock: ImageLock;
  lockFile: string;
  markdown: string;
}

export async function pushWithDigest(options: PushOptions, ctx: TaskContext): Promise<PushResult> {
  if (options.publishArtifact) checkArtifactName(options.artifactName, 'artifactName');
  const extraTags = options.additionalTags.map((t) => validateTag(t, "Input 'additionalTags'"));
  const record = options.images.length ? undefined : readBuildRecord(requireRecordPath(options));
  const recorded = record?.images;
  const docker = await options.engine();
  const sources = recorded ?? (await localImages(docker, options.images));
  if (sources.length === 0) throw new InputError('There is nothing to push: the build record lists no images. Check that BuildAndTag@1 built something.');

  const locked: LockedImage[] = [];
  for (const image of sources) {
    locked.push(await ctx.group(`Push ${image.name} (${image.repository})`, () => pushImage(docker, image, [...new Set([...image.tags, ...extraTags])], options, ctx)));
  }
  if (options.composeFile) locked.push(...(await resolveThirdParty(options, new Set(sources.map((s) => s.name)), ctx)));

  // Unset fields are undefined, which JSON leaves out of the file.
  const { buildNumber, buildId, commit, definition, project, collectionUri } = options.pipeline;
  const lock = writeLock(options.lockFile, {
    schemaVersion: 1,
    // A reproducible build's lock is too: its time is the commit's (the images' SOURCE_DATE_EPOCH).
    createdAt: sourceDate(record?.sourceDateEpoch),
    buildNumber,
    buildId,
    commit,
    pipeline: definition || buildId || project || collectionUri ? { definition, runId: buildId, project, collectionUri } : undefined,
    images: locked.sort((a, b) => a.name.localeCompare(b.name)),
  });
  const markdown = summary(lock);
  ctx.addSummary('push-with-digest', markdown);
  ctx.output('lockFile', path.resolve(options.lockFile));
  ctx.output('digests', JSON.stringify(Object.fromEntries(lock.images.map((i) => [i.name, i.ref]))));
  if (options.publishArtifact) ctx.uploadArtifact(options.artifactName, path.resolve(options.lockFile));
  return { lock, lockFile: path.resolve(options.lockFile), markdown };
}

function requireRecordPath(options: PushOptions): string {
  if (!options.buildRecordPath) throw new InputError("Input 'buildRecord' is not set and no build record was found: run BuildAndTag@1 earlier in this job, or list images in the images input.");
  return options.buildRecordPath;
}

/** `images` input: local images by repository:tag. */
async function localImages(docker: Dockerode, refs: string[]): Promise<BuiltImage[]> {
  const out: BuiltImage[] = [];
  for (const text of refs) {
    const ref = parseReference(text, "Input 'images'");
    if (ref.digest || !ref.tag) throw new InputError(`Input 'images': '${text}' must be a local image as repository:tag (no digest), e.g. myregistry.azurecr.io/app:1.0.`);
    const inspect = await unlessMissing(docker.getImage(text).inspect());
    if (!inspect) throw new InputError(`Input 'images': the image '${text}' is not on this Docker engine. Build it first (BuildAndTag@1) or fix the name.`);
    out.push({ name: ref.path.split('/').pop() as string, imageId: inspect.Id, repository: repositoryName(ref), tags: [ref.tag] });
  }
  return out;
}

async function pushImage(docker: Dockerode, image: BuiltImage, tags: string[], options: PushOptions, ctx: TaskContext): Promise<LockedImage> {
  const repo = parseReference(image.repository, 'The build record');
  const inspect = await unlessMissing(docker.getImage(image.imageId).inspect());
  if (!inspect) throw new InputError(`The image ${image.name} (${image.imageId}) from the build record is not on this Docker engine. Run BuildAndTag@1 in the same job (on the same agent) before pushing.`);
  // dockerode sends `key` as X-Registry-Auth as it is; registryAuthHeader has registered every form of it.
  const authconfig = { key: registryAuthHeader(await options.credentials(repo.domain), repo.domain, (s) => ctx.setSecret(s)) };

  let digest: string | undefined;
  for (const tag of tags) {
    await docker.getImage(image.imageId).tag({ repo: image.repository, tag });
    const pushed = await pushTag(docker, options, `${image.repository}:${tag}`, authconfig, ctx);
    if (digest && pushed !== digest) throw new DockerError(`Pushing ${image.repository}:${tag} gave digest ${pushed}, but the other tags of the same image gave ${digest}.`);
    digest = pushed;
  }
  // With the body: an image index (a multi-platform build, pushed whole by the containerd store) lists each platform's manifest.
  const confirmed = await options.client.resolve({ ...repo, tag: tags[0], digest: undefined }, { platforms: true });
  if (confirmed.digest !== digest) {
    throw new RegistryError(`The registry reports ${confirmed.digest} for ${image.repository}:${tags[0]}, but the push reported ${digest}. Another push may have moved the tag; re-run the job.`, { registry: repo.domain });
  }
  const platform = [inspect.Os, inspect.Architecture, (inspect as { Variant?: string }).Variant].filter(Boolean).join('/');
  const index = isIndexMediaType(confirmed.mediaType) ? sortedKeys(confirmed.manifests ?? {}) : undefined;
  ctx.info(`${image.name}: ${image.repository}@${digest} (tags ${tags.join(', ')})`);
  for (const [p, manifest] of Object.entries(index ?? {})) ctx.info(`  ${p}: ${manifest}`);
  return {
    name: image.name,
    repository: image.repository,
    tags,
    digest: digest as string,
    ref: pinnedReference(repo, digest as string),
    source: 'built',
    platforms: index ? Object.keys(index) : [platform],
    platformDigests: index,
    mediaType: confirmed.mediaType,
    imageId: image.imageId,
  };
}

/** The same entries with keys in order, so the lock is byte-stable. */
function sortedKeys(map: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(map).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** One tag through the Engine API; retried when the registry is busy or drops the connection, within registryTimeoutSeconds. */
async function pushTag(docker: Dockerode, options: PushOptions, ref: string, authconfig: object, ctx: TaskContext): Promise<string> {
  const registry = ref.split('/')[0];
  const tag = ref.slice(ref.lastIndexOf(':') + 1);
  let digest: string | undefined;
  try {
    await transferWithRetries({
      what: `Pushing ${ref}`,
      registry,
      timeoutSeconds: options.registryTimeoutSeconds,
      attempts: options.pushAttempts ?? DEFAULT_RETRY.attempts,
      baseDelayMs: 500,
      signal: ctx.signal,
      log: ctx,
      start: (signal) => docker.getImage(ref).push({ authconfig, abortSignal: signal } as Dockerode.ImagePushOptions),
      onEvent: (e) => (digest = pushedDigest(e, tag) ?? digest),
    });
  } catch (err) {
    const message = (err as Error).message;
    if (!(err instanceof RegistryError) && isRegistryAuthFailure(message)) {
      throw new RegistryError(`Pushing ${ref}: authentication failed for ${registry}. Check the service connection's user name and password and that it may push to this repository. (${message})`, { status: 401 });
    }
    throw err;
  }
  if (!digest) throw new DockerError(`Pushing ${ref} finished without reporting a digest. The engine may be too old (API 1.24+ reports it).`);
  return digest;
}

/** Images of the compose file that are not built here: resolved to the digest their tag points at now. */
async function resolveThirdParty(options: PushOptions, built: Set<string>, ctx: TaskContext): Promise<LockedImage[]> {
  const app = loadCompose([options.composeFile as string], { env: options.env, allowedPaths: options.allowedPaths });
  const services = app.services.filter((s) => s.image && !s.build && !built.has(s.name));
  const refs = services.map((s) => parseReference(s.image as string, `Compose service '${s.name}' image`));
  const resolved = await options.client.resolveMany(refs);
  return services.map((service, i) => {
    const ref = refs[i];
    const { digest, platforms, mediaType } = resolved[i];
    ctx.info(`${service.name}: ${service.image} resolved to ${digest}`);
    return {
      name: service.name,
      repository: repositoryName(ref),
      tags: ref.tag ? [ref.tag] : [],
      digest,
      ref: pinnedReference(ref, digest),
      source: 'resolved' as const,
      platforms,
      mediaType,
    };
  });
}

function summary(lock: ImageLock): string {
  const rows = lock.images.map((i) => `| ${i.name} | ${i.repository} | ${i.tags.join(', ') || '—'} | \`${i.digest}\` | ${i.source} |`);
  return ['### Images pinned by digest', '', '| image | repository | tags | digest | source |', '|---|---|---|---|---|', ...rows, ''].join('\n');
}
