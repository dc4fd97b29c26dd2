// The body of an open watch (`?watch=1`): one JSON WatchEvent per line, read until the caller has
// seen enough, the server ends the stream, the watch's time is up, or the task is cancelled.
// Opening the watch (and retrying that) is the client's (client.ts).
import type * as http from 'node:http';
import { abortError } from '../util/abort';
import type { KubeStatus, WatchEvent } from './client';

/** How a watch ended: `onEvent` said stop, the server closed it, 410 Gone (the version is too old), or its time was up. */
export type WatchEnd = 'stopped' | 'closed' | 'gone' | 'timeout';

export interface WatchStreamOptions {
  signal?: AbortSignal;
  /** The error an ERROR event other than 410 rejects with. */
  failed: (status: KubeStatus) => Error;
}

/** Hands the events of `res` to `onEvent` (true stops) until the watch ends; the stream is destroyed then. */
export function readWatchStream(res: http.IncomingMessage, onEvent: (event: WatchEvent) => boolean | void, timeoutMs: number, options: WatchStreamOptions): Promise<WatchEnd> {
  const signal = options.signal;
  return new Promise((resolve, reject) => {
    let settled = false;
    const finish = (err: Error | undefined, value?: WatchEnd) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      res.destroy();
      if (err) reject(err);
      else resolve(value!);
    };
    // Before the server's own timeoutSeconds: the end of the watch is 'timeout', not an error.
    const timer = setTimeout(() => finish(undefined, 'timeout'), Math.max(0, timeoutMs));
    const onAbort = () => finish(abortError(signal!));
    signal?.addEventListener('abort', onAbort, { once: true });
    let buffer = '';
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => {
      buffer += chunk;
      let nl: number;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl).trim();
        buffer = buffer.slice(nl + 1);
        if (!line || settled) continue;
        let event: WatchEvent;
        try {
          event = JSON.parse(line) as WatchEvent;
        } catch {
          continue;
        }
        if (event.type === 'ERROR') {
          const status = event.object as unknown as KubeStatus;
          return status.code === 410 ? finish(undefined, 'gone') : finish(options.failed(status));
        }
        try {
          if (onEvent(event)) return finish(undefined, 'stopped');
        } catch (err) {
          return finish(err as Error);
        }
      }
    });
    res.on('end', () => finish(undefined, 'closed'));
    res.on('error', () => finish(undefined, 'closed'));
  });
}
