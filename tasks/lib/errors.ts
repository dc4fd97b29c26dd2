// Errors the tasks expect. `runTask` prints their message alone (no stack): the message must say
// what was wrong, naming the input, and what to do about it.

export class OuterLoopError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A task input is missing, malformed or contradicts another input. */
export class InputError extends OuterLoopError {}

/** An image reference does not follow the distribution reference grammar. */
export class InvalidReferenceError extends OuterLoopError {}

/** A registry answered with an error, or could not be reached. */
export class RegistryError extends OuterLoopError {
  readonly status?: number;
  readonly code?: string;
  readonly retryable: boolean;
  readonly registry?: string;
  constructor(
    message: string,
    details: { status?: number; code?: string; retryable?: boolean; registry?: string; cause?: unknown } = {},
  ) {
    super(message, { cause: details.cause });
    this.status = details.status;
    this.code = details.code;
    this.retryable = details.retryable ?? false;
    this.registry = details.registry;
  }
}

/** The Docker engine reported a failure (often inside a 200 stream). */
export class DockerError extends OuterLoopError {}

/** A file the user gave (compose, lock, manifest, config) is unreadable or invalid. */
export class FileError extends OuterLoopError {}

/** The task's own time limit ran out (timeoutMinutes, startupTimeoutSeconds, a tool's bound). */
export class TimeoutError extends OuterLoopError {}

/** The agent cancelled the job while the task was waiting. */
export class CancelledError extends OuterLoopError {}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
