// A service's ports as Compose reads them. The short syntax `[HOST_IP:][PUBLISHED:]TARGET[/PROTOCOL]`
// is split once here (shortPorts), as docker/go-connections' `ParsePortSpec` splits it: a host IP
// in brackets may be an IPv6 literal, more colons than three fields belong to the host IP. The
// merge keys ports by these parts (merge.ts), the load checks them (validate.ts), and the
// Kubernetes conversion reads `ports` and `expose` as numbered long-syntax ports (longPorts,
// exposedPorts), refusing what is not a port.
import { InputError } from '../errors';

export interface PortParts {
  hostIp: string;
  published?: string;
  target: string;
  protocol: string;
}

export type Protocol = 'TCP' | 'UDP' | 'SCTP';

/** A port in the long syntax, numbered; an entry already written in the long syntax is kept as written. */
export type LongPort = Record<string, unknown>;

const MAX_PORT_RANGE = 100;

/** A short port in parts, one per port of a target range (the text as written: nothing is checked). */
export function shortPorts(text: string): PortParts[] {
  const { hostIp, published, target, protocol } = shortPortFields(text);
  const targets = expandRange(target);
  const publishedPorts = published === undefined ? undefined : expandRange(published);
  return targets.map((t, i) => ({
    hostIp,
    target: t,
    protocol: protocol ?? 'tcp',
    published: publishedPorts === undefined ? undefined : publishedPorts.length === targets.length ? publishedPorts[i] : published,
  }));
}

/** A short port's fields as written: ranges not expanded, no protocol when none is given. */
function shortPortFields(text: string): { hostIp: string; published?: string; target: string; protocol?: string } {
  let rest = text;
  let protocol: string | undefined;
  const slash = rest.lastIndexOf('/');
  if (slash >= 0) {
    protocol = rest.slice(slash + 1);
    rest = rest.slice(0, slash);
  }
  let hostIp = '';
  if (rest.startsWith('[')) {
    const end = rest.indexOf(']');
    hostIp = rest.slice(1, end);
    rest = rest.slice(end + 2);
  }
  const parts = rest.split(':');
  const target = parts.pop() ?? '';
  const published = parts.pop();
  if (parts.length > 0) hostIp = parts.join(':');
  return { hostIp, target, protocol, ...(published === undefined || published === '' ? {} : { published }) };
}

function expandRange(text: string): string[] {
  const m = /^(\d+)-(\d+)$/.exec(text);
  if (!m) return [text];
  const out: string[] = [];
  for (let p = Number(m[1]); p <= Number(m[2]); p++) out.push(String(p));
  return out;
}

/** `ports` in the long syntax, one entry per port of a short range; a port number, range or protocol that is not one is an error naming `where`. */
export function longPorts(value: unknown, where: string): LongPort[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new InputError(`${where}: ports must be a list.`);
  return value.flatMap((item): LongPort[] => {
    if (typeof item !== 'string' && typeof item !== 'number') return [item as LongPort];
    const text = String(item);
    const { hostIp, published, target, protocol } = shortPortFields(text);
    const lowerProtocol = portProtocol(protocol, where).toLowerCase();
    const targets = portRange(target, where, 'port');
    const publishedPorts = published === undefined ? undefined : portRange(published, where, 'published port');
    if (publishedPorts && publishedPorts.length > 1 && publishedPorts.length !== targets.length) {
      throw new InputError(`${where}: port '${text}': published and target ranges differ in size.`);
    }
    return targets.map((t, i) => ({
      target: t,
      ...(publishedPorts ? { published: publishedPorts[Math.min(i, publishedPorts.length - 1)] } : {}),
      ...(hostIp ? { host_ip: hostIp } : {}),
      protocol: lowerProtocol,
    }));
  });
}

/** `expose` (`PORT[-PORT][/PROTOCOL]`): the container ports, one per port of a range. */
export function exposedPorts(value: unknown, where: string): { target: number; protocol: Protocol }[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new InputError(`${where}: expose must be a list.`);
  return value.flatMap((item) => {
    const text = String(item);
    const slash = text.lastIndexOf('/');
    const protocol = portProtocol(slash < 0 ? undefined : text.slice(slash + 1), where);
    return portRange(slash < 0 ? text : text.slice(0, slash), where, 'expose').map((target) => ({ target, protocol }));
  });
}

export function portProtocol(value: unknown, where: string): Protocol {
  const p = String(value ?? 'tcp').toLowerCase();
  if (p === 'tcp' || p === 'udp' || p === 'sctp') return p.toUpperCase() as Protocol;
  throw new InputError(`${where}: port protocol '${p}' must be tcp, udp or sctp.`);
}

export function portNumber(text: string, where: string, what: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < 1 || n > 65535) throw new InputError(`${where}: ${what} '${text}' is not a port number (1-65535).`);
  return n;
}

/** `PORT` or `PORT-PORT` (ascending, at most MAX_PORT_RANGE ports) as the ports it stands for. */
export function portRange(text: string, where: string, what: string): number[] {
  const m = /^(\d+)(?:-(\d+))?$/.exec(text);
  if (!m) throw new InputError(`${where}: ${what} '${text}' is not a port or port range.`);
  const a = portNumber(m[1], where, what);
  const b = m[2] === undefined ? a : portNumber(m[2], where, what);
  if (b < a || b - a >= MAX_PORT_RANGE) throw new InputError(`${where}: ${what} range '${text}' must ascend and hold at most ${MAX_PORT_RANGE} ports.`);
  return Array.from({ length: b - a + 1 }, (_, i) => a + i);
}
