// Loads a compose application: one or more files (base plus overrides), interpolated with the
// environment and the project's `.env`, merged in order. Later files override scalars and lists
// and merge mappings (the compose-spec merge rules for the keys the tasks read: image, build).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FileError } from '../errors';
import { Environment, interpolateValue, parseEnvFile } from './interpolate';
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
}

export interface LoadOptions {
  /** Variables for interpolation; process.env by default. They win over the `.env` file, as in Compose. */
  env?: Environment;
  /** An env file to use instead of `<project dir>/.env`. */
  envFile?: string;
}

export function loadCompose(files: string[], options: LoadOptions = {}): ComposeApp {
  if (files.length === 0) throw new FileError('No compose file was given.');
  const projectDir = path.dirname(path.resolve(files[0]));
  const envFile = options.envFile ?? path.join(projectDir, '.env');
  const fileEnv = fs.existsSync(envFile) ? parseEnvFile(fs.readFileSync(envFile, 'utf8')) : {};
  if (options.envFile && !fs.existsSync(options.envFile)) throw new FileError(`The env file '${options.envFile}' does not exist.`);
  const env: Environment = { ...fileEnv, ...(options.env ?? process.env) };

  let merged: Record<string, unknown> = {};
  for (const file of files) {
    const what = `Compose file '${file}'`;
    const data = toPlain(readYamlFile(file, 'Compose file'), what);
    if (data === null || data === undefined) continue;
    if (typeof data !== 'object' || Array.isArray(data)) throw new FileError(`${what} must be a mapping with a 'services:' key.`);
    const doc = data as Record<string, unknown>;
    if (doc.services !== undefined && (typeof doc.services !== 'object' || doc.services === null || Array.isArray(doc.services))) {
      throw new FileError(`${what}: 'services' must be a mapping of service names to services.`);
    }
    merged = mergeMappings(merged, interpolateValue(doc, env, what) as Record<string, unknown>);
  }
  const services = (merged.services ?? {}) as Record<string, unknown>;
  if (Object.keys(services).length === 0) {
    throw new FileError(`${files.join(', ')}: no services found. A compose file lists its services under 'services:' (the version 1 format without it is not supported).`);
  }
  return {
    files: files.map((f) => path.resolve(f)),
    projectDir,
    env,
    services: Object.entries(services).map(([name, raw]) => toService(name, (raw ?? {}) as Record<string, unknown>, projectDir)),
  };
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
    args: mapOrList(spec.args, `${where} build.args`),
    target: spec.target === undefined ? undefined : String(spec.target),
    labels: mapOrList(spec.labels, `${where} build.labels`),
    cacheFrom: Array.isArray(spec.cache_from) ? spec.cache_from.map(String) : [],
    platforms: Array.isArray(spec.platforms) ? spec.platforms.map(String) : [],
  };
}

/** Compose accepts `KEY: value` mappings and `- KEY=value` lists for args, labels and environment. */
export function mapOrList(value: unknown, where: string): Record<string, string> {
  if (value === undefined || value === null) return {};
  const out: Record<string, string> = {};
  if (Array.isArray(value)) {
    for (const item of value) {
      const text = String(item);
      const eq = text.indexOf('=');
      if (eq === 0) throw new FileError(`Compose ${where}: '${text}' has no name before '='.`);
      if (eq < 0) {
        const fromEnv = process.env[text];
        if (fromEnv !== undefined) out[text] = fromEnv;
      } else out[text.slice(0, eq)] = text.slice(eq + 1);
    }
    return out;
  }
  if (typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) if (v !== null && v !== undefined) out[k] = String(v);
    return out;
  }
  throw new FileError(`Compose ${where} must be a mapping or a list of KEY=VALUE.`);
}

function mergeMappings(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] = isMapping(b) && isMapping(v) ? mergeMappings(b, v) : v;
  }
  return out;
}

function isMapping(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
