// Registry HTTP API v2 client: resolves image references to manifest digests without Docker.
//
// Protocol (distribution spec + token auth spec):
//   1. The first request to a registry goes straight for the manifest (`HEAD /v2/<path>/manifests/
//      <tag|digest>`), without credentials. A 200 means the registry is open; a 401 carries the
//      `WWW-Authenticate` challenge, which is cached per registry. This saves the `GET /v2/` ping.
//   2. Bearer: `GET <realm>?service=…&scope=repository:<path>:pull[&scope=…]` with Basic auth when
//      a credential exists, anonymous otherwise (or the OAuth2 `POST` with `grant_type=refresh_token`
//      when the credential is an identity token). The token (`token` or `access_token`) is cached
//      per realm+service and the set of scopes it covers, until `expires_in` (default 60 s) minus a
//      margin. Basic: the `Authorization: Basic` header is sent directly on every later request.
//   3. `HEAD` with the full Accept list; the digest comes from `Docker-Content-Digest`. When that
//      header is missing, or the body is needed (platforms of an index, one platform's digest), a
//      `GET` follows and the client hashes the body itself. A body fetched for a digest reference
//      must hash to that digest.
//
// Round trips (every HTTP request counts in `stats.requests`, token requests also in
// `stats.tokenRequests`), for one reference by tag or digest:
//   - open registry: 1 (HEAD 200), every time;
//   - Bearer, very first request to the registry: 3 (HEAD 401 → token → HEAD 200);
//   - Bearer, realm known but no token for this repository yet ("cold"): 2 (token → HEAD);
//   - Bearer with a cached token, or Basic after the first request ("warm"): 1;
//   - Basic, very first request: 2 (HEAD 401 → HEAD with Basic).
//   resolveMany over N repositories of one Bearer registry: N + 2 on first contact (one token for
//   all N scopes, up to 64 scopes per token request), N + 1 once the realm is known, N when warm.
//   A failed resolve costs one more GET (HEAD has no body; the GET tells NAME_UNKNOWN from
//   MANIFEST_UNKNOWN and carries the registry's message).
//   Asking for platforms adds at most one GET for an index (and none when the GET replaces the HEAD).
//
// Retries: 408, 429 and 5xx (not 501/505) and transient network errors, with capped jittered
// backoff that honours Retry-After (see retry.ts). 401 with a cached token: the token is dropped and
// the request re-authenticated once. 403 and 404 are never retried.
//
// Time limit: one operation (a resolve, or a resolveMany as a whole) has `timeoutSeconds` (the
// tasks' registryTimeoutSeconds input, default 120) for everything it sends: probe, token, HEAD,
// GET, every retry and every wait between them. A request still running then is aborted.
//
// Secrets: every token received goes through `setSecret` before anything else happens with it;
// debug lines never contain Authorization headers, tokens or passwords.
import { createHash } from 'node:crypto';
import { RegistryError } from '../errors';
import { ImageReference, familiarName, registryBaseUrl } from '../reference';
import { Challenge, parseChallenges, pickChallenge } from './challenge';
import { HttpRequest, HttpResponse, HttpTransport, NetworkError, header, isTransientNetworkError, jsonObject, safeUrl } from '../util/http';
import { DEFAULT_RETRY, RetryOptions } from '../util/retry';
import { SendOptions, SendResult, isRetryableStatus, sendWithRetries } from '../util/http-retry';

export { isRetryableStatus } from '../util/http-retry';

/** A registry credential. For an ACR refresh token: username ACR_REFRESH_TOKEN_USERNAME, password = refresh token. */
export interface Credential {
  username: string;
  password: string;
  /**
   * An OAuth2 refresh token for the registry's token server (docker config's `identitytoken`, or a
   * credential helper answering with username `<token>`). When set, tokens are fetched with the
   * OAuth2 `POST` (grant_type=refresh_token) instead of `GET` with Basic auth.
   */
  identityToken?: string;
}

/** Username ACR expects with an ACR refresh token as the password. */
export const ACR_REFRESH_TOKEN_USERNAME = '00000000-0000-0000-0000-000000000000';

export type CredentialSource = (registryDomain: string) => Promise<Credential | undefined>;

export interface ResolvedDigest {
  /** The manifest digest: the index digest for a multi-arch image unless a platform was asked for. */
  digest: string;
  mediaType: string;
  /**
   * Platforms as 'os/arch[/variant]'. For an index whose body was fetched: every platform it
   * lists (attestation entries 'unknown/unknown' left out). For a single manifest: [] — its
   * platform lives in the config blob, which would cost another round trip (often a redirect to
   * blob storage); the engine that built the image knows it. [] also when only a HEAD was needed
   * (ask with `platforms: true`). With `platform`, the one platform chosen.
   */
  platforms: string[];
  /** For an index whose body was fetched: each platform's manifest digest ('linux/amd64' → sha256:…). */
  manifests?: Record<string, string>;
  /** The reference given, with `digest` set to the resolved digest (the tag, if any, kept). */
  reference: ImageReference;
}

export interface ResolveOptions {
  /** 'linux/amd64', 'linux/arm/v7': for an index, return that platform's manifest digest. */
  platform?: string;
  /** Fetch an index's body to list its platforms (one GET instead of, or after, the HEAD). */
  platforms?: boolean;
}

export interface RegistryClientOptions {
  credentials?: CredentialSource;
  log?: { debug(message: string): void };
  setSecret?: (secret: string) => void;
  retry?: RetryOptions;
  transport?: HttpTransport;
  signal?: AbortSignal;
  random?: () => number;
  /** Concurrency of resolveMany (default 8). */
  concurrency?: number;
  /** The time one operation may take in all, retries included (default REGISTRY_TIMEOUT_SECONDS). */
  timeoutSeconds?: number;
}

/** registryTimeoutSeconds' default in task.json: a resolve normally takes well under a second. */
export const REGISTRY_TIMEOUT_SECONDS = 120;

export const MEDIA_TYPES = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
} as const;

const SCHEMA1_MEDIA_TYPES = ['application/vnd.docker.distribution.manifest.v1+prettyjws', 'application/vnd.docker.distribution.manifest.v1+json'];

/**
 * Index types first (a multi-arch tag must resolve to its index, never to a manifest the registry
 * picked), then single manifests. Docker schema 1 is deliberately absent: its digest is not the
 * hash of the body, and Docker Hub and distribution 3 no longer serve it.
 */
export const MANIFEST_ACCEPT = [MEDIA_TYPES.ociIndex, MEDIA_TYPES.dockerManifestList, MEDIA_TYPES.ociManifest, MEDIA_TYPES.dockerManifest].join(', ');

export function isIndexMediaType(mediaType: string | undefined): boolean {
  return mediaType === MEDIA_TYPES.ociIndex || mediaType === MEDIA_TYPES.dockerManifestList;
}

/** Most scopes asked for in one token request: 64 keeps the URL near 4 KB, below the 8 KB many front ends allow. */
const MAX_SCOPES_PER_TOKEN = 64;
/** Tokens are dropped this long before they expire (at most a quarter of their life). */
const TOKEN_EXPIRY_MARGIN_MS = 10_000;
const MAX_REDIRECTS = 5;
const CLIENT_ID = 'container-outer-loop';

type AuthMode = 'unknown' | 'none' | 'basic' | 'bearer';

interface RegistryState {
  domain: string;
  baseUrl: string;
  mode: AuthMode;
  realm?: string;
  service?: string;
  /** The first request to a registry whose auth is unknown; the others wait for it. */
  probing?: Promise<void>;
  /** Scopes resolveMany will need: a token request asks for all of them at once. */
  hintScopes: Set<string>;
}

interface CachedToken {
  scopes: Set<string>;
  token: string;
  expiresAt: number;
}

interface SentAuth {
  kind: 'none' | 'basic' | 'bearer';
  header?: string;
  /** A token taken from the cache (a 401 then means it went stale: re-authenticate once). */
  fromCache?: boolean;
  token?: CachedToken;
}

export class RegistryClient {
  readonly stats = { requests: 0, tokenRequests: 0, retries: 0 };

  private readonly transport: HttpTransport;
  private readonly ownTransport: boolean;
  private readonly sending: SendOptions;
  private readonly timeoutSeconds: number;
  private readonly registries = new Map<string, RegistryState>();
  private readonly tokens = new Map<string, CachedToken[]>();
  private readonly pendingTokens = new Map<string, { scopes: Set<string>; promise: Promise<CachedToken> }[]>();
  private readonly credentials = new Map<string, Promise<Credential | undefined>>();
  private readonly registeredSecrets = new Set<string>();

  constructor(private readonly options: RegistryClientOptions = {}) {
    this.transport = options.transport ?? new HttpTransport();
    this.ownTransport = options.transport === undefined;
    this.sending = { retry: { ...DEFAULT_RETRY, ...options.retry }, random: options.random, signal: options.signal, log: options.log, stats: this.stats };
    this.timeoutSeconds = options.timeoutSeconds ?? REGISTRY_TIMEOUT_SECONDS;
  }

  private deadline(): number {
    return Date.now() + this.timeoutSeconds * 1000;
  }

  /**
   * Digest of the manifest a reference points at (tag or digest; no tag means 'latest').
   * Multi-arch: the index digest, unless `platform` is given, then that platform's manifest digest.
   */
  resolve(ref: ImageReference, options: ResolveOptions = {}): Promise<ResolvedDigest> {
    return this.resolveBefore(ref, options, this.deadline());
  }

  private async resolveBefore(ref: ImageReference, options: ResolveOptions, deadline: number): Promise<ResolvedDigest> {
    const state = this.registry(ref.domain);
    const reference = ref.digest ?? ref.tag ?? 'latest';
    const wantBody = options.platform !== undefined || options.platforms === true;
    // Docker Hub counts manifest GETs (not HEADs) against its pull rate limit: HEAD first there,
    // and GET only when the HEAD shows an index. Elsewhere a GET replaces the HEAD when the body is wanted.
    let method: 'HEAD' | 'GET' = wantBody && state.domain !== 'docker.io' ? 'GET' : 'HEAD';
    let res = await this.manifestRequest(state, ref, reference, method, deadline);
    let headerDigest = header(res, 'docker-content-digest')?.trim();
    let mediaType = contentType(res);
    if (method === 'HEAD' && (!headerDigest || (wantBody && (isIndexMediaType(mediaType) || !mediaType)))) {
      method = 'GET';
      res = await this.manifestRequest(state, ref, reference, method, deadline);
      const again = header(res, 'docker-content-digest')?.trim();
      if (headerDigest && again && again !== headerDigest) {
        throw new RegistryError(`${state.domain} changed ${familiarName(ref)} while it was being resolved (${headerDigest}, then ${again}). Run again.`, {
          registry: state.domain,
          code: 'DIGEST_CHANGED',
          retryable: true,
        });
      }
      headerDigest = again ?? headerDigest;
      mediaType = contentType(res) ?? mediaType;
    }

    let body: ManifestBody | undefined;
    let digest: string;
    if (method === 'GET') {
      body = jsonObject(res) as ManifestBody | undefined;
      mediaType = body?.mediaType ?? mediaType ?? (Array.isArray(body?.manifests) ? MEDIA_TYPES.ociIndex : undefined);
      const algorithm = (ref.digest ?? headerDigest ?? 'sha256:').split(':')[0];
      digest = computeDigest(algorithm, res.body);
      if (headerDigest && headerDigest.split(':')[0] === algorithm && headerDigest !== digest) {
        throw new RegistryError(
          `${state.domain} sent content for ${familiarName(ref)} that does not match its Docker-Content-Digest (${headerDigest}, content hashes to ${digest}). Check for a proxy that alters responses.`,
          { registry: state.domain, code: 'DIGEST_INVALID' },
        );
      }
    } else {
      digest = headerDigest as string;
    }
    if (ref.digest && digest !== ref.digest) {
      throw new RegistryError(`${state.domain} answered for ${familiarName(ref)} with a manifest whose digest is ${digest}. The registry or a proxy is not trustworthy.`, {
        registry: state.domain,
        code: 'DIGEST_INVALID',
      });
    }
    if (mediaType && SCHEMA1_MEDIA_TYPES.includes(mediaType)) {
      throw new RegistryError(
        `${familiarName(ref)} in ${state.domain} is stored in the deprecated Docker schema 1 format, which has no stable digest. Pull and push it again with a current Docker to convert it.`,
        { registry: state.domain, code: 'MANIFEST_INVALID' },
      );
    }
    mediaType = mediaType ?? MEDIA_TYPES.dockerManifest;

    if (isIndexMediaType(mediaType) && body) {
      const entries = (Array.isArray(body.manifests) ? body.manifests : []).filter(
        (m): m is IndexEntry => typeof m === 'object' && m !== null && typeof (m as { digest?: unknown }).digest === 'string',
      );
      const listed = entries.filter((m) => m.platform && m.platform.os !== 'unknown' && m.platform.architecture !== 'unknown');
      if (options.platform !== undefined) {
        const chosen = pickPlatform(listed, options.platform);
        if (!chosen) {
          const available = listed.map((m) => platformString(m.platform as Platform)).join(', ') || 'none';
          throw new RegistryError(`${familiarName(ref)} in ${state.domain} has no image for the platform ${options.platform} (it has: ${available}).`, {
            registry: state.domain,
            code: 'MANIFEST_UNKNOWN',
          });
        }
        return {
          digest: chosen.digest,
          mediaType: chosen.mediaType ?? MEDIA_TYPES.ociManifest,
          platforms: [platformString(chosen.platform as Platform)],
          reference: { ...ref, digest: chosen.digest },
        };
      }
      const manifests = Object.fromEntries(listed.map((m) => [platformString(m.platform as Platform), m.digest]));
      return { digest, mediaType, platforms: unique(listed.map((m) => platformString(m.platform as Platform))), manifests, reference: { ...ref, digest } };
    }
    // A single manifest: its platform would need the config blob (see ResolvedDigest.platforms).
    return { digest, mediaType, platforms: [], reference: { ...ref, digest } };
  }

  /**
   * Resolves many references concurrently (bounded, default 8), in the order given. For each
   * registry that wants Bearer, one token request asks for the scopes of all its references.
   * When any reference fails, the others still finish, then the first failure (in input order) is thrown.
   */
  async resolveMany(refs: ImageReference[], options: { concurrency?: number } & ResolveOptions = {}): Promise<ResolvedDigest[]> {
    const concurrency = Math.max(1, options.concurrency ?? this.options.concurrency ?? 8);
    const hinted: Array<[RegistryState, string]> = [];
    for (const ref of refs) {
      const state = this.registry(ref.domain);
      const scope = pullScope(ref);
      if (!state.hintScopes.has(scope)) {
        state.hintScopes.add(scope);
        hinted.push([state, scope]);
      }
    }
    const results: Array<ResolvedDigest | undefined> = new Array(refs.length);
    const errors: Array<unknown> = new Array(refs.length);
    let failed = false;
    let next = 0;
    const deadline = this.deadline(); // one operation: a hanging registry fails them all within the limit
    const worker = async () => {
      while (next < refs.length) {
        const i = next++;
        try {
          results[i] = await this.resolveBefore(refs[i], { platform: options.platform, platforms: options.platforms }, deadline);
        } catch (err) {
          errors[i] = err;
          failed = true;
        }
      }
    };
    try {
      await Promise.all(Array.from({ length: Math.min(concurrency, refs.length) }, worker));
    } finally {
      for (const [state, scope] of hinted) state.hintScopes.delete(scope);
    }
    if (failed) throw errors.find((e) => e !== undefined);
    return results as ResolvedDigest[];
  }

  /**
   * The labels of an image (`config.Labels` of its config blob), read without pulling it: the
   * manifest, for an index the manifest of `platform` (default: the first platform it lists; one
   * build labels every platform alike), then the config blob, whose content must hash to the digest
   * the manifest names. Three GETs at most, plus authentication.
   */
  async imageLabels(ref: ImageReference, options: { platform?: string } = {}): Promise<Record<string, string>> {
    const state = this.registry(ref.domain);
    const deadline = this.deadline(); // the manifest, the platform's and the config blob: one operation
    let manifest = await this.manifestBody(state, ref, ref.digest ?? ref.tag ?? 'latest', deadline);
    if (Array.isArray(manifest.manifests)) {
      const listed = (manifest.manifests as IndexEntry[]).filter((m) => m && typeof m.digest === 'string' && m.platform && m.platform.os !== 'unknown' && m.platform.architecture !== 'unknown');
      const chosen = options.platform ? pickPlatform(listed, options.platform) : listed[0];
      if (!chosen) {
        throw new RegistryError(`${familiarName(ref)} in ${state.domain} is an index with no image${options.platform ? ` for the platform ${options.platform}` : ''}.`, { registry: state.domain, code: 'MANIFEST_UNKNOWN' });
      }
      manifest = await this.manifestBody(state, ref, chosen.digest, deadline);
    }
    const config = manifest.config as { digest?: unknown } | undefined;
    if (typeof config?.digest !== 'string' || !/^sha(256|512):[a-f0-9]+$/.test(config.digest)) {
      throw new RegistryError(`the manifest of ${familiarName(ref)} in ${state.domain} names no config blob.`, { registry: state.domain, code: 'MANIFEST_INVALID' });
    }
    const res = await this.pullRequest(state, ref, `blobs/${config.digest}`, 'GET', '*/*', deadline);
    if (computeDigest(config.digest.split(':')[0], res.body) !== config.digest) {
      throw new RegistryError(`${state.domain} sent a config blob for ${familiarName(ref)} that does not hash to ${config.digest}. Check for a proxy that alters responses.`, { registry: state.domain, code: 'DIGEST_INVALID' });
    }
    const labels = (jsonObject(res)?.config as { Labels?: unknown } | undefined)?.Labels;
    if (typeof labels !== 'object' || labels === null) return {};
    return Object.fromEntries(Object.entries(labels).filter((e): e is [string, string] => typeof e[1] === 'string'));
  }

  /** A manifest's JSON body; a digest reference must match what was sent. */
  private async manifestBody(state: RegistryState, ref: ImageReference, reference: string, deadline: number): Promise<ManifestBody & Record<string, unknown>> {
    const res = await this.manifestRequest(state, ref, reference, 'GET', deadline);
    if (reference.includes(':') && computeDigest(reference.split(':')[0], res.body) !== reference) {
      throw new RegistryError(`${state.domain} answered for ${familiarName(ref)}@${reference} with a manifest of another digest. The registry or a proxy is not trustworthy.`, { registry: state.domain, code: 'DIGEST_INVALID' });
    }
    const body = jsonObject(res);
    if (!body) throw new RegistryError(`the manifest of ${familiarName(ref)} in ${state.domain} is not JSON.`, { registry: state.domain, code: 'MANIFEST_INVALID' });
    return body as ManifestBody & Record<string, unknown>;
  }

  /** Closes idle keep-alive connections (of the client's own transport). */
  close(): void {
    if (this.ownTransport) this.transport.close();
  }

  // -------------------------------------------------------------------------------------------
  // Manifest requests with authentication

  private registry(domain: string): RegistryState {
    let state = this.registries.get(domain);
    if (!state) {
      state = { domain, baseUrl: registryBaseUrl(domain), mode: 'unknown', hintScopes: new Set() };
      this.registries.set(domain, state);
    }
    return state;
  }

  private manifestRequest(state: RegistryState, ref: ImageReference, reference: string, method: 'HEAD' | 'GET', deadline: number): Promise<HttpResponse> {
    return this.pullRequest(state, ref, `manifests/${reference}`, method, MANIFEST_ACCEPT, deadline);
  }

  /** An authenticated request for a manifest or blob (`resource`) of the repository of `ref`. */
  private async pullRequest(state: RegistryState, ref: ImageReference, resource: string, method: 'HEAD' | 'GET', accept: string, deadline: number): Promise<HttpResponse> {
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
            if (auth.token) this.dropToken(state, auth.token);
            this.adoptChallenge(state, challenge);
            continue;
          }
          throw await this.authError(state, ref, res, method, auth, deadline);
        }
        throw await this.statusError(state, ref, sent, method, deadline, auth.header);
      } finally {
        if (endProbe) {
          state.probing = undefined;
          endProbe();
        }
      }
    }
  }

  private adoptChallenge(state: RegistryState, challenge: Challenge): void {
    if (challenge.scheme === 'bearer') {
      const realm = challenge.params.realm;
      if (!realm) {
        throw new RegistryError(`${state.domain} asked for a Bearer token without naming a token server (no realm in WWW-Authenticate).`, {
          registry: state.domain,
          status: 401,
          code: 'UNAUTHORIZED',
        });
      }
      let realmUrl: URL;
      try {
        realmUrl = new URL(realm, state.baseUrl);
      } catch {
        throw new RegistryError(`${state.domain} named a token server that is not a URL: '${realm}'.`, { registry: state.domain, status: 401, code: 'UNAUTHORIZED' });
      }
      if (realmUrl.protocol !== 'https:' && realmUrl.protocol !== 'http:') {
        throw new RegistryError(`${state.domain} named a token server with an unsupported scheme: '${realmUrl.protocol}'.`, { registry: state.domain, status: 401 });
      }
      state.mode = 'bearer';
      state.realm = realmUrl.toString();
      state.service = challenge.params.service;
    } else {
      state.mode = 'basic';
      state.realm = undefined;
      state.service = undefined;
    }
    this.debug(`${state.domain} wants ${state.mode === 'bearer' ? `Bearer tokens from ${safeUrl(state.realm as string)}` : 'Basic auth'}`);
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
      const { token, fromCache } = await this.token(state, scope, deadline);
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

  // -------------------------------------------------------------------------------------------
  // Tokens

  private tokenKey(state: RegistryState): string {
    return `${state.realm}\n${state.service ?? ''}`;
  }

  private async token(state: RegistryState, scope: string, deadline: number): Promise<{ token: CachedToken; fromCache: boolean }> {
    const key = this.tokenKey(state);
    const now = Date.now();
    const cached = this.tokens.get(key)?.find((t) => t.scopes.has(scope) && t.expiresAt > now);
    if (cached) return { token: cached, fromCache: true };
    const pending = this.pendingTokens.get(key)?.find((p) => p.scopes.has(scope));
    if (pending) return { token: await pending.promise, fromCache: false };

    // Ask for every scope resolveMany announced for this registry that no valid token covers yet.
    const scopes = new Set<string>([scope]);
    if (state.hintScopes.has(scope)) {
      const valid = this.tokens.get(key)?.filter((t) => t.expiresAt > now) ?? [];
      const inFlight = this.pendingTokens.get(key) ?? [];
      for (const s of state.hintScopes) {
        if (scopes.size >= MAX_SCOPES_PER_TOKEN) break;
        if (!valid.some((t) => t.scopes.has(s)) && !inFlight.some((p) => p.scopes.has(s))) scopes.add(s);
      }
    }
    const entry = { scopes, promise: this.fetchToken(state, [...scopes], deadline) };
    const list = this.pendingTokens.get(key) ?? [];
    list.push(entry);
    this.pendingTokens.set(key, list);
    try {
      const token = await entry.promise;
      const live = (this.tokens.get(key) ?? []).filter((t) => t.expiresAt > Date.now());
      live.push(token);
      this.tokens.set(key, live);
      return { token, fromCache: false };
    } finally {
      const remaining = (this.pendingTokens.get(key) ?? []).filter((p) => p !== entry);
      if (remaining.length) this.pendingTokens.set(key, remaining);
      else this.pendingTokens.delete(key);
    }
  }

  private dropToken(state: RegistryState, token: CachedToken): void {
    const key = this.tokenKey(state);
    const list = (this.tokens.get(key) ?? []).filter((t) => t !== token);
    if (list.length) this.tokens.set(key, list);
    else this.tokens.delete(key);
  }

  private async fetchToken(state: RegistryState, scopes: string[], deadline: number): Promise<CachedToken> {
    const credential = await this.credential(state.domain);
    const realm = new URL(state.realm as string);
    if (credential && realm.protocol === 'http:' && new URL(state.baseUrl).protocol !== 'http:') {
      throw new RegistryError(
        `${state.domain} sends logins to a token server over plain HTTP (${safeUrl(realm.toString())}); refusing to send credentials unencrypted.`,
        { registry: state.domain, status: 401, code: 'UNAUTHORIZED' },
      );
    }
    let req: HttpRequest;
    if (credential?.identityToken) {
      const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: credential.identityToken, client_id: CLIENT_ID, scope: scopes.join(' ') });
      if (state.service) form.set('service', state.service);
      req = {
        method: 'POST',
        url: realm.toString(),
        headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' },
        body: form.toString(),
      };
    } else {
      if (state.service) realm.searchParams.set('service', state.service);
      for (const s of scopes) realm.searchParams.append('scope', s);
      const headers: Record<string, string> = { Accept: 'application/json' };
      if (credential && credential.password) {
        realm.searchParams.set('account', credential.username);
        headers.Authorization = `Basic ${this.basicValue(credential)}`;
      }
      req = { method: 'GET', url: realm.toString(), headers };
    }
    this.debug(`token request to ${safeUrl(state.realm as string)} for ${scopes.length} scope(s)${credential ? '' : ' (anonymous)'}`);
    const sent = await this.request(state, req, `token for ${state.domain}`, deadline, true);
    const res = sent.res;
    if (res.status < 200 || res.status >= 300) {
      const details = errorDetails(res);
      if (res.status === 401 || res.status === 403) {
        if (credential) {
          throw new RegistryError(
            `authentication failed for ${state.domain}: ${details.message ?? `its token server answered ${res.status}`}. Check the service connection's username and password.`,
            { registry: state.domain, status: 401, code: details.code ?? 'UNAUTHORIZED' },
          );
        }
        throw new RegistryError(
          `${state.domain} refused an anonymous token (${details.message ?? res.status}). The repository may need a login: use a service connection for ${state.domain}.`,
          { registry: state.domain, status: 401, code: details.code ?? 'UNAUTHORIZED' },
        );
      }
      throw this.exhaustedOrStatus(state, sent, `a token`, details);
    }
    const json = jsonObject(res);
    if (!json) throw new RegistryError(`the token server of ${state.domain} answered with something that is not JSON.`, { registry: state.domain, status: res.status });
    const token = typeof json.token === 'string' && json.token ? json.token : typeof json.access_token === 'string' ? json.access_token : '';
    if (token) this.secret(token);
    if (typeof json.refresh_token === 'string' && json.refresh_token) this.secret(json.refresh_token);
    if (!token) {
      throw new RegistryError(`the token server of ${state.domain} answered without a token.`, { registry: state.domain, status: res.status, code: 'UNAUTHORIZED' });
    }
    this.stats.tokenRequests++;
    const expiresIn = Number(json.expires_in);
    const lifeMs = (Number.isFinite(expiresIn) && expiresIn > 0 ? expiresIn : 60) * 1000;
    const margin = Math.min(TOKEN_EXPIRY_MARGIN_MS, lifeMs / 4);
    return { scopes: new Set(scopes), token, expiresAt: Date.now() + lifeMs - margin };
  }

  // -------------------------------------------------------------------------------------------
  // Transport with retries and redirects

  /**
   * Sends a request, retrying 408/429/5xx and transient network errors, and follows redirects
   * (without the Authorization header when the origin changes), until `deadline`. Returns the last
   * response; `attempts` is how many tries the last hop took.
   */
  private async request(state: RegistryState, req: HttpRequest, what: string, deadline: number, noRedirect = false): Promise<SendResult> {
    const unreachable = (err: NetworkError, attempts: number, timedOut: boolean) => {
      const tries = `${attempts} attempt${attempts === 1 ? '' : 's'}`;
      const message =
        timedOut && err.code === 'ETIMEDOUT'
          ? `${state.domain} did not answer within ${this.timeoutSeconds} s (registryTimeoutSeconds; ${tries}). Check that the registry is up and reachable from the agent (address, network, proxy), or raise registryTimeoutSeconds if it is only slow.`
          : `could not reach ${state.domain} (${err.code}) after ${tries}${timedOut ? ` within ${this.timeoutSeconds} s (registryTimeoutSeconds)` : ''}: ${err.message}. Check the registry address and the agent's network or proxy.`;
      return new RegistryError(message, { registry: state.domain, code: err.code, retryable: isTransientNetworkError(err), cause: err });
    };
    const sending = { ...this.sending, deadline };
    let current = req;
    for (let hop = 0; ; hop++) {
      const result = await sendWithRetries(this.transport, current, what, sending, unreachable);
      const location = header(result.res, 'location');
      if (noRedirect || hop >= MAX_REDIRECTS || ![301, 302, 303, 307, 308].includes(result.res.status) || !location) return result;
      const next = new URL(location, current.url);
      const headers = { ...current.headers };
      if (next.origin !== new URL(current.url).origin) delete headers.Authorization;
      this.debug(`${what}: redirected to ${safeUrl(next.toString())}`);
      current = { ...current, url: next.toString(), headers, method: result.res.status === 303 ? 'GET' : current.method };
    }
  }

  // -------------------------------------------------------------------------------------------
  // Errors

  /** A HEAD has no body: repeat it as a GET (once, not retried) to learn the registry's error code and message. */
  private async errorBody(res: HttpResponse, method: 'HEAD' | 'GET', deadline: number, authHeader?: string): Promise<{ code?: string; message?: string }> {
    const fromHeader = challengeError(res);
    if (method === 'GET' || res.body.length > 0) return { ...fromHeader, ...stripUndefined(errorDetails(res)) };
    try {
      this.stats.requests++;
      const headers: Record<string, string> = { Accept: MANIFEST_ACCEPT };
      if (authHeader) headers.Authorization = authHeader;
      const timeoutMs = deadline - Date.now();
      if (timeoutMs <= 0) return fromHeader;
      const again = await this.transport.request({ method: 'GET', url: res.url, headers, signal: this.options.signal, timeoutMs: Math.min(timeoutMs, 30_000) });
      if (again.status === res.status) return { ...fromHeader, ...stripUndefined(errorDetails(again)) };
    } catch {
      // The details are a nicety; the status alone decides.
    }
    return fromHeader;
  }

  private async authError(
    state: RegistryState,
    ref: ImageReference,
    res: HttpResponse,
    method: 'HEAD' | 'GET',
    auth: SentAuth,
    deadline: number,
  ): Promise<RegistryError> {
    const details = await this.errorBody(res, method, deadline, auth.header);
    const message = details.message ?? 'unauthorized';
    const code = details.code ?? 'UNAUTHORIZED';
    const credential = auth.kind === 'none' ? undefined : await this.credential(state.domain);
    if (!credential) {
      return new RegistryError(
        `${state.domain} refused anonymous access to ${familiarName(ref)}: ${message}. The repository may not exist, or it needs a login: use a service connection for ${state.domain}.`,
        { registry: state.domain, status: 401, code },
      );
    }
    return new RegistryError(
      `authentication failed for ${state.domain}: ${message}. Check the service connection's username and password (and that it may pull ${ref.path}).`,
      { registry: state.domain, status: 401, code },
    );
  }

  private async statusError(
    state: RegistryState,
    ref: ImageReference,
    sent: SendResult,
    method: 'HEAD' | 'GET',
    deadline: number,
    authHeader?: string,
  ): Promise<RegistryError> {
    const res = sent.res;
    const image = familiarName(ref);
    if (res.status === 404) {
      const details = await this.errorBody(res, method, deadline, authHeader);
      const code = details.code ?? 'MANIFEST_UNKNOWN';
      const why =
        code === 'NAME_UNKNOWN' ? `the repository ${ref.path} does not exist` : code === 'BLOB_UNKNOWN' ? 'its config blob is missing' : ref.digest ? `no manifest with the digest ${ref.digest}` : `no tag '${ref.tag ?? 'latest'}'`;
      return new RegistryError(`the image ${image} was not found in ${state.domain} (${why}). Check the name and tag, and that it was pushed.`, {
        registry: state.domain,
        status: 404,
        code,
      });
    }
    if (res.status === 403) {
      const details = await this.errorBody(res, method, deadline, authHeader);
      return new RegistryError(
        `${state.domain} did not allow pulling ${image}: ${details.message ?? 'access denied'}. Check that the service connection's account may pull from ${ref.path}.`,
        { registry: state.domain, status: 403, code: details.code ?? 'DENIED' },
      );
    }
    return this.exhaustedOrStatus(state, sent, image, method === 'GET' ? errorDetails(res) : {});
  }

  private exhaustedOrStatus(state: RegistryState, sent: SendResult, what: string, details: { code?: string; message?: string }): RegistryError {
    const { res, attempts, timedOut } = sent;
    const retryable = isRetryableStatus(res.status);
    const reason = `${res.status}${details.code ? ` ${details.code}` : ''}${details.message ? `: ${details.message}` : ''}`;
    const tries = `${attempts} attempt${attempts === 1 ? '' : 's'}`;
    const message = !retryable
      ? `${state.domain} answered ${reason} for ${what}.`
      : timedOut
        ? `${state.domain} answered ${reason} for ${what}, still after ${tries} when the time limit of ${this.timeoutSeconds} s (registryTimeoutSeconds) ran out. The registry is overloaded or failing; try again later, or raise registryTimeoutSeconds.`
        : `${state.domain} answered ${reason} for ${what}, still after ${tries}. The registry is overloaded or failing; try again later.`;
    return new RegistryError(message, { registry: state.domain, status: res.status, code: details.code, retryable });
  }

  // -------------------------------------------------------------------------------------------

  private secret(value: string): void {
    if (!value || this.registeredSecrets.has(value)) return;
    this.registeredSecrets.add(value);
    this.options.setSecret?.(value);
  }

  private debug(message: string): void {
    this.options.log?.debug(message);
  }
}

// ---------------------------------------------------------------------------------------------
// Helpers

export function pullScope(ref: ImageReference): string {
  return `repository:${ref.path}:pull`;
}

export function computeDigest(algorithm: string, body: Buffer): string {
  const name = algorithm === 'sha512' ? 'sha512' : 'sha256';
  return `${name}:${createHash(name).update(body).digest('hex')}`;
}

interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

interface IndexEntry {
  digest: string;
  mediaType?: string;
  platform?: Platform;
}

interface ManifestBody {
  mediaType?: string;
  manifests?: unknown[];
}

function contentType(res: HttpResponse): string | undefined {
  const value = header(res, 'content-type')?.split(';')[0].trim();
  // Some registries answer a generic type on HEAD; only manifest types say anything.
  return value && value.startsWith('application/vnd.') ? value : undefined;
}

export function platformString(p: Platform): string {
  return [p.os, p.architecture, p.variant].filter(Boolean).join('/');
}

/** Default variants, as containerd's platforms.Normalize: arm64 is v8, arm is v7. */
function normalizePlatform(p: Platform): Platform {
  const arch = p.architecture === 'aarch64' ? 'arm64' : p.architecture === 'x86_64' ? 'amd64' : p.architecture;
  let variant = p.variant;
  if (arch === 'arm64' && !variant) variant = 'v8';
  if (arch === 'arm' && !variant) variant = 'v7';
  return { os: p.os.toLowerCase(), architecture: arch, variant };
}

/** The entry of an index for 'os/arch[/variant]'; without a variant, the default variant first, then any. */
export function pickPlatform<T extends { platform?: Platform }>(entries: T[], wanted: string): T | undefined {
  const [os, architecture, variant] = wanted.split('/');
  if (!os || !architecture) return undefined;
  const want = normalizePlatform({ os, architecture, variant });
  const candidates = entries.filter((e) => {
    if (!e.platform) return false;
    const have = normalizePlatform(e.platform);
    return have.os === want.os && have.architecture === want.architecture;
  });
  return (
    candidates.find((e) => normalizePlatform(e.platform as Platform).variant === want.variant) ??
    (variant === undefined ? candidates[0] : undefined)
  );
}

function unique(values: string[]): string[] {
  return [...new Set(values)];
}

/** Code and message from a registry error body ({errors:[{code,message}]}) or an OAuth2 error ({error, error_description}). */
export function errorDetails(res: HttpResponse): { code?: string; message?: string } {
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

/** Code and message from the challenge's `error` and `error_description` (RFC 6750), when it has them. */
function challengeError(res: HttpResponse): { code?: string; message?: string } {
  const params = pickChallenge(parseChallenges(header(res, 'www-authenticate')))?.params ?? {};
  const message = params.error_description ?? params.error?.replace(/_/g, ' ');
  return stripUndefined({ code: params.error?.toUpperCase(), message: message === undefined ? undefined : oneLine(message) });
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim().slice(0, 300);
}
