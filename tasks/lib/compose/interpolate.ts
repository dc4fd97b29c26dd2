// Compose variable interpolation (compose-spec "Interpolation"): $VAR, ${VAR}, ${VAR:-default},
// ${VAR-default}, ${VAR:?error}, ${VAR?error}, ${VAR:+replacement}, ${VAR+replacement}, and $$ for a
// literal $. Defaults may themselves contain ${…}. A `$` before anything else stays a `$`. Where a
// `${…}` ends follows compose-go's template package (the same code reads compose files and env
// files): the closing brace is on the same line as the `${`.
import { InputError } from '../errors';

export type Environment = Record<string, string | undefined>;

const NAME = /[A-Za-z_][A-Za-z0-9_]*/y;
/** How deep `${A:-${B:-…}}` may nest: far more than a compose file needs, far less than the stack holds. */
const MAX_NESTING = 100;
const NAME_AND_OPERATOR = /([A-Za-z_][A-Za-z0-9_]*)(:?[-+?])?/y;

export function interpolate(text: string, env: Environment, where: string): string {
  if (!text.includes('$')) return text; // most values: not copied character by character
  return interpolateNested(text, env, where, 0);
}

function interpolateNested(text: string, env: Environment, where: string, depth: number): string {
  if (depth > MAX_NESTING) {
    const shown = text.length > 60 ? `${text.slice(0, 60)}…` : text;
    throw new InputError(`${where}: '${shown}' nests \${…} more than ${MAX_NESTING} deep. Flatten the defaults: a compose file needs a few levels at most.`);
  }
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
      const ref = bracedReference(text, i, where);
      out += expand(ref, env, where, depth);
      i = ref.end + 1;
    } else {
      NAME.lastIndex = i + 1;
      const m = NAME.exec(text);
      if (!m) {
        out += '$';
        i++;
        continue;
      }
      out += lookup(env, m[0]) ?? '';
      i += 1 + m[0].length;
    }
  }
  return out;
}

function lookup(env: Environment, name: string): string | undefined {
  return Object.hasOwn(env, name) ? env[name] : undefined;
}

interface BracedReference {
  name: string;
  operator?: string;
  argument: string;
  /** The index of the closing `}`. */
  end: number;
}

/**
 * The `${…}` at `start`. `${NAME}` ends at the first `}`. With an operator (`${NAME:-…}`),
 * compose-go takes the text up to the last `}` of the line and, inside it, the first brace that
 * balances (a `{` skips the character after it, as there).
 */
function bracedReference(text: string, start: number, where: string): BracedReference {
  NAME_AND_OPERATOR.lastIndex = start + 2;
  const m = NAME_AND_OPERATOR.exec(text);
  const afterName = start + 2 + (m ? m[0].length : 0);
  const newline = text.indexOf('\n', start);
  const last = text.lastIndexOf('}', (newline < 0 ? text.length : newline) - 1);
  if (last < afterName) throw new InputError(`${where}: '${text}' has an unclosed '\${'. Close it on the same line, or write $$ for a literal $.`);
  if (!m || (!m[2] && text[afterName] !== '}')) {
    throw new InputError(
      `${where}: '${text.slice(start, last + 1)}' is not a valid variable reference (use \${NAME}, \${NAME:-default} or \${NAME:?message}, or $$ for a literal $).`,
    );
  }
  const [, name, operator] = m;
  if (!operator) return { name, argument: '', end: afterName };
  let end = last;
  for (let j = start, open = 0; j <= last; j++) {
    if (text[j] === '}' && --open === 0) {
      end = j;
      break;
    }
    if (text[j] === '{') {
      open++;
      j++;
    }
  }
  return { name, operator, argument: text.slice(afterName, end), end };
}

function expand({ name, operator, argument }: BracedReference, env: Environment, where: string, depth: number): string {
  const inner = (text: string) => interpolateNested(text, env, where, depth + 1);
  const value = lookup(env, name);
  const unset = value === undefined;
  const empty = unset || value === '';
  switch (operator) {
    case undefined:
      return value ?? '';
    case ':-':
      return empty ? inner(argument) : (value as string);
    case '-':
      return unset ? inner(argument) : (value as string);
    case ':+':
      return empty ? '' : inner(argument);
    case '+':
      return unset ? '' : inner(argument);
    default: {
      // ':?' and '?'
      if (operator === ':?' ? empty : unset) {
        const message = inner(argument) || `is required`;
        throw new InputError(`${where}: variable '${name}' ${unset ? 'is not set' : 'is empty'}: ${message}. Set it as a pipeline variable or in the env file.`);
      }
      return value as string;
    }
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

type Cast = (text: string) => number | boolean | undefined;

const toInt: Cast = (t) => (/^[+-]?\d+$/.test(t) ? Number(t) : undefined);
const toFloat: Cast = (t) => (t.trim() !== '' && Number.isFinite(Number(t)) ? Number(t) : undefined);
// YAML 1.1's words for booleans too, as Compose reads them here (it warns about them).
const toBoolean: Cast = (t) => ({ true: true, y: true, yes: true, on: true, false: false, n: false, no: false, off: false })[t.toLowerCase()] as boolean | undefined;

/** The keys whose text Compose turns into a number or a boolean after interpolation (compose-go's interpolateTypeCastMapping), so `read_only: ${RO}` is a boolean. */
const CASTS: [string, Cast][] = [
  ...['external', 'internal', 'attachable', 'enable_ipv4', 'enable_ipv6'].map((k): [string, Cast] => [`networks.*.${k}`, toBoolean]),
  ...['volumes', 'secrets', 'configs'].map((s): [string, Cast] => [`${s}.*.external`, toBoolean]),
  ...['cpu_count', 'cpu_period', 'cpu_quota', 'cpu_rt_period', 'cpu_rt_runtime', 'cpu_shares', 'oom_score_adj', 'pids_limit', 'ulimits.*', 'ulimits.*.hard', 'ulimits.*.soft', 'healthcheck.retries', 'ports.[].target', 'scale'].map(
    (k): [string, Cast] => [`services.*.${k}`, toInt],
  ),
  ...['deploy.replicas', 'deploy.update_config.parallelism', 'deploy.rollback_config.parallelism', 'deploy.restart_policy.max_attempts', 'deploy.placement.max_replicas_per_node'].map((k): [string, Cast] => [`services.*.${k}`, toInt]),
  ...['cpu_percent', 'cpus', 'deploy.update_config.max_failure_ratio', 'deploy.rollback_config.max_failure_ratio'].map((k): [string, Cast] => [`services.*.${k}`, toFloat]),
  ...['init', 'oom_kill_disable', 'privileged', 'read_only', 'volumes.[].read_only', 'volumes.[].volume.nocopy', 'depends_on.*.required', 'depends_on.*.restart', 'healthcheck.disable', 'stdin_open', 'tty'].map(
    (k): [string, Cast] => [`services.*.${k}`, toBoolean],
  ),
];

// CASTS' patterns split once and grouped by length: castTypes looks up every string of a big model.
const CASTS_BY_LENGTH = new Map<number, [string[], Cast][]>();
for (const [pattern, cast] of CASTS) {
  const parts = pattern.split('.');
  CASTS_BY_LENGTH.set(parts.length, [...(CASTS_BY_LENGTH.get(parts.length) ?? []), [parts, cast]]);
}

/** `value` with the text of CASTS' keys made numbers and booleans, as Compose does once a file is interpolated; text that is neither is refused. */
export function castTypes(value: unknown, where: string, at: string[] = []): unknown {
  if (typeof value === 'string' && at.length > 0) {
    const cast = CASTS_BY_LENGTH.get(at.length)?.find(([pattern]) => castMatches(pattern, at))?.[1];
    if (!cast) return value;
    const out = cast(value);
    if (out === undefined) {
      const expected = cast === toBoolean ? 'true or false' : cast === toInt ? 'a whole number' : 'a number';
      throw new InputError(`${where}: '${at.join('.')}' is '${value}', which is not ${expected}. Write ${expected} (after interpolation).`);
    }
    return out;
  }
  if (Array.isArray(value)) return value.map((v) => castTypes(v, where, [...at, '[]']));
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, castTypes(v, where, [...at, k])]));
  return value;
}

function castMatches(pattern: string[], at: string[]): boolean {
  return pattern.length === at.length && pattern.every((p, i) => (p === '*' ? at[i] !== '[]' : p === at[i]));
}

/** Every `$` in a string value doubled, so that Compose's interpolation gives the value back. */
export function escapeDollars(value: unknown): unknown {
  if (typeof value === 'string') return value.includes('$') ? value.replace(/\$/g, '$$$$') : value;
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
