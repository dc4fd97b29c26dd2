// Renders the compose application that is deployed: one self-contained file, every image pinned to
// the digest the image lock holds for its repository (matched by parsed repository, never by text),
// `build:` sections dropped, `env_file`s and environment taken from the agent inlined, relative bind
// paths and the `file:` of top-level secrets and configs made absolute, inactive profiles left out. Nothing in it depends on the agent's environment
// any more, so the same file can be redeployed later (rollback) from the target host alone.
//
// The file is the first compose file edited in place: the merged, interpolated values are written
// into its YAML nodes, so its comments and layout survive where the content did not change (aliases
// and merge keys are expanded first). The result is checked: re-read, it must equal the model, else
// it is written afresh. `$` in values is written as `$$`, because Compose interpolates the file again.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Document, Node as YamlNode, Pair, YAMLMap } from 'yaml';
import { FileError, InputError } from '../errors';
import { indexLock } from '../lock/pin';
import type { ImageLock, LockedImage } from '../lock/types';
import { parseReference, repositoryName } from '../reference';
import { lazyRequire } from '../util/lazy';
import { ServiceEnvFile, readServiceEnvFiles } from './dotenv';
import { escapeDollars } from './interpolate';
import type { ComposeApp } from './load';
import { absoluteFrom, bindWithAbsolutePath, expandHome, resourcesWithAbsoluteFiles } from './paths';
import { isObject } from '../util/object';
import { listOrMapping } from './merge';
import { parseYaml } from '../util/yaml';

const yaml = lazyRequire<typeof import('yaml')>(() => require('yaml'));

export type PinSource = 'lock' | 'digest-in-compose' | 'unpinned';

export interface PinnedService {
  service: string;
  /** The image as the compose files give it (after interpolation); undefined for a build-only service. */
  declared?: string;
  /** The image in the rendered file: repository@digest, or the declared image when unpinned. */
  image: string;
  repository?: string;
  digest?: string;
  source: PinSource;
  /** The lock entry used. */
  locked?: LockedImage;
}

export interface RenderOptions {
  lock?: ImageLock;
  /** Keep images that the lock cannot pin (with a warning) instead of failing. */
  allowUnpinned: boolean;
  /** Comment lines put at the top of the rendered file. */
  header?: string[];
  /** The name of the lock for messages (its path, or the build it came from). */
  lockName?: string;
}

export interface RenderResult {
  text: string;
  /** The rendered application as data (what `text` parses to, with `$$` for literal `$`). */
  model: Record<string, unknown>;
  services: PinnedService[];
  warnings: string[];
  /** false when the first file could not be edited in place and the file was written afresh. */
  inPlace: boolean;
}

export function renderCompose(app: ComposeApp, options: RenderOptions): RenderResult {
  const model = resourcesWithAbsoluteFiles(structuredClone(app.model) as Record<string, unknown>, app.projectDir);
  const services = model.services as Record<string, Record<string, unknown>>;
  const index = options.lock ? indexLock(options.lock) : undefined;
  const warnings: string[] = [];
  const pinned: PinnedService[] = [];
  const unpinned: string[] = [];
  delete model.name; // the task's project name decides

  for (const [name, service] of Object.entries(services)) {
    const pin = pinService(name, service, options.lock, index);
    pinned.push(pin);
    if (pin.source === 'unpinned') unpinned.push(`${name} (${pin.declared ?? 'built, no image:'})`);
    service.image = pin.image;
    if (service.build !== undefined) delete service.build;
    if (service.pull_policy !== undefined) {
      warnings.push(`Service '${name}': pull_policy '${String(service.pull_policy)}' was removed; the task pulls every pinned image itself, so Compose never pulls or builds.`);
      delete service.pull_policy;
    }
    delete service.profiles;
    inlineEnvironment(name, service, app);
    if (Array.isArray(service.volumes)) service.volumes = service.volumes.map((v) => bindWithAbsolutePath(v, absoluteFrom(app.projectDir)));
  }
  if (unpinned.length > 0) {
    const text = `image lock${options.lockName ? ` '${options.lockName}'` : ''}`;
    if (!options.allowUnpinned) {
      throw new InputError(
        `Input 'allowUnpinned': ${unpinned.length === 1 ? 'this service uses an image' : 'these services use images'} the ${text} cannot pin to a digest: ${unpinned.join(', ')}. ` +
          `Add ${unpinned.length === 1 ? 'it' : 'them'} to the lock (PushWithDigest@1 resolves third-party images of its composeFile), pin ${unpinned.length === 1 ? 'it' : 'them'} by digest in the compose file, or set allowUnpinned: true to deploy mutable tags.`,
      );
    }
    warnings.push(`Deploying ${unpinned.length === 1 ? 'an image' : 'images'} not pinned by digest (allowUnpinned): ${unpinned.join(', ')}. What runs may differ from what was tested.`);
  }

  const escaped = escapeDollars(model) as Record<string, unknown>;
  let inPlace = true;
  let text: string;
  try {
    const doc = editInPlace(takeDocument(app), escaped);
    if (!holds(doc.contents, escaped)) throw new Error('in-place edit differs from the model');
    text = stringify(doc, options.header);
  } catch {
    inPlace = false;
    text = stringify(yaml().parseDocument('{}') as unknown as Document.Parsed, options.header, escaped);
  }
  return { text, model: escaped, services: pinned, warnings, inPlace };
}

/**
 * A rendered file with labels added to some of its services (container labels; a service's list of
 * labels stays a list, a label of the same name is replaced). Comments and layout survive.
 */
export function withServiceLabels(rendered: Pick<RenderResult, 'text' | 'model'>, labels: Record<string, Record<string, string>>): Pick<RenderResult, 'text' | 'model'> {
  const doc = parseYaml(rendered.text, 'The rendered compose file');
  const model = structuredClone(rendered.model);
  const services = model.services as Record<string, Record<string, unknown>>;
  for (const [name, entries] of Object.entries(labels)) {
    const service = services[name];
    if (!service || Object.keys(entries).length === 0) continue;
    const added = escapeDollars(entries) as Record<string, string>;
    service.labels = Array.isArray(service.labels)
      ? [...service.labels.filter((l) => !Object.prototype.hasOwnProperty.call(added, String(l).split('=')[0])), ...Object.entries(added).map(([k, v]) => `${k}=${v}`)]
      : { ...listOrMapping(service.labels, `service '${name}' labels`), ...added };
    const node = doc.getIn(['services', name], true);
    if (!yaml().isMap(node)) throw new Error(`The rendered compose file has no service '${name}' to label.`);
    node.set('labels', freshNode(doc, service.labels));
  }
  return { text: stringify(doc, undefined), model };
}

function pinService(name: string, service: Record<string, unknown>, lock: ImageLock | undefined, index: ReturnType<typeof indexLock> | undefined): PinnedService {
  const where = `Compose service '${name}': image`;
  const declared = typeof service.image === 'string' && service.image.trim() ? service.image.trim() : undefined;
  if (!declared) {
    if (service.build === undefined) throw new FileError(`Compose service '${name}' has neither 'image' nor 'build'. Give it an image.`);
    const locked = lock?.images.find((i) => i.name === name);
    if (locked) return { service: name, image: locked.ref, repository: locked.repository, digest: locked.digest, source: 'lock', locked };
    // Nothing to pull and nothing to build on the target: even allowUnpinned cannot deploy it.
    throw new InputError(
      `Compose service '${name}' has only 'build:' and the image lock has no image named '${name}'. Build and push it (BuildAndTag@1, PushWithDigest@1) so that the lock has it, or give the service an image:.`,
    );
  }
  const ref = parseReference(declared, where);
  const locked = index?.find(declared, where);
  if (locked) return { service: name, declared, image: locked.ref, repository: locked.repository, digest: locked.digest, source: 'lock', locked };
  if (ref.digest) return { service: name, declared, image: `${repositoryName(ref)}@${ref.digest}`, repository: repositoryName(ref), digest: ref.digest, source: 'digest-in-compose' };
  return { service: name, declared, image: declared, repository: repositoryName(ref), source: 'unpinned' };
}

/** env_file contents and environment entries taken from the agent (`- NAME`) become plain values. */
function inlineEnvironment(name: string, service: Record<string, unknown>, app: ComposeApp): void {
  if (service.env_file === undefined && !hasBareEntries(service.environment)) return;
  const files: ServiceEnvFile[] = [];
  for (const entry of service.env_file === undefined ? [] : Array.isArray(service.env_file) ? service.env_file : [service.env_file]) {
    const spec: Record<string, unknown> = isObject(entry) ? entry : { path: entry };
    const file = path.resolve(app.projectDir, expandHome(String(spec.path)));
    if (fs.existsSync(file)) files.push({ file, format: spec.format });
    else if (spec.required !== false) {
      throw new FileError(`Compose service '${name}': env_file '${String(spec.path)}' does not exist (relative paths start at ${app.projectDir}).`);
    }
  }
  const env: Record<string, unknown> = readServiceEnvFiles(files, service.environment, app.env, `service '${name}'`, app.readable);
  for (const [key, value] of Object.entries(listOrMapping(service.environment, `service '${name}' environment`))) {
    if (value === null || value === undefined) {
      const fromAgent = app.env[key];
      if (fromAgent !== undefined) env[key] = fromAgent;
      else delete env[key];
    } else env[key] = value;
  }
  delete service.env_file;
  service.environment = env;
}

function hasBareEntries(environment: unknown): boolean {
  if (Array.isArray(environment)) return environment.some((e) => !String(e).includes('='));
  if (isObject(environment)) return Object.values(environment).some((v) => v === null || v === undefined);
  return false;
}

// What YAML 1.1 (PyYAML, which docker-compose v1 reads with) resolves to something other than a
// string: booleans (yes/no/on/off…), null, ints (octal 0755, sexagesimal 22:22), floats, timestamps.
const YAML11_NOT_A_STRING = new RegExp(
  [
    '^(?:y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$',
    '^(?:~|null|Null|NULL|)$',
    '^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$',
    '^(?:[-+]?(?:[0-9][0-9_]*)\\.[0-9_]*(?:[eE][-+]?[0-9]+)?|\\.[0-9_]+(?:[eE][-+]?[0-9]+)?|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\\.[0-9_]*|[-+]?\\.(?:inf|Inf|INF)|\\.(?:nan|NaN|NAN))$',
    '^[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}',
    '^(?:<<|=)$',
  ].join('|'),
);

/** Strings that YAML 1.1 would read as another type are quoted, so Compose v1 and v2 read the same file alike. */
function quoteForYaml11(node: unknown): void {
  const Y = yaml();
  if (Y.isScalar(node)) {
    if (typeof node.value === 'string' && (node.type === undefined || node.type === 'PLAIN') && YAML11_NOT_A_STRING.test(node.value)) node.type = 'QUOTE_DOUBLE';
  } else if (Y.isPair(node)) {
    quoteForYaml11(node.key);
    quoteForYaml11(node.value);
  } else if (Y.isCollection(node)) {
    for (const item of node.items) quoteForYaml11(item);
  }
}

function stringify(doc: Document.Parsed, header: string[] | undefined, fresh?: unknown): string {
  if (fresh !== undefined) doc.contents = freshNode(doc, fresh) as typeof doc.contents;
  quoteForYaml11(doc.contents);
  if (header?.length) {
    const own = doc.commentBefore ? `\n${doc.commentBefore}` : '';
    doc.commentBefore = header.map((l) => ` ${l}`).join('\n') + own;
  }
  return doc.toString({ lineWidth: 0, indentSeq: true });
}

// ---------------------------------------------------------------------------------------------
// Editing a YAML document in place

const rendered = new WeakSet<object>();

/** The app's parsed first file, to be edited: the first render takes it as it is (no copy), a later one gets a copy. */
function takeDocument(app: ComposeApp): Document.Parsed {
  if (!rendered.has(app.document)) {
    rendered.add(app.document);
    return app.document;
  }
  return app.document.clone() as Document.Parsed;
}

/**
 * Edits `doc` so that its content equals `value`, keeping the nodes (and their comments) whose
 * content did not change. An alias is replaced by a plain copy of its value, and a map's merge keys
 * (`<<: *defaults`) by the keys they brought in, so that each place can change on its own; anchors
 * left behind are harmless (nothing refers to them any more).
 */
export function editInPlace(doc: Document.Parsed, value: Record<string, unknown>): Document.Parsed {
  doc.contents = apply(doc, doc.contents as YamlNode | null, value) as typeof doc.contents;
  return doc;
}

function keyOf(pair: Pair): string {
  const k = pair.key as { value?: unknown } | string | null;
  return String(k !== null && typeof k === 'object' && 'value' in k ? k.value : k);
}

function apply(doc: Document.Parsed, node: YamlNode | null | undefined, value: unknown): YamlNode {
  const Y = yaml();
  // `!override` has done its work in the merge; the rendered file stands alone.
  if (Y.isNode(node) && (node.tag === '!override' || node.tag === '!reset')) node.tag = undefined;
  const fresh = () => freshNode(doc, value);
  if (isObject(value)) {
    if (!Y.isMap(node)) return fresh();
    const map = node as YAMLMap;
    const byKey = new Map<string, Pair>();
    const kept: Pair[] = [];
    for (const pair of map.items) {
      const k = keyOf(pair);
      if (Object.prototype.hasOwnProperty.call(value, k) && !byKey.has(k)) {
        byKey.set(k, pair);
        kept.push(pair);
      }
    }
    for (const [k, v] of Object.entries(value)) {
      const pair = byKey.get(k);
      if (pair) pair.value = apply(doc, pair.value as YamlNode, v);
      else kept.push(new Y.Pair(new Y.Scalar(k), freshNode(doc, v)));
    }
    map.items = kept;
    return map;
  }
  if (Array.isArray(value)) {
    if (!Y.isSeq(node)) return fresh();
    const items = node.items as YamlNode[];
    node.items = value.map((v, i) => (i < items.length ? apply(doc, items[i], v) : freshNode(doc, v)));
    return node;
  }
  if (Y.isScalar(node)) {
    if (node.value === value) return node;
    if (typeof node.value === typeof value || (typeof value === 'string' && node.value !== null)) {
      node.value = value;
      if (typeof value === 'string' && node.type === undefined) node.type = 'PLAIN';
      return node;
    }
  }
  return fresh();
}

/**
 * `value` (plain data: mappings, lists, strings, numbers, booleans, null) as new YAML nodes, as
 * doc.createNode makes them for such data (no tags: each is the schema's default for its type),
 * without its search of the schema's tags for every value.
 */
function freshNode(doc: Document.Parsed, value: unknown): YamlNode {
  const Y = yaml();
  if (Array.isArray(value)) {
    const seq = new Y.YAMLSeq(doc.schema);
    seq.items = value.map((v) => freshNode(doc, v));
    return seq;
  }
  if (isObject(value)) {
    const map = new Y.YAMLMap(doc.schema);
    for (const [k, v] of Object.entries(value)) if (v !== undefined) map.items.push(new Y.Pair(new Y.Scalar(k), freshNode(doc, v)));
    return map;
  }
  return new Y.Scalar(value ?? null);
}

/**
 * Whether the edited document's content is `value`: what toJS would give, compared as
 * isDeepStrictEqual compares, walked in place. Only what the edit leaves (mappings with scalar keys,
 * lists, scalars) can match; anything else (an alias, a merge key, a collection as a key) does not,
 * and the file is then written afresh.
 */
function holds(node: unknown, value: unknown): boolean {
  const Y = yaml();
  if (node === null || node === undefined) return value === null;
  if (Y.isScalar(node)) return typeof node.value !== 'object' || node.value === null ? Object.is(node.value, value) : false;
  if (Y.isSeq(node)) return Array.isArray(value) && node.items.length === value.length && node.items.every((item, i) => holds(item, value[i]));
  if (!Y.isMap(node) || !isObject(value) || Object.getPrototypeOf(value) !== Object.prototype || node.items.length !== Object.keys(value).length) return false;
  return node.items.every((pair) => {
    const raw = Y.isScalar(pair.key) ? pair.key.value : undefined;
    const key = raw === null ? '' : ['string', 'number', 'boolean'].includes(typeof raw) ? String(raw) : undefined; // as toJS makes keys text
    return key !== undefined && Object.prototype.hasOwnProperty.call(value, key) && holds(pair.value, value[key]);
  });
}

