// Output of containers and of the Compose CLI on its way to the pipeline log: split into lines,
// sanitised (no `##vso[` or `##[` command can reach the agent: ctx.info sanitises, and so does
// every other path here), bounded in line length, with a bounded tail kept for failure reports.
import type Dockerode from 'dockerode';
import { sanitizeOutput } from '../context';

/** Longer lines are cut (a binary blob on stdout must not become one multi-megabyte log line). */
export const MAX_LINE_CHARS = 16 * 1024;
/** Lines of each service's log printed when something fails. */
export const LOG_TAIL_LINES = 200;

/** Turns chunks into sanitised lines and hands each to `emit`; keeps the last `tailLines`. */
export class LineSink {
  private partial = '';
  private readonly tailBuffer: string[] = [];
  constructor(
    private readonly emit: (line: string) => void,
    private readonly prefix = '',
    private readonly tailLines = LOG_TAIL_LINES,
  ) {}

  write(chunk: Buffer | string): void {
    this.partial += typeof chunk === 'string' ? chunk : chunk.toString('utf8');
    const lines = this.partial.split(/\r?\n/);
    this.partial = lines.pop() ?? '';
    for (const line of lines) this.line(line);
    while (this.partial.length > MAX_LINE_CHARS) {
      this.line(this.partial.slice(0, MAX_LINE_CHARS));
      this.partial = this.partial.slice(MAX_LINE_CHARS);
    }
  }

  end(): void {
    if (this.partial) this.line(this.partial);
    this.partial = '';
  }

  get tail(): string[] {
    return [...this.tailBuffer];
  }

  private line(raw: string): void {
    const text = sanitizeOutput(`${this.prefix}${raw.replace(/\r/g, '').slice(0, MAX_LINE_CHARS)}`);
    this.tailBuffer.push(text);
    if (this.tailBuffer.length > this.tailLines) this.tailBuffer.shift();
    this.emit(text);
  }
}

/**
 * Splits the Engine API's multiplexed stream (non-TTY attach/logs: 8-byte header with the stream
 * type and the frame length) into stdout and stderr chunks.
 */
export class Demultiplexer {
  private buffer: Buffer = Buffer.alloc(0);
  constructor(private readonly onData: (chunk: Buffer, stream: 'stdout' | 'stderr') => void) {}

  push(chunk: Buffer): void {
    this.buffer = this.buffer.length ? Buffer.concat([this.buffer, chunk]) : chunk;
    while (this.buffer.length >= 8) {
      const type = this.buffer[0];
      const length = this.buffer.readUInt32BE(4);
      if (type > 2 || this.buffer[1] !== 0 || this.buffer[2] !== 0 || this.buffer[3] !== 0) {
        // Not a multiplexed stream (a TTY container): pass it through as it is.
        this.onData(this.buffer, 'stdout');
        this.buffer = Buffer.alloc(0);
        return;
      }
      if (this.buffer.length < 8 + length) return;
      this.onData(this.buffer.subarray(8, 8 + length), type === 2 ? 'stderr' : 'stdout');
      this.buffer = this.buffer.subarray(8 + length);
    }
  }
}

/** The last `lines` lines of a container's log (stdout and stderr), sanitised. */
export async function containerLogTail(docker: Dockerode, id: string, lines = LOG_TAIL_LINES): Promise<string[]> {
  const raw = (await docker.getContainer(id).logs({ stdout: true, stderr: true, follow: false, tail: lines, timestamps: false })) as unknown as Buffer;
  const out: string[] = [];
  const sink = new LineSink((l) => out.push(l), '', lines);
  const info = await docker.getContainer(id).inspect();
  if (info.Config?.Tty) sink.write(Buffer.from(raw));
  else new Demultiplexer((c) => sink.write(c)).push(Buffer.from(raw));
  sink.end();
  return out.slice(-lines);
}
