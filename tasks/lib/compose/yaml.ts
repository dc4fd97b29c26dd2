// Reading users' YAML safely: a size limit, duplicate keys rejected, an alias limit (so an alias
// bomb fails fast instead of eating memory), and errors that name the file and line.
import * as fs from 'node:fs';
import type { Document } from 'yaml';
import { lazyRequire } from '../lazy';

// Loaded on first use, so tasks that fail on their inputs start fast.
const yaml = lazyRequire<typeof import('yaml')>(() => require('yaml'));
import { FileError } from '../errors';

export const MAX_YAML_BYTES = 4 * 1024 * 1024;
const MAX_ALIAS_COUNT = 100;

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
  const doc = yaml().parseDocument(text, { uniqueKeys: true, prettyErrors: true, strict: true });
  return checked(doc, what);
}

export function parseYamlDocuments(text: string, what: string): Document.Parsed[] {
  return yaml().parseAllDocuments(text, { uniqueKeys: true, prettyErrors: true, strict: true }).map((d) => checked(d as Document.Parsed, what));
}

/** The document as plain data; aliases are expanded under a limit. */
export function toPlain(doc: Document.Parsed, what: string): unknown {
  try {
    return doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (err) {
    throw new FileError(`${what} is not usable YAML: ${(err as Error).message} (aliases are limited to protect the agent; expand them by hand).`);
  }
}

function checked(doc: Document.Parsed, what: string): Document.Parsed {
  const problem = doc.errors[0];
  if (problem) throw new FileError(`${what} is not valid YAML: ${problem.message.split('\n')[0]}`);
  return doc;
}
