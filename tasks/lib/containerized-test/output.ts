// Output of containers on its way to the pipeline log: the Engine API's multiplexed stream split
// into stdout and stderr, then into sanitised lines by LineSink (tasks/lib/context).
import type Dockerode from 'dockerode';
import { LOG_TAIL_LINES, LineSink } from '../context';

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
