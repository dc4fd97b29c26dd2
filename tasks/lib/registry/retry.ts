// Retries: which answers are worth another attempt, backoff arithmetic (capped exponential with
// jitter, and Retry-After as delta-seconds or HTTP-date), and the send loop the registry client and
// the Azure AD / ACR token calls share.
import { HttpRequest, HttpResponse, HttpTransport, NetworkError, header, isTransientNetworkError, safeUrl } from './http';

export interface RetryOptions {
  /** Total attempts including the first (default 5). */
  attempts?: number;
  /** First backoff delay (default 250 ms); doubles each attempt. */
  baseDelayMs?: number;
  /** Cap of a computed backoff delay (default 8 s). */
  maxDelayMs?: number;
  /** Cap of a server's Retry-After (default 30 s): a registry asking for an hour must not hang a job. */
  maxRetryAfterMs?: number;
}

export const DEFAULT_RETRY: Required<RetryOptions> = {
  attempts: 5,
  baseDelayMs: 250,
  maxDelayMs: 8_000,
  maxRetryAfterMs: 30_000,
};

/** 408, 429 and 5xx except 501 (not implemented) and 505 (HTTP version): worth another attempt. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || (status >= 500 && status <= 599 && status !== 501 && status !== 505);
}

/** Milliseconds a Retry-After value asks for, or undefined when absent or unreadable. */
export function parseRetryAfter(value: string | undefined, now: number = Date.now()): number | undefined {
  if (!value) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const date = Date.parse(text);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now);
}

/**
 * Delay before attempt `attempt + 1` (attempt counts from 1). "Equal jitter": half the capped
 * exponential delay is fixed and half random, so clients spread out but never retry instantly.
 * A Retry-After from the server wins (capped), plus a little jitter.
 */
export function backoffDelay(
  attempt: number,
  options: Required<RetryOptions>,
  retryAfterMs?: number,
  random: () => number = Math.random,
): number {
  if (retryAfterMs !== undefined) {
    const capped = Math.min(retryAfterMs, options.maxRetryAfterMs);
    return capped + Math.floor(random() * Math.min(options.baseDelayMs, 1000));
  }
  const exp = Math.min(options.maxDelayMs, options.baseDelayMs * 2 ** (attempt - 1));
  return Math.floor(exp / 2 + random() * (exp / 2));
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason instanceof Error ? signal.reason : new Error('aborted'));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export interface SendOptions {
  retry: Required<RetryOptions>;
  random?: () => number;
  signal?: AbortSignal;
  log?: { debug(message: string): void };
  /** Counts every attempt and every retry (RegistryClient.stats). */
  stats?: { requests: number; retries: number };
}

/**
 * Sends `req`, retrying retryable statuses (honouring Retry-After) and transient network errors
 * with backoff, up to `retry.attempts` tries in all. Returns the last response and how many tries
 * it took. A network error that is not transient, or still there on the last try, is thrown as
 * `unreachable` makes it.
 */
export async function sendWithRetries(
  transport: HttpTransport,
  req: HttpRequest,
  what: string,
  options: SendOptions,
  unreachable: (err: NetworkError, attempts: number) => Error,
): Promise<{ res: HttpResponse; attempts: number }> {
  const attempts = Math.max(1, options.retry.attempts);
  const host = new URL(req.url).host;
  for (let attempt = 1; ; attempt++) {
    if (options.stats) options.stats.requests++;
    let retryAfterMs: number | undefined;
    let reason: string;
    try {
      const res = await transport.request({ ...req, signal: options.signal });
      options.log?.debug(`${what}: ${req.method} ${safeUrl(req.url)} -> ${res.status}`);
      if (!isRetryableStatus(res.status) || attempt >= attempts) return { res, attempts: attempt };
      retryAfterMs = parseRetryAfter(header(res, 'retry-after'));
      reason = `${host} answered ${res.status}`;
    } catch (err) {
      if (!(err instanceof NetworkError)) throw err;
      if (!isTransientNetworkError(err) || attempt >= attempts) throw unreachable(err, attempt);
      reason = `${err.code} from ${host}`;
    }
    const delay = backoffDelay(attempt, options.retry, retryAfterMs, options.random);
    options.log?.debug(`${what}: ${reason}; attempt ${attempt + 1} of ${attempts} in ${delay} ms`);
    if (options.stats) options.stats.retries++;
    await sleep(delay, options.signal);
  }
}
