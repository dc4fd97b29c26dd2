// Loads a compose application as Compose v2 does (compose-go v2's loader; `docker compose config`
// is the oracle the tests compare against). Each file, in order:
//   1. parsed, values tagged `!reset` left out; interpolated with the environment and the `.env`;
//   2. its `include:`d projects loaded (each with its own project directory and env files, its
//      relative paths made absolute there) and added, the file's own definitions merged over them;
//   3. its `extends` resolved: the base is a service of the same file, or of the file that
//      `extends.file` names (its relative paths then made absolute from that file's folder);
//   4. `!reset` and `!override` paths removed from the model so far, then the file merged into it
//      with Compose's rules (merge.ts), and keyed entries made unique.
// Then references to other services are checked, and profiles applied when asked.
// Every file the loader reads, and every path a file names that the tasks or Compose read on the
// agent (env_file, label_file, the `file:` of secrets and configs), must be inside the project
// directory or allowedPaths (ReadablePaths); bind-mount sources are the engine's and stay as given.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import type { Document } from 'yaml';
import { FileError } from '../errors';
import { ReadablePaths } from '../readable-paths';
import { toPlain } from '../util/yaml';
import { parseEnvFile } from './dotenv';
import { Environment, castTypes, interpolateValue } from './interpolate';
import { isObject } from '../util/object';
import { mergeEntry, mergeLayer, uniqueEntries } from './merge';
import { expandHome, modelWithAbsolutePaths, serviceWithAbsolutePaths } from './paths';
import { checkFileKeys, checkServices } from './validate';
import { ComposeTags, composeTags, dropResetValues, readComposeYaml } from './yaml';

type Obj = Record<string, unknown>;

export interface ComposeService {
  name: string;
  image?: string;
  /** The `build:` as written (a path or a mapping); BuildAndTag reads it with composeBuild (build.ts). */
  build?: string | Record<string, unknown>;
  raw: Record<string, unknown>;
}

export interface ComposeApp {
  files: string[];
  projectDir: string;
  services: ComposeService[];
  env: Environment;
  /** The files the tasks may read for this project: inside projectDir or allowedPaths. */
  readable: ReadablePaths;
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
  /** Folders outside the project directory whose files the compose files may name (the allowedPaths input). */
  allowedPaths?: string[];
}

export function loadCompose(files: string[], options: LoadOptions = {}): ComposeApp {
  if (files.length === 0) throw new FileError('No compose file was given.');
  const projectDir = path.dirname(path.resolve(files[0]));
  const readable = new ReadablePaths(projectDir, options.allowedPaths ?? []);
  const envFile = options.envFile ?? path.join(projectDir, '.env');
  if (options.envFile && !fs.existsSync(options.envFile)) throw new FileError(`The env file '${options.envFile}' does not exist.`);
  // The `.env` file's `${…}` and bare names look in the environment, then at its earlier lines; the
  // environment wins over its values, as in Compose. A `.env` folder is no env file (Compose skips it).
  const processEnv = options.env ?? process.env;
  const envFileWhat = options.envFile ? "The env file (input 'envFile')" : `The project's .env file`;
  const fileEnv = fs.statSync(envFile, { throwIfNoEntry: false })?.isFile() ? parseEnvFile(readable.readText(envFile, envFileWhat), { file: envFile, env: processEnv }) : {};
  const env: Environment = { ...fileEnv, ...processEnv };

  const loader = new ProjectLoader(readable);
  const { model: merged, document } = loader.load(files.map((f) => path.resolve(f)), projectDir, env, []);
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
  checkReferences(services, merged, files.join(', '), inactiveServices);
  checkServices(services, merged, files.join(', '));
  const model = { ...merged, services };
  return {
    files: files.map((f) => path.resolve(f)),
    projectDir,
    env,
    readable,
    model,
    inactiveServices,
    document: document as Document.Parsed,
    services: Object.entries(services).map(([name, raw]) => toService(name, raw)),
  };
}

/** A service runs under these active profiles when it has no `profiles:`, or one of them is active. */
export function isActive(service: Record<string, unknown>, activeProfiles: Set<string>): boolean {
  const profiles = Array.isArray(service.profiles) ? service.profiles.map(String) : [];
  return profiles.length === 0 || profiles.some((p) => activeProfiles.has(p));
}

/** One compose file, read: its plain data (without `!reset` values) and where it tags values. */
interface ComposeFile {
  doc: Document.Parsed;
  data: Obj;
  tags: ComposeTags;
  /** Services written with no value (`web:`): Compose accepts them only over an earlier file's definition. */
  emptyServices: string[];
}

/** Loads projects (the main one, included ones) and the files `extends` names, each file read once. */
class ProjectLoader {
  private readonly extendsFiles = new Map<string, { services: Obj; tags: ComposeTags }>();

  constructor(private readonly readable: ReadablePaths) {}

  /** Files merged in order; relative paths inside them stay relative to `workingDir`, which `include` and `extends.file` start from. */
  load(files: string[], workingDir: string, env: Environment, includeChain: string[]): { model: Obj; document?: Document.Parsed } {
    let model: Obj = {};
    let document: Document.Parsed | undefined;
    for (const file of files) {
      const what = `Compose file '${file}'`;
      const layer = this.readComposeFile(file, workingDir, env);
      document ??= layer.doc;
      if (layer.data.include !== undefined) this.applyInclude(layer, file, workingDir, env, [...includeChain, file]);
      if (isObject(layer.data.services)) this.applyExtends(layer.data.services, file, workingDir, env, [layer.tags]);
      for (const name of layer.emptyServices) {
        if (!isObject(model.services) || !(name in model.services)) throw new FileError(`${what}: service '${name}' is empty. Give it its keys, or write '${name}: {}' if it takes them from another file.`);
      }
      removeTagged(model, layer.tags);
      model = uniqueEntries(mergeLayer(model, layer.data, what), what);
    }
    return { model, document };
  }

  /** `include:` entries loaded as projects of their own and added to the file's data. */
  private applyInclude(layer: ComposeFile, file: string, workingDir: string, env: Environment, chain: string[]): void {
    const what = `Compose file '${file}'`;
    const entries = layer.data.include;
    delete layer.data.include;
    if (entries === null) return;
    if (!Array.isArray(entries)) throw new FileError(`${what}: 'include' must be a list of files, or of {path, project_directory, env_file}.`);
    for (const [i, entry] of entries.entries()) {
      const where = `${what}: include[${i}]`;
      const spec: Obj = typeof entry === 'string' ? { path: entry } : isObject(entry) ? entry : {};
      const paths = textList(spec.path, `${where} path`).map((p) => path.resolve(workingDir, p));
      if (paths.length === 0) throw new FileError(`${where} names no file. Give 'path: other/compose.yml' (or the path alone).`);
      for (const p of paths) this.readable.check(p, `${where} path`);
      for (const p of paths) if (!fs.existsSync(p)) throw new FileError(`${where}: '${p}' does not exist (relative paths start at ${workingDir}).`);
      if (chain.includes(paths[0])) throw new FileError(`${where}: including '${paths[0]}' again makes a cycle (${[...chain, paths[0]].join(' → ')}). Remove one of the includes.`);
      const projectDir = typeof spec.project_directory === 'string' ? path.resolve(workingDir, spec.project_directory) : path.dirname(paths[0]);
      let envFiles = textList(spec.env_file, `${where} env_file`).filter((f) => f !== '/dev/null').map((f) => path.resolve(workingDir, f));
      for (const f of envFiles) this.readable.check(f, `${where} env_file`);
      for (const f of envFiles) if (!fs.existsSync(f) || !fs.statSync(f).isFile()) throw new FileError(`${where}: env_file '${f}' does not exist or is not a file.`);
      if (spec.env_file === undefined) envFiles = [path.join(projectDir, '.env')].filter((f) => fs.existsSync(f) && fs.statSync(f).isFile());
      // Variables of the including project win over the included project's env files.
      let fromFiles: Record<string, string> = {};
      for (const f of envFiles) fromFiles = parseEnvFile(this.readable.readText(f, `${where}: the included project's env file`), { file: f, env, earlier: fromFiles });
      const includedEnv: Environment = { ...fromFiles, ...env };
      const imported = modelWithAbsolutePaths(this.load(paths, projectDir, includedEnv, chain).model, projectDir);
      importResources(imported, layer, what);
    }
  }

  /** Each service's `extends` chain applied, the file's `!reset`s (and those of the base's file) applied to the base first. */
  private applyExtends(services: Obj, file: string, workingDir: string, env: Environment, tags: ComposeTags[]): void {
    for (const name of Object.keys(services)) this.resolve(services, name, file, workingDir, env, tags, []);
  }

  private resolve(services: Obj, name: string, file: string, workingDir: string, env: Environment, tags: ComposeTags[], chain: string[]): Obj {
    const service = services[name] as Obj;
    if (service.extends === undefined) return service;
    const id = `${file}#${name}`;
    if (chain.includes(id)) throw new FileError(`Compose service '${name}' extends itself through ${[...chain, id].map((c) => `'${c.split('#').pop()}'`).join(' → ')}. Break the cycle.`);
    const ext = typeof service.extends === 'string' ? { service: service.extends } : service.extends;
    if (!isObject(ext) || typeof ext.service !== 'string' || !ext.service) {
      throw new FileError(`Compose file '${file}': service '${name}': 'extends' must name a service ('extends: base' or 'extends: {file: other.yml, service: base}').`);
    }
    let base: Obj;
    if (ext.file !== undefined) {
      const baseFile = path.resolve(workingDir, String(ext.file));
      this.readable.check(baseFile, `Compose file '${file}': service '${name}' extends.file`);
      if (!fs.existsSync(baseFile)) throw new FileError(`Compose service '${name}' extends a service in '${baseFile}', which does not exist (relative paths start at ${workingDir}).`);
      const other = this.extendsFile(baseFile, env);
      if (!isObject(other.services[ext.service])) throw new FileError(`Compose file '${file}': service '${ext.service}' (named by 'extends' of service '${name}') does not exist in '${baseFile}'.`);
      const baseDir = path.dirname(baseFile);
      base = serviceWithAbsolutePaths(this.resolve(other.services, ext.service, baseFile, baseDir, env, [...tags, other.tags], [...chain, id]), baseDir);
    } else {
      if (!isObject(services[ext.service])) {
        throw new FileError(`Compose file '${file}': service '${ext.service}' (named by 'extends') does not exist in this file. Define it here, or name the file that defines it: 'extends: {file: base.yml, service: ${ext.service}}'.`);
      }
      base = this.resolve(services, ext.service, file, workingDir, env, tags, [...chain, id]);
    }
    const source = structuredClone(base);
    for (const t of tags) removeTagged({ services: { [name]: source } }, t);
    const own = { ...service };
    delete own.extends;
    const merged = mergeEntry('services', name, source, own, `Compose file '${file}'`);
    services[name] = merged;
    return merged;
  }

  /** A compose file read, with every host path it names that is read on the agent checked (relative ones start at `workingDir`). */
  private readComposeFile(file: string, workingDir: string, env: Environment): ComposeFile {
    const layer = readComposeFile(file, env);
    const check = (p: unknown, key: string) => {
      if (typeof p === 'string') this.readable.check(path.resolve(workingDir, expandHome(p)), `Compose file '${file}': ${key}`);
    };
    for (const [name, service] of Object.entries(isObject(layer.data.services) ? layer.data.services : {})) {
      for (const key of ['env_file', 'label_file']) {
        const value = (service as Obj)[key];
        for (const entry of Array.isArray(value) ? value : [value]) check(isObject(entry) ? entry.path : entry, `service '${name}' ${key}`);
      }
    }
    for (const section of ['secrets', 'configs']) {
      for (const [name, entry] of Object.entries(isObject(layer.data[section]) ? (layer.data[section] as Obj) : {})) if (isObject(entry)) check(entry.file, `${section}.${name}.file`);
    }
    return layer;
  }

  /** The services of a file that `extends.file` names: interpolated, with neither its includes nor its own extends applied yet. */
  private extendsFile(file: string, env: Environment): { services: Obj; tags: ComposeTags } {
    let found = this.extendsFiles.get(file);
    if (!found) {
      const { data, tags } = this.readComposeFile(file, path.dirname(file), env);
      found = { services: isObject(data.services) ? data.services : {}, tags };
      this.extendsFiles.set(file, found);
    }
    return { services: { ...found.services }, tags: found.tags };
  }
}

/** One compose file: parsed (kept for in-place rendering), checked, `!reset` values left out, interpolated. */
function readComposeFile(file: string, env: Environment): ComposeFile {
  const what = `Compose file '${file}'`;
  const doc = readComposeYaml(file);
  const tags = composeTags(doc);
  dropResetValues(doc);
  const data = toPlain(doc, what);
  if (data === null || data === undefined) return { doc, data: {}, tags, emptyServices: [] };
  if (!isObject(data)) throw new FileError(`${what} must be a mapping with a 'services:' key.`);
  if (data.services !== undefined && data.services !== null && !isObject(data.services)) {
    throw new FileError(`${what}: 'services' must be a mapping of service names to services.`);
  }
  checkFileKeys(data, doc, file);
  checkNames(data, what);
  const interpolated = castTypes(interpolateValue(data, env, what), what) as Obj;
  if (interpolated.services === null) delete interpolated.services;
  const emptyServices: string[] = [];
  for (const [name, service] of Object.entries((interpolated.services ?? {}) as Obj)) {
    if (service === null || service === undefined) {
      (interpolated.services as Obj)[name] = {};
      emptyServices.push(name);
    } else if (!isObject(service)) throw new FileError(`${what}: service '${name}' must be a mapping.`);
  }
  return { doc, data: interpolated, tags, emptyServices };
}

// Compose v2's schema (compose-spec.json, patternProperties): a name Compose would refuse can also
// name a folder (`../../x y`) or carry a logging command (`##vso[`) into messages and the log.
const NAMED_SECTIONS = ['services', 'networks', 'volumes', 'secrets', 'configs', 'models'];
const COMPOSE_NAME = /^[a-zA-Z0-9._-]+$/;

/** Refuses the names of services, networks, volumes, secrets, configs and models that Compose v2 refuses. */
function checkNames(data: Obj, what: string): void {
  for (const section of NAMED_SECTIONS) {
    const entries = data[section];
    if (!isObject(entries)) continue;
    const bad = Object.keys(entries).find((name) => !COMPOSE_NAME.test(name));
    if (bad !== undefined) {
      throw new FileError(`${what}: ${section}: the name ${JSON.stringify(bad)} is not one Compose accepts (letters, digits, '.', '_' and '-': ^[a-zA-Z0-9._-]+$). Rename it.`);
    }
  }
}

/** Removes from an earlier model the values a file tags `!reset` or `!override` (keys of mappings only: Compose leaves list items alone there). */
function removeTagged(model: Obj, tags: ComposeTags): void {
  for (const p of [...tags.reset, ...tags.override]) {
    let node: unknown = model;
    for (const key of p.slice(0, -1)) node = isObject(node) ? node[key] : Array.isArray(node) ? node[Number(key)] : undefined;
    if (isObject(node)) delete node[p[p.length - 1]];
  }
}

const IMPORTED_SECTIONS = ['services', 'volumes', 'networks', 'secrets', 'configs'];

/** An included project's resources added to the including file; where the file defines the same name, its definition is merged over the included one. */
function importResources(imported: Obj, layer: ComposeFile, what: string): void {
  for (const section of IMPORTED_SECTIONS) {
    const from = imported[section];
    if (!isObject(from)) continue;
    const to: Obj = isObject(layer.data[section]) ? (layer.data[section] as Obj) : {};
    for (const [name, resource] of Object.entries(from)) {
      const own = to[name];
      if (own === undefined) to[name] = resource;
      else if (!isDeepStrictEqual(own, resource)) {
        const base = { [section]: { [name]: structuredClone(resource) } };
        removeTagged(base, layer.tags);
        to[name] = mergeEntry(section, name, (base[section][name] ?? {}) as Obj, isObject(own) ? own : {}, what);
      }
    }
    layer.data[section] = to;
  }
}

/** A string or a list of strings, as a list. */
function textList(value: unknown, where: string): string[] {
  if (value === undefined || value === null) return [];
  if (typeof value === 'string') return [value];
  if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return value as string[];
  throw new FileError(`Compose ${where} must be a path or a list of paths.`);
}

/**
 * Refuses what Compose refuses as an inconsistent project: a service that depends on, links to,
 * takes volumes from or shares a namespace (network, ipc, pid, uts, cgroup) of a service that does not exist (or, with profiles,
 * is not active), or that uses a volume, network, secret or config the file does not declare.
 */
function checkReferences(services: Record<string, Obj>, model: Obj, files: string, inactive: string[]): void {
  const declared = (section: string) => new Set(Object.keys(isObject(model[section]) ? (model[section] as Obj) : {}));
  const [volumes, networks, secrets, configs] = ['volumes', 'networks', 'secrets', 'configs'].map(declared);
  for (const [name, s] of Object.entries(services)) {
    const refs: [string, string][] = [];
    for (const dep of Array.isArray(s.depends_on) ? s.depends_on.map(String) : Object.keys(isObject(s.depends_on) ? s.depends_on : {})) refs.push([dep, 'depends_on']);
    for (const link of Array.isArray(s.links) ? s.links : []) refs.push([String(link).split(':')[0], 'links']);
    for (const from of Array.isArray(s.volumes_from) ? s.volumes_from : []) if (!String(from).startsWith('container:')) refs.push([String(from).split(':')[0], 'volumes_from']);
    for (const key of ['network_mode', 'ipc', 'pid', 'uts', 'cgroup']) if (typeof s[key] === 'string' && s[key].startsWith('service:')) refs.push([s[key].slice('service:'.length), key]);
    for (const [ref, key] of refs) {
      if (services[ref]) continue;
      const why = inactive.includes(ref) ? 'is not in an active profile' : 'is not defined';
      throw new FileError(`${files}: service '${name}' refers to service '${ref}' in '${key}', which ${why}. Define it, activate its profile, or remove the reference.`);
    }
    const undeclared = (kind: string, set: Set<string>, used: string[]) => {
      const missing = used.find((u) => !set.has(u));
      if (missing !== undefined) throw new FileError(`${files}: service '${name}': ${kind} '${missing}' is not declared in the top-level '${kind}s:'. Declare it there (Compose refuses an undeclared one).`);
    };
    undeclared('volume', volumes, (Array.isArray(s.volumes) ? s.volumes : []).map(namedVolume).filter((v): v is string => v !== undefined));
    undeclared('network', networks, (Array.isArray(s.networks) ? s.networks.map(String) : Object.keys(isObject(s.networks) ? s.networks : {})).filter((n) => n !== 'default'));
    undeclared('secret', secrets, (Array.isArray(s.secrets) ? s.secrets : []).map(sourceOf));
    undeclared('config', configs, (Array.isArray(s.configs) ? s.configs : []).map(sourceOf));
  }
}

/** The named volume a service's volume entry mounts, if any (not a bind mount, tmpfs or anonymous volume). */
function namedVolume(entry: unknown): string | undefined {
  if (isObject(entry)) return (entry.type ?? 'volume') === 'volume' && typeof entry.source === 'string' && entry.source ? entry.source : undefined;
  const text = String(entry);
  const parts = text.split(':');
  if (parts.length < 2 || /^[A-Za-z]$/.test(parts[0])) return undefined;
  const source = parts[0];
  return source.startsWith('.') || source.startsWith('/') || source.startsWith('~') || source.startsWith('$') ? undefined : source;
}

function sourceOf(entry: unknown): string {
  return isObject(entry) ? String(entry.source) : String(entry);
}

function toService(name: string, raw: Record<string, unknown>): ComposeService {
  const where = `service '${name}'`;
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new FileError(`Compose ${where} must be a mapping.`);
  if (raw.image !== undefined && typeof raw.image !== 'string') throw new FileError(`Compose ${where}: 'image' must be a string.`);
  return { name, image: raw.image as string | undefined, build: raw.build as ComposeService['build'], raw };
}
