// The one retry loop: registry requests, token requests, and pushes and pulls through the engine
// all go through `retry`. Capped exponential backoff with jitter, a server's Retry-After honoured,
// and a total deadline over every attempt and every wait between them: an attempt still running
// when the deadline passes is aborted, and no wait is started that would end after it.
import { TimeoutError } from '../errors';
import { abortError } from './abort';

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
      reject(abortError(signal));
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortError(signal!));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** The reason of an attempt aborted because the deadline passed. */
export class DeadlinePassed extends TimeoutError {
  constructor() {
    super('the time limit passed');
  }
}

/** What `retry` knows about one attempt while it runs. */
export interface Attempt {
  /** 1 for the first attempt. */
  number: number;
  /** Aborted when the caller's signal is, or when the deadline passes. */
  signal: AbortSignal;
  /** Moves the deadline to `at` (Date.now() ms) when that is later: for work that shows real progress. */
  postpone(at: number): void;
}

export interface RetryPolicy {
  /** Whether a failure is worth another attempt: false, or the wait the server asked for (if any). */
  isTransient(err: unknown): false | { retryAfterMs?: number };
  retry?: Required<RetryOptions>;
  /** Date.now() ms after which no attempt runs. */
  deadline?: number;
  /** Cancellation: aborts the attempt or the wait, which throws abortError(signal). */
  signal?: AbortSignal;
  random?: () => number;
  /** Told before each wait: the failure, the attempt that failed, and the delay. */
  onRetry?(err: unknown, attempt: number, delayMs: number): void;
}

/** A transient failure that lasted: the attempts ran out, or the deadline passed. */
export class RetriesExhausted extends Error {
  constructor(
    /** The failure of each attempt, in order (a DeadlinePassed for one the deadline aborted). */
    readonly failures: unknown[],
    /** True when the deadline ended it, false when the attempts ran out. */
    readonly timedOut: boolean,
  ) {
    const last = failures[failures.length - 1];
    super(last instanceof Error ? last.message : String(last), { cause: last });
    this.name = 'RetriesExhausted';
  }

  get attempts(): number {
    return this.failures.length;
  }

  /** The last failure that was not the deadline's abort: what the peer last did. */
  get last(): unknown {
    return [...this.failures].reverse().find((f) => !(f instanceof DeadlinePassed)) ?? this.failures[this.failures.length - 1];
  }
}

/**
 * Runs `fn` until it succeeds, a failure is not transient (thrown as it is), the caller's signal
 * aborts (abortError of it thrown), or transient failures last: then RetriesExhausted.
 */
export async function retry<T>(fn: (attempt: Attempt) => Promise<T>, policy: RetryPolicy): Promise<T> {
  const options = policy.retry ?? DEFAULT_RETRY;
  const attempts = Math.max(1, options.attempts);
  let deadline = policy.deadline ?? Infinity;
  const expiry = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const arm = () => {
    clearTimeout(timer);
    if (Number.isFinite(deadline)) timer = setTimeout(() => expiry.abort(new DeadlinePassed()), Math.max(0, deadline - Date.now()));
  };
  const signal = policy.signal ? AbortSignal.any([policy.signal, expiry.signal]) : expiry.signal;
  const postpone = (at: number) => {
    if (at <= deadline || expiry.signal.aborted) return;
    deadline = at;
    arm();
  };
  arm();
  const failures: unknown[] = [];
  try {
    for (let number = 1; ; number++) {
      let verdict: false | { retryAfterMs?: number };
      try {
        return await fn({ number, signal, postpone });
      } catch (err) {
        if (policy.signal?.aborted) throw abortError(policy.signal);
        // An attempt the deadline aborted failed of that, whatever error the abort surfaced as.
        failures.push(expiry.signal.aborted ? expiry.signal.reason : err);
        if (expiry.signal.aborted) throw new RetriesExhausted(failures, true);
        verdict = policy.isTransient(err);
        if (!verdict) throw err;
        if (number >= attempts) throw new RetriesExhausted(failures, false);
      }
      const delay = backoffDelay(number, options, verdict.retryAfterMs, policy.random);
      if (Date.now() + delay >= deadline) throw new RetriesExhausted(failures, true);
      policy.onRetry?.(failures[failures.length - 1], number, delay);
      try {
        await sleep(delay, signal);
      } catch (err) {
        if (policy.signal?.aborted) throw err;
        throw new RetriesExhausted(failures, true);
      }
    }
  } finally {
    clearTimeout(timer);
  }
}

