// File patterns for the `manifests` input: plain paths, `*`, `?`, `**`, `{a,b}` and `[abc]`,
// relative to a base folder. Small on purpose (Node 20 has no fs.glob); matches are sorted so that
// the apply order of files is stable from run to run.
import * as fs from 'node:fs';
import * as path from 'node:path';

const MAX_MATCHES = 10_000;

export function hasGlob(pattern: string): boolean {
  return /[*?[{]/.test(pattern);
}

/** A regular expression for one glob pattern (forward slashes). */
export function globToRegExp(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '*') {
      if (pattern[i + 1] === '*') {
        // `**/` matches zero or more folders; a trailing `**` anything.
        if (pattern[i + 2] === '/') {
          re += '(?:[^/]*(?:/|$))*';
          i += 2;
        } else {
          re += '.*';
          i += 1;
        }
      } else re += '[^/]*';
    } else if (c === '?') re += '[^/]';
    else if (c === '{') {
      const end = pattern.indexOf('}', i);
      if (end < 0) re += '\\{';
      else {
        re += `(?:${pattern
          .slice(i + 1, end)
          .split(',')
          .map((alt) => globToRegExp(alt).source.slice(1, -1))
          .join('|')})`;
        i = end;
      }
    } else if (c === '[') {
      const end = pattern.indexOf(']', i + 1);
      if (end < 0) re += '\\[';
      else {
        const body = pattern.slice(i + 1, end).replace(/^!/, '^').replace(/\\/g, '\\\\');
        re += `[${body}]`;
        i = end;
      }
    } else re += c.replace(/[.+^$()|\\]/g, (m) => `\\${m}`);
  }
  return new RegExp(`^${re}$`);
}

/** Files under `baseDir` matching `pattern` (absolute paths, sorted). */
export function globFiles(pattern: string, baseDir: string): string[] {
  const absolute = path.resolve(baseDir, pattern).split(path.sep).join('/');
  const parts = absolute.split('/');
  const firstGlob = parts.findIndex((p) => hasGlob(p));
  if (firstGlob < 0) return fs.existsSync(absolute) ? [path.resolve(absolute)] : [];
  const root = parts.slice(0, firstGlob).join('/') || '/';
  const re = globToRegExp(parts.slice(firstGlob).join('/'));
  const found: string[] = [];
  const walk = (dir: string, rel: string) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const entry of entries) {
      if (entry.name === 'node_modules' || entry.name === '.git') continue;
      const childRel = rel ? `${rel}/${entry.name}` : entry.name;
      const child = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(child, childRel);
      else if (entry.isFile() && re.test(childRel)) {
        found.push(child);
        if (found.length > MAX_MATCHES) return;
      }
    }
  };
  walk(root, '');
  return found.sort();
}
