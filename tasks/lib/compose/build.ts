// A compose service's `build:` as BuildAndTag builds it. Every key the compose-spec defines for
// `build` is in BUILD_KEYS: honoured (an Engine API /build setting, or a buildx flag for what /build
// cannot express: several platforms, cache export; see tasks/lib/docker/buildx.ts), or refused with a
// message that names the service and the key and says what to do. Nothing is dropped silently.
// Only BuildAndTag reads this: a deployment of the same file does not build, so it is not refused.
import * as path from 'node:path';
import { FileError } from '../errors';
import type { Environment } from './interpolate';
import { isObject } from '../util/object';
import { stringMapping } from './merge';
import { expandHome } from './paths';
import { sizeInBytes } from './units';
import type { SecretSource } from '../build/mounts';

type Obj = Record<string, unknown>;

export interface ComposeBuild {
  context: string; // absolute
  /** Absolute; with `dockerfile_inline`, where the inline Dockerfile is put in the context tar. */
  dockerfile: string;
  /** The Dockerfile's text when `dockerfile_inline` gives it. */
  dockerfileInline?: string;
  args: Record<string, string>;
  target?: string;
  labels: Record<string, string>;
  /** Cache sources: image references, or buildx's `type=registry,ref=…` syntax. */
  cacheFrom: string[];
  /** Cache exports in buildx's syntax (`type=registry,ref=…,mode=max`, `type=inline`): built with buildx. */
  cacheTo: string[];
  /** `build.platforms`, else the service's `platform` (several: one image index, built with buildx). */
  platforms: string[];
  network?: string;
  /** `host:ip`, as the Engine API takes them. */
  extraHosts: string[];
  shmSize?: number;
  noCache: boolean;
  pull: boolean;
  /** Full references to tag the image with too. */
  tags: string[];
  ulimits: { Name: string; Soft: number; Hard: number }[];
  isolation?: string;
  /** `build.secrets`, each with where its value comes from (the top-level `secrets:` entry). */
  secrets: SecretSource[];
  /** `build.ssh` as `default` or `ID=PATH` (PATH absolute). */
  ssh: string[];
}

export type BuildKeyRule = 'honoured' | { why: string; instead: string; accepts?: (value: unknown) => boolean };

const none = (value: unknown) => value === false || value === null || (Array.isArray(value) && value.length === 0) || (isObject(value) && Object.keys(value).length === 0);

/** What BuildAndTag does with each `build` key of the compose-spec (test/unit/build-keys.test.ts walks them all). */
export const BUILD_KEYS: Record<string, BuildKeyRule> = {
  context: 'honoured',
  dockerfile: 'honoured',
  dockerfile_inline: 'honoured',
  args: 'honoured',
  labels: 'honoured',
  target: 'honoured',
  cache_from: 'honoured',
  cache_to: 'honoured',
  platforms: 'honoured',
  network: 'honoured',
  extra_hosts: 'honoured',
  shm_size: 'honoured',
  no_cache: 'honoured',
  pull: 'honoured',
  tags: 'honoured',
  ulimits: 'honoured',
  isolation: 'honoured',
  additional_contexts: { why: "the Engine API's /build has no named build contexts", instead: 'copy the files into the build context, or build this service with `docker buildx build --build-context`', accepts: none },
  no_cache_filter: { why: "the Engine API's /build cannot skip the cache for some stages only", instead: "use 'no_cache: true' (or the noCache input) to build every step again", accepts: none },
  privileged: { why: "the Engine API's /build cannot grant the security.insecure entitlement", instead: 'remove it, or build this service with `docker buildx build --allow security.insecure` on a builder that allows it', accepts: none },
  entitlements: { why: "the Engine API's /build cannot grant entitlements", instead: 'remove them, or build this service with `docker buildx build --allow`', accepts: none },
  provenance: { why: "the Engine API's /build makes no attestations", instead: "remove it (or set it to false), or attest with `docker buildx build --provenance`", accepts: (v) => v === false || v === 'false' },
  sbom: { why: "the Engine API's /build makes no attestations", instead: "remove it (or set it to false), or attest with `docker buildx build --sbom`", accepts: (v) => v === false || v === 'false' },
  secrets: 'honoured',
  ssh: 'honoured',
};

/** The build of a service; a key that cannot be honoured is refused, naming the service and the key. */
export function composeBuild(value: unknown, where: string, projectDir: string, env: Environment, servicePlatform?: unknown, topLevelSecrets?: unknown): ComposeBuild {
  const spec = (typeof value === 'string' ? { context: value } : value) as Obj;
  if (!isObject(spec)) throw new FileError(`${where}: 'build' must be a path or a mapping.`);
  for (const [key, v] of Object.entries(spec)) {
    const rule = BUILD_KEYS[key];
    if (key.startsWith('x-') || rule === 'honoured') continue;
    if (rule === undefined) throw new FileError(`${where}: 'build.${key}' is not a build key Compose knows. Remove it.`);
    if (!rule.accepts?.(v)) throw new FileError(`${where}: 'build.${key}' cannot be honoured: ${rule.why}. To build it, ${rule.instead}.`);
  }
  if (spec.dockerfile !== undefined && spec.dockerfile_inline !== undefined) throw new FileError(`${where}: 'build.dockerfile' and 'build.dockerfile_inline' are given together, which Compose refuses. Keep one.`);
  const context = path.resolve(projectDir, String(spec.context ?? '.'));
  const dockerfile = path.resolve(context, String(spec.dockerfile ?? 'Dockerfile'));
  return {
    context,
    dockerfile,
    dockerfileInline: spec.dockerfile_inline === undefined ? undefined : String(spec.dockerfile_inline),
    args: stringMapping(spec.args, `${where} build.args`, env),
    target: optionalText(spec.target),
    labels: stringMapping(spec.labels, `${where} build.labels`),
    cacheFrom: textList(spec.cache_from, `${where}: 'build.cache_from'`),
    cacheTo: textList(spec.cache_to, `${where}: 'build.cache_to'`),
    platforms: buildPlatforms(textList(spec.platforms, `${where}: 'build.platforms'`), servicePlatform, where),
    network: optionalText(spec.network),
    extraHosts: extraHostEntries(spec.extra_hosts, `${where}: 'build.extra_hosts'`).map(([host, ip]) => `${host}:${ip}`),
    shmSize: spec.shm_size === undefined ? undefined : size(spec.shm_size, `${where}: 'build.shm_size'`),
    noCache: spec.no_cache === true,
    pull: spec.pull === true,
    tags: textList(spec.tags, `${where}: 'build.tags'`),
    ulimits: ulimitList(spec.ulimits, `${where}: 'build.ulimits'`),
    isolation: optionalText(spec.isolation),
    secrets: buildSecrets(spec.secrets, topLevelSecrets, where, projectDir),
    ssh: sshEntries(spec.ssh, where, projectDir),
  };
}

/** `build.secrets` (names, or {source, target}): the id the Dockerfile mounts is the target, else the source, as in Compose. */
function buildSecrets(value: unknown, topLevel: unknown, where: string, projectDir: string): SecretSource[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new FileError(`${where}: 'build.secrets' must be a list of secret names or {source, target}.`);
  const declared = isObject(topLevel) ? topLevel : {};
  return value.map((entry) => {
    const source = String(isObject(entry) ? entry.source : entry);
    const id = String(isObject(entry) && entry.target !== undefined ? entry.target : source);
    const owner = isObject(entry) ? ['uid', 'gid', 'mode'].filter((k) => entry[k] !== undefined) : [];
    if (owner.length) {
      throw new FileError(`${where}: 'build.secrets' entry '${source}' sets ${owner.join(', ')}, which a build cannot take from compose (Compose ignores them for builds). Set them where the secret is mounted: RUN --mount=type=secret,id=${id},uid=…,gid=…,mode=… in the Dockerfile.`);
    }
    const def = declared[source];
    if (!isObject(def)) throw new FileError(`${where}: 'build.secrets' names '${source}', which the top-level 'secrets:' does not declare. Declare it with file: or environment:.`);
    if (typeof def.environment === 'string') return { id, env: def.environment };
    if (typeof def.file === 'string') return { id, file: path.resolve(projectDir, expandHome(def.file)) };
    throw new FileError(`${where}: secret '${source}' has neither file: nor environment:, so there is no value to give the build${def.external ? ' (an external secret lives in a swarm, not on the agent)' : ''}. Give it file: or environment:.`);
  });
}

/** `build.ssh`: a list of `default` / `ID=PATH`, or a mapping of ID to PATH. */
function sshEntries(value: unknown, where: string, projectDir: string): string[] {
  if (value === undefined || value === null) return [];
  const items = isObject(value) ? Object.entries(value).map(([id, p]) => (p === null || p === '' ? id : `${id}=${String(p)}`)) : Array.isArray(value) ? value.map(String) : undefined;
  if (!items) throw new FileError(`${where}: 'build.ssh' must be a list (default, or ID=PATH) or a mapping of ID to PATH.`);
  return items.map((item) => {
    const eq = item.indexOf('=');
    return eq < 0 ? item : `${item.slice(0, eq)}=${path.resolve(projectDir, expandHome(item.slice(eq + 1)))}`;
  });
}

/**
 * The platforms to build for: `build.platforms` (every one, in one image index when there are
 * several), else the service's `platform`. As Compose, a `platform` that `build.platforms` does not list is refused.
 */
function buildPlatforms(platforms: string[], servicePlatform: unknown, where: string): string[] {
  const service = optionalText(servicePlatform);
  if (service !== undefined && platforms.length > 0 && !platforms.includes(service)) {
    throw new FileError(`${where}: 'platform' is '${service}', which 'build.platforms' (${platforms.join(', ')}) does not list; Compose refuses that. Add it to build.platforms or change platform.`);
  }
  return platforms.length ? [...new Set(platforms)] : service !== undefined ? [service] : [];
}

/** `extra_hosts` as [host, address] pairs: `host:ip` or `host=ip` items, or a mapping of host to one or more addresses (`[v6]` brackets taken off). */
export function extraHostEntries(value: unknown, what: string): [string, string][] {
  if (value === undefined || value === null) return [];
  const entries: [string, string][] = isObject(value)
    ? Object.entries(value).flatMap(([host, ips]) => (Array.isArray(ips) ? ips : [ips]).map((ip): [string, string] => [host, String(ip)]))
    : (Array.isArray(value) ? value : [value]).map((item): [string, string] => {
        const text = String(item);
        const sep = text.includes('=') ? text.indexOf('=') : text.indexOf(':');
        if (sep <= 0) throw new FileError(`${what}: '${text}' is not HOST:IP or HOST=IP.`);
        return [text.slice(0, sep), text.slice(sep + 1)];
      });
  return entries.map(([host, ip]) => [host, ip.replace(/^\[(.*)\]$/, '$1')]);
}

/** `ulimits`: a name to a number (soft and hard), or to `{soft, hard}`. */
function ulimitList(value: unknown, what: string): ComposeBuild['ulimits'] {
  if (value === undefined || value === null) return [];
  if (!isObject(value)) throw new FileError(`${what} must be a mapping of limit names to a number or {soft, hard}.`);
  return Object.entries(value).map(([name, limit]) => {
    const [soft, hard] = isObject(limit) ? [limit.soft, limit.hard] : [limit, limit];
    if (!Number.isInteger(Number(soft)) || !Number.isInteger(Number(hard))) throw new FileError(`${what}.${name} must be a whole number, or {soft, hard} with whole numbers.`);
    return { Name: name, Soft: Number(soft), Hard: Number(hard) };
  });
}

function size(value: unknown, what: string): number {
  const bytes = sizeInBytes(value);
  if (bytes === undefined) throw new FileError(`${what}: '${String(value)}' is not a size (write bytes, or a number with a unit: 64m, 1g).`);
  return bytes;
}

function optionalText(value: unknown): string | undefined {
  return value === undefined || value === null ? undefined : String(value);
}

function textList(value: unknown, what: string): string[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new FileError(`${what} must be a list.`);
  return value.map(String);
}
