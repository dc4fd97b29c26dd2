// `.dockerignore` with Docker's own semantics (moby/patternmatcher + the CLI's ignorefile reader):
// `#` comments only at the start of a line, whitespace trimmed, `!` exceptions, patterns cleaned
// like Go's filepath.Clean with a leading `/` trimmed, `*`/`?` never cross `/`, `**` crosses any
// number of folders, `\` escapes, and a pattern that matches a folder excludes everything in it.
// The last matching pattern wins.
import { FileError } from '../errors';

export interface IgnorePattern {
  /** The cleaned pattern without its `!`. */
  pattern: string;
  exclusion: boolean;
  regexp: RegExp;
}

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
      let regexp: RegExp;
      try {
        regexp = compilePattern(p);
      } catch (err) {
        throw new FileError(`${source}: the pattern '${raw}' is not a valid pattern (${(err as Error).message}).`);
      }
      this.patterns.push({ pattern: p, exclusion, regexp });
    }
  }

  get hasExclusions(): boolean {
    return this.patterns.some((p) => p.exclusion);
  }

  /** True when `file` (a slash-separated path relative to the context) is ignored. */
  ignores(file: string): boolean {
    file = cleanPath(file);
    if (file === '.') return false;
    const slash = file.lastIndexOf('/');
    const parentDirs = slash < 0 ? [] : file.slice(0, slash).split('/');
    let matched = false;
    for (const pattern of this.patterns) {
      // An inclusion cannot change an already ignored file, nor an exception a kept one.
      if (pattern.exclusion !== matched) continue;
      let match = pattern.regexp.test(file);
      for (let i = 0; !match && i < parentDirs.length; i++) {
        match = pattern.regexp.test(parentDirs.slice(0, i + 1).join('/'));
      }
      if (match) matched = !pattern.exclusion;
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

function compilePattern(pattern: string): RegExp {
  let re = '^';
  const chars = [...pattern];
  for (let i = 0; i < chars.length; i++) {
    const ch = chars[i];
    if (ch === '*') {
      if (chars[i + 1] === '*') {
        i++;
        if (chars[i + 1] === '/') i++; // `**/` is treated as `**`
        // `**` at the end accepts everything; elsewhere it spans zero or more whole folders.
        re += i + 1 >= chars.length ? '.*' : '(.*/)?';
      } else {
        re += '[^/]*';
      }
    } else if (ch === '?') {
      re += '[^/]';
    } else if (ch === '\\') {
      if (i + 1 < chars.length) re += escapeRegExp(chars[++i]);
      else re += '\\\\';
    } else if (ch === '[' || ch === ']') {
      re += ch;
    } else {
      re += escapeRegExp(ch);
    }
  }
  return new RegExp(`${re}$`, 'u');
}

function escapeRegExp(ch: string): string {
  return /[.*+?^${}()|[\]\\/]/.test(ch) ? `\\${ch}` : ch;
}
