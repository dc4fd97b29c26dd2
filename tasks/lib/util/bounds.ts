// Waits bounded by a deadline (ContainerizedTest's timeoutMinutes and startupTimeoutSeconds, the
// time a cancelled task has left) and by the job's cancellation (ctx.signal, aborted on SIGINT/SIGTERM).
import { abortError } from './abort';

/**
 * Resolves as `work` does, unless `deadline` (epoch ms) passes first (rejects with
 * `onTimeout()`), or `signal` aborts (rejects with abortError(signal)). `work` is not stopped: the caller
 * stops what it started (kill the process, the container) and tears down.
 */
export function bounded<T>(work: Promise<T>, options: { deadline?: number; signal?: AbortSignal; onTimeout: () => Error }): Promise<T> {
  const { deadline, signal, onTimeout } = options;
  if (signal?.aborted) {
    work.catch(() => undefined);
    return Promise.reject(abortError(signal));
  }
  return new Promise<T>((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    const cleanup = () => {
      if (timer) clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    };
    const onAbort = () => {
      cleanup();
      reject(abortError(signal!));
    };
    if (deadline !== undefined) {
      timer = setTimeout(() => {
        cleanup();
        reject(onTimeout());
      }, Math.max(0, deadline - Date.now()));
    }
    signal?.addEventListener('abort', onAbort, { once: true });
    work.then(
      (v) => {
        cleanup();
        resolve(v);
      },
      (e) => {
        cleanup();
        reject(e);
      },
    );
  });
}
