// Loads a compose application: one or more files (base plus overrides), interpolated with the
// environment and the project's `.env`, merged in order with Compose's merge rules (merge.ts),
// `extends` resolved (same file or another file, with that file's relative paths), and profiles
// applied when asked. `docker-compose config` is the oracle the tests compare against.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Document } from 'yaml';
import { FileError } from '../errors';
import { parseEnvFile } from './dotenv';
import { Environment, interpolateValue } from './interpolate';
import { isMapping, mergeService, mergeTopLevel, stringMapping } from './merge';
import { readYamlFile, toPlain } from './yaml';

export interface ComposeBuild {
  context: string; // absolute
  dockerfile: string; // absolute
  args: Record<string, string>;
  target?: string;
  labels: Record<string, string>;
  cacheFrom: string[];
  platforms: string[];
}

export interface ComposeService {
  name: string;
  image?: string;
  build?: ComposeBuild;
  raw: Record<string, unknown>;
}

export interface ComposeApp {
  files: string[];
  projectDir: string;
  services: ComposeService[];
  env: Environment;
  /**
   * The whole merged, interpolated application: top-level keys (services, networks, volumes,
   * secrets, configs, x-*) with `extends` resolved and, when `profiles` was given, only the active
   * services. `services[].raw` are the same objects.
   */
  model: Record<string, unknown>;
  /** Services left out because none of their profiles is active (only when `profiles` was given). */
  inactiveServices: string[];
  /** The first file as parsed (comments and all), for rendering in place. */
  document: Document.Parsed;
}

export interface LoadOptions {
  /** Variables for interpolation; process.env by default. They win over the `.env` file, as in Compose. */
  env?: Environment;
  /** An env file to use instead of `<project dir>/.env`. */
  envFile?: string;
  /**
   * Active profiles. Undefined keeps every service (what build and push want); a list (even empty)
   * keeps services without `profiles:` and those with one of these, as `docker compose up` does.
   */
  profiles?: string[];
}

export function loadCompose(files: string[], options: LoadOptions = {}): ComposeApp {
  if (files.length === 0) throw new FileError('No compose file was given.');
  const projectDir = path.dirname(path.resolve(files[0]));
  const envFile = options.envFile ?? path.join(projectDir, '.env');
  if (options.envFile && !fs.existsSync(options.envFile)) throw new FileError(`The env file '${options.envFile}' does not exist.`);
  // The `.env` file's `${…}` and bare names look in the environment, then at its earlier lines; the
  // environment wins over its values, as in Compose. A `.env` folder is no env file (Compose skips it).
  const processEnv = options.env ?? process.env;
  const fileEnv = fs.statSync(envFile, { throwIfNoEntry: false })?.isFile() ? parseEnvFile(fs.readFileSync(envFile, 'utf8'), { file: envFile, env: processEnv }) : {};
  const env: Environment = { ...fileEnv, ...processEnv };

  // `extends` is resolved in each file before the files are merged (a base named without `file:`
  // is the service of the same file, else of the first file), as docker-compose does.
  let merged: Record<string, unknown> = {};
  let document: Document.Parsed | undefined;
  const resolver = new ExtendsResolver(env);
  let mainServices: Record<string, unknown> = {};
  for (const [i, file] of files.entries()) {
    const { doc, data } = readComposeFile(file, env);
    document ??= doc;
    if (!data) continue;
    const declared = (data.services ?? {}) as Record<string, unknown>;
    if (i === 0) mainServices = declared;
    if (data.services !== undefined) {
      const resolved: Record<string, unknown> = {};
      for (const name of Object.keys(declared)) resolved[name] = resolver.resolve(path.resolve(file), declared, name, path.resolve(files[0]), mainServices);
      data.services = resolved;
    }
    merged = mergeTopLevel(merged, data, `Compose file '${file}'`);
  }
  let services = (merged.services ?? {}) as Record<string, Record<string, unknown>>;
  if (Object.keys(services).length === 0) {
    throw new FileError(`${files.join(', ')}: no services found. A compose file lists its services under 'services:' (the version 1 format without it is not supported).`);
  }

  const inactiveServices: string[] = [];
  if (options.profiles) {
    const active = new Set(options.profiles);
    const kept: typeof services = {};
    for (const [name, raw] of Object.entries(services)) {
      if (isActive(raw, active)) kept[name] = raw;
      else inactiveServices.push(name);
    }
    services = kept;
    if (Object.keys(services).length === 0) {
      throw new FileError(`${files.join(', ')}: every service needs a profile that is not active (${inactiveServices.join(', ')}). Activate one with the profiles input.`);
    }
  }
  const model = { ...merged, services };
  return {
    files: files.map((f) => path.resolve(f)),
    projectDir,
    env,
    model,
    inactiveServices,
    document: document as Document.Parsed,
    services: Object.entries(services).map(([name, raw]) => toService(name, raw, projectDir)),
  };
}

/** A service runs under these active profiles when it has no `profiles:`, or one of them is active. */
export function isActive(service: Record<string, unknown>, activeProfiles: Set<string>): boolean {
  const profiles = Array.isArray(service.profiles) ? service.profiles.map(String) : [];
  return profiles.length === 0 || profiles.some((p) => activeProfiles.has(p));
}

/** One compose file: parsed (kept for in-place rendering), checked, interpolated. */
function readComposeFile(file: string, env: Environment): { doc: Document.Parsed; data?: Record<string, unknown> } {
  const what = `Compose file '${file}'`;
  const doc = readYamlFile(file, 'Compose file');
  const data = toPlain(doc, what);
  if (data === null || data === undefined) return { doc };
  if (!isMapping(data)) throw new FileError(`${what} must be a mapping with a 'services:' key.`);
  if (data.services !== undefined && data.services !== null && !isMapping(data.services)) {
    throw new FileError(`${what}: 'services' must be a mapping of service names to services.`);
  }
  const interpolated = interpolateValue(data, env, what) as Record<string, unknown>;
  if (interpolated.services === null) delete interpolated.services;
  for (const [name, service] of Object.entries((interpolated.services ?? {}) as Record<string, unknown>)) {
    if (service === null || service === undefined) (interpolated.services as Record<string, unknown>)[name] = {};
    else if (!isMapping(service)) throw new FileError(`${what}: service '${name}' must be a mapping.`);
  }
  return { doc, data: interpolated };
}

/**
 * `extends: {service, file?}` (or `extends: name`): the base service merged under the service, as
 * Compose does; a base in another file is read from that file (interpolated with the same
 * environment), its relative paths made absolute from that file's folder. Cycles are refused.
 */
class ExtendsResolver {
  private readonly done = new Map<string, Record<string, unknown>>();
  private readonly otherFiles = new Map<string, Record<string, unknown>>();

  constructor(private readonly env: Environment) {}

  /** Service `name` of `file` with its `extends` chain applied. */
  resolve(file: string, services: Record<string, unknown>, name: string, mainFile: string, mainServices: Record<string, unknown>): Record<string, unknown> {
    return this.resolveIn(file, services, name, [], { file: mainFile, services: mainServices });
  }

  private resolveIn(file: string, services: Record<string, unknown>, name: string, chain: string[], main?: { file: string; services: Record<string, unknown> }): Record<string, unknown> {
    const id = `${file}#${name}`;
    const cached = this.done.get(id);
    if (cached) return cached;
    if (chain.includes(id)) {
      throw new FileError(`Compose service '${name}' extends itself through ${[...chain, id].map((c) => `'${c.split('#')[1]}'`).join(' → ')}. Break the cycle.`);
    }
    const raw = services[name];
    if (!isMapping(raw)) throw new FileError(`Compose file '${file}': service '${name}' (named by 'extends') does not exist.`);
    if (raw.extends === undefined) {
      this.done.set(id, raw);
      return raw;
    }
    const ext = typeof raw.extends === 'string' ? { service: raw.extends } : raw.extends;
    if (!isMapping(ext) || typeof ext.service !== 'string' || !ext.service) {
      throw new FileError(`Compose service '${name}': 'extends' must name a service ('extends: {service: base}' or 'extends: {file: other.yml, service: base}').`);
    }
    let baseFile = file;
    let baseServices = services;
    if (ext.file === undefined && !isMapping(services[ext.service]) && main && isMapping(main.services[ext.service])) {
      baseFile = main.file; // an override file extending a service of the first file
      baseServices = main.services;
    } else if (ext.file !== undefined) {
      baseFile = path.resolve(path.dirname(file), String(ext.file));
      baseServices = this.loadOther(baseFile, name);
    }
    const base = { ...this.resolveIn(baseFile, baseServices, ext.service, [...chain, id]) };
    for (const key of ['links', 'volumes_from', 'depends_on']) {
      if (base[key] !== undefined) throw new FileError(`Compose service '${name}' cannot extend '${ext.service}' in ${baseFile}: services with '${key}' cannot be extended.`);
    }
    const mode = String(base.network_mode ?? '');
    if (/^(service|container):/.test(mode)) throw new FileError(`Compose service '${name}' cannot extend '${ext.service}' in ${baseFile}: services with 'network_mode: ${mode.split(':')[0]}' cannot be extended.`);
    const own = { ...raw };
    delete own.extends;
    const result = mergeService(base, own, `service '${name}'`);
    this.done.set(id, result);
    return result;
  }

  private loadOther(file: string, forService: string): Record<string, unknown> {
    let services = this.otherFiles.get(file);
    if (!services) {
      if (!fs.existsSync(file)) throw new FileError(`Compose service '${forService}' extends a service in '${file}', which does not exist.`);
      const { data } = readComposeFile(file, this.env);
      services = {};
      for (const [name, raw] of Object.entries((data?.services ?? {}) as Record<string, unknown>)) {
        services[name] = absolutePaths(raw as Record<string, unknown>, path.dirname(file));
      }
      this.otherFiles.set(file, services);
    }
    return services;
  }
}

/** Relative host paths of a service (build context, env_file, bind mounts) made absolute from `dir`. */
export function absolutePaths(service: Record<string, unknown>, dir: string): Record<string, unknown> {
  const out = { ...service };
  // Build contexts and env files are always paths; a volume source only when it looks like one (`./x`, `~/x`), else it names a volume.
  const abs = (p: string) => (path.isAbsolute(p) || /^[a-z][a-z0-9+.-]*:\/\//i.test(p) ? p : path.resolve(dir, expandHome(p)));
  if (typeof out.build === 'string') out.build = abs(out.build);
  else if (isMapping(out.build) && typeof out.build.context === 'string') out.build = { ...out.build, context: abs(out.build.context) };
  if (out.env_file !== undefined) out.env_file = (Array.isArray(out.env_file) ? out.env_file : [out.env_file]).map((f) => (typeof f === 'string' ? abs(f) : isMapping(f) && typeof f.path === 'string' ? { ...f, path: abs(f.path) } : f));
  if (Array.isArray(out.volumes)) out.volumes = out.volumes.map((v) => bindWithAbsolutePath(v, abs));
  return out;
}

/** `~` and `~/x` as the agent user's home. */
export function expandHome(p: string): string {
  return p === '~' || p.startsWith('~/') ? path.join(process.env.HOME ?? '~', p.slice(1)) : p;
}

/** `./data`, `../x`, `~/x`, `data/x` (a relative path with a slash) are host paths; `cache` is a named volume. */
export function isRelativeHostPath(p: string): boolean {
  return p === '.' || p === '..' || p.startsWith('./') || p.startsWith('../') || p === '~' || p.startsWith('~/');
}

/** A volume entry with its relative host path resolved (short `src:dst[:mode]` or long `{type: bind, source}`). */
export function bindWithAbsolutePath(volume: unknown, abs: (p: string) => string): unknown {
  if (isMapping(volume)) {
    if ((volume.type === 'bind' || volume.type === undefined) && typeof volume.source === 'string' && isRelativeHostPath(volume.source)) return { ...volume, source: abs(volume.source) };
    return volume;
  }
  if (typeof volume !== 'string') return volume;
  const colon = volume.indexOf(':');
  if (colon <= 0) return volume;
  const source = volume.slice(0, colon);
  return isRelativeHostPath(source) ? `${abs(source)}${volume.slice(colon)}` : volume;
}

function toService(name: string, raw: Record<string, unknown>, projectDir: string): ComposeService {
  const where = `service '${name}'`;
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new FileError(`Compose ${where} must be a mapping.`);
  if (raw.image !== undefined && typeof raw.image !== 'string') throw new FileError(`Compose ${where}: 'image' must be a string.`);
  return { name, image: raw.image as string | undefined, build: raw.build === undefined ? undefined : toBuild(raw.build, where, projectDir), raw };
}

function toBuild(value: unknown, where: string, projectDir: string): ComposeBuild {
  const spec = (typeof value === 'string' ? { context: value } : value) as Record<string, unknown>;
  if (!spec || typeof spec !== 'object') throw new FileError(`Compose ${where}: 'build' must be a path or a mapping.`);
  const context = path.resolve(projectDir, String(spec.context ?? '.'));
  const dockerfile = path.resolve(context, String(spec.dockerfile ?? 'Dockerfile'));
  return {
    context,
    dockerfile,
    args: stringMapping(spec.args, `${where} build.args`),
    target: spec.target === undefined ? undefined : String(spec.target),
    labels: stringMapping(spec.labels, `${where} build.labels`),
    cacheFrom: Array.isArray(spec.cache_from) ? spec.cache_from.map(String) : [],
    platforms: Array.isArray(spec.platforms) ? spec.platforms.map(String) : [],
  };
}

