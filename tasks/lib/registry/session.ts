// Authenticated requests for the registry client: one session over every registry it talks to,
// in the layers of go-containerregistry's transport (ping, basic, bearer, retry, error):
//   - the first request to a registry goes without credentials, and its 401 challenge says Basic or
//     Bearer (challenge.ts); other requests to that registry wait for that answer;
//   - Basic sends the credential on every request; Bearer gets a token for the repository's pull
//     scope from the token server (bearer.ts) and keeps it (token-cache.ts); a 401 with a cached
//     token drops it and authenticates once more;
//   - each request retries (retry.ts) and follows redirects, without Authorization on another origin;
//   - a refusal becomes a RegistryError that says what to check (errors.ts).
import type { Credential, CredentialSource } from '../auth';
import { RegistryError } from '../errors';
import { ImageReference, familiarName, registryBaseUrl } from '../reference';
import { DEFAULT_RETRY, RetryOptions } from '../util/retry';
import { tokenFromAnswer, tokenRequest } from './bearer';
import { Challenge, challengeAuth, parseChallenges, pickChallenge } from './challenge';
import { ErrorDetails, answerDetails, deniedError, errorDetails, notFoundError, statusError, tokenRefusedError, unauthorizedError, unreachableError } from './errors';
import { HttpRequest, HttpResponse, HttpTransport, header, safeUrl } from '../util/http';
import { MANIFEST_ACCEPT } from './manifest';
import { SendOptions, SendResult, sendWithRetries } from '../util/http-retry';
import { CachedToken, TokenCache } from './token-cache';

const MAX_REDIRECTS = 5;

export interface SessionOptions {
  transport: HttpTransport;
  /** The time limit's name in messages is registryTimeoutSeconds: this is its value. */
  timeoutSeconds: number;
  /** Counts every request, token request and retry (RegistryClient.stats). */
  stats: { requests: number; tokenRequests: number; retries: number };
  credentials?: CredentialSource;
  setSecret?: (secret: string) => void;
  log?: { debug(message: string): void };
  retry?: RetryOptions;
  random?: () => number;
  signal?: AbortSignal;
}

type AuthMode = 'unknown' | 'none' | 'basic' | 'bearer';

interface RegistryState {
  domain: string;
  baseUrl: string;
  mode: AuthMode;
  realm?: string;
  service?: string;
  /** The first request to a registry whose auth is unknown; the others wait for it. */
  probing?: Promise<void>;
  /** Scopes announced for pulls to come (resolveMany): a token request asks for all of them at once. */
  hintScopes: Set<string>;
}

interface SentAuth {
  kind: 'none' | 'basic' | 'bearer';
  header?: string;
  /** A token taken from the cache (a 401 then means it went stale: re-authenticate once). */
  fromCache?: boolean;
  token?: CachedToken;
}

export class RegistrySession {
  private readonly sending: SendOptions;
  private readonly registries = new Map<string, RegistryState>();
  private readonly tokens = new TokenCache();
  private readonly credentials = new Map<string, Promise<Credential | undefined>>();
  private readonly registeredSecrets = new Set<string>();

  constructor(private readonly options: SessionOptions) {
    this.sending = { retry: { ...DEFAULT_RETRY, ...options.retry }, random: options.random, signal: options.signal, log: options.log, stats: options.stats };
  }

  /**
   * Announces pulls from the repositories of `refs`: until the returned function withdraws it, a
   * token request to one of their registries asks for the scopes of all of them at once.
   */
  announce(refs: ImageReference[]): () => void {
    const announced: Array<[RegistryState, string]> = [];
    for (const ref of refs) {
      const state = this.registry(ref.domain);
      const scope = pullScope(ref);
      if (!state.hintScopes.has(scope)) {
        state.hintScopes.add(scope);
        announced.push([state, scope]);
      }
    }
    return () => {
      for (const [state, scope] of announced) state.hintScopes.delete(scope);
    };
  }

  private registry(domain: string): RegistryState {
    let state = this.registries.get(domain);
    if (!state) {
      state = { domain, baseUrl: registryBaseUrl(domain), mode: 'unknown', hintScopes: new Set() };
      this.registries.set(domain, state);
    }
    return state;
  }

  /** An authenticated request for a manifest or blob (`resource`) of the repository of `ref`. */
  async pull(ref: ImageReference, resource: string, method: 'HEAD' | 'GET', accept: string, deadline: number): Promise<HttpResponse> {
    const state = this.registry(ref.domain);
    const url = `${state.baseUrl}/v2/${ref.path}/${resource}`;
    const scope = pullScope(ref);
    const what = `${method} ${familiarName(ref)}${resource.startsWith('blobs/') ? ` (${resource})` : ''}`;
    let reauthenticated = false;
    for (;;) {
      // While the first request to a registry learns how it authenticates, the others wait.
      while (state.mode === 'unknown' && state.probing) await state.probing;
      let endProbe: (() => void) | undefined;
      if (state.mode === 'unknown') state.probing = new Promise<void>((resolve) => (endProbe = resolve));
      try {
        const auth = await this.authorization(state, scope, deadline);
        const headers: Record<string, string> = { Accept: accept };
        if (auth.header) headers.Authorization = auth.header;
        const sent = await this.request(state, { method, url, headers }, what, deadline);
        const res = sent.res;
        if (res.status >= 200 && res.status < 300) {
          if (state.mode === 'unknown') state.mode = 'none';
          return res;
        }
        if (res.status === 401) {
          const challenge = pickChallenge(parseChallenges(header(res, 'www-authenticate')));
          if (auth.kind === 'none' && challenge) {
            // Expected on first contact (or when an open registry starts asking): learn how to log in.
            this.adoptChallenge(state, challenge);
            continue;
          }
          if (auth.kind === 'bearer' && auth.fromCache && !reauthenticated && challenge) {
            // A cached token went stale or was revoked: drop it and authenticate once more.
            reauthenticated = true;
            if (auth.token) this.tokens.drop(state.realm as string, state.service, auth.token);
            this.adoptChallenge(state, challenge);
            continue;
          }
        }
        throw await this.refusal(state, ref, sent, method, auth, deadline);
      } finally {
        if (endProbe) {
          state.probing = undefined;
          endProbe();
        }
      }
    }
  }

  private adoptChallenge(state: RegistryState, challenge: Challenge): void {
    const auth = challengeAuth(state.domain, state.baseUrl, challenge);
    state.mode = auth.mode;
    state.realm = auth.mode === 'bearer' ? auth.realm : undefined;
    state.service = auth.mode === 'bearer' ? auth.service : undefined;
    this.debug(`${state.domain} wants ${auth.mode === 'bearer' ? `Bearer tokens from ${safeUrl(auth.realm)}` : 'Basic auth'}`);
  }

  private async authorization(state: RegistryState, scope: string, deadline: number): Promise<SentAuth> {
    if (state.mode === 'basic') {
      const credential = await this.credential(state.domain);
      if (!credential || !credential.password) {
        throw new RegistryError(
          `${state.domain} requires a login (Basic auth) and no credentials were found for it. Use a service connection for ${state.domain}, or log in on the agent with 'docker login'.`,
          { registry: state.domain, status: 401, code: 'UNAUTHORIZED' },
        );
      }
      return { kind: 'basic', header: `Basic ${this.basicValue(credential)}` };
    }
    if (state.mode === 'bearer') {
      const { token, fromCache } = await this.tokens.get(state.realm as string, state.service, scope, state.hintScopes, (scopes) => this.fetchToken(state, scopes, deadline));
      return { kind: 'bearer', header: `Bearer ${token.token}`, fromCache, token };
    }
    return { kind: 'none' };
  }

  private basicValue(credential: Credential): string {
    const value = Buffer.from(`${credential.username}:${credential.password}`).toString('base64');
    this.secret(value);
    return value;
  }

  private credential(domain: string): Promise<Credential | undefined> {
    let pending = this.credentials.get(domain);
    if (!pending) {
      const source = this.options.credentials;
      pending = source ? source(domain) : Promise.resolve(undefined);
      pending.then(
        (c) => this.debug(`credentials for ${domain}: ${c ? (c.identityToken ? 'identity token' : `user ${c.username}`) : 'none (anonymous)'}`),
        () => undefined,
      );
      this.credentials.set(domain, pending);
    }
    return pending;
  }

  /** A new token for `scopes` from the registry's token server (see bearer.ts). */
  private async fetchToken(state: RegistryState, scopes: string[], deadline: number): Promise<CachedToken> {
    const credential = await this.credential(state.domain);
    const realm = state.realm as string;
    if (credential && new URL(realm).protocol === 'http:' && new URL(state.baseUrl).protocol !== 'http:') {
      throw new RegistryError(
        `${state.domain} sends logins to a token server over plain HTTP (${safeUrl(realm)}); refusing to send credentials unencrypted.`,
        { registry: state.domain, status: 401, code: 'UNAUTHORIZED' },
      );
    }
    const req = tokenRequest(realm, state.service, scopes, credential, (c) => this.basicValue(c));
    this.debug(`token request to ${safeUrl(realm)} for ${scopes.length} scope(s)${credential ? '' : ' (anonymous)'}`);
    const sent = await this.request(state, req, `token for ${state.domain}`, deadline, true);
    const res = sent.res;
    if (res.status < 200 || res.status >= 300) {
      const details = errorDetails(res);
      if (res.status === 401 || res.status === 403) throw tokenRefusedError(state.domain, res.status, details, credential !== undefined);
      throw statusError(state.domain, this.options.timeoutSeconds, sent, 'a token', details);
    }
    const token = tokenFromAnswer(state.domain, res, scopes, (s) => this.secret(s));
    this.options.stats.tokenRequests++;
    return token;
  }

  /**
   * Sends a request, retrying 408/429/5xx and transient network errors, and follows redirects
   * (without the Authorization header when the origin changes), until `deadline`. Returns the last
   * response; `attempts` is how many tries the last hop took.
   */
  private async request(state: RegistryState, req: HttpRequest, what: string, deadline: number, noRedirect = false): Promise<SendResult> {
    const sending = { ...this.sending, deadline };
    const unreachable = unreachableError.bind(undefined, state.domain, this.options.timeoutSeconds);
    let current = req;
    for (let hop = 0; ; hop++) {
      const result = await sendWithRetries(this.options.transport, current, what, sending, unreachable);
      const location = header(result.res, 'location');
      if (noRedirect || hop >= MAX_REDIRECTS || ![301, 302, 303, 307, 308].includes(result.res.status) || !location) return result;
      const next = new URL(location, current.url);
      const headers = { ...current.headers };
      if (next.origin !== new URL(current.url).origin) delete headers.Authorization;
      this.debug(`${what}: redirected to ${safeUrl(next.toString())}`);
      current = { ...current, url: next.toString(), headers, method: result.res.status === 303 ? 'GET' : current.method };
    }
  }

  /** The error for a manifest or blob request that did not succeed (see errors.ts). */
  private async refusal(state: RegistryState, ref: ImageReference, sent: SendResult, method: 'HEAD' | 'GET', auth: SentAuth, deadline: number): Promise<RegistryError> {
    const res = sent.res;
    if (res.status === 401) {
      const details = await this.errorBody(res, method, deadline, auth.header);
      const credential = auth.kind === 'none' ? undefined : await this.credential(state.domain);
      return unauthorizedError(state.domain, ref, details, credential !== undefined);
    }
    if (res.status === 404) return notFoundError(state.domain, ref, await this.errorBody(res, method, deadline, auth.header));
    if (res.status === 403) return deniedError(state.domain, ref, await this.errorBody(res, method, deadline, auth.header));
    return statusError(state.domain, this.options.timeoutSeconds, sent, familiarName(ref), method === 'GET' ? errorDetails(res) : {});
  }

  /** A HEAD has no body: repeat it as a GET (once, not retried) to learn the registry's error code and message. */
  private async errorBody(res: HttpResponse, method: 'HEAD' | 'GET', deadline: number, authHeader?: string): Promise<ErrorDetails> {
    if (method === 'GET' || res.body.length > 0) return answerDetails(res, res);
    try {
      this.options.stats.requests++;
      const headers: Record<string, string> = { Accept: MANIFEST_ACCEPT };
      if (authHeader) headers.Authorization = authHeader;
      const timeoutMs = deadline - Date.now();
      if (timeoutMs <= 0) return answerDetails(res);
      const again = await this.options.transport.request({ method: 'GET', url: res.url, headers, signal: this.options.signal, timeoutMs: Math.min(timeoutMs, 30_000) });
      if (again.status === res.status) return answerDetails(res, again);
    } catch {
      // The details are a nicety; the status alone decides.
    }
    return answerDetails(res);
  }

  private secret(value: string): void {
    if (!value || this.registeredSecrets.has(value)) return;
    this.registeredSecrets.add(value);
    this.options.setSecret?.(value);
  }

  private debug(message: string): void {
    this.options.log?.debug(message);
  }
}

function pullScope(ref: ImageReference): string {
  return `repository:${ref.path}:pull`;
}
