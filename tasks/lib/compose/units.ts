// Sizes and durations as Compose v2 reads them, so a value Compose refuses is refused here too:
//   sizes (mem_limit, shm_size, …): a whole number of bytes, or a number with a binary unit
//     (docker/go-units' RAMInBytes: `512`, `64m`, `1.5g`, `2GB`, `64mib`, `1 k`; k = 1024);
//   durations (stop_grace_period, healthcheck, deploy): Go's time syntax with days and weeks
//     (xhit/go-str2duration: `90s`, `1m30s`, `1500ms`, `1d`, `0`).
// The Kubernetes conversion reads them through durationSeconds and memoryQuantity, and CPUs
// through cpuQuantity, which name the key of a value that is not one.
import { InputError } from '../errors';

const SIZE = /^(\d+(?:\.\d*)?|\.\d+) ?([kmgtp]?)(i?b)?$/i;

/** The bytes a size stands for, or undefined when Compose would refuse it. */
export function sizeInBytes(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isInteger(value) ? value : undefined;
  if (typeof value !== 'string') return undefined;
  if (/^-?\d+$/.test(value)) return Number(value);
  const m = SIZE.exec(value);
  if (!m || (!m[2] && m[3] && m[3].length > 1)) return undefined;
  return Math.trunc(Number(m[1]) * 1024 ** ' kmgtp'.indexOf(m[2].toLowerCase() || ' '));
}

const NANOSECONDS: Record<string, number> = { ns: 1, us: 1e3, µs: 1e3, μs: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9, d: 86400e9, w: 604800e9 };

/** The nanoseconds a duration stands for, or undefined when Compose would refuse it. */
export function durationNanoseconds(value: unknown): number | undefined {
  if (typeof value !== 'string') return undefined;
  const text = value.replace(/^\+/, '');
  if (text === '0') return 0;
  const parts = [...text.matchAll(/(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h|d|w)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== text) return undefined;
  return Math.round(parts.reduce((sum, p) => sum + Number(p[1]) * NANOSECONDS[p[2]], 0));
}

/** A duration in seconds (a plain number is seconds). */
export function durationSeconds(value: unknown, where: string): number {
  if (typeof value === 'number') return value;
  const text = String(value).trim();
  const nanoseconds = durationNanoseconds(text);
  if (nanoseconds === undefined) throw new InputError(`${where}: '${text}' is not a duration such as 30s, 1m30s or 500ms.`);
  return nanoseconds / 1e9;
}

/** A size as a Kubernetes quantity, in the largest binary unit that holds it whole (`512m` → `512Mi`, `1.5g` → `1536Mi`). */
export function memoryQuantity(value: unknown, where: string): string {
  const text = typeof value === 'string' ? value.trim() : value;
  const bytes = sizeInBytes(text);
  if (bytes === undefined) throw new InputError(`${where}: '${String(text)}' is not a size such as 512m or 1g.`);
  for (const [unit, size] of [['Ti', 1024 ** 4], ['Gi', 1024 ** 3], ['Mi', 1024 ** 2], ['Ki', 1024]] as const) {
    if (bytes >= size && bytes % size === 0) return `${bytes / size}${unit}`;
  }
  return String(bytes);
}

/** A number of CPUs as a Kubernetes quantity (`0.5` → `500m`). */
export function cpuQuantity(value: unknown, where: string): string {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InputError(`${where}: '${String(value)}' is not a number of CPUs such as 0.5.`);
  const milli = Math.round(n * 1000);
  return milli % 1000 === 0 ? String(milli / 1000) : `${milli}m`;
}
