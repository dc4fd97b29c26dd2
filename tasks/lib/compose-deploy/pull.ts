// Pulls every pinned image on the target through the Engine API, the credentials in the
// X-Registry-Auth header of each request: the engine uses them for that pull and keeps nothing, so
// no password is ever written on the target host (no `docker login` there, no config.json). An
// image the engine already has under that digest is not pulled again.
import type Dockerode from 'dockerode';
import { unlessMissing } from '../docker/missing';
import { registryAuthHeader, type CredentialSource } from '../auth';
import type { TaskContext } from '../context';
import { isRegistryAuthFailure } from '../docker/stream';
import { transferWithRetries } from '../docker/transfer';
import { DockerError, RegistryError } from '../errors';
import { abortError } from '../util/abort';
import { parseReference } from '../reference';

const PULL_ATTEMPTS = 3;

export interface PullResult {
  pulled: string[];
  present: string[];
}

export async function pullImages(
  docker: Dockerode,
  refs: string[],
  credentials: CredentialSource,
  limits: { registryTimeoutSeconds: number },
  ctx: Pick<TaskContext, 'info' | 'debug' | 'setSecret' | 'signal'>,
): Promise<PullResult> {
  const result: PullResult = { pulled: [], present: [] };
  for (const ref of [...new Set(refs)]) {
    if (ctx.signal.aborted) throw abortError(ctx.signal);
    if (await hasImage(docker, ref)) {
      result.present.push(ref);
      ctx.debug(`${ref} is already on the target.`);
      continue;
    }
    const parsed = parseReference(ref, 'A pinned image');
    const credential = await credentials(parsed.domain);
    // dockerode sends `key` as X-Registry-Auth as it is; registryAuthHeader has registered every form of it.
    const authconfig = { key: registryAuthHeader(credential, parsed.domain, (s) => ctx.setSecret(s)) };
    ctx.info(`Pulling ${ref}${credential ? ` (as ${credential.username || 'token'})` : ''}`);
    try {
      await transferWithRetries({
        what: `Pulling ${ref}`,
        registry: parsed.domain,
        timeoutSeconds: limits.registryTimeoutSeconds,
        attempts: PULL_ATTEMPTS,
        baseDelayMs: 1_000,
        signal: ctx.signal,
        log: { warn: (m) => ctx.debug(m), debug: (m) => ctx.debug(m) },
        start: async (signal) => (await docker.createImage(authconfig as unknown as Dockerode.AuthConfig, { fromImage: ref, abortSignal: signal } as object)) as NodeJS.ReadableStream,
      });
    } catch (err) {
      if (ctx.signal.aborted) throw abortError(ctx.signal);
      if (err instanceof RegistryError) throw err; // retries ran out: the message says it all
      const text = ((err as Error).message ?? String(err)).replace(/^Pulling [^ ]+ failed: /, '');
      const hint = isRegistryAuthFailure(text)
        ? ` The registry refused the credentials${credential ? '' : ' (none were found for it)'}: set containerRegistry to a service connection that may pull from ${parsed.domain}.`
        : /not found|manifest unknown/i.test(text)
          ? ' The digest is not in the registry: was the lock written by a push to this registry, and has the image been deleted since?'
          : '';
      throw new DockerError(`Pulling ${ref} on the target failed: ${text}.${hint}`, { cause: err });
    }
    if (!(await hasImage(docker, ref))) throw new DockerError(`The target reported pulling ${ref}, but does not have it afterwards.`);
    result.pulled.push(ref);
  }
  return result;
}

export async function hasImage(docker: Dockerode, ref: string): Promise<boolean> {
  try {
    return (await unlessMissing(docker.getImage(ref).inspect())) !== undefined;
  } catch (err) {
    throw new DockerError(`Inspecting ${ref} on the target failed: ${(err as Error).message}`, { cause: err });
  }
}
