// `.dockerignore` with Docker's own semantics (moby/patternmatcher + the CLI's ignorefile reader,
// the oracle of test/unit/dockerignore-oracle.test.ts): `#` comments only at the start of a line,
// whitespace trimmed, `!` exceptions, patterns cleaned like Go's filepath.Clean with a leading `/`
// trimmed, `*`/`?` never cross `/`, `**` crosses any number of folders, `\` escapes, and a pattern
// that matches a folder excludes everything in it. The last matching pattern wins.
//
// patternmatcher turns a pattern into a Go regular expression; Go's engine runs in linear time. A
// JavaScript regular expression backtracks (`*a*a*a*a*a*a*a*a*b` against 80 characters ran for
// minutes), so each pattern is compiled here into steps that are run as an NFA: every position of
// the path is read once, with the set of steps reached so far (time: path length × pattern length).
// What the Go expression means is kept, oddities included: a pattern without wildcards compares as
// text, `**x` is "ends with x", `abc**` "starts with abc", `^` anchors the start, `.*` and `(.*/)?`
// do not cross a line break, `\d`, `[[:alpha:]]` and `[^a]` are Go's classes. Refused where Docker
// accepts (deliberately, with a message): `*` or `?` inside `[...]` (Go reads `[*]` as `[[^/]*]`),
// and the escapes `\x`, `\p`, `\Q`, `\b`, `\0`… that are regular-expression syntax, not characters.
import { FileError } from '../errors';

/** Reads the lines of a `.dockerignore` file into cleaned patterns (exceptions keep their `!`). */
export function parseDockerignore(text: string): string[] {
  const patterns: string[] = [];
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  for (const raw of lines) {
    // Comments are recognised before trimming, exactly as Docker does.
    if (raw.startsWith('#')) continue;
    let pattern = raw.trim();
    if (!pattern) continue;
    const invert = pattern.startsWith('!');
    if (invert) pattern = pattern.slice(1).trim();
    if (pattern.length > 0) {
      pattern = cleanPath(pattern);
      if (pattern.length > 1 && pattern.startsWith('/')) pattern = pattern.slice(1);
    }
    patterns.push(invert ? `!${pattern}` : pattern);
  }
  return patterns;
}

/** Go's path.Clean: collapse `//`, drop `.` segments, resolve `..`, no trailing `/`. */
export function cleanPath(p: string): string {
  if (p === '') return '.';
  const rooted = p.startsWith('/');
  const out: string[] = [];
  for (const seg of p.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') {
      if (out.length > 0 && out[out.length - 1] !== '..') out.pop();
      else if (!rooted) out.push('..');
      continue;
    }
    out.push(seg);
  }
  const joined = out.join('/');
  if (rooted) return `/${joined}`;
  return joined === '' ? '.' : joined;
}

/** One step of a compiled pattern: what it reads from the path. */
type Step =
  | { kind: 'char'; test: (cp: number) => boolean } // one character: a literal, `?`, a class
  | { kind: 'star' } // `*`: any run without `/`
  | { kind: 'dirs' } // `**` followed by more: `(.*/)?`, nothing or a run ending in `/`
  | { kind: 'rest' } // `**` at the end: `.*`
  | { kind: 'start' }; // `^`: only at the start of the text

type MatchType = 'exact' | 'prefix' | 'suffix' | 'steps';

const SLASH = 0x2f;
const NEWLINE = 0x0a;

export interface IgnorePattern {
  /** The cleaned pattern without its `!`. */
  pattern: string;
  exclusion: boolean;
  /** Whether the path, or one of its parent folders, matches. */
  matchesOrParent(file: string): boolean;
}

export class IgnoreMatcher {
  readonly patterns: IgnorePattern[];

  constructor(patterns: string[], source = '.dockerignore') {
    this.patterns = [];
    for (const raw of patterns) {
      let p = raw.trim();
      if (!p) continue;
      p = cleanPath(p);
      let exclusion = false;
      if (p.startsWith('!')) {
        if (p.length === 1) throw new FileError(`${source}: the pattern "!" is not allowed; write the path to re-include after the '!'.`);
        exclusion = true;
        p = p.slice(1);
      }
      const fail = (why: string): never => {
        throw new FileError(`${source}: the pattern '${raw}' is not a valid pattern (${why}).`);
      };
      if (!validGlob(p)) fail('Docker checks it with Go\'s filepath.Match: an unclosed [, a [ ] with nothing in it, a - or ] where a character is expected, or a \\ at the end');
      this.patterns.push({ pattern: p, exclusion, matchesOrParent: compilePattern(p, fail) });
    }
  }

  get hasExclusions(): boolean {
    return this.patterns.some((p) => p.exclusion);
  }

  /** True when `file` (a slash-separated path relative to the context) is ignored. */
  ignores(file: string): boolean {
    file = cleanPath(file);
    if (file === '.') return false;
    let matched = false;
    for (const pattern of this.patterns) {
      // An inclusion cannot change an already ignored file, nor an exception a kept one.
      if (pattern.exclusion !== matched) continue;
      if (pattern.matchesOrParent(file)) matched = !pattern.exclusion;
    }
    return matched;
  }

  /**
   * Whether an ignored folder must still be walked because an exception names something inside it
   * (Docker only looks for exceptions that literally start with the folder's path).
   */
  mustDescend(dir: string): boolean {
    const dirSlash = `${dir}/`;
    return this.patterns.some((p) => p.exclusion && `${p.pattern}/`.startsWith(dirSlash));
  }
}

/**
 * Whether Go's `filepath.Match(pattern, ".")` returns no error: patternmatcher's syntax check of every
 * pattern. A port of Go's Match, because it checks only as far as it gets: the chunks after one that
 * cannot match "." are never looked at.
 */
function validGlob(pattern: string): boolean {
  let name = '.';
  next: while (pattern.length > 0) {
    let star = false;
    while (pattern[0] === '*') {
      pattern = pattern.slice(1);
      star = true;
    }
    let i = 0;
    for (let inRange = false; i < pattern.length; i++) {
      const c = pattern[i];
      if (c === '\\') {
        if (i + 1 < pattern.length) i++;
      } else if (c === '[') inRange = true;
      else if (c === ']') inRange = false;
      else if (c === '*' && !inRange) break;
    }
    const chunk = pattern.slice(0, i);
    pattern = pattern.slice(i);
    if (star && chunk === '') return true;
    const here = matchChunk(chunk, name);
    if (here === 'bad') return false;
    if (here !== undefined && (here === '' || pattern.length > 0)) {
      name = here;
      continue;
    }
    if (star) {
      for (let j = 0; j < name.length && name[j] !== '/'; j++) {
        const rest = matchChunk(chunk, name.slice(j + 1));
        if (rest === 'bad') return false;
        if (rest !== undefined && !(pattern.length === 0 && rest.length > 0)) {
          name = rest;
          continue next;
        }
      }
    }
    return true;
  }
  return true;
}

/** Go's matchChunk: what is left of `s` after `chunk` matched its start, undefined when it does not, 'bad' for a malformed chunk. */
function matchChunk(chunk: string, s: string): string | undefined | 'bad' {
  let failed = false;
  let c = 0;
  const take = () => {
    const cp = s.codePointAt(0) as number;
    s = s.slice(cp > 0xffff ? 2 : 1);
    return cp;
  };
  const escaped = (): number | 'bad' => {
    if (c >= chunk.length || chunk[c] === '-' || chunk[c] === ']') return 'bad';
    if (chunk[c] === '\\' && ++c >= chunk.length) return 'bad';
    const cp = chunk.codePointAt(c) as number;
    c += cp > 0xffff ? 2 : 1;
    return c >= chunk.length ? 'bad' : cp;
  };
  while (c < chunk.length) {
    failed ||= s.length === 0;
    const ch = chunk[c];
    if (ch === '[') {
      const r: number = failed ? -1 : take();
      c++;
      const negated = chunk[c] === '^';
      if (negated) c++;
      let match = false;
      for (let ranges = 0; ; ranges++) {
        if (c < chunk.length && chunk[c] === ']' && ranges > 0) {
          c++;
          break;
        }
        const lo = escaped();
        if (lo === 'bad') return 'bad';
        let hi = lo;
        if (chunk[c] === '-') {
          c++;
          const end = escaped();
          if (end === 'bad') return 'bad';
          hi = end;
        }
        match ||= lo <= r && r <= hi;
      }
      failed ||= match === negated;
    } else if (ch === '?') {
      if (!failed) failed = take() === SLASH;
      c++;
    } else {
      if (ch === '\\' && ++c >= chunk.length) return 'bad';
      if (!failed) {
        failed = chunk[c] !== s[0];
        s = s.slice(1);
      }
      c++;
    }
  }
  return failed ? undefined : s;
}

/** A pattern compiled as patternmatcher compiles it (its matchType, and the steps of its regular expression). */
function compilePattern(pattern: string, fail: (why: string) => never): (file: string) => boolean {
  const chars = [...pattern];
  const steps: Step[] = [];
  let type: MatchType = 'exact';
  for (let i = 0, n = 0; i < chars.length; n++) {
    const ch = chars[i++];
    if (ch === '*') {
      if (chars[i] === '*') {
        i++;
        if (chars[i] === '/') i++; // `**/` is treated as `**`
        if (i < chars.length) {
          steps.push({ kind: 'dirs' });
          type = 'steps';
        } else if (type === 'exact') type = 'prefix';
        else {
          steps.push({ kind: 'rest' });
          type = 'steps';
        }
        if (n === 0) type = 'suffix';
      } else {
        steps.push({ kind: 'star' });
        type = 'steps';
      }
    } else if (ch === '?') {
      steps.push({ kind: 'char', test: (cp) => cp !== SLASH });
      type = 'steps';
    } else if (ch === '\\' && i < chars.length) {
      steps.push({ kind: 'char', test: escapeTest(chars[i++], fail) });
      type = 'steps';
    } else if (ch === '[') {
      const end = classEnd(chars, i, fail);
      steps.push({ kind: 'char', test: classTest(chars.slice(i, end), fail) });
      i = end + 1;
      type = 'steps';
    } else if (ch === '^') {
      steps.push({ kind: 'start' }); // an anchor in Go's expression; as text when there is none
    } else {
      const cp = ch.codePointAt(0) as number;
      steps.push({ kind: 'char', test: (c) => c === cp });
      if (ch === ']') type = 'steps';
    }
  }
  if (type === 'exact') return (file) => candidates(file).some((c) => c === pattern);
  if (type === 'prefix') {
    const prefix = pattern.slice(0, -2);
    return (file) => file.startsWith(prefix); // a parent that starts with it means the file does too
  }
  if (type === 'suffix') {
    const suffix = pattern.slice(2);
    return (file) => candidates(file).some((c) => c.endsWith(suffix) || (suffix.startsWith('/') && c === suffix.slice(1)));
  }
  return (file) => runSteps(steps, file);
}

/** The path and its parent folders (`a/b/c`, `a`, `a/b`). */
function candidates(file: string): string[] {
  const out = [file];
  for (let i = file.indexOf('/'); i > 0; i = file.indexOf('/', i + 1)) out.push(file.slice(0, i));
  return out;
}

/**
 * Runs the steps over `file` as an NFA: state 2k is "before step k", 2k+1 "inside the run of a
 * `dirs` step k"; state 2n (n = steps.length) accepts. True when the whole path or a parent folder
 * (the text before one of its `/`) is accepted.
 */
function runSteps(steps: Step[], file: string): boolean {
  const accept = 2 * steps.length;
  let current: number[] = [];
  let next: number[] = [];
  const seen = new Int32Array(accept + 1).fill(-1);
  let generation = 0;
  const add = (list: number[], state: number, atStart: boolean) => {
    if (seen[state] === generation) return;
    seen[state] = generation;
    list.push(state);
    if (state % 2 === 1 || state === accept) return;
    const step = steps[state / 2];
    if (step.kind === 'star' || step.kind === 'dirs' || step.kind === 'rest' || (step.kind === 'start' && atStart)) add(list, state + 2, atStart);
  };
  add(current, 0, true);
  for (const ch of file) {
    const cp = ch.codePointAt(0) as number;
    if (cp === SLASH && seen[accept] === generation) return true; // a parent folder matches
    generation++;
    next.length = 0;
    for (const state of current) {
      if (state === accept) continue;
      const k = state >> 1;
      const step = steps[k];
      if (step.kind === 'char') {
        if (step.test(cp)) add(next, state + 2, false);
      } else if (step.kind === 'star') {
        if (cp !== SLASH) add(next, state, false);
      } else if (step.kind === 'rest') {
        if (cp !== NEWLINE) add(next, state, false);
      } else if (step.kind === 'dirs') {
        if (cp !== NEWLINE) add(next, 2 * k + 1, false);
        if (cp === SLASH) add(next, 2 * k + 2, false);
      }
    }
    if (next.length === 0) return false;
    [current, next] = [next, current];
  }
  return seen[accept] === generation;
}

// Go's Perl classes and POSIX classes, ASCII only as in Go.
const PERL: Record<string, (cp: number) => boolean> = {
  d: (c) => c >= 0x30 && c <= 0x39,
  s: (c) => c === 0x09 || c === 0x0a || c === 0x0c || c === 0x0d || c === 0x20,
  w: (c) => (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x5f,
};
const POSIX: Record<string, RegExp> = {
  alnum: /[0-9A-Za-z]/, alpha: /[A-Za-z]/, ascii: /[\x00-\x7f]/, blank: /[\t ]/, cntrl: /[\x00-\x1f\x7f]/, digit: /[0-9]/, graph: /[!-~]/,
  lower: /[a-z]/, print: /[ -~]/, punct: /[!-/:-@[-`{-~]/, space: /[\t\n\v\f\r ]/, upper: /[A-Z]/, word: /[0-9A-Za-z_]/, xdigit: /[0-9A-Fa-f]/,
};
const CONTROL: Record<string, number> = { a: 0x07, f: 0x0c, n: 0x0a, r: 0x0d, t: 0x09, v: 0x0b };

/** What `\<ch>` matches in Go's expression: a Perl class, a control character or the punctuation itself. */
function escapeTest(ch: string, fail: (why: string) => never): (cp: number) => boolean {
  const lower = ch.toLowerCase();
  if (lower in PERL && 'dswDSW'.includes(ch)) {
    const test = PERL[lower];
    return ch === lower ? test : (c) => !test(c);
  }
  if (ch in CONTROL) return (c) => c === CONTROL[ch];
  const cp = ch.codePointAt(0) as number;
  if (cp < 0x80 && !/[0-9A-Za-z]/.test(ch)) return (c) => c === cp;
  if (/[xpPQbBAz0-9]/.test(ch)) {
    fail(`'\\${ch}' is regular-expression syntax to Docker's matcher, not an escaped character; write the character itself, or put it in [ ]`);
  }
  return fail(`'\\${ch}' is not an escape Docker accepts; escape only punctuation (\\*, \\?, \\[)`);
}

/** The index of the `]` that closes the class whose text starts at `from` (after its `[`), as Go's parser finds it. */
function classEnd(chars: string[], from: number, fail: (why: string) => never): number {
  let i = from;
  if (chars[i] === '^') i++;
  for (let first = true; i < chars.length; first = false) {
    const ch = chars[i];
    if (ch === ']' && !first) return i;
    if (ch === '*' || ch === '?') fail(`'${ch}' inside [ ] becomes part of a regular expression in Docker's matcher, not the character; write \\${ch} inside the brackets`);
    if (ch === '[' && chars[i + 1] === ':') {
      const close = chars.slice(i + 2).join('').indexOf(':]');
      if (close >= 0) {
        i += [...chars.slice(i + 2).join('').slice(0, close)].length + 4;
        continue;
      }
    }
    i += ch === '\\' ? 2 : 1;
  }
  return fail('a [ is never closed');
}

/** The test of one class `[...]` (its text without the brackets), with Go's rules: `^` negates, ranges, Perl and POSIX classes. */
function classTest(body: string[], fail: (why: string) => never): (cp: number) => boolean {
  const negated = body[0] === '^';
  const items: ((cp: number) => boolean)[] = [];
  let i = negated ? 1 : 0;
  const char = (): number | ((cp: number) => boolean) => {
    const ch = body[i++];
    if (ch !== '\\') return ch.codePointAt(0) as number;
    const escaped = body[i++];
    if ('dswDSW'.includes(escaped)) return escapeTest(escaped, fail);
    if (escaped in CONTROL) return CONTROL[escaped];
    escapeTest(escaped, fail); // refuses what Go refuses
    return escaped.codePointAt(0) as number;
  };
  while (i < body.length) {
    if (body[i] === '[' && body[i + 1] === ':') {
      const text = body.slice(i).join('');
      const close = text.indexOf(':]', 2);
      if (close >= 0) {
        const name = text.slice(2, close);
        const negate = name.startsWith('^');
        const re = POSIX[negate ? name.slice(1) : name];
        if (!re) fail(`[:${name}:] is not a character class Go knows`);
        items.push((cp) => re.test(String.fromCodePoint(cp)) !== negate);
        i += [...text.slice(0, close + 2)].length;
        continue;
      }
    }
    const lo = char();
    if (typeof lo === 'function') {
      items.push(lo);
      continue;
    }
    let hi = lo;
    if (body[i] === '-' && i + 1 < body.length) {
      i++;
      const end = char();
      if (typeof end === 'function') fail('a range ends in a class');
      hi = end as number;
      if (hi < lo) fail(`the range ${String.fromCodePoint(lo)}-${String.fromCodePoint(hi)} runs backwards`);
    }
    items.push((cp) => cp >= lo && cp <= hi);
  }
  return (cp) => items.some((test) => test(cp)) !== negated;
}
