// The Docker engine the tasks talk to: DOCKER_HOST (unix socket, tcp with DOCKER_TLS_VERIFY and
// DOCKER_CERT_PATH, ssh) as the Docker CLI reads it, else the local socket.
import type Dockerode from 'dockerode';
import { DockerError } from '../errors';
import { lazyRequire } from '../lazy';

/**
 * dockerode, loaded on first use: with ssh2 it is most of a task's start-up time, and a task that
 * fails on its inputs should fail at once.
 */
export const dockerode = lazyRequire<typeof Dockerode>(() => require('dockerode'));

/** Fails early, with what to do, when no engine answers. */
async function requireEngine(docker: Dockerode): Promise<void> {
  try {
    await docker.ping();
  } catch (err) {
    const where = process.env.DOCKER_HOST || '/var/run/docker.sock';
    throw new DockerError(`No Docker engine answered at ${where} (${(err as Error).message}). Run the job on an agent with Docker, or set DOCKER_HOST.`, { cause: err });
  }
}

/** How a library function gets its engine: connected (and pinged) only once the inputs are checked. */
export type EngineConnector = () => Promise<Dockerode>;

/** The engine of DOCKER_HOST (or the local socket), connected on the first call and then reused. */
export function engineFromEnvironment(): EngineConnector {
  let connected: Promise<Dockerode> | undefined;
  return () =>
    (connected ??= (async () => {
      const DockerodeClass = dockerode();
      const docker = new DockerodeClass(); // docker-modem reads DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH
      await requireEngine(docker);
      return docker;
    })());
}
