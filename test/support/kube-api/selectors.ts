// Label selectors (`a=b`, `a!=b`, `a in (x,y)`, `a notin (x)`, `a`, `!a`) and the field selectors
// the clients use (metadata.name, metadata.namespace).
import type { Obj } from './resources';

export function labelMatch(labels: Record<string, string> | undefined, selector: string | undefined): boolean {
  if (!selector) return true;
  const l = labels ?? {};
  const parts = selector.match(/(?:[^,(]+\([^)]*\)|[^,]+)/g) ?? [];
  return parts.every((raw) => {
    const part = raw.trim();
    let m: RegExpExecArray | null;
    if ((m = /^([^\s!=]+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(part))) {
      const values = m[3].split(',').map((v) => v.trim());
      return m[2] === 'in' ? values.includes(l[m[1]]) : !values.includes(l[m[1]]);
    }
    if ((m = /^([^!=]+)!=(.*)$/.exec(part))) return l[m[1].trim()] !== m[2].trim();
    if ((m = /^([^!=]+)==?(.*)$/.exec(part))) return l[m[1].trim()] === m[2].trim();
    if (part.startsWith('!')) return !(part.slice(1) in l);
    return part in l;
  });
}

export function fieldMatch(obj: Obj, selector: string | undefined): boolean {
  if (!selector) return true;
  return selector.split(',').every((p) => {
    const [k, v] = p.split('=');
    if (k === 'metadata.name') return obj.metadata.name === v;
    if (k === 'metadata.namespace') return obj.metadata.namespace === v;
    return true;
  });
}
