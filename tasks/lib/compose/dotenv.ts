// `.env` and `env_file` files, read as Compose v2 reads them (compose-go's `dotenv` package, the
// oracle of test/unit/dotenv.test.ts):
//   NAME=value, NAME: value, `export NAME=value`; spaces around `=` are dropped;
//   a name holds letters and digits of any script, `_ . - [ ]`; a space in it is an error;
//   a bare `NAME` takes its value from the environment, and is left out when it is not set there;
//   unquoted values end at the line's end or at ` #`, trailing blanks dropped, `${…}` interpolated;
//   'single quotes' keep the text as written (`\'` is a quote), over several lines if need be;
//   "double quotes" span lines too, expand \a \b \f \n \r \t \v \\ \" \$ and \0NNN (octal), then
//   interpolate; after the closing quote the line goes on with the next statement (`# note`, often);
//   `${…}` and `$NAME` look in the given environment first, then at the values read before.
// `format: raw` files are read as docker run's --env-file reads them (parseRawEnvFile).
// Deliberate divergence: a bare name on the last line without a newline is a bare name. compose-go
// makes it the value of a variable named '' (with the newline it is a bare name there too).
import { FileError } from '../errors';
import type { ReadablePaths } from '../readable-paths';
import { Environment, interpolate } from './interpolate';
import { stringMapping } from './merge';

export interface EnvFileOptions {
  /** The file's name, for messages. */
  file: string;
  /** What `${…}`, `$NAME` and bare names look in before the values read so far. */
  env: Environment;
  /** Values read before this file (a service's earlier env files): looked up after `env`, overridden by this file. */
  earlier?: Record<string, string>;
}

// Go's unicode.IsSpace, and compose-go's narrower isSpace (no line breaks).
const BLANK_OR_NEWLINE = /[\t\n\v\f\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]/;
const BLANK = /[\t\v\f\r \x85\xa0]/;
const EXPORT = /export[\t\n\f\r ]+/y;
const NAME_CHAR = /[\p{L}\p{N}_.\-[\]]/u;
const ESCAPE = /\\(?:[abcfnrtv$"\\]|0\d{0,3})/g;
const SIMPLE_ESCAPES: Record<string, string> = { a: '\x07', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v', '\\': '\\', '"': '"' };

/** The variables an env file sets, in file order (with `earlier` first). */
export function parseEnvFile(content: string, options: EnvFileOptions): Record<string, string> {
  const text = content.replace(/^\uFEFF/, '') + (content.endsWith('\n') ? '' : '\n');
  const values = new Map(Object.entries(options.earlier ?? {}));
  // What lookups see: `env` wins, then the values read so far.
  const scope: Environment = Object.assign(Object.create(null) as Environment, options.earlier);
  for (const [k, v] of Object.entries(options.env)) if (v !== undefined) scope[k] = v;
  const set = (name: string, value: string) => {
    values.set(name, value);
    if (!Object.hasOwn(options.env, name) || options.env[name] === undefined) scope[name] = value;
  };

  let line = 1;
  let counted = 0;
  const lineAt = (pos: number) => {
    for (; counted < pos; counted++) if (text[counted] === '\n') line++;
    return line;
  };
  const fail = (pos: number, message: string): never => {
    throw new FileError(`Env file '${options.file}', line ${lineAt(pos)}: ${message}`);
  };

  let i = 0;
  for (;;) {
    while (i < text.length && BLANK_OR_NEWLINE.test(text[i])) i++;
    if (i >= text.length) break;
    if (text[i] === '#') {
      i = text.indexOf('\n', i);
      continue;
    }
    const start = i;
    EXPORT.lastIndex = i;
    if (EXPORT.test(text)) for (i += 'export'.length; BLANK.test(text[i]); i++);

    // The name runs to '=', ':' or the end of the line.
    const nameStart = i;
    let delimiter = '';
    for (const ch of text.slice(nameStart, text.indexOf('\n', nameStart) + 1)) {
      if (ch === '=' || ch === ':' || ch === '\n') {
        delimiter = ch;
        break;
      }
      if (!BLANK.test(ch) && !NAME_CHAR.test(ch)) {
        const shown = /[\s\p{C}]/u.test(ch) ? `U+${ch.codePointAt(0)?.toString(16).toUpperCase().padStart(4, '0')}` : `'${ch}'`;
        fail(start, `'${text.slice(start, text.indexOf('\n', start))}' has the character ${shown} in its name. A name holds letters, digits and _ . - [ ] (no quotes); write NAME=value.`);
      }
      i += ch.length;
    }
    const name = trimEnd(text.slice(nameStart, i));
    if (name.includes(' ')) fail(start, `the name '${name}' has a space. Write NAME=value, with no space in the name.`);
    i++; // past the delimiter
    if (delimiter === '\n') {
      const value = scope[name];
      if (value !== undefined) set(name, value);
      continue;
    }

    while (BLANK.test(text[i])) i++;
    const where = `Env file '${options.file}', line ${lineAt(start)}, variable '${name}'`;
    const quote = text[i];
    if (quote === '"' || quote === "'") {
      const { body, close } =
        quotedValue(text, i) ??
        fail(start, `the value of '${name}' opens a ${quote === '"' ? 'double' : 'single'} quote that is never closed. Close it (a quoted value may span lines), or write \\${quote} for a literal quote.`);
      set(name, quote === "'" ? body : interpolate(expandEscapes(body), scope, where));
      i = close + 1;
    } else {
      const end = text.indexOf('\n', i);
      const value = text.slice(i, end).split(' #')[0];
      set(name, interpolate(trimEnd(value), scope, where));
      i = end + 1;
    }
  }
  return Object.fromEntries(values);
}

/**
 * `format: raw` env files (docker run's --env-file): NAME=value lines taken as written (quotes,
 * trailing blanks and ` #` are part of the value, nothing is interpolated), `#` comment lines, and
 * bare names from `env` (left out when not set there).
 */
export function parseRawEnvFile(content: string, options: EnvFileOptions): Record<string, string> {
  const values = new Map(Object.entries(options.earlier ?? {}));
  for (const [index, raw] of content.replace(/^\uFEFF/, '').split('\n').entries()) {
    const line = trimStart(raw.replace(/\r$/, ''));
    if (!line || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    const name = eq < 0 ? line : line.slice(0, eq);
    const where = `Env file '${options.file}' (format: raw), line ${index + 1}`;
    if (!name) throw new FileError(`${where}: '${line}' has no name before '='. Write NAME=value.`);
    if (/[ \t]/.test(name)) throw new FileError(`${where}: the name '${name}' has a blank. Write NAME=value, with no blank in the name.`);
    if (eq >= 0) values.set(name, line.slice(eq + 1));
    else if (Object.hasOwn(options.env, name) && options.env[name] !== undefined) values.set(name, options.env[name] as string);
  }
  return Object.fromEntries(values);
}

export interface ServiceEnvFile {
  file: string;
  /** `env_file`'s `format:`; undefined is `.env`. */
  format?: unknown;
}

/**
 * The variables of a service's env files, as Compose resolves them: `${…}` and bare names look in
 * the project's environment, then in the service's `environment`, then at the lines and files read
 * before. The service's `environment` wins over these values (the callers apply it). The one place
 * a service's env files are read: only those `readable` allows (inside the project or allowedPaths).
 * `service` names it for messages (`service 'web'`).
 */
export function readServiceEnvFiles(files: ServiceEnvFile[], environment: unknown, projectEnv: Environment, service: string, readable: ReadablePaths): Record<string, string> {
  const env = { ...stringMapping(environment, `${service} environment`, projectEnv), ...projectEnv };
  let values: Record<string, string> = {};
  for (const { file, format } of files) {
    const parse = format === undefined || format === '.env' ? parseEnvFile : format === 'raw' ? parseRawEnvFile : undefined;
    if (!parse) throw new FileError(`Env file '${file}': format '${String(format)}' is not one Compose knows. Use '.env' (the default) or 'raw'.`);
    values = parse(readable.readText(file, `${service} env_file`), { file, env, earlier: values });
  }
  return values;
}

/**
 * The text between the quote at `open` and the one that closes it, with `\<quote>` made a quote;
 * every other backslash stays, with the character after it (expandEscapes reads them).
 */
function quotedValue(text: string, open: number): { body: string; close: number } | undefined {
  const quote = text[open];
  let body = '';
  for (let j = open + 1; j < text.length; j++) {
    if (text[j] === quote) return { body, close: j };
    if (text[j] === '\\' && j + 1 < text.length) {
      j++;
      body += text[j] === quote ? quote : `\\${text[j]}`;
    } else body += text[j];
  }
  return undefined;
}

/** compose-go's escapes in double quotes: `\$` becomes `$$` (a literal `$` for interpolate); an octal escape needs three digits up to \0377. */
function expandEscapes(value: string): string {
  return value.replace(ESCAPE, (match) => {
    if (match === '\\$') return '$$';
    if (match.length === 2 && match[1] !== '0') return SIMPLE_ESCAPES[match[1]] ?? match;
    const digits = match.slice(2); // what follows `\0`; compose-go reads it as Go's `\NNN`
    return /^[0-7]{3}$/.test(digits) && parseInt(digits, 8) <= 255 ? String.fromCharCode(parseInt(digits, 8)) : `\\${digits}`;
  });
}

function trimStart(text: string): string {
  let start = 0;
  while (start < text.length && BLANK_OR_NEWLINE.test(text[start])) start++;
  return text.slice(start);
}

function trimEnd(text: string): string {
  let end = text.length;
  while (end > 0 && BLANK_OR_NEWLINE.test(text[end - 1])) end--;
  return text.slice(0, end);
}
