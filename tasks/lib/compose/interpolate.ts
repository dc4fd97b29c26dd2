// Compose variable interpolation (compose-spec "Interpolation"): $VAR, ${VAR}, ${VAR:-default},
// ${VAR-default}, ${VAR:?error}, ${VAR?error}, ${VAR:+replacement}, ${VAR+replacement}, and $$ for a
// literal $. Defaults may themselves contain ${…}.
import { InputError } from '../errors';

export type Environment = Record<string, string | undefined>;

export function interpolate(text: string, env: Environment, where: string): string {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const ch = text[i];
    if (ch !== '$') {
      out += ch;
      i++;
      continue;
    }
    const next = text[i + 1];
    if (next === '$') {
      out += '$';
      i += 2;
    } else if (next === '{') {
      const end = closingBrace(text, i + 2);
      if (end < 0) throw new InputError(`${where}: '${text}' has an unclosed '\${'. Close it, or write $$ for a literal $.`);
      out += expand(text.slice(i + 2, end), env, where);
      i = end + 1;
    } else {
      const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(text.slice(i + 1));
      if (!m) {
        out += '$';
        i++;
        continue;
      }
      out += env[m[0]] ?? '';
      i += 1 + m[0].length;
    }
  }
  return out;
}

function closingBrace(text: string, from: number): number {
  let depth = 1;
  for (let j = from; j < text.length; j++) {
    if (text[j] === '{') depth++;
    else if (text[j] === '}' && --depth === 0) return j;
  }
  return -1;
}

function expand(body: string, env: Environment, where: string): string {
  const m = /^([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([\s\S]*))?$/.exec(body);
  if (!m) throw new InputError(`${where}: '\${${body}}' is not a valid variable reference (use \${NAME}, \${NAME:-default} or \${NAME:?message}).`);
  const [, name, op, arg = ''] = m;
  const value = env[name];
  const unset = value === undefined;
  const empty = unset || value === '';
  switch (op) {
    case undefined:
      return value ?? '';
    case ':-':
      return empty ? interpolate(arg, env, where) : (value as string);
    case '-':
      return unset ? interpolate(arg, env, where) : (value as string);
    case ':+':
      return empty ? '' : interpolate(arg, env, where);
    case '+':
      return unset ? '' : interpolate(arg, env, where);
    case ':?':
    case '?':
      if (op === ':?' ? empty : unset) {
        const message = interpolate(arg, env, where) || `is required`;
        throw new InputError(`${where}: variable '${name}' ${unset ? 'is not set' : 'is empty'}: ${message}. Set it as a pipeline variable or in the env file.`);
      }
      return value as string;
    default:
      return value ?? '';
  }
}

/** Interpolates every string in a plain YAML value (keys are left alone, as Compose does). */
export function interpolateValue(value: unknown, env: Environment, where: string): unknown {
  if (typeof value === 'string') return interpolate(value, env, where);
  if (Array.isArray(value)) return value.map((v, i) => interpolateValue(v, env, `${where}[${i}]`));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = interpolateValue(v, env, `${where}.${k}`);
    return out;
  }
  return value;
}

/** Every `$` in a string value doubled, so that Compose's interpolation gives the value back. */
export function escapeDollars(value: unknown): unknown {
  if (typeof value === 'string') return value.replace(/\$/g, '$$$$');
  if (Array.isArray(value)) return value.map(escapeDollars);
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, escapeDollars(v)]));
  return value;
}

/** A `.env` file: KEY=VALUE lines, `#` comments, optional `export `, single or double quotes. */
export function parseEnvFile(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_.-]*)\s*=\s*(.*)$/.exec(line);
    if (!m) continue;
    let value = m[2];
    const q = value[0];
    if ((q === '"' || q === "'") && value.endsWith(q) && value.length >= 2) {
      value = value.slice(1, -1);
      if (q === '"') value = value.replace(/\\n/g, '\n').replace(/\\"/g, '"');
    } else {
      value = value.replace(/\s+#.*$/, '');
    }
    env[m[1]] = value;
  }
  return env;
}
