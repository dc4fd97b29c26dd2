// Relative host paths of a compose model made absolute, as Compose does for a file that is not in
// the project directory (a base that `extends: {file:}` names, an `include:`d project) and for the
// rendered file: build contexts and additional contexts (not remote ones), env files, label files,
// bind-mount sources, develop.watch paths, and the `file:` of top-level secrets and configs.
import * as path from 'node:path';
import { isObject } from '../util/object';

type Obj = Record<string, unknown>;

/** `~` and `~/x` as the agent user's home. */
export function expandHome(p: string): string {
  return p === '~' || p.startsWith('~/') ? path.join(process.env.HOME ?? '~', p.slice(1)) : p;
}

/** `./data`, `../x`, `~/x` (and `.`, `..`, `~`) are host paths; `cache` is a named volume. */
export function isRelativeHostPath(p: string): boolean {
  return p === '.' || p === '..' || p.startsWith('./') || p.startsWith('../') || p === '~' || p.startsWith('~/');
}

/** A path made absolute from `dir` (`~` is the home folder); absolute paths and URLs stay as they are. */
export function absoluteFrom(dir: string): (p: string) => string {
  return (p) => (path.isAbsolute(p) || /^[a-z][a-z0-9+.-]*:\/\//i.test(p) ? p : path.resolve(dir, expandHome(p)));
}

/** A build context that is not a folder: a URL, a Git remote, another service's image. */
function isRemoteContext(p: string): boolean {
  return p.includes('://') || p.startsWith('service:') || ['github.com/', 'git@'].some((prefix) => p.startsWith(prefix));
}

/** A volume entry with its relative host path resolved (short `src:dst[:mode]` or long `{type: bind, source}`). */
export function bindWithAbsolutePath(volume: unknown, abs: (p: string) => string): unknown {
  if (isObject(volume)) {
    if ((volume.type === 'bind' || volume.type === undefined) && typeof volume.source === 'string' && isRelativeHostPath(volume.source)) return { ...volume, source: abs(volume.source) };
    return volume;
  }
  if (typeof volume !== 'string') return volume;
  const colon = volume.indexOf(':');
  if (colon <= 0) return volume;
  const source = volume.slice(0, colon);
  return isRelativeHostPath(source) ? `${abs(source)}${volume.slice(colon)}` : volume;
}

/** A service's relative host paths made absolute from `dir`. */
export function serviceWithAbsolutePaths(service: Obj, dir: string): Obj {
  const out = { ...service };
  const abs = absoluteFrom(dir);
  const context = (p: unknown) => (typeof p === 'string' && !isRemoteContext(p) ? abs(p) : p);
  if (typeof out.build === 'string') out.build = context(out.build);
  else if (isObject(out.build)) {
    const b = { ...out.build };
    if (b.context !== undefined) b.context = context(b.context);
    if (isObject(b.additional_contexts)) b.additional_contexts = Object.fromEntries(Object.entries(b.additional_contexts).map(([k, v]) => [k, context(v)]));
    else if (Array.isArray(b.additional_contexts)) {
      b.additional_contexts = b.additional_contexts.map((e) => {
        const [k, ...v] = String(e).split('=');
        return v.length ? `${k}=${String(context(v.join('=')))}` : e;
      });
    }
    out.build = b;
  }
  for (const key of ['env_file', 'label_file']) {
    const value = out[key];
    if (value === undefined) continue;
    out[key] = (Array.isArray(value) ? value : [value]).map((f) => (typeof f === 'string' ? abs(f) : isObject(f) && typeof f.path === 'string' ? { ...f, path: abs(f.path) } : f));
  }
  if (Array.isArray(out.volumes)) out.volumes = out.volumes.map((v) => bindWithAbsolutePath(v, abs));
  if (isObject(out.develop) && Array.isArray(out.develop.watch)) {
    out.develop = { ...out.develop, watch: out.develop.watch.map((w) => (isObject(w) && typeof w.path === 'string' ? { ...w, path: abs(w.path) } : w)) };
  }
  return out;
}

/** Top-level secrets and configs with their `file:` made absolute from `dir`. */
export function resourcesWithAbsoluteFiles(model: Obj, dir: string): Obj {
  const out = { ...model };
  const abs = absoluteFrom(dir);
  for (const key of ['secrets', 'configs']) {
    const entries = out[key];
    if (!isObject(entries)) continue;
    out[key] = Object.fromEntries(Object.entries(entries).map(([name, e]) => [name, isObject(e) && typeof e.file === 'string' ? { ...e, file: abs(e.file) } : e]));
  }
  return out;
}

/** A whole model (services and top-level resources) with its relative host paths made absolute from `dir`. */
export function modelWithAbsolutePaths(model: Obj, dir: string): Obj {
  const out = resourcesWithAbsoluteFiles(model, dir);
  if (isObject(out.services)) out.services = Object.fromEntries(Object.entries(out.services).map(([n, s]) => [n, isObject(s) ? serviceWithAbsolutePaths(s, dir) : s]));
  return out;
}
