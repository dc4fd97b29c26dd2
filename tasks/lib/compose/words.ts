// `command` and `entrypoint` as the argument lists Compose makes of them.
import { InputError } from '../errors';

/** `command`/`entrypoint`: a list as is, a string split as a POSIX shell would (compose uses shlex). */
export function words(value: unknown, where: string): string[] {
  if (Array.isArray(value)) return value.map((v) => String(v));
  if (typeof value !== 'string') return [String(value)];
  const out: string[] = [];
  let current = '';
  let inWord = false;
  let quote: '"' | "'" | undefined;
  for (let i = 0; i < value.length; i++) {
    const c = value[i];
    if (quote === "'") {
      if (c === "'") quote = undefined;
      else current += c;
    } else if (quote === '"') {
      if (c === '"') quote = undefined;
      else if (c === '\\' && i + 1 < value.length && '"\\$`\n'.includes(value[i + 1])) current += value[++i];
      else current += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      inWord = true;
    } else if (c === '\\' && i + 1 < value.length) {
      current += value[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) out.push(current);
      current = '';
      inWord = false;
    } else {
      current += c;
      inWord = true;
    }
  }
  if (quote) throw new InputError(`${where}: '${value}' has an unclosed ${quote === '"' ? 'double' : 'single'} quote.`);
  if (inWord) out.push(current);
  return out;
}
