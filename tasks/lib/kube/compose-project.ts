// The parts of a compose project the Kubernetes conversion needs beyond the services: the project
// name and the top-level `volumes`, `configs` and `secrets`, from loadCompose's merged model
// (compose merge rules, `extends` resolved). Only the services a plain `docker compose up` starts
// are converted: those without `profiles:` (no profile is active).
import * as path from 'node:path';
import type { Environment } from '../compose/interpolate';
import { ComposeService, LoadOptions, loadCompose } from '../compose/load';
import type { ReadablePaths } from '../readable-paths';
import { isObject } from '../util/object';

export interface ComposeProject {
  /** Compose project name: the `name:` key, else the project folder's name (lower case). */
  name: string;
  projectDir: string;
  files: string[];
  services: ComposeService[];
  /** Services left out because they belong to a profile. */
  inactiveServices: string[];
  volumes: Record<string, Record<string, unknown>>;
  configs: Record<string, Record<string, unknown>>;
  secrets: Record<string, Record<string, unknown>>;
  env: Environment;
  /** The files the conversion may read (env files, secret and config files): inside the project or allowedPaths. */
  readable: ReadablePaths;
}

export function loadComposeProject(files: string[], options: Omit<LoadOptions, 'profiles'> = {}): ComposeProject {
  const app = loadCompose(files, { ...options, profiles: [] });
  const model = app.model;
  const name = typeof model.name === 'string' && model.name ? model.name : path.basename(app.projectDir);
  return {
    name: name.toLowerCase(),
    projectDir: app.projectDir,
    files: app.files,
    services: app.services,
    inactiveServices: app.inactiveServices,
    volumes: entries(model.volumes),
    configs: entries(model.configs),
    secrets: entries(model.secrets),
    env: app.env,
    readable: app.readable,
  };
}

function entries(value: unknown): Record<string, Record<string, unknown>> {
  if (!isObject(value)) return {};
  const out: Record<string, Record<string, unknown>> = {};
  for (const [k, v] of Object.entries(value)) out[k] = isObject(v) ? v : {};
  return out;
}
