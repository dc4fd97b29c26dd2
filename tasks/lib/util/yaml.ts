// Reading users' YAML safely: a size limit, duplicate keys rejected, an alias limit (so an alias
// bomb fails fast instead of eating memory), and errors that name the file and line. Merge keys
// (`<<: *defaults`) work as in docker-compose and kubectl (YAML 1.1 merge, common in compose files).
// Compose files may tag a value `!reset` or `!override` (composeTags finds them).
import * as fs from 'node:fs';
import type { Alias, Document, Node as YamlNode } from 'yaml';
import { lazyRequire } from './lazy';

// Loaded on first use, so tasks that fail on their inputs start fast.
const yaml = lazyRequire<typeof import('yaml')>(() => require('yaml'));
import { FileError } from '../errors';

export const MAX_YAML_BYTES = 4 * 1024 * 1024;
/** Values a document may have once its aliases are expanded (a 200-service compose file has ~20 000). */
export const MAX_EXPANDED_NODES = 1_000_000;
const PARSE_OPTIONS = { uniqueKeys: true, prettyErrors: true, strict: true, merge: true } as const;

export function readYamlFile(file: string, what: string): Document.Parsed {
  return parseYaml(readTextFile(file, what), `${what} '${file}'`);
}

/**
 * A compose file: as readYamlFile, with Compose's `!reset` and `!override` tags known, and
 * `0644`-style numbers read as octal, as Compose (Go's yaml.v3) reads them (file modes).
 */
export function readComposeYaml(file: string): Document.Parsed {
  const what = `Compose file '${file}'`;
  return checked(yaml().parseDocument(readTextFile(file, 'Compose file'), { ...PARSE_OPTIONS, customTags: (tags) => [OCTAL_INT, ...tags, ...composeTagDefinitions()] }), what);
}

/** Go's yaml.v3 reads a plain `0` followed by octal digits as an octal number. */
const OCTAL_INT = {
  identify: (value: unknown) => typeof value === 'number',
  default: true,
  tag: 'tag:yaml.org,2002:int',
  test: /^0[0-7]+$/,
  resolve: (text: string) => parseInt(text, 8),
};

/**
 * Removes the values tagged `!reset` (with their keys) from the document, before it becomes plain
 * data, as Compose does: a key a merge key (`<<`) also brings then keeps the merged value.
 */
export function dropResetValues(doc: Document.Parsed): void {
  const Y = yaml();
  if (!scanOf(doc).tags.has('!reset')) return;
  Y.visit(doc, {
    Pair: (_key, pair) => (Y.isNode(pair.value) && pair.value.tag === '!reset' ? Y.visit.REMOVE : undefined),
    Seq: (_key, seq) => {
      seq.items = seq.items.filter((item) => !(Y.isNode(item) && item.tag === '!reset'));
    },
  });
  scans.delete(doc);
}

export interface ComposeTags {
  /** Paths (keys and list indexes) of values tagged `!reset`: left out, and removed from the earlier files. */
  reset: string[][];
  /** Paths of values tagged `!override`: kept, and replacing what the earlier files have. */
  override: string[][];
}

/**
 * Where a compose document tags values `!reset` or `!override`. A value reached through an alias
 * counts at the alias's place, and a merge key (`<<`) adds no step to the path, as in Compose.
 */
export function composeTags(doc: Document.Parsed): ComposeTags {
  const Y = yaml();
  const found: ComposeTags = { reset: [], override: [] };
  const scan = scanOf(doc);
  if (!scan.tags.has('!reset') && !scan.tags.has('!override')) return found;
  const targets = scan.targets;
  // Only subtrees holding a tag are walked (memoised), so aliases cost nothing where there is none.
  const tagged = new Map<unknown, boolean>();
  const holdsTag = (node: unknown): boolean => {
    if (Y.isAlias(node)) {
      const target = targets.get(node);
      return target !== undefined && tagged.get(target) !== undefined ? (tagged.get(target) as boolean) : target !== undefined && holdsTag(target);
    }
    const known = tagged.get(node);
    if (known !== undefined) return known;
    tagged.set(node, false); // a recursive alias counts as untagged
    let result = Y.isNode(node) && (node.tag === '!reset' || node.tag === '!override');
    if (Y.isMap(node)) result = node.items.some((pair) => holdsTag(pair.value)) || result;
    else if (Y.isSeq(node)) result = node.items.some((item) => holdsTag(item)) || result;
    tagged.set(node, result);
    return result;
  };
  let visits = 0;
  const walk = (node: unknown, path: string[]): void => {
    if (!holdsTag(node)) return;
    if (++visits > MAX_EXPANDED_NODES) throw new FileError(`Compose file: its !reset/!override tags are reached through more than ${MAX_EXPANDED_NODES} aliases; expand the aliases by hand.`);
    if (Y.isAlias(node)) return walk(targets.get(node), path);
    const tag = Y.isNode(node) ? node.tag : undefined;
    if (tag === '!reset') return void found.reset.push(path);
    if (tag === '!override') found.override.push(path);
    if (Y.isMap(node)) {
      for (const pair of node.items) {
        const raw = Y.isScalar(pair.key) ? pair.key.value : pair.key;
        const key = typeof raw === 'symbol' ? '<<' : String(raw); // yaml gives a merge key as a symbol
        if (key !== '<<') walk(pair.value, [...path, key]);
        else if (Y.isSeq(pair.value)) for (const item of pair.value.items) walk(item, path);
        else walk(pair.value, path);
      }
    } else if (Y.isSeq(node)) node.items.forEach((item, i) => walk(item, [...path, String(i)]));
  };
  walk(doc.contents, []);
  return found;
}

/** The tags as yaml custom tags, so that they parse as the plain value they carry (a scalar as text, as Compose reads it). */
function composeTagDefinitions() {
  const Y = yaml();
  return ['!reset', '!override'].flatMap((tag) => [
    { tag, resolve: (text: string) => text },
    { tag, collection: 'map' as const, nodeClass: Y.YAMLMap, resolve: (map: unknown) => map },
    { tag, collection: 'seq' as const, nodeClass: Y.YAMLSeq, resolve: (seq: unknown) => seq },
  ]) as import('yaml').Tags;
}

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

export function parseYaml(text: string, what: string): Document.Parsed {
  const doc = yaml().parseDocument(text, PARSE_OPTIONS);
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
export function expandedSize(doc: Document.Parsed, limit: number): number {
  return Math.min(scanOf(doc).expandedSize, limit + 1);
}

/**
 * What each alias of the document refers to: the last node before it with that anchor, found in
 * one pass (yaml's Alias.resolve searches the whole document for every alias, which is quadratic
 * in a big compose file with an alias per service).
 */
export function aliasTargets(doc: Document.Parsed): AliasTargets {
  return scanOf(doc).targets;
}

interface AliasTargets {
  get(alias: Alias): YamlNode | undefined;
}

/** What composeTags, dropResetValues and toPlain need to know of a document, found in one walk. */
interface DocumentScan {
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

function scanOf(doc: Document.Parsed): DocumentScan {
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

function checked(doc: Document.Parsed, what: string): Document.Parsed {
  const problem = doc.errors[0];
  if (problem) throw new FileError(`${what} is not valid YAML: ${problem.message.split('\n')[0]}`);
  return doc;
}
