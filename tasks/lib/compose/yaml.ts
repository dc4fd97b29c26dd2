// Reading users' YAML safely: a size limit, duplicate keys rejected, an alias limit (so an alias
// bomb fails fast instead of eating memory), and errors that name the file and line. Merge keys
// (`<<: *defaults`) work as in docker-compose and kubectl (YAML 1.1 merge, common in compose files).
import * as fs from 'node:fs';
import type { Alias, Document, Node as YamlNode } from 'yaml';
import { lazyRequire } from '../lazy';

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

/** Values (scalars, collections, pairs) the document has once aliases are expanded; stops counting past `limit`. */
export function expandedSize(doc: Document.Parsed, limit: number): number {
  const Y = yaml();
  const targets = aliasTargets(doc);
  const memo = new Map<unknown, number>();
  const visiting = new Set<unknown>();
  const size = (node: unknown): number => {
    if (node === null || node === undefined) return 1;
    if (Y.isAlias(node)) {
      const target = targets.get(node);
      if (!target || visiting.has(target)) return 1; // a dangling or recursive alias: yaml reports it itself
      return size(target);
    }
    const known = memo.get(node);
    if (known !== undefined) return known;
    let n = 1;
    if (Y.isPair(node)) n += size(node.key) + size(node.value);
    else if (Y.isCollection(node)) {
      visiting.add(node);
      for (const item of node.items) {
        n += size(item);
        if (n > limit) break;
      }
      visiting.delete(node);
    }
    n = Math.min(n, limit + 1);
    memo.set(node, n);
    return n;
  };
  return size(doc.contents);
}

/**
 * What each alias of the document refers to: the last node before it with that anchor, found in
 * one pass (yaml's Alias.resolve searches the whole document for every alias, which is quadratic
 * in a big compose file with an alias per service).
 */
export function aliasTargets(doc: Document.Parsed): { get(alias: Alias): YamlNode | undefined } {
  const Y = yaml();
  const current = new Map<string, YamlNode>();
  const targets = new Map<Alias, YamlNode>();
  Y.visit(doc, (_key, node) => {
    if (Y.isAlias(node)) {
      const target = current.get(node.source);
      if (target) targets.set(node, target);
    } else if (Y.isNode(node) && (node as { anchor?: string }).anchor) current.set((node as { anchor: string }).anchor, node);
  });
  // An alias made later (inside a copy of an anchored node) goes by name to the anchor's last definition.
  return { get: (alias) => targets.get(alias) ?? current.get(alias.source) };
}

function checked(doc: Document.Parsed, what: string): Document.Parsed {
  const problem = doc.errors[0];
  if (problem) throw new FileError(`${what} is not valid YAML: ${problem.message.split('\n')[0]}`);
  return doc;
}
