// A push or pull through the engine as one registry operation: retried when the registry is busy or
// the way to it drops, within registryTimeoutSeconds for all attempts and waits together. The
// engine retries a failing layer itself (about 50 s against a registry that answers 500), so an
// attempt still running when the time is up is stopped. A transfer that is really moving is not:
// each byte a layer gets past the most it reached before moves the time limit on.
import type { Logger } from '../context';
import { RegistryError } from '../errors';
import { DEFAULT_RETRY, DeadlinePassed, RetriesExhausted, retry } from '../util/retry';
import { StreamEvent, StreamHandlers, followStream, isRegistryAuthFailure, isTransientRegistryFailure } from './stream';

export interface TransferOptions {
  /** 'Pushing registry.example.com/app:1', for messages. */
  what: string;
  /** The registry's host[:port], for messages. */
  registry: string;
  /** The registryTimeoutSeconds input. */
  timeoutSeconds: number;
  attempts: number;
  /** First backoff delay. */
  baseDelayMs: number;
  signal: AbortSignal;
  log: Pick<Logger, 'warn' | 'debug'>;
  /** Starts one attempt: the engine's progress stream. */
  start(signal: AbortSignal): Promise<NodeJS.ReadableStream>;
  onEvent?: StreamHandlers['onEvent'];
}

/**
 * Runs the transfer. A failure that is not transient (refused credentials, unknown image, the
 * engine itself failing) is thrown as the stream reported it; one that lasts becomes a retryable
 * RegistryError that names the registry, what it did, and what to do.
 */
export async function transferWithRetries(options: TransferOptions): Promise<void> {
  const limitMs = options.timeoutSeconds * 1000;
  const reached = new Map<string, number>(); // layer id → most bytes done, over all attempts
  let lastLine = '';
  try {
    await retry(
      async (attempt) => {
        const stream = await options.start(attempt.signal);
        await followStream(stream, options.what, {
          onLine: (line) => {
            lastLine = line;
            options.log.debug(line);
          },
          onEvent: (event) => {
            if (advanced(event, reached)) attempt.postpone(Date.now() + limitMs);
            options.onEvent?.(event);
          },
        });
      },
      {
        retry: { ...DEFAULT_RETRY, attempts: options.attempts, baseDelayMs: options.baseDelayMs },
        deadline: Date.now() + limitMs,
        signal: options.signal,
        isTransient: (err) => {
          const message = (err as Error).message ?? '';
          return !isRegistryAuthFailure(message) && isTransientRegistryFailure(message) ? {} : false;
        },
        onRetry: (err, attempt, delay) =>
          options.log.warn(`${(err as Error).message}; attempt ${attempt + 1} of ${options.attempts} in ${Math.round(delay / 100) / 10} s.`),
      },
    );
  } catch (err) {
    if (!(err instanceof RetriesExhausted)) throw err;
    const tries = `${err.attempts} attempt${err.attempts === 1 ? '' : 's'}`;
    const lastFailure = err.last instanceof DeadlinePassed ? undefined : (err.last as Error).message.replace(`${options.what} failed: `, '');
    const last = lastFailure === undefined ? `no attempt finished${lastLine ? ` (the engine's last word: '${lastLine}')` : ''}` : `the last failure: ${lastFailure}`;
    const message = err.timedOut
      ? `${options.what} failed: it did not get through to the registry ${options.registry} within ${options.timeoutSeconds} s (registryTimeoutSeconds; ${tries}; ${last}). Check that the registry is healthy and reachable from the engine, then run the job again; raise registryTimeoutSeconds only if it is just slow.`
      : `${options.what} failed after ${tries}: ${lastFailure}. Check that the registry ${options.registry} is reachable from the engine and healthy, then run the job again.`;
    throw new RegistryError(message, { registry: options.registry, retryable: true, cause: err.last });
  }
}

/** Whether `event` takes a layer further than any attempt got it before (real progress, not a retry starting over). */
function advanced(event: StreamEvent, reached: Map<string, number>): boolean {
  const current = event.progressDetail?.current;
  if (!event.id || typeof current !== 'number') return false;
  const key = `${event.status ?? ''}\n${event.id}`;
  if (current <= (reached.get(key) ?? 0)) return false;
  reached.set(key, current);
  return true;
}
