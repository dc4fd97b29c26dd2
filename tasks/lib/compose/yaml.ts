// What only compose files have in YAML: Compose's `!reset` and `!override` tags, and octal numbers
// as Go reads them. Reading YAML safely (size, aliases, errors that name the file) is ../util/yaml.ts.
import type { Document } from 'yaml';
import { FileError } from '../errors';
import { lazyRequire } from '../util/lazy';
import { MAX_EXPANDED_NODES, forgetScan, parseYaml, readTextFile, scanOf } from '../util/yaml';

// Loaded on first use, so tasks that fail on their inputs start fast.
const yaml = lazyRequire<typeof import('yaml')>(() => require('yaml'));

/**
 * A compose file, read as util/yaml.ts reads YAML (readTextFile, parseYaml), with Compose's `!reset` and `!override` tags known, and
 * `0644`-style numbers read as octal, as Compose (Go's yaml.v3) reads them (file modes).
 */
export function readComposeYaml(file: string): Document.Parsed {
  return parseYaml(readTextFile(file, 'Compose file'), `Compose file '${file}'`, (tags) => [OCTAL_INT, ...tags, ...composeTagDefinitions()]);
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
  forgetScan(doc);
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
