// The Docker engine the tasks talk to: DOCKER_HOST (unix socket, tcp with DOCKER_TLS_VERIFY and
// DOCKER_CERT_PATH, ssh) as the Docker CLI reads it, else the local socket.
//
// Time limits, for every engine a task uses (guardEngine): an engine that stops answering must
// fail the task with a clear message, not hang it until the job's timeout.
//   - A progress stream (build, push, pull) fails after `stallSeconds` without a byte from the
//     engine (the engineStallSeconds input): the engine streams progress while it works, so
//     silence that long means it is stuck. Before the answer starts, the context upload counts as
//     progress too.
//   - Any other call has ENGINE_CALL_TIMEOUT_SECONDS until its answer (plus the grace period of a
//     stop or restart); for streams such as logs, attach and archives, until the answer starts.
//     Only a container's wait has none: it lasts as long as the container runs, and its callers
//     bound it (timeoutMinutes, startupTimeoutSeconds).
//   - A connection that closes under way (engine crashed, restarted, killed) says the engine went away.
import { type Readable, Stream, Transform } from 'node:stream';
import type Dockerode from 'dockerode';
import { DockerError } from '../errors';
import { lazyRequire } from '../util/lazy';
import { watchProgress } from './stream';

/**
 * dockerode, loaded on first use: with ssh2 it is most of a task's start-up time, and a task that
 * fails on its inputs should fail at once.
 */
export const dockerode = lazyRequire<typeof Dockerode>(() => require('dockerode'));

/** Seconds an Engine API call without a progress stream may take. The slowest ordinary ones (removing a big container, creating one with many mounts) take a few seconds. */
export const ENGINE_CALL_TIMEOUT_SECONDS = 60;

export interface EngineLimits {
  /** Seconds a build, push or pull may go without progress (the engineStallSeconds input). */
  stallSeconds: number;
  /** Seconds any other call may take (default ENGINE_CALL_TIMEOUT_SECONDS). */
  callTimeoutSeconds?: number;
}

/** The calls that stream progress while the engine works. */
const PROGRESS_STREAM = /^\/(build|images\/create|images\/.+\/push)\?/;
/** A container's wait: as long as the container runs. */
const CONTAINER_WAIT = /^\/containers\/[^/]+\/wait\?/;
/** Calls that may take their `t` (grace seconds) before answering. */
const GRACEFUL = /^\/containers\/[^/]+\/(stop|restart)\?/;

interface DialOptions {
  path: string;
  method: string;
  isStream?: boolean;
  hijack?: boolean;
  file?: unknown;
  abortSignal?: AbortSignal;
  options?: Record<string, unknown>;
}

type DialCallback = (err: Error | null, result?: unknown) => void;

/**
 * Puts the time limits above on every request of `docker`. `where` names the engine in messages
 * (`unix:///var/run/docker.sock`, `tcp://host:2376 (TLS)`, ...).
 */
export function guardEngine(docker: Dockerode, where: string, limits: EngineLimits): Dockerode {
  const modem = docker.modem as unknown as { dial(options: DialOptions, callback: DialCallback): void };
  const dial = modem.dial.bind(modem);
  const stallSeconds = limits.stallSeconds;
  const callSeconds = limits.callTimeoutSeconds ?? ENGINE_CALL_TIMEOUT_SECONDS;
  const stalled = () =>
    new DockerError(
      `the Docker engine at ${where} stopped answering (no progress for ${stallSeconds} s). Check that the engine is healthy ('docker info' on its host, and its log); if a step of yours is silent for longer on purpose, raise engineStallSeconds.`,
    );
  const gone = (err: Error) =>
    new DockerError(
      `the Docker engine at ${where} went away (the connection closed under way: ${(err as NodeJS.ErrnoException).code ?? err.message}). The engine may have crashed or restarted: check its log, then run the job again.`,
      { cause: err },
    );

  modem.dial = (options, callback) => {
    const path = options.path;
    if (CONTAINER_WAIT.test(path)) return dial(options, callback);
    const progress = options.isStream === true && PROGRESS_STREAM.test(path);
    const grace = GRACEFUL.test(path) ? Number(options.options?.t ?? 10) || 0 : 0;
    const limitSeconds = progress ? stallSeconds : callSeconds + grace;
    const callerSignal = options.abortSignal;
    const expiry = new AbortController();
    let expired: DockerError | undefined;
    let answered = false;
    const timer = setTimeout(() => {
      expired = progress
        ? stalled()
        : new DockerError(
            `the Docker engine at ${where} did not answer ${options.method} ${path.replace(/\?$/, '')} within ${limitSeconds} s. Check that the engine is running and not overloaded ('docker info' on its host), then run the job again.`,
          );
      expiry.abort(expired);
    }, limitSeconds * 1000);
    options.abortSignal = callerSignal ? AbortSignal.any([callerSignal, expiry.signal]) : expiry.signal;
    // A build's context upload is progress: a big context to a remote engine takes its time. The
    // upload goes through a pass-through that counts (a 'data' listener would start the stream
    // flowing before the modem pipes it).
    if (progress && options.file instanceof Stream) {
      const upload = options.file as Readable;
      const counted = new Transform({
        transform(chunk, _encoding, done) {
          if (!answered) timer.refresh(); // once the answer starts, watchProgress watches
          done(null, chunk);
        },
      });
      upload.on('error', (err) => counted.destroy(err));
      options.file = upload.pipe(counted);
    }

    dial(options, (err, result) => {
      answered = true;
      clearTimeout(timer);
      if (err) {
        if (expired) return callback(expired);
        if (!callerSignal?.aborted && isConnectionLost(err)) return callback(gone(err));
        return callback(err);
      }
      if (!progress) return callback(null, result);
      callback(
        null,
        watchProgress(result as Readable, {
          stallMs: stallSeconds * 1000,
          stalled,
          failed: (e) => (callerSignal?.aborted || !isConnectionLost(e) ? e : gone(e)),
        }),
      );
    });
  };
  return docker;
}

/** The engine's connection closed before the answer was complete. */
function isConnectionLost(err: Error): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ECONNRESET' || code === 'EPIPE' || /^(aborted|socket hang up)$/i.test(err.message);
}

/** Fails early, with what to do, when no engine answers. */
async function requireEngine(docker: Dockerode, where: string): Promise<void> {
  try {
    await docker.ping();
  } catch (err) {
    if (err instanceof DockerError) throw err; // our time limit: says what happened already
    throw new DockerError(`No Docker engine answered at ${where} (${(err as Error).message}). Run the job on an agent with Docker, or set DOCKER_HOST.`, { cause: err });
  }
}

/** How a library function gets its engine: connected (and pinged) only once the inputs are checked. */
export type EngineConnector = () => Promise<Dockerode>;

/** The engine of DOCKER_HOST (or the local socket), connected on the first call and then reused, with the time limits of guardEngine. */
export function engineFromEnvironment(limits: EngineLimits): EngineConnector {
  let connected: Promise<Dockerode> | undefined;
  return () =>
    (connected ??= (async () => {
      const DockerodeClass = dockerode();
      const where = process.env.DOCKER_HOST || 'unix:///var/run/docker.sock';
      const docker = guardEngine(new DockerodeClass(), where, limits); // docker-modem reads DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH
      await requireEngine(docker, where);
      return docker;
    })());
}
