// Which HTTP answers are worth another attempt, Retry-After as delta-seconds or HTTP-date, and the
// send loop the registry client, the Azure AD / ACR token calls and the notifications share (on
// retry.ts). The Kubernetes client (../kube/client.ts) decides with the same rule.
import { DeadlinePassed, RetriesExhausted, RetryOptions, retry } from './retry';
import { HttpRequest, HttpResponse, HttpTransport, NetworkError, header, isTransientNetworkError, safeUrl } from './http';

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

export interface SendOptions {
  retry: Required<RetryOptions>;
  /** Date.now() ms by which the whole operation (every attempt and wait) must be over. */
  deadline?: number;
  random?: () => number;
  signal?: AbortSignal;
  log?: { debug(message: string): void };
  /** Counts every attempt and every retry (RegistryClient.stats). */
  stats?: { requests: number; retries: number };
}

/** How sending ended: the last response, how many tries it took, and whether the deadline cut the retries short. */
export interface SendResult {
  res: HttpResponse;
  attempts: number;
  timedOut: boolean;
}

/** An answer with a retryable status, thrown inside the retry loop so that `retry` decides on it like on any failure. */
export class RetryableAnswer extends Error {
  constructor(readonly res: HttpResponse) {
    super(`answered ${res.status}`);
  }
}

/**
 * `retry`'s isTransient for HTTP: a RetryableAnswer (after the wait its Retry-After asks for) or a
 * transient network error. Everything else (403, 404, a 401, a refused certificate) is final.
 */
export function isTransientHttpFailure(err: unknown): false | { retryAfterMs?: number } {
  if (err instanceof RetryableAnswer) return { retryAfterMs: parseRetryAfter(header(err.res, 'retry-after')) };
  return isTransientNetworkError(err) ? {} : false;
}

/**
 * Sends `req`, retrying retryable statuses (honouring Retry-After) and transient network errors
 * with backoff, up to `retry.attempts` tries and until `deadline`. Returns the last response. A
 * network error that is not transient, or still there at the end, is thrown as `unreachable` makes
 * it (an attempt the deadline stopped counts as ETIMEDOUT).
 */
export async function sendWithRetries(
  transport: HttpTransport,
  req: HttpRequest,
  what: string,
  options: SendOptions,
  unreachable: (err: NetworkError, attempts: number, timedOut: boolean) => Error,
): Promise<SendResult> {
  const host = new URL(req.url).host;
  const attempts = Math.max(1, options.retry.attempts);
  let tries = 0;
  try {
    const res = await retry(
      async (attempt) => {
        tries = attempt.number;
        if (options.stats) options.stats.requests++;
        const res = await transport.request({ ...req, signal: attempt.signal });
        options.log?.debug(`${what}: ${req.method} ${safeUrl(req.url)} -> ${res.status}`);
        if (isRetryableStatus(res.status)) throw new RetryableAnswer(res);
        return res;
      },
      {
        retry: options.retry,
        deadline: options.deadline,
        signal: options.signal,
        random: options.random,
        isTransient: isTransientHttpFailure,
        onRetry: (err, attempt, delay) => {
          const reason = err instanceof RetryableAnswer ? `${host} answered ${err.res.status}` : `${(err as NetworkError).code} from ${host}`;
          options.log?.debug(`${what}: ${reason}; attempt ${attempt + 1} of ${attempts} in ${delay} ms`);
          if (options.stats) options.stats.retries++;
        },
      },
    );
    return { res, attempts: tries, timedOut: false };
  } catch (err) {
    if (err instanceof RetriesExhausted) {
      const last = err.last;
      if (last instanceof RetryableAnswer) return { res: last.res, attempts: err.attempts, timedOut: err.timedOut };
      if (last instanceof NetworkError) throw unreachable(last, err.attempts, err.timedOut);
      if (last instanceof DeadlinePassed) throw unreachable(new NetworkError('ETIMEDOUT', 'no answer before the time limit', { cause: last }), err.attempts, true);
      throw last;
    }
    if (err instanceof NetworkError) throw unreachable(err, tries, false);
    throw err;
  }
}
