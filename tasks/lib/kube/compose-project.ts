// The parts of a compose project the Kubernetes conversion needs beyond the services that
// tasks/lib/compose's loadCompose returns: the project name and the top-level `volumes`, `configs`
// and `secrets`, read from the same files with the same safe YAML reader, interpolation and merge
// order (later files win; mappings merge).
import * as path from 'node:path';
import { Environment, interpolateValue } from '../compose/interpolate';
import { ComposeService, LoadOptions, loadCompose } from '../compose/load';
import { readYamlFile, toPlain } from '../compose/yaml';
import { isObject } from './objects';

export interface ComposeProject {
  /** Compose project name: the `name:` key, else the project folder's name (lower case). */
  name: string;
  projectDir: string;
  files: string[];
  services: ComposeService[];
  volumes: Record<string, Record<string, unknown>>;
  configs: Record<string, Record<string, unknown>>;
  secrets: Record<string, Record<string, unknown>>;
  env: Environment;
}

const TOP_LEVEL = ['name', 'volumes', 'configs', 'secrets'] as const;

export function loadComposeProject(files: string[], options: LoadOptions = {}): ComposeProject {
  const app = loadCompose(files, options);
  // The loader's merged model (compose merge rules, `extends` resolved) when it offers one; else
  // the top-level keys read here with the same reader, interpolation and merge order.
  const model = (app as { model?: Record<string, unknown> }).model;
  const top: Record<string, unknown> = {};
  if (isObject(model)) {
    for (const key of TOP_LEVEL) if (model[key] !== undefined) top[key] = model[key];
  } else {
    for (const file of files) {
      const what = `Compose file '${file}'`;
      const data = toPlain(readYamlFile(file, 'Compose file'), what);
      if (!isObject(data)) continue;
      for (const key of TOP_LEVEL) {
        if (data[key] === undefined) continue;
        const value = interpolateValue(data[key], app.env, `${what}: ${key}`);
        top[key] = isObject(top[key]) && isObject(value) ? mergeEntries(top[key] as Record<string, unknown>, value) : value;
      }
    }
  }
  const name = typeof top.name === 'string' && top.name ? top.name : path.basename(app.projectDir);
  return {
    name: name.toLowerCase(),
    projectDir: app.projectDir,
    files: app.files,
    services: app.services,
    volumes: entries(top.volumes),
    configs: entries(top.configs),
    secrets: entries(top.secrets),
    env: app.env,
  };
}

function mergeEntries(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out = { ...a };
  for (const [k, v] of Object.entries(b)) out[k] = isObject(out[k]) && isObject(v) ? { ...(out[k] as object), ...v } : v;
  return out;
}

function entries(value: unknown): Record<string, Record<string, unknown>> {
  if (!isObject(value)) return {};
  const out: Record<string, Record<string, unknown>> = {};
  for (const [k, v] of Object.entries(value)) out[k] = isObject(v) ? v : {};
  return out;
}
