// Reading users' YAML safely: a size limit, duplicate keys rejected, an alias limit (so an alias
// bomb fails fast instead of eating memory), and errors that name the file and line. Merge keys
// (`<<: *defaults`) work as in docker-compose and kubectl (YAML 1.1 merge, common in compose files).
// Compose files, pipeline files, kubeconfigs and manifests are all read through here; what only
// compose files have (the `!reset` and `!override` tags) is in ../compose/yaml.ts.
import * as fs from 'node:fs';
import type { Alias, Document, SchemaOptions, Node as YamlNode } from 'yaml';
import { lazyRequire } from './lazy';

// Loaded on first use, so tasks that fail on their inputs start fast.
const yaml = lazyRequire<typeof import('yaml')>(() => require('yaml'));
import { FileError } from '../errors';

export const MAX_YAML_BYTES = 4 * 1024 * 1024;
/** Values a document may have once its aliases are expanded (a 200-service compose file has ~20 000). */
export const MAX_EXPANDED_NODES = 1_000_000;
const PARSE_OPTIONS = { uniqueKeys: true, prettyErrors: true, strict: true, merge: true } as const;

export function readTextFile(file: string, what: string, maxBytes = MAX_YAML_BYTES): string {
  let size: number;
  try {
    size = fs.statSync(file).size;
  } catch {
    throw new FileError(`${what} '${file}' does not exist. Check the path (relative paths start at the working directory).`);
  }
  if (size > maxBytes) throw new FileError(`${what} '${file}' is ${size} bytes; files over ${maxBytes} bytes are refused. Is it the right file?`);
  return fs.readFileSync(file, 'utf8');
}

/** `customTags`: tags the document may use beyond YAML's own (a compose file's `!reset`). */
export function parseYaml(text: string, what: string, customTags?: SchemaOptions['customTags']): Document.Parsed {
  const doc = yaml().parseDocument(text, customTags ? { ...PARSE_OPTIONS, customTags } : PARSE_OPTIONS);
  return checked(doc, what);
}

export function parseYamlDocuments(text: string, what: string): Document.Parsed[] {
  return yaml().parseAllDocuments(text, PARSE_OPTIONS).map((d) => checked(d as Document.Parsed, what));
}

/**
 * The document as plain data, aliases expanded under a limit on the size of the result. yaml's own
 * maxAliasCount counts every use of an anchor (a 200-service file with `<<: *defaults` in each
 * has 200), so it refuses ordinary big compose files yet does not bound the size of what an alias
 * expands to; the expanded size is computed here instead, in one pass over the document with each
 * anchored node counted once (so an alias bomb costs no more to measure than to read).
 */
export function toPlain(doc: Document.Parsed, what: string): unknown {
  const size = expandedSize(doc, MAX_EXPANDED_NODES);
  if (size > MAX_EXPANDED_NODES) {
    throw new FileError(`${what} is not usable YAML: its aliases expand to more than ${MAX_EXPANDED_NODES} values (aliases are limited to protect the agent; is it an alias bomb? expand them by hand).`);
  }
  try {
    return doc.toJS({ maxAliasCount: -1 });
  } catch (err) {
    throw new FileError(`${what} is not usable YAML: ${(err as Error).message} (aliases are limited to protect the agent; expand them by hand).`);
  }
}

/** Values (scalars, collections, pairs) the document has once aliases are expanded, counted up to `limit` + 1. */
function expandedSize(doc: Document.Parsed, limit: number): number {
  return Math.min(scanOf(doc).expandedSize, limit + 1);
}

/**
 * What each alias of the document refers to: the last node before it with that anchor, found in
 * one pass (yaml's Alias.resolve searches the whole document for every alias, which is quadratic
 * in a big compose file with an alias per service).
 */
interface AliasTargets {
  get(alias: Alias): YamlNode | undefined;
}

/** What toPlain, and compose's composeTags and dropResetValues, need to know of a document, found in one walk. */
export interface DocumentScan {
  /** The tags written on its nodes (`!reset`, `!!str`…). */
  tags: Set<string>;
  targets: AliasTargets;
  /** Its values once aliases are expanded (each anchored node counted once, so an alias bomb costs no more to measure than to read). */
  expandedSize: number;
}

// A compose file is scanned once, though three steps ask (each walk of a big document costs tens of
// milliseconds in a fresh process). Documents are not edited between these steps, except by
// dropResetValues, which forgets the scan.
const scans = new WeakMap<Document.Parsed, DocumentScan>();

/** The document's scan, made on the first ask. */
export function scanOf(doc: Document.Parsed): DocumentScan {
  const known = scans.get(doc);
  if (known) return known;
  const Y = yaml();
  const tags = new Set<string>();
  const current = new Map<string, YamlNode>();
  const resolved = new Map<Alias, YamlNode>();
  const anchoredSizes = new Map<YamlNode, number>();
  // In document order, each node before the ones inside it, so an alias finds the anchor last
  // defined before it, whose size is known by then unless the alias is inside it (counted as 1).
  const walk = (node: unknown): number => {
    if (node === null || node === undefined) return 1;
    if (Y.isPair(node)) return Math.min(1 + walk(node.key) + walk(node.value), Number.MAX_SAFE_INTEGER);
    if (!Y.isNode(node)) return 1;
    if (node.tag) tags.add(node.tag);
    if (Y.isAlias(node)) {
      const target = current.get(node.source);
      if (target) resolved.set(node, target);
      return (target && anchoredSizes.get(target)) || 1;
    }
    if (node.anchor) current.set(node.anchor, node);
    let n = 1;
    if (Y.isCollection(node)) for (const item of node.items) n = Math.min(n + walk(item), Number.MAX_SAFE_INTEGER);
    if (node.anchor) anchoredSizes.set(node, n);
    return n;
  };
  const expandedSize = walk(doc.contents);
  // An alias made later (inside a copy of an anchored node) goes by name to the anchor's last definition.
  const scan: DocumentScan = { tags, expandedSize, targets: { get: (alias) => resolved.get(alias) ?? current.get(alias.source) } };
  scans.set(doc, scan);
  return scan;
}

/** For a caller that edited the document: its next scan is made afresh. */
export function forgetScan(doc: Document.Parsed): void {
  scans.delete(doc);
}

function checked(doc: Document.Parsed, what: string): Document.Parsed {
  const problem = doc.errors[0];
  if (problem) throw new FileError(`${what} is not valid YAML: ${problem.message.split('\n')[0]}`);
  return doc;
}
