// What an aborted signal is thrown as, wherever a wait or a request notices it: one rule, so a
// cancel reads the same whichever step it interrupts.
import { CancelledError, OuterLoopError, TimeoutError } from '../errors';

/**
 * The error for an aborted `signal`. A reason of ours is the error as it is: the job's cancel
 * (runTask aborts ctx.signal with a CancelledError naming the signal, "BuildAndTag was cancelled
 * (SIGTERM).", which the task reports after its name), a deadline's TimeoutError, a sibling's
 * failure. Any other reason keeps its message: an AbortSignal.timeout's becomes a TimeoutError,
 * anything else a CancelledError.
 */
export function abortError(signal: AbortSignal): OuterLoopError {
  const reason: unknown = signal.reason;
  if (reason instanceof OuterLoopError) return reason;
  if (!(reason instanceof Error)) return new CancelledError('The job was cancelled.');
  return reason.name === 'TimeoutError' ? new TimeoutError(reason.message) : new CancelledError(reason.message);
}
