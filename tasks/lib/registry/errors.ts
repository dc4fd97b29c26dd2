// Registry answers → RegistryError: the code and message a registry or token server put in its
// answer (error body or challenge), and a message that says what went wrong and what to check.
import { RegistryError } from '../errors';
import { ImageReference, familiarName } from '../reference';
import { parseChallenges, pickChallenge } from './challenge';
import { HttpResponse, NetworkError, header, isTransientNetworkError } from '../util/http';
import { SendResult, isRetryableStatus } from '../util/http-retry';

/** What a registry said about a failure. */
export interface ErrorDetails {
  code?: string;
  message?: string;
}

/** Code and message from a registry error body ({errors:[{code,message}]}) or an OAuth2 error ({error, error_description}). */
export function errorDetails(res: HttpResponse): ErrorDetails {
  if (!res.body.length) return {};
  try {
    const json = JSON.parse(res.body.toString('utf8')) as Record<string, unknown>;
    const errors = json.errors;
    if (Array.isArray(errors) && errors.length > 0 && typeof errors[0] === 'object' && errors[0] !== null) {
      const first = errors[0] as { code?: unknown; message?: unknown };
      return { code: typeof first.code === 'string' ? first.code : undefined, message: typeof first.message === 'string' ? oneLine(first.message) : undefined };
    }
    if (typeof json.error === 'string') {
      const description = typeof json.error_description === 'string' ? json.error_description : typeof json.details === 'string' ? json.details : undefined;
      return { code: json.error.toUpperCase(), message: oneLine(description ?? json.error) };
    }
    if (typeof json.details === 'string') return { message: oneLine(json.details) };
    if (typeof json.message === 'string') return { message: oneLine(json.message) };
  } catch {
    const text = res.body.toString('utf8').trim();
    if (text && text.length < 200 && !/[<>]/.test(text)) return { message: oneLine(text) };
  }
  return {};
}

/** The challenge's `error` and `error_description` (RFC 6750), overlaid with what the body says. */
export function answerDetails(res: HttpResponse, body?: HttpResponse): ErrorDetails {
  const fromHeader = challengeError(res);
  return body ? { ...fromHeader, ...stripUndefined(errorDetails(body)) } : fromHeader;
}

function challengeError(res: HttpResponse): ErrorDetails {
  const params = pickChallenge(parseChallenges(header(res, 'www-authenticate')))?.params ?? {};
  const message = params.error_description ?? params.error?.replace(/_/g, ' ');
  return stripUndefined({ code: params.error?.toUpperCase(), message: message === undefined ? undefined : oneLine(message) });
}

/** A registry that could not be reached: refused, reset, or silent until the time limit. */
export function unreachableError(domain: string, timeoutSeconds: number, err: NetworkError, attempts: number, timedOut: boolean): RegistryError {
  const tries = `${attempts} attempt${attempts === 1 ? '' : 's'}`;
  const message =
    timedOut && err.code === 'ETIMEDOUT'
      ? `${domain} did not answer within ${timeoutSeconds} s (registryTimeoutSeconds; ${tries}). Check that the registry is up and reachable from the agent (address, network, proxy), or raise registryTimeoutSeconds if it is only slow.`
      : `could not reach ${domain} (${err.code}) after ${tries}${timedOut ? ` within ${timeoutSeconds} s (registryTimeoutSeconds)` : ''}: ${err.message}. Check the registry address and the agent's network or proxy.`;
  return new RegistryError(message, { registry: domain, code: err.code, retryable: isTransientNetworkError(err), cause: err });
}

/** A 401 for a manifest or blob: anonymous access refused, or the credential was. */
export function unauthorizedError(domain: string, ref: ImageReference, details: ErrorDetails, withCredential: boolean): RegistryError {
  const message = details.message ?? 'unauthorized';
  const code = details.code ?? 'UNAUTHORIZED';
  if (!withCredential) {
    return new RegistryError(
      `${domain} refused anonymous access to ${familiarName(ref)}: ${message}. The repository may not exist, or it needs a login: use a service connection for ${domain}.`,
      { registry: domain, status: 401, code },
    );
  }
  return new RegistryError(
    `authentication failed for ${domain}: ${message}. Check the service connection's username and password (and that it may pull ${ref.path}).`,
    { registry: domain, status: 401, code },
  );
}

export function notFoundError(domain: string, ref: ImageReference, details: ErrorDetails): RegistryError {
  const code = details.code ?? 'MANIFEST_UNKNOWN';
  const why =
    code === 'NAME_UNKNOWN' ? `the repository ${ref.path} does not exist` : code === 'BLOB_UNKNOWN' ? 'its config blob is missing' : ref.digest ? `no manifest with the digest ${ref.digest}` : `no tag '${ref.tag ?? 'latest'}'`;
  return new RegistryError(`the image ${familiarName(ref)} was not found in ${domain} (${why}). Check the name and tag, and that it was pushed.`, {
    registry: domain,
    status: 404,
    code,
  });
}

export function deniedError(domain: string, ref: ImageReference, details: ErrorDetails): RegistryError {
  return new RegistryError(
    `${domain} did not allow pulling ${familiarName(ref)}: ${details.message ?? 'access denied'}. Check that the service connection's account may pull from ${ref.path}.`,
    { registry: domain, status: 403, code: details.code ?? 'DENIED' },
  );
}

/** A token server's 401 or 403: the credential, or anonymous access, was refused. */
export function tokenRefusedError(domain: string, status: number, details: ErrorDetails, withCredential: boolean): RegistryError {
  if (withCredential) {
    return new RegistryError(
      `authentication failed for ${domain}: ${details.message ?? `its token server answered ${status}`}. Check the service connection's username and password.`,
      { registry: domain, status: 401, code: details.code ?? 'UNAUTHORIZED' },
    );
  }
  return new RegistryError(
    `${domain} refused an anonymous token (${details.message ?? status}). The repository may need a login: use a service connection for ${domain}.`,
    { registry: domain, status: 401, code: details.code ?? 'UNAUTHORIZED' },
  );
}

/** Any other status: said as it is, and for one worth retrying, that the retries ran out. */
export function statusError(domain: string, timeoutSeconds: number, sent: SendResult, what: string, details: ErrorDetails): RegistryError {
  const { res, attempts, timedOut } = sent;
  const retryable = isRetryableStatus(res.status);
  const reason = `${res.status}${details.code ? ` ${details.code}` : ''}${details.message ? `: ${details.message}` : ''}`;
  const tries = `${attempts} attempt${attempts === 1 ? '' : 's'}`;
  const message = !retryable
    ? `${domain} answered ${reason} for ${what}.`
    : timedOut
      ? `${domain} answered ${reason} for ${what}, still after ${tries} when the time limit of ${timeoutSeconds} s (registryTimeoutSeconds) ran out. The registry is overloaded or failing; try again later, or raise registryTimeoutSeconds.`
      : `${domain} answered ${reason} for ${what}, still after ${tries}. The registry is overloaded or failing; try again later.`;
  return new RegistryError(message, { registry: domain, status: res.status, code: details.code, retryable });
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim().slice(0, 300);
}
