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
// tasks' registryTimeoutSeconds input, else REGISTRY_TIMEOUT_SECONDS) for everything it sends: probe, token, HEAD,
// GET, every retry and every wait between them. A request still running then is aborted.
//
// Secrets: every token received goes through `setSecret` before anything else happens with it;
// debug lines never contain Authorization headers, tokens or passwords.
//
// This file holds the operations (resolve, resolveMany, imageLabels) and their manifest checks.
// session.ts sends their requests (steps 1 and 2, retries, redirects), on challenge.ts, bearer.ts,
// token-cache.ts, retry.ts and errors.ts; manifest.ts knows media types, digests and platforms.
import type { CredentialSource } from '../auth';
import { RegistryError } from '../errors';
import { DOCKER_HUB_DOMAIN, ImageReference, familiarName } from '../reference';
import type { RetryOptions } from '../util/retry';
import { HttpResponse, HttpTransport, header, jsonObject } from '../util/http';
import { MANIFEST_ACCEPT, MEDIA_TYPES, ManifestBody, computeDigest, contentType, isIndexMediaType, isSchema1MediaType, listedImages, pickPlatform, platformString } from './manifest';
import { RegistrySession } from './session';

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
  /** The time one operation may take in all, retries included: the registryTimeoutSeconds input where the task has it, else REGISTRY_TIMEOUT_SECONDS. */
  timeoutSeconds?: number;
}

/**
 * The time limit of a client whose caller has no registryTimeoutSeconds input (KubernetesDeploy's
 * promotion diff, the local runner): a resolve normally takes well under a second.
 */
const REGISTRY_TIMEOUT_SECONDS = 120;

export class RegistryClient {
  readonly stats = { requests: 0, tokenRequests: 0, retries: 0 };

  private readonly transport: HttpTransport;
  private readonly ownTransport: boolean;
  private readonly session: RegistrySession;
  private readonly timeoutSeconds: number;

  constructor(private readonly options: RegistryClientOptions = {}) {
    this.transport = options.transport ?? new HttpTransport();
    this.ownTransport = options.transport === undefined;
    this.timeoutSeconds = options.timeoutSeconds ?? REGISTRY_TIMEOUT_SECONDS;
    this.session = new RegistrySession({ ...options, transport: this.transport, timeoutSeconds: this.timeoutSeconds, stats: this.stats });
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
    const reference = ref.digest ?? ref.tag ?? 'latest';
    const wantBody = options.platform !== undefined || options.platforms === true;
    // Docker Hub counts manifest GETs (not HEADs) against its pull rate limit: HEAD first there,
    // and GET only when the HEAD shows an index. Elsewhere a GET replaces the HEAD when the body is wanted.
    let method: 'HEAD' | 'GET' = wantBody && ref.domain !== DOCKER_HUB_DOMAIN ? 'GET' : 'HEAD';
    let res = await this.manifestRequest(ref, reference, method, deadline);
    let headerDigest = header(res, 'docker-content-digest')?.trim();
    let mediaType = contentType(res);
    if (method === 'HEAD' && (!headerDigest || (wantBody && (isIndexMediaType(mediaType) || !mediaType)))) {
      method = 'GET';
      res = await this.manifestRequest(ref, reference, method, deadline);
      const again = header(res, 'docker-content-digest')?.trim();
      if (headerDigest && again && again !== headerDigest) {
        throw new RegistryError(`${ref.domain} changed ${familiarName(ref)} while it was being resolved (${headerDigest}, then ${again}). Run again.`, {
          registry: ref.domain,
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
          `${ref.domain} sent content for ${familiarName(ref)} that does not match its Docker-Content-Digest (${headerDigest}, content hashes to ${digest}). Check for a proxy that alters responses.`,
          { registry: ref.domain, code: 'DIGEST_INVALID' },
        );
      }
    } else {
      digest = headerDigest as string;
    }
    if (ref.digest && digest !== ref.digest) {
      throw new RegistryError(`${ref.domain} answered for ${familiarName(ref)} with a manifest whose digest is ${digest}. The registry or a proxy is not trustworthy.`, {
        registry: ref.domain,
        code: 'DIGEST_INVALID',
      });
    }
    if (isSchema1MediaType(mediaType)) {
      throw new RegistryError(
        `${familiarName(ref)} in ${ref.domain} is stored in the deprecated Docker schema 1 format, which has no stable digest. Pull and push it again with a current Docker to convert it.`,
        { registry: ref.domain, code: 'MANIFEST_INVALID' },
      );
    }
    mediaType = mediaType ?? MEDIA_TYPES.dockerManifest;

    if (isIndexMediaType(mediaType) && body) {
      const listed = listedImages(body);
      if (options.platform !== undefined) {
        const chosen = pickPlatform(listed, options.platform);
        if (!chosen) {
          const available = listed.map((m) => platformString(m.platform)).join(', ') || 'none';
          throw new RegistryError(`${familiarName(ref)} in ${ref.domain} has no image for the platform ${options.platform} (it has: ${available}).`, {
            registry: ref.domain,
            code: 'MANIFEST_UNKNOWN',
          });
        }
        return {
          digest: chosen.digest,
          mediaType: chosen.mediaType ?? MEDIA_TYPES.ociManifest,
          platforms: [platformString(chosen.platform)],
          reference: { ...ref, digest: chosen.digest },
        };
      }
      const manifests = Object.fromEntries(listed.map((m) => [platformString(m.platform), m.digest]));
      return { digest, mediaType, platforms: [...new Set(listed.map((m) => platformString(m.platform)))], manifests, reference: { ...ref, digest } };
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
    const withdraw = this.session.announce(refs);
    try {
      await Promise.all(Array.from({ length: Math.min(concurrency, refs.length) }, worker));
    } finally {
      withdraw();
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
    const deadline = this.deadline(); // the manifest, the platform's and the config blob: one operation
    let manifest = await this.manifestBody(ref, ref.digest ?? ref.tag ?? 'latest', deadline);
    if (Array.isArray(manifest.manifests)) {
      const listed = listedImages(manifest);
      const chosen = options.platform ? pickPlatform(listed, options.platform) : listed[0];
      if (!chosen) {
        throw new RegistryError(`${familiarName(ref)} in ${ref.domain} is an index with no image${options.platform ? ` for the platform ${options.platform}` : ''}.`, { registry: ref.domain, code: 'MANIFEST_UNKNOWN' });
      }
      manifest = await this.manifestBody(ref, chosen.digest, deadline);
    }
    const config = manifest.config as { digest?: unknown } | undefined;
    if (typeof config?.digest !== 'string' || !/^sha(256|512):[a-f0-9]+$/.test(config.digest)) {
      throw new RegistryError(`the manifest of ${familiarName(ref)} in ${ref.domain} names no config blob.`, { registry: ref.domain, code: 'MANIFEST_INVALID' });
    }
    const res = await this.session.pull(ref, `blobs/${config.digest}`, 'GET', '*/*', deadline);
    if (computeDigest(config.digest.split(':')[0], res.body) !== config.digest) {
      throw new RegistryError(`${ref.domain} sent a config blob for ${familiarName(ref)} that does not hash to ${config.digest}. Check for a proxy that alters responses.`, { registry: ref.domain, code: 'DIGEST_INVALID' });
    }
    const labels = (jsonObject(res)?.config as { Labels?: unknown } | undefined)?.Labels;
    if (typeof labels !== 'object' || labels === null) return {};
    return Object.fromEntries(Object.entries(labels).filter((e): e is [string, string] => typeof e[1] === 'string'));
  }

  private manifestRequest(ref: ImageReference, reference: string, method: 'HEAD' | 'GET', deadline: number): Promise<HttpResponse> {
    return this.session.pull(ref, `manifests/${reference}`, method, MANIFEST_ACCEPT, deadline);
  }

  /** A manifest's JSON body; a digest reference must match what was sent. */
  private async manifestBody(ref: ImageReference, reference: string, deadline: number): Promise<ManifestBody & Record<string, unknown>> {
    const res = await this.manifestRequest(ref, reference, 'GET', deadline);
    if (reference.includes(':') && computeDigest(reference.split(':')[0], res.body) !== reference) {
      throw new RegistryError(`${ref.domain} answered for ${familiarName(ref)}@${reference} with a manifest of another digest. The registry or a proxy is not trustworthy.`, { registry: ref.domain, code: 'DIGEST_INVALID' });
    }
    const body = jsonObject(res);
    if (!body) throw new RegistryError(`the manifest of ${familiarName(ref)} in ${ref.domain} is not JSON.`, { registry: ref.domain, code: 'MANIFEST_INVALID' });
    return body as ManifestBody & Record<string, unknown>;
  }

  /** Closes idle keep-alive connections (of the client's own transport). */
  close(): void {
    if (this.ownTransport) this.transport.close();
  }
}
