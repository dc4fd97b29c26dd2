// The Docker engine the tasks talk to: DOCKER_HOST (unix socket, tcp with DOCKER_TLS_VERIFY and
// DOCKER_CERT_PATH, ssh) as the Docker CLI reads it, else the local socket.
import Dockerode from 'dockerode';
import { DockerError } from '../errors';

export function connectDocker(): Dockerode {
  // docker-modem reads DOCKER_HOST, DOCKER_TLS_VERIFY and DOCKER_CERT_PATH itself.
  return new Dockerode();
}

/** Fails early, with what to do, when no engine answers. */
export async function requireEngine(docker: Dockerode): Promise<void> {
  try {
    await docker.ping();
  } catch (err) {
    const where = process.env.DOCKER_HOST || '/var/run/docker.sock';
    throw new DockerError(`No Docker engine answered at ${where} (${(err as Error).message}). Run the job on an agent with Docker, or set DOCKER_HOST.`, { cause: err });
  }
}
