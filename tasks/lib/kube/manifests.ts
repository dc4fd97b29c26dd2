// Users' manifests: files and globs, multi-document YAML, read safely (size limit, unique keys,
// alias limit) and kept as yaml Documents so that pinning edits them in place and comments and
// formatting survive into the rendered output.
import * as path from 'node:path';
import type { Document } from 'yaml';
import { parseYamlDocuments, readTextFile, toPlain } from '../util/yaml';
import { FileError, InputError } from '../errors';
import { lazyRequire } from '../util/lazy';
import { globFiles, hasGlob } from './glob';
import { KubeObject, asKubeObject, splitApiVersion } from './objects';
import { isObject } from '../util/object';

const yaml = lazyRequire<typeof import('yaml')>(() => require('yaml'));

export interface ManifestDocument {
  file: string;
  /** 1-based position of the document in its file. */
  index: number;
  doc: Document.Parsed;
  /** The objects it holds: one, or the items of a `kind: List`. */
  objects: KubeObject[];
  /** Whether it is a List (its objects are the nodes of `items`). */
  list: boolean;
}

export interface ManifestFile {
  file: string;
  documents: ManifestDocument[];
}

/** Resolves the `manifests` input: every pattern must match at least one file. */
export function resolveManifestPaths(patterns: string[], baseDir: string, inputName = 'manifests'): string[] {
  if (patterns.length === 0) throw new InputError(`Input '${inputName}' is required when source is 'manifests': list manifest files or globs, one per line.`);
  const files = new Set<string>();
  for (const pattern of patterns) {
    const matches = globFiles(pattern, baseDir);
    if (matches.length === 0) {
      throw new InputError(
        hasGlob(pattern)
          ? `Input '${inputName}': the pattern '${pattern}' matches no file under ${baseDir}.`
          : `Input '${inputName}': '${pattern}' does not exist (relative paths start at ${baseDir}).`,
      );
    }
    for (const m of matches) files.add(m);
  }
  return [...files];
}

export function readManifestFile(file: string, inputName = 'manifests'): ManifestFile {
  const what = `Input '${inputName}': manifest '${file}'`;
  const text = readTextFile(file, `Input '${inputName}': manifest`);
  return parseManifestText(text, file, what);
}

export function parseManifestText(text: string, file: string, what = `Manifest '${file}'`): ManifestFile {
  const docs = parseYamlDocuments(text, what);
  const documents: ManifestDocument[] = [];
  docs.forEach((doc, i) => {
    const where = `${what}, document ${i + 1}`;
    const plain = toPlain(doc, where);
    if (plain === null || plain === undefined) return; // an empty document (`---` at the end)
    const list = isList(plain);
    const objects = list ? plain.items.map((item, j) => asKubeObject(item, `${where}, items[${j}]`)) : [asKubeObject(plain, where)];
    documents.push({ file, index: i + 1, doc, objects, list });
  });
  return { file, documents };
}

/** A `kind: List` (or `…List`) with `items`: its items are the objects. */
function isList(plain: unknown): plain is { items: unknown[] } {
  return isObject(plain) && typeof plain.kind === 'string' && plain.kind.endsWith('List') && Array.isArray(plain.items);
}

/**
 * The yaml node of each of the document's `objects`, by index: the root for a single object, the
 * nodes of `items` for a List (a List of one item too). Pinning, pull secrets and redaction edit
 * the document through these.
 */
export function documentNodes(d: ManifestDocument): unknown[] {
  const root = d.doc.contents;
  if (!d.list) return [root];
  const y = yaml();
  const items = y.isMap(root) ? root.get('items', true) : undefined;
  return y.isSeq(items) ? items.items : [];
}

export function readManifests(patterns: string[], baseDir: string, inputName = 'manifests'): ManifestFile[] {
  return resolveManifestPaths(patterns, baseDir, inputName).map((f) => readManifestFile(f, inputName));
}

/** The documents of several files as one multi-document stream, each preceded by a file comment. */
export function renderManifestFiles(files: ManifestFile[], baseDir: string): string {
  const parts: string[] = [];
  for (const f of files) {
    for (const d of f.documents) {
      let text = d.doc.toString({ lineWidth: 0, flowCollectionPadding: false });
      text = text.replace(/^---[ \t]*\n/, '');
      parts.push(`# Source: ${path.relative(baseDir, f.file) || f.file} (document ${d.index})\n${text}`);
    }
  }
  return joinDocuments(parts);
}

/** Plain objects (from the compose conversion) as multi-document YAML. */
export function renderObjects(objects: KubeObject[]): string {
  return joinDocuments(objects.map((o) => yaml().stringify(o, { lineWidth: 0, aliasDuplicateObjects: false })));
}

function joinDocuments(parts: string[]): string {
  return parts.map((p) => (p.endsWith('\n') ? p : `${p}\n`)).join('---\n');
}

/** Refuses the same object twice (kind, namespace, name): the second would silently win. */
export function checkDuplicates(items: { object: KubeObject; where: string }[], defaultNamespace: string): void {
  const seen = new Map<string, string>();
  for (const { object, where } of items) {
    const key = `${splitApiVersion(object.apiVersion).group}/${object.kind}/${object.metadata.namespace ?? defaultNamespace}/${object.metadata.name}`;
    const first = seen.get(key);
    if (first) throw new FileError(`${object.kind} '${object.metadata.name}' is defined twice: ${first} and ${where}. Remove one of them.`);
    seen.set(key, where);
  }
}
