// The Engine API answers 200 to builds, pushes and pulls and reports failures as lines of the JSON
// stream. Every line goes through here: errors become DockerError, BuildKit's progress (protobuf in
// `aux` of `moby.buildkit.trace` lines) is decoded into readable log lines.
import { PassThrough, Readable } from 'node:stream';
import { DockerError } from '../errors';
import { decode, Field, text } from './protobuf';

export interface StreamEvent {
  stream?: string;
  status?: string;
  progress?: string;
  /** Bytes done of a layer's upload, download or extraction. */
  progressDetail?: { current?: number; total?: number };
  id?: string;
  error?: string;
  errorDetail?: { message?: string; code?: number };
  aux?: Record<string, unknown> | string;
}

export interface StreamHandlers {
  /** A human-readable line of output (build step, RUN output, push status). */
  onLine?(line: string): void;
  /** Every decoded JSON event, for callers that pick out `aux` values. */
  onEvent?(event: StreamEvent): void;
}

/**
 * Whether the engine's message for a failed push or pull says the registry refused the
 * credentials. The message also holds host:port, so a status code counts only as a whole number
 * not preceded by ':' (port 40197 is not a 401).
 */
export function isRegistryAuthFailure(message: string): boolean {
  return /unauthorized|authentication required|denied|no basic auth credentials|(?<![:\d])\b401\b/i.test(message);
}

/**
 * Whether the engine's message for a failed push or pull says the registry (or the way to it)
 * failed in a way worth another attempt: busy, 5xx, a dropped or refused connection. Status codes
 * count as in isRegistryAuthFailure.
 */
export function isTransientRegistryFailure(message: string): boolean {
  return /toomanyrequests|(?<![:\d])\b(429|50[0234])\b|unexpected HTTP status|connection reset|EOF|i\/o timeout|connection refused|TLS handshake timeout/i.test(message);
}

/**
 * The manifest digest a push stream reports for `tag`: `aux.Digest` from the classic image store,
 * else the status line `<tag>: digest: sha256:… size: N`, the only form the containerd image store
 * (Docker 29's default) writes. Undefined for any other event.
 */
export function pushedDigest(event: StreamEvent, tag: string): string | undefined {
  if (event.aux && typeof event.aux === 'object' && typeof event.aux.Digest === 'string') return event.aux.Digest;
  const m = /^(\S+): digest: (sha256:[a-f0-9]{64}) size: \d+$/.exec(event.status ?? '');
  return m && m[1] === tag ? m[2] : undefined;
}

export interface ProgressWatch {
  /** Milliseconds without a byte from the engine after which the stream fails. */
  stallMs: number;
  /** The error for a stream that made no progress for stallMs. */
  stalled(): Error;
  /** The error for a stream that failed under way (the engine's connection closed): `err` or a clearer one. */
  failed(err: Error): Error;
}

/**
 * The engine's response to a build, push or pull, passed through a watchdog: no byte for
 * `stallMs` ends it with `stalled()`, and a failure under way becomes `failed(err)`. Destroying
 * the returned stream destroys the response (and so the request).
 */
export function watchProgress(response: Readable, watch: ProgressWatch): Readable {
  const out = new PassThrough();
  const timer = setTimeout(() => {
    out.destroy(watch.stalled());
    response.destroy();
  }, watch.stallMs);
  response.on('data', (chunk: Buffer) => {
    timer.refresh();
    if (!out.write(chunk)) response.pause();
  });
  out.on('drain', () => response.resume());
  response.on('end', () => {
    clearTimeout(timer);
    out.end();
  });
  response.on('error', (err) => {
    clearTimeout(timer);
    out.destroy(watch.failed(err));
  });
  // 'end' or 'error' come first when the response finished or failed; a close without either is a connection gone.
  response.on('close', () => {
    clearTimeout(timer);
    if (!response.readableEnded && !out.destroyed) out.destroy(watch.failed(Object.assign(new Error('aborted'), { code: 'ECONNRESET' })));
  });
  out.on('close', () => {
    clearTimeout(timer);
    if (!response.destroyed) response.destroy();
  });
  return out;
}

/** Reads a JSON-lines stream to its end. Throws DockerError with the engine's message on the first error line. */
export function followStream(stream: NodeJS.ReadableStream, what: string, handlers: StreamHandlers = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    let buffer = '';
    let failed: DockerError | undefined;
    const handle = (line: string) => {
      if (!line.trim() || failed) return;
      let event: StreamEvent;
      try {
        event = JSON.parse(line) as StreamEvent;
      } catch {
        handlers.onLine?.(line);
        return;
      }
      if (event.error || event.errorDetail) {
        failed = new DockerError(`${what} failed: ${(event.errorDetail?.message ?? event.error ?? '').trim()}`);
        return;
      }
      if (event.id === 'moby.buildkit.trace' && typeof event.aux === 'string') {
        for (const l of decodeBuildKitTrace(event.aux)) handlers.onLine?.(l);
        return;
      }
      handlers.onEvent?.(event);
      if (event.stream) for (const l of event.stream.split('\n')) if (l.trim()) handlers.onLine?.(l.trimEnd());
      if (event.status && !event.progress) handlers.onLine?.(event.id ? `${event.id}: ${event.status}` : event.status);
    };
    stream.on('data', (chunk: Buffer) => {
      buffer += chunk.toString('utf8');
      const lines = buffer.split('\n');
      buffer = lines.pop() ?? '';
      lines.forEach(handle);
    });
    stream.on('error', (err) => reject(new DockerError(`${what} failed: ${err.message}`, { cause: err })));
    stream.on('end', () => {
      handle(buffer);
      if (failed) reject(failed);
      else resolve();
    });
  });
}

// The fields of moby.buildkit.v1.StatusResponse we print: vertexes (1: name 3, cached 4,
// completed 6, error 7), logs (3: msg 4) and warnings (4: short 3).
type Message = Field[];
const all = (fields: Message, number: number): Message[] => fields.filter((f) => f.number === number && 'bytes' in f).map((f) => decode((f as { bytes: Buffer }).bytes));
const bytesOf = (fields: Message, number: number): Buffer | undefined => (fields.filter((f) => f.number === number && 'bytes' in f).pop() as { bytes: Buffer } | undefined)?.bytes;
const has = (fields: Message, number: number) => fields.some((f) => f.number === number && ('bytes' in f || f.varint !== 0n));

/** Readable lines from one BuildKit trace: finished steps, RUN output, warnings and step errors. */
export function decodeBuildKitTrace(base64: string): string[] {
  if (!base64) return [];
  const status = decode(Buffer.from(base64, 'base64'));
  const lines: string[] = [];
  for (const v of all(status, 1)) {
    const name = text(v, 3);
    if (text(v, 7)) lines.push(`ERROR: ${name}: ${text(v, 7)}`);
    else if (has(v, 6) && name) lines.push(`${has(v, 4) ? 'CACHED ' : ''}${name}`);
  }
  for (const log of all(status, 3)) {
    for (const l of (bytesOf(log, 4) ?? Buffer.alloc(0)).toString('utf8').split('\n')) if (l.trim()) lines.push(`  ${l.trimEnd()}`);
  }
  for (const w of all(status, 4)) lines.push(`WARNING: ${(bytesOf(w, 3) ?? Buffer.alloc(0)).toString('utf8')}`);
  return lines;
}
