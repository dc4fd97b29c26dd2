// BuildAndTag: build one image (dockerfile + context) or every compose service with `build:`,
// label it with OCI and pipeline metadata, tag it, and write the build record.
import * as path from 'node:path';
import type { Logger, PipelineInfo, TaskContext } from '../context';
import { ComposeBuild, composeBuild } from '../compose/build';
import { ComposeService, loadCompose } from '../compose/load';
import { serviceDependencies } from '../compose/validate';
import { buildImage, engineBuilder, ImageBuildSpec } from '../docker/build';
import { buildWithBuildx, buildxReason, checkBuildx, parseCacheEntry } from '../docker/buildx';
import type { EngineConnector } from '../docker/engine';
import { InputError } from '../errors';
import { ReadablePaths } from '../readable-paths';
import { ImageReference, parseReference, repositoryName } from '../reference';
import { BuildRecord, BuiltImage, writeBuildRecord } from './record';
import { BuildMounts, mergeMounts, parseSecretsInput, readSecrets, readSsh, uniqueIds } from './mounts';
import { runInDependencyOrder } from './pool';
import { dockerfileImages } from './dockerfile-images';
import { sourceDate, sourceDateEpoch } from './source-date';
import { expandTagTemplates } from './tag-templates';
import { keyAgent } from '../docker/ssh-agent';
import { createCredentialSource, type CredentialSource } from '../auth';

export interface BuildAndTagOptions {
  /** The engine, connected once the inputs are checked. */
  engine: EngineConnector;
  dockerfile: string;
  buildContext: string;
  composeFile?: string;
  services: string[];
  imageName?: string;
  tags: string[];
  buildArgs: Record<string, string>;
  target?: string;
  labels: Record<string, string>;
  /** Platforms, comma- or line-separated: several build one image index (through buildx). */
  platform?: string;
  pull: boolean;
  noCache: boolean;
  /** Image references, or buildx's `type=registry,ref=…`. */
  cacheFrom: string[];
  /** Cache exports in buildx's syntax (`type=registry,ref=…,mode=max`, `type=inline`): the build goes through buildx. */
  cacheTo?: string[];
  /** Registry credentials for cache import and export through buildx (default: the agent user's docker config). */
  credentials?: CredentialSource;
  /** `id=NAME,env=VARIABLE` or `id=NAME,file=PATH` lines: secrets for RUN --mount=type=secret in every build. */
  secrets?: string[];
  /** `default` (SSH_AUTH_SOCK) or `ID=PATH` lines: SSH agents for RUN --mount=type=ssh in every build. */
  ssh?: string[];
  /** The private key of the SSH service connection: served as the agent with id `default`. */
  sshKey?: { privateKey: string; passphrase?: string; what: string };
  addPipelineLabels: boolean;
  buildRecordPath: string;
  pipeline: PipelineInfo;
  /** Timestamps from the commit time of pipeline.commit (SOURCE_DATE_EPOCH), not the clock (default true). */
  reproducible?: boolean;
  /** Build.SourcesDirectory: where `git describe` looks for a version tag for {{semver}}, and `git show` for the commit time. */
  sourcesDirectory?: string;
  /** How many images build at once (compose services; each waits for the services it depends on). */
  maxParallel: number;
  /** Variables for compose interpolation (process.env when not given). */
  env?: Record<string, string | undefined>;
  /** Folders outside the project (the compose file's folder, else the working directory) that builds may read. */
  allowedPaths?: string[];
}

export interface PlannedBuild {
  name: string;
  repository: ImageReference;
  /** Tags of the repository: pushed by PushWithDigest. */
  tags: string[];
  /** Other references the image is tagged with on the engine (compose `build.tags` of other repositories). */
  otherReferences: string[];
  /** Planned builds this one waits for: the services it depends on (see buildOrder). */
  after: string[];
  spec: Omit<ImageBuildSpec, 'tags' | 'title'>;
}

/**
 * Without a compose file, the buildContext input is the project: the Dockerfile must be inside it,
 * inside the working directory (where relative inputs start: the sources, on an agent) or allowedPaths.
 */
function singleBuildPaths(options: BuildAndTagOptions): ReadablePaths {
  const context = path.resolve(options.buildContext);
  return new ReadablePaths(context, [process.cwd(), ...(options.allowedPaths ?? [])], `the build context '${context}' and the working directory '${process.cwd()}'`);
}

/** A build reads its context and Dockerfile only inside the project or allowedPaths; a context may not hold /proc, /sys or /dev. */
function checkedSources(readable: ReadablePaths, context: string, dockerfile: string, what: { context: string; dockerfile: string }, inline = false) {
  readable.checkFolder(context, what.context);
  if (!inline) readable.check(dockerfile, what.dockerfile);
  return { context, dockerfile, readable };
}

/** What will be built, from the inputs and the compose file alone: every input checked before the engine is contacted. */
export function planBuilds(options: BuildAndTagOptions, log: Logger & Pick<TaskContext, 'setSecret'>): PlannedBuild[] {
  if (!Number.isInteger(options.maxParallel) || options.maxParallel < 1) {
    throw new InputError(`Input 'maxParallel' must be a whole number of 1 or more (how many images build at once), not '${options.maxParallel}'.`);
  }
  const { branch, commit, buildNumber } = options.pipeline;
  const tags = expandTagTemplates(options.tags, { branch, commit, buildNumber, sourcesDirectory: options.sourcesDirectory }, log);
  const plans = options.composeFile ? planCompose(options, tags, log) : [planSingle(options, tags, log)];
  const epoch = options.reproducible === false ? undefined : sourceDateEpoch({ commit, sourcesDirectory: options.sourcesDirectory, env: options.env ?? process.env }, log);
  return plans.map((plan) => ({ ...plan, spec: { ...plan.spec, sourceDateEpoch: epoch } }));
}

export async function buildAndTag(options: BuildAndTagOptions, ctx: TaskContext): Promise<BuildRecord> {
  const plans = planBuilds(options, ctx);
  const docker = await options.engine();
  const builder = await engineBuilder(docker);
  const buildKit = builder.buildKit;
  for (const plan of builder.appliesRunLimits ? [] : plans) {
    const ignored = [plan.spec.shmSize !== undefined && 'shm_size', plan.spec.ulimits.length > 0 && 'ulimits'].filter(Boolean);
    if (ignored.length) {
      throw new InputError(`compose service '${plan.name}': ${ignored.map((k) => `'build.${k}'`).join(' and ')} would be ignored by this engine's BuildKit (Engine API ${builder.apiVersion}; it applies them from API 1.42, Docker 23). Remove ${ignored.length > 1 ? 'them' : 'it'}, or build on a newer engine.`);
    }
  }
  // Builds /build cannot express go through buildx: checked (engine store, buildx on the agent) before any build starts.
  const viaBuildx = plans.filter((plan) => buildxReason(plan.spec));
  if (viaBuildx.length) {
    const version = await checkBuildx(docker, viaBuildx.map((plan) => ({ title: `'${plan.name}'`, spec: plan.spec })), ctx.signal);
    for (const plan of viaBuildx) ctx.info(`${plan.name} builds with ${version}: ${buildxReason(plan.spec)}, which the Engine API's /build cannot express.`);
  }
  const credentials = options.credentials ?? createCredentialSource({ setSecret: (s) => ctx.setSecret(s) });
  ctx.info(`Building ${plans.length} image(s) with ${buildKit ? 'BuildKit' : 'the classic builder'}${plans.length > 1 ? `, at most ${options.maxParallel} at a time` : ''}.`);
  const epoch = plans[0].spec.sourceDateEpoch;
  if (epoch !== undefined) {
    ctx.info(
      `Reproducible: timestamps from ${sourceDate(epoch)} (SOURCE_DATE_EPOCH=${epoch}); ${builder.rewritesTimestamps ? 'layer file timestamps rewritten to it, so a rebuild of this commit gives the same digest' : `this engine cannot rewrite layer file timestamps (it needs BuildKit 0.13 with the containerd image store; Engine API ${builder.apiVersion} here), so digests still differ between builds`}.`,
    );
  }

  const images = await runInDependencyOrder(
    plans.map((plan) => ({
      name: plan.name,
      after: plan.after,
      title: `Build ${plan.name} (${plannedReferences(plan).join(', ')})`,
      run: async (log: Logger, signal: AbortSignal): Promise<BuiltImage> => {
        const refs = plannedReferences(plan);
        const labels = { ...plan.spec.labels, ...(options.addPipelineLabels ? pipelineLabels(options.pipeline, plan.name, plan.tags[0], epoch) : {}) };
        const spec = { ...plan.spec, labels, title: `'${plan.name}'`, tags: refs };
        const imageId = buildxReason(spec)
          ? await buildWithBuildx(docker, spec, log, { credentials, setSecret: (s) => ctx.setSecret(s), rewritesTimestamps: builder.rewritesTimestamps, signal })
          : await buildImage(docker, spec, log, { buildKit, rewritesTimestamps: builder.rewritesTimestamps, signal });
        log.info(`Built ${plan.name}: ${imageId}, tagged ${refs.join(', ')}`);
        return { name: plan.name, imageId, repository: repositoryName(plan.repository), tags: plan.tags };
      },
    })),
    { maxParallel: options.maxParallel, signal: ctx.signal, log: ctx },
  );

  const record: BuildRecord = { schemaVersion: 1, buildNumber: options.pipeline.buildNumber, commit: options.pipeline.commit, sourceDateEpoch: epoch, images };
  writeBuildRecord(options.buildRecordPath, record);
  ctx.output('imageIds', JSON.stringify(Object.fromEntries(images.map((i) => [i.name, i.imageId]))));
  ctx.output('buildRecord', options.buildRecordPath);
  return record;
}

type Secrets = Pick<TaskContext, 'setSecret'>;

/** The secrets and SSH agents the inputs give every build: the ssh input's lines and the SSH service connection's key (id `default`). */
function inputMounts(options: BuildAndTagOptions, readable: ReadablePaths, ctx: Secrets): BuildMounts {
  const from = { env: options.env ?? process.env, readable, setSecret: (v: string) => ctx.setSecret(v) };
  const secrets = readSecrets(parseSecretsInput(options.secrets ?? []), "Input 'secrets'", from);
  const ssh = readSsh(options.ssh ?? [], "Input 'ssh'", from);
  if (options.sshKey) ssh.push(keyAgent('default', options.sshKey.privateKey, options.sshKey.what, options.sshKey.passphrase));
  return { secrets: uniqueIds(secrets, "Input 'secrets'"), ssh: uniqueIds(ssh, "Inputs 'ssh' and 'sshEndpoint'") };
}

/** The secrets input names files the pipeline gives (a secure file lives in the agent's temp folder), so only /proc, /sys and /dev are refused. */
const pipelineFiles = () => new ReadablePaths('/', [], 'any folder');

function planSingle(options: BuildAndTagOptions, tags: string[], ctx: Secrets): PlannedBuild {
  if (!options.imageName) throw new InputError("Input 'imageName' or 'composeFile' is required: name the repository to build (e.g. myregistry.azurecr.io/team/app), or give a compose file whose services have build: sections.");
  const repository = parseRepository(options.imageName, "Input 'imageName'");
  if (tags.length === 0) throw new InputError("Input 'tags' is empty: give at least one tag (the default is $(Build.BuildNumber)).");
  return {
    name: repository.path.split('/').pop() as string,
    repository,
    tags,
    otherReferences: [],
    after: [],
    spec: buildSpec(options, checkedSources(singleBuildPaths(options), options.buildContext, path.resolve(options.dockerfile), { context: "Input 'buildContext'", dockerfile: "Input 'dockerfile'" }), inputMounts(options, pipelineFiles(), ctx)),
  };
}

/**
 * The settings of one build: the inputs win over the compose service's `build:` where both speak,
 * so pipeline settings are never silently ignored.
 */
function buildSpec(options: BuildAndTagOptions, sources: Pick<ImageBuildSpec, 'context' | 'dockerfile' | 'readable'>, mounts: BuildMounts, build?: ComposeBuild): PlannedBuild['spec'] {
  return {
    ...sources,
    ...mounts,
    dockerfileInline: build?.dockerfileInline,
    buildArgs: { ...build?.args, ...options.buildArgs },
    labels: { ...build?.labels, ...options.labels },
    target: options.target ?? build?.target,
    platforms: platformInput(options.platform) ?? build?.platforms ?? [],
    pull: options.pull || (build?.pull ?? false),
    noCache: options.noCache || (build?.noCache ?? false),
    cacheFrom: [...(build?.cacheFrom ?? []), ...checkedCache(options.cacheFrom, 'from', "Input 'cacheFrom'")],
    cacheTo: [...(build?.cacheTo ?? []), ...checkedCache(options.cacheTo ?? [], 'to', "Input 'cacheTo'")],
    network: build?.network,
    extraHosts: build?.extraHosts ?? [],
    shmSize: build?.shmSize,
    ulimits: build?.ulimits ?? [],
    isolation: build?.isolation,
  };
}

const PLATFORM = /^[a-z0-9]+\/[a-z0-9_]+(\/[a-z0-9]+)?$/;

/** The platform input: platforms separated by commas or lines (all built, in one image index when several); undefined when empty. */
export function platformInput(text: string | undefined): string[] | undefined {
  const platforms = [...new Set((text ?? '').split(/[,\n]/).map((p) => p.trim()).filter(Boolean))];
  const bad = platforms.find((p) => !PLATFORM.test(p));
  if (bad) throw new InputError(`Input 'platform': '${bad}' is not a platform; write os/arch[/variant] in lower case, e.g. linux/amd64 or linux/arm/v7, separated by commas.`);
  return platforms.length ? platforms : undefined;
}

/** Cache entries are checked (buildx's syntax) before the engine is contacted. */
function checkedCache(entries: string[], direction: 'from' | 'to', what: string): string[] {
  for (const entry of entries) parseCacheEntry(entry, direction, what);
  return entries;
}

/**
 * Every service with `build:`. Its repository is the service's `image:` (whose tag is kept) or
 * `<imageName>/<service>`; the `tags` input adds tags.
 */
function planCompose(options: BuildAndTagOptions, tags: string[], ctx: Secrets): PlannedBuild[] {
  const app = loadCompose([options.composeFile as string], { env: options.env, allowedPaths: options.allowedPaths });
  const buildable = app.services.filter((s) => s.build);
  if (buildable.length === 0) {
    throw new InputError(`Input 'composeFile': '${options.composeFile}' has no service with a 'build:' section, so there is nothing to build. Use PushWithDigest's composeFile input to pin third-party images.`);
  }
  const unknown = options.services.filter((s) => !app.services.some((svc) => svc.name === s));
  if (unknown.length) throw new InputError(`Input 'services': ${unknown.map((s) => `'${s}'`).join(', ')} not found in '${options.composeFile}' (services: ${app.services.map((s) => s.name).join(', ')}).`);
  const selected = options.services.length ? buildable.filter((s) => options.services.includes(s.name)) : buildable;
  if (selected.length === 0) throw new InputError(`Input 'services': none of ${options.services.join(', ')} has a 'build:' section in '${options.composeFile}'.`);
  const givenToAll = inputMounts(options, pipelineFiles(), ctx);

  const plans = selected.map((service): PlannedBuild => {
    const where = `Compose file '${options.composeFile}': service '${service.name}'`;
    const build = composeBuild(service.build, where, app.projectDir, app.env, service.raw.platform, app.model.secrets);
    checkedCache(build.cacheFrom, 'from', `${where} build.cache_from`);
    checkedCache(build.cacheTo, 'to', `${where} build.cache_to`);
    const from = { env: app.env, readable: app.readable, setSecret: (v: string) => ctx.setSecret(v) };
    const serviceMounts = { secrets: readSecrets(build.secrets, `${where} build.secrets`, from), ssh: readSsh(build.ssh, `${where} build.ssh`, from) };
    let repository: ImageReference;
    const serviceTags: string[] = [];
    if (service.image) {
      repository = parseRepository(service.image, `Compose service '${service.name}' image`, true);
      if (repository.tag) serviceTags.push(repository.tag);
    } else if (options.imageName) {
      repository = parseRepository(`${options.imageName.replace(/\/+$/, '')}/${service.name}`, `Input 'imageName' with service '${service.name}'`);
    } else {
      throw new InputError(`Compose service '${service.name}' has 'build:' but no 'image:'. Set 'image:' in the compose file, or set the imageName input (images are then named <imageName>/<service>).`);
    }
    // build.tags of the service's repository are pushed with it; others only tag the image on the engine, as in Compose.
    const otherReferences: string[] = [];
    for (const text of build.tags) {
      const ref = parseReference(text, `${where} build.tags`);
      if (ref.digest) throw new InputError(`${where}: build.tags '${text}' has a digest; give a repository and tag.`);
      if (repositoryName(ref) === repositoryName(repository)) serviceTags.push(ref.tag ?? 'latest');
      else otherReferences.push(`${repositoryName(ref)}:${ref.tag ?? 'latest'}`);
    }
    const allTags = [...new Set([...serviceTags, ...tags])];
    if (allTags.length === 0) throw new InputError(`Compose service '${service.name}': no tag to give the image. Set the tags input or a tag in 'image:'.`);
    return {
      name: service.name,
      repository,
      tags: allTags,
      otherReferences: [...new Set(otherReferences)],
      after: [],
      spec: buildSpec(options, checkedSources(app.readable, build.context, build.dockerfile, { context: `${where} build.context`, dockerfile: `${where} build.dockerfile` }, build.dockerfileInline !== undefined), mergeMounts(givenToAll, serviceMounts), build),
    };
  });
  return plans.map((plan) => ({ ...plan, after: siblingsRead(plan, plans, app.readable, () => buildOrder(app.services, plan.name, selected)) }));
}

/** An image reference as repository:tag, to compare what a Dockerfile names with what a sibling is tagged. */
function comparable(text: string): string | undefined {
  try {
    const ref = parseReference(text, 'image');
    return ref.digest ? undefined : `${repositoryName(ref)}:${ref.tag ?? 'latest'}`;
  } catch {
    return undefined;
  }
}

/**
 * The built siblings a build must wait for: those whose image its Dockerfile reads (FROM, COPY
 * --from, RUN --mount from). When that cannot be known (a variable without a value in an image
 * name, a Dockerfile that cannot be read yet), the services it depends on, as Compose's own builder.
 */
function siblingsRead(plan: PlannedBuild, plans: PlannedBuild[], readable: ReadablePaths, dependsOn: () => string[]): string[] {
  let text: string;
  try {
    text = plan.spec.dockerfileInline ?? readable.readText(plan.spec.dockerfile, `compose service '${plan.name}' build.dockerfile`);
  } catch {
    return dependsOn();
  }
  const { images, unresolved } = dockerfileImages(text, plan.spec.buildArgs);
  if (unresolved) return dependsOn();
  // Digest references and names that do not parse compare as nothing (never as one another).
  const read = new Set(images.map(comparable).filter((ref) => ref !== undefined));
  return plans.filter((other) => other !== plan && plannedReferences(other).some((ref) => read.has(comparable(ref) ?? ''))).map((other) => other.name);
}

/** The references a planned image is tagged with on the engine. */
function plannedReferences(plan: PlannedBuild): string[] {
  const repository = repositoryName(plan.repository);
  return [...plan.tags.map((t) => `${repository}:${t}`), ...plan.otherReferences];
}

/**
 * The built services a service depends on (depends_on, links, volumes_from, `service:`
 * namespaces), also through services that are not built: the order of Compose v2's own builder,
 * used when the Dockerfile does not tell which images it reads.
 */
function buildOrder(services: ComposeService[], name: string, built: ComposeService[]): string[] {
  const byName = new Map(services.map((s) => [s.name, s]));
  const waits = new Set<string>();
  const seen = new Set<string>([name]);
  const visit = (service: ComposeService) => {
    for (const dep of serviceDependencies(service.raw)) {
      if (seen.has(dep)) continue;
      seen.add(dep);
      if (built.some((s) => s.name === dep)) waits.add(dep);
      else if (byName.has(dep)) visit(byName.get(dep) as ComposeService);
    }
  };
  visit(byName.get(name) as ComposeService);
  return [...waits];
}

function parseRepository(text: string, what: string, allowTag = false): ImageReference {
  const ref = parseReference(text, what);
  if (ref.digest) throw new InputError(`${what}: '${text}' has a digest; give a repository (and tag) to build, not a digest.`);
  if (ref.tag && !allowTag) throw new InputError(`${what}: '${text}' has a tag; give the repository alone and put tags in the tags input.`);
  return ref;
}

/** OCI annotations (image-spec annotations.md) and where the image came from in the pipeline. */
export function pipelineLabels(p: PipelineInfo, title: string, version: string | undefined, sourceDateEpoch?: number): Record<string, string> {
  const labels: Record<string, string | undefined> = {
    'org.opencontainers.image.created': sourceDate(sourceDateEpoch),
    'org.opencontainers.image.revision': p.commit,
    'org.opencontainers.image.source': p.repositoryUri,
    'org.opencontainers.image.version': version,
    'org.opencontainers.image.title': title,
    'dev.azure.pipelines.build.number': p.buildNumber,
    'dev.azure.pipelines.build.id': p.buildId,
    'dev.azure.pipelines.definition': p.definition,
    'dev.azure.pipelines.branch': p.branch,
  };
  return Object.fromEntries(Object.entries(labels).filter((e): e is [string, string] => !!e[1]));
}
