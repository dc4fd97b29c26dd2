// The token server's side of Bearer auth (distribution's token auth spec and its OAuth2 form): the
// request for a set of scopes, and the token in the answer.
import type { Credential } from '../auth';
import { RegistryError } from '../errors';
import { HttpRequest, HttpResponse, jsonObject } from '../util/http';
import { CachedToken, cachedToken } from './token-cache';

const CLIENT_ID = 'container-outer-loop';

/**
 * `GET <realm>?service=…&scope=…` with Basic auth (`basic` encodes the credential) when there is a
 * password, anonymous without one; with an identity token, the OAuth2 `POST` (grant_type=refresh_token).
 */
export function tokenRequest(realm: string, service: string | undefined, scopes: string[], credential: Credential | undefined, basic: (credential: Credential) => string): HttpRequest {
  const url = new URL(realm);
  if (credential?.identityToken) {
    const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: credential.identityToken, client_id: CLIENT_ID, scope: scopes.join(' ') });
    if (service) form.set('service', service);
    return {
      method: 'POST',
      url: url.toString(),
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' },
      body: form.toString(),
    };
  }
  if (service) url.searchParams.set('service', service);
  for (const s of scopes) url.searchParams.append('scope', s);
  const headers: Record<string, string> = { Accept: 'application/json' };
  if (credential && credential.password) {
    url.searchParams.set('account', credential.username);
    headers.Authorization = `Basic ${basic(credential)}`;
  }
  return { method: 'GET', url: url.toString(), headers };
}

/** The token of a 2xx answer (`token`, else `access_token`); every token in it goes through `secret` before anything else. */
export function tokenFromAnswer(domain: string, res: HttpResponse, scopes: string[], secret: (value: string) => void): CachedToken {
  const json = jsonObject(res);
  if (!json) throw new RegistryError(`the token server of ${domain} answered with something that is not JSON.`, { registry: domain, status: res.status });
  const token = typeof json.token === 'string' && json.token ? json.token : typeof json.access_token === 'string' ? json.access_token : '';
  if (token) secret(token);
  if (typeof json.refresh_token === 'string' && json.refresh_token) secret(json.refresh_token);
  if (!token) {
    throw new RegistryError(`the token server of ${domain} answered without a token.`, { registry: domain, status: res.status, code: 'UNAUTHORIZED' });
  }
  return cachedToken(token, scopes, json.expires_in);
}
