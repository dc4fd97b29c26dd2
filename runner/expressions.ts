// The expression language of `condition:` and `$[ … ]` variables: literals, functions
// (succeeded, failed, always, canceled, succeededOrFailed, and, or, not, eq, ne, in, notIn,
// contains, startsWith, endsWith), `variables['x']` / `variables.x`, `dependencies.<job>.result`,
// `dependencies.<job>.outputs['step.var']` and `stageDependencies.<stage>.<job>.outputs['step.var']`.

export type Value = string | boolean | number | undefined;

export interface ExpressionContext {
  /** What succeeded()/failed() look at: the results that came before (steps, or dependencies). */
  status: { failed: boolean; canceled: boolean };
  variable(name: string): string | undefined;
  /** dependencies.<path> and stageDependencies.<path>, as a dotted path with outputs keys resolved. */
  dependency(path: string[]): Value;
}

export class ExpressionError extends Error {}

type Token = { type: 'str' | 'num' | 'id' | 'punct'; value: string };

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const ch = text[i];
    if (/\s/.test(ch)) {
      i++;
    } else if (ch === "'") {
      let value = '';
      i++;
      for (;;) {
        if (i >= text.length) throw new ExpressionError(`unclosed string in '${text}'`);
        if (text[i] === "'") {
          if (text[i + 1] === "'") {
            value += "'";
            i += 2;
            continue;
          }
          i++;
          break;
        }
        value += text[i++];
      }
      tokens.push({ type: 'str', value });
    } else if (/[0-9]/.test(ch)) {
      const m = /^[0-9]+(\.[0-9]+)?/.exec(text.slice(i))!;
      tokens.push({ type: 'num', value: m[0] });
      i += m[0].length;
    } else if (/[A-Za-z_]/.test(ch)) {
      const m = /^[A-Za-z_][A-Za-z0-9_\-]*/.exec(text.slice(i))!;
      tokens.push({ type: 'id', value: m[0] });
      i += m[0].length;
    } else if ('(),[].'.includes(ch)) {
      tokens.push({ type: 'punct', value: ch });
      i++;
    } else {
      throw new ExpressionError(`unexpected '${ch}' in '${text}'`);
    }
  }
  return tokens;
}

export function evaluate(text: string, ctx: ExpressionContext): Value {
  const tokens = tokenize(text);
  let pos = 0;
  const peek = () => tokens[pos];
  const expect = (value: string) => {
    const t = tokens[pos++];
    if (!t || t.value !== value) throw new ExpressionError(`expected '${value}' in '${text}'`);
  };

  const parse = (): Value => {
    const t = tokens[pos++];
    if (!t) throw new ExpressionError(`'${text}' ends too early`);
    if (t.type === 'str') return t.value;
    if (t.type === 'num') return Number(t.value);
    if (t.type !== 'id') throw new ExpressionError(`unexpected '${t.value}' in '${text}'`);
    const id = t.value;
    const lower = id.toLowerCase();
    if (peek()?.value === '(') {
      pos++;
      const args: Value[] = [];
      if (peek()?.value !== ')') {
        for (;;) {
          args.push(parse());
          if (peek()?.value === ',') {
            pos++;
            continue;
          }
          break;
        }
      }
      expect(')');
      return call(lower, args);
    }
    if (lower === 'true') return true;
    if (lower === 'false') return false;
    if (lower === 'null') return undefined;
    // A property path: variables['x'], variables.x, dependencies.a.outputs['s.v'], …
    const path: string[] = [];
    while (peek()?.value === '.' || peek()?.value === '[') {
      const p = tokens[pos++].value;
      if (p === '.') {
        const name = tokens[pos++];
        if (!name || name.type !== 'id') throw new ExpressionError(`expected a name after '.' in '${text}'`);
        path.push(name.value);
      } else {
        const key = tokens[pos++];
        if (!key || key.type !== 'str') throw new ExpressionError(`expected a quoted key in [] in '${text}'`);
        expect(']');
        path.push(key.value);
      }
    }
    if (lower === 'variables') {
      if (path.length !== 1) throw new ExpressionError(`variables needs one name in '${text}'`);
      return ctx.variable(path[0]);
    }
    if (lower === 'dependencies' || lower === 'stagedependencies') return ctx.dependency([lower, ...path]);
    throw new ExpressionError(`unknown name '${id}' in '${text}'`);
  };

  const call = (name: string, args: Value[]): Value => {
    const arity = (min: number, max = min) => {
      if (args.length < min || args.length > max) throw new ExpressionError(`${name}() takes ${min === max ? min : `${min} to ${max}`} arguments in '${text}'`);
    };
    switch (name) {
      case 'succeeded':
        arity(0);
        return !ctx.status.failed && !ctx.status.canceled;
      case 'failed':
        arity(0);
        return ctx.status.failed && !ctx.status.canceled;
      case 'succeededorfailed':
        arity(0);
        return !ctx.status.canceled;
      case 'always':
        arity(0);
        return true;
      case 'canceled':
        arity(0);
        return ctx.status.canceled;
      case 'and':
        arity(2, 99);
        return args.every(truthy);
      case 'or':
        arity(2, 99);
        return args.some(truthy);
      case 'not':
        arity(1);
        return !truthy(args[0]);
      case 'eq':
        arity(2);
        return equal(args[0], args[1]);
      case 'ne':
        arity(2);
        return !equal(args[0], args[1]);
      case 'in':
        arity(1, 99);
        return args.slice(1).some((a) => equal(args[0], a));
      case 'notin':
        arity(1, 99);
        return !args.slice(1).some((a) => equal(args[0], a));
      case 'contains':
        arity(2);
        return str(args[0]).toLowerCase().includes(str(args[1]).toLowerCase());
      case 'startswith':
        arity(2);
        return str(args[0]).toLowerCase().startsWith(str(args[1]).toLowerCase());
      case 'endswith':
        arity(2);
        return str(args[0]).toLowerCase().endsWith(str(args[1]).toLowerCase());
      default:
        throw new ExpressionError(`the function ${name}() is not supported by the local runner in '${text}'`);
    }
  };

  const value = parse();
  if (pos !== tokens.length) throw new ExpressionError(`unexpected '${tokens[pos].value}' in '${text}'`);
  return value;
}

export function truthy(v: Value): boolean {
  if (typeof v === 'string') return v.length > 0;
  if (typeof v === 'number') return v !== 0;
  return v === true;
}

function str(v: Value): string {
  return v === undefined ? '' : String(v);
}

/** Azure compares case-insensitively, converting the right side to the left side's type. */
function equal(a: Value, b: Value): boolean {
  if (typeof a === 'boolean') return a === truthy(b);
  if (typeof a === 'number') return a === Number(b);
  return str(a).toLowerCase() === str(b).toLowerCase();
}
