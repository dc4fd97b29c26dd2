// Bearer tokens, kept per token server (realm + service) and the set of scopes each covers, until
// shortly before they expire. A token request in flight is shared by everyone who needs one of its
// scopes, and a request asks for every announced scope no valid token covers yet (resolveMany).

/** Most scopes asked for in one token request: 64 keeps the URL near 4 KB, below the 8 KB many front ends allow. */
const MAX_SCOPES_PER_TOKEN = 64;
/** Tokens are dropped this long before they expire (at most a quarter of their life). */
const TOKEN_EXPIRY_MARGIN_MS = 10_000;
/** The token spec's default lifetime when the answer has no `expires_in`. */
const DEFAULT_EXPIRES_IN_SECONDS = 60;

export interface CachedToken {
  scopes: Set<string>;
  token: string;
  expiresAt: number;
}

/** A token for the cache: `expires_in` as the token server sent it (seconds), less the margin. */
export function cachedToken(token: string, scopes: string[], expiresIn: unknown): CachedToken {
  const seconds = Number(expiresIn);
  const lifeMs = (Number.isFinite(seconds) && seconds > 0 ? seconds : DEFAULT_EXPIRES_IN_SECONDS) * 1000;
  const margin = Math.min(TOKEN_EXPIRY_MARGIN_MS, lifeMs / 4);
  return { scopes: new Set(scopes), token, expiresAt: Date.now() + lifeMs - margin };
}

export class TokenCache {
  private readonly tokens = new Map<string, CachedToken[]>();
  private readonly pending = new Map<string, { scopes: Set<string>; promise: Promise<CachedToken> }[]>();

  /**
   * A token for `scope` from the token server `realm` + `service`: a valid cached one, the one in
   * flight, or a new one from `fetch`. When `announced` holds `scope`, the new token also asks for
   * the other announced scopes (up to 64 in all).
   */
  async get(
    realm: string,
    service: string | undefined,
    scope: string,
    announced: ReadonlySet<string>,
    fetch: (scopes: string[]) => Promise<CachedToken>,
  ): Promise<{ token: CachedToken; fromCache: boolean }> {
    const key = serverKey(realm, service);
    const now = Date.now();
    const cached = this.tokens.get(key)?.find((t) => t.scopes.has(scope) && t.expiresAt > now);
    if (cached) return { token: cached, fromCache: true };
    const inFlight = this.pending.get(key) ?? [];
    const shared = inFlight.find((p) => p.scopes.has(scope));
    if (shared) return { token: await shared.promise, fromCache: false };

    const scopes = new Set<string>([scope]);
    if (announced.has(scope)) {
      const valid = this.tokens.get(key)?.filter((t) => t.expiresAt > now) ?? [];
      for (const s of announced) {
        if (scopes.size >= MAX_SCOPES_PER_TOKEN) break;
        if (!valid.some((t) => t.scopes.has(s)) && !inFlight.some((p) => p.scopes.has(s))) scopes.add(s);
      }
    }
    const entry = { scopes, promise: fetch([...scopes]) };
    this.pending.set(key, [...inFlight, entry]);
    try {
      const token = await entry.promise;
      const live = (this.tokens.get(key) ?? []).filter((t) => t.expiresAt > Date.now());
      live.push(token);
      this.tokens.set(key, live);
      return { token, fromCache: false };
    } finally {
      const remaining = (this.pending.get(key) ?? []).filter((p) => p !== entry);
      if (remaining.length) this.pending.set(key, remaining);
      else this.pending.delete(key);
    }
  }

  /** Forgets a token the registry no longer accepts. */
  drop(realm: string, service: string | undefined, token: CachedToken): void {
    const key = serverKey(realm, service);
    const list = (this.tokens.get(key) ?? []).filter((t) => t !== token);
    if (list.length) this.tokens.set(key, list);
    else this.tokens.delete(key);
  }
}

function serverKey(realm: string, service: string | undefined): string {
  return `${realm}\n${service ?? ''}`;
}
