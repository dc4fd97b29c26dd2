// Azure AD (Entra ID) access tokens for the identity of an Azure Resource Manager (`azurerm`)
// service connection, for any audience: ARM for ACR's exchange (acr.ts) and for AKS's
// listClusterUserCredential, the AKS server application for a cluster's API (kube/aks.ts).
//   - service principal with a secret: client credentials,
//     POST <authority>/<tenant>/oauth2/v2.0/token  grant_type=client_credentials&client_id&client_secret&scope
//   - service principal with a certificate: the same with a client assertion (an RS256 JWT
//     signed with the certificate's key, `x5t` = the certificate's SHA-1 thumbprint);
//   - workload identity federation: the same with client_assertion = the pipeline's OIDC token
//     (client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer), which the
//     agent hands out for the connection (createPipelineOidcTokenGetter);
//   - managed identity: IMDS, GET http://169.254.169.254/metadata/identity/oauth2/token
//     ?api-version=2018-02-01&resource=<resource> with `Metadata: true`.
// The scope defaults to Azure Resource Manager (the connection's, else https://management.azure.com/.default).
//
// Everything Azure-side is injectable (authority host, IMDS URL, the OIDC token getter, the
// transport) so tests run against test/support/azure-double.ts on 127.0.0.1.
// Every token goes through setSecret the moment it is parsed.
import { createHash, createPrivateKey, randomUUID, sign, X509Certificate } from 'node:crypto';
import type { EndpointInfo } from '../context';
import { InputError, RegistryError } from '../errors';
import { HttpRequest, HttpResponse, HttpTransport, isTransientNetworkError, jsonObject, withTransport } from '../util/http';
import { DEFAULT_RETRY, RetryOptions } from '../util/retry';
import { sendWithRetries } from '../util/http-retry';

export const DEFAULT_AUTHORITY_HOST = 'https://login.microsoftonline.com';
export const DEFAULT_ARM_SCOPE = 'https://management.azure.com/.default';
export const DEFAULT_IMDS_URL = 'http://169.254.169.254/metadata/identity/oauth2/token';
const CLIENT_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

export interface AzureAdOptions {
  /** Azure AD authority host. Default: the connection's environmentAuthorityUrl / activeDirectoryAuthority, else login.microsoftonline.com. */
  authorityHost?: string;
  /** The token's scope. Default: the connection's ARM URL + '.default', else https://management.azure.com/.default. */
  scope?: string;
  /** Workload identity federation: the pipeline's OIDC token for the connection (see createPipelineOidcTokenGetter). */
  getOidcToken?: () => Promise<string>;
  /** Managed identity endpoint. Default: IMDS. */
  imdsUrl?: string;
  /** Managed identity: client id of a user-assigned identity (system-assigned when unset). */
  managedIdentityClientId?: string;
  transport?: HttpTransport;
  retry?: RetryOptions;
  random?: () => number;
  log?: { debug(message: string): void };
  signal?: AbortSignal;
  /** The time one call may take in all, every attempt and wait included (default AZURE_CALL_TIMEOUT_MS). */
  callTimeoutMs?: number;
}

/** What one token call (Azure AD, ACR's exchange, ARM) may take in all, retries included. */
const AZURE_CALL_TIMEOUT_MS = 120_000;

/** One request to Azure, retried when it throttles or the network fails (see azureSender). */
export type Send = (req: HttpRequest, what: string) => Promise<HttpResponse>;

/** Which identity an endpoint carries. */
export type AzureIdentityKind = 'secret' | 'certificate' | 'workloadIdentity' | 'managedIdentity';

export function azureIdentityKind(endpoint: EndpointInfo): AzureIdentityKind | undefined {
  const scheme = endpoint.scheme.toLowerCase();
  if (scheme === 'workloadidentityfederation') return 'workloadIdentity';
  if (scheme === 'managedserviceidentity') return 'managedIdentity';
  if (scheme === 'serviceprincipal') {
    const type = (endpoint.auth.authenticationtype ?? '').toLowerCase();
    if (type === 'spncertificate' || (endpoint.auth.serviceprincipalcertificate && !endpoint.auth.serviceprincipalkey)) return 'certificate';
    return 'secret';
  }
  return undefined;
}

/** True when the connection is an Azure identity (not a user name and password). */
export function isAzureEndpoint(endpoint: EndpointInfo): boolean {
  return azureIdentityKind(endpoint) !== undefined;
}

/** The connection's tenant. */
export function tenantOf(endpoint: EndpointInfo): string | undefined {
  return endpoint.auth.tenantid ?? endpoint.data.tenantid;
}

/**
 * The pipeline's OIDC token for a workload identity federation connection, from the agent:
 * POST $(System.OidcRequestUri)?api-version=7.1&serviceConnectionId=<id> with System.AccessToken.
 */
export function createPipelineOidcTokenGetter(options: {
  requestUri: string | undefined;
  accessToken: string | undefined;
  serviceConnectionId: string;
  setSecret: (s: string) => void;
  transport?: HttpTransport;
  signal?: AbortSignal;
}): () => Promise<string> {
  return async () => {
    const { requestUri, accessToken } = options;
    if (!requestUri || !accessToken) {
      throw new InputError(
        'The service connection uses workload identity federation, but the agent gave no OIDC request URI or System.AccessToken. Run on Azure Pipelines (agent 3.227+), and allow scripts to access the OAuth token if the job restricts it.',
      );
    }
    options.setSecret(accessToken);
    return withTransport(options.transport, async (transport) => {
      const url = new URL(requestUri);
      url.searchParams.set('api-version', '7.1');
      url.searchParams.set('serviceConnectionId', options.serviceConnectionId);
      const res = await transport.request({
        method: 'POST',
        url: url.toString(),
        headers: { Authorization: `Bearer ${accessToken}`, 'Content-Type': 'application/json', Accept: 'application/json' },
        body: '{}',
        signal: options.signal,
      });
      const { token } = tokenField(res, 'oidcToken', options.setSecret);
      if (res.status !== 200 || !token) {
        throw new RegistryError(
          `Azure DevOps did not issue an OIDC token for the service connection ${options.serviceConnectionId} (${res.status}). Check that the pipeline is authorised to use the connection.`,
          { status: res.status },
        );
      }
      return token;
    });
  };
}

/** An Azure AD access token for the connection's identity. Errors name what to check. */
export function aadAccessToken(endpoint: EndpointInfo, options: AzureAdOptions & { setSecret: (s: string) => void }): Promise<string> {
  return withTransport(options.transport, async (transport) => {
    const send = azureSender(transport, options);
    const kind = azureIdentityKind(endpoint);
    const name = `'${endpoint.id}'${endpoint.input ? ` (input '${endpoint.input}')` : ''}`;
    const scope = options.scope ?? armScope(endpoint);
    if (kind === 'managedIdentity') return managedIdentityToken(endpoint, options, send, scope, name);

    const tenant = tenantOf(endpoint);
    const clientId = endpoint.auth.serviceprincipalid;
    if (!kind) throw new InputError(`The service connection ${name} is not an Azure Resource Manager connection (scheme '${endpoint.scheme}').`);
    if (!tenant || !clientId) {
      throw new InputError(`The Azure service connection ${name} has no tenant id or service principal id. Edit the service connection and verify it.`);
    }
    const authority = (options.authorityHost ?? endpoint.data.environmentauthorityurl ?? endpoint.data.activedirectoryauthority ?? DEFAULT_AUTHORITY_HOST).replace(/\/+$/, '');
    const tokenUrl = `${authority}/${encodeURIComponent(tenant)}/oauth2/v2.0/token`;
    const form = new URLSearchParams({ grant_type: 'client_credentials', client_id: clientId, scope });
    if (kind === 'secret') {
      const secret = endpoint.auth.serviceprincipalkey;
      if (!secret) throw new InputError(`The Azure service connection ${name} has no service principal key. Edit the service connection and verify it.`);
      options.setSecret(secret);
      form.set('client_secret', secret);
    } else if (kind === 'certificate') {
      const pem = endpoint.auth.serviceprincipalcertificate;
      if (!pem) throw new InputError(`The Azure service connection ${name} has no certificate. Edit the service connection and verify it.`);
      for (const line of pem.split(/\r?\n/)) if (line.trim() && !line.startsWith('-----')) options.setSecret(line.trim());
      form.set('client_assertion_type', CLIENT_ASSERTION_TYPE);
      form.set('client_assertion', certificateAssertion(pem, clientId, tokenUrl));
    } else {
      if (!options.getOidcToken) {
        throw new InputError(`The Azure service connection ${name} uses workload identity federation, but no way to get the pipeline's OIDC token was given.`);
      }
      const assertion = await options.getOidcToken();
      options.setSecret(assertion);
      form.set('client_assertion_type', CLIENT_ASSERTION_TYPE);
      form.set('client_assertion', assertion);
    }
    const res = await send(
      { method: 'POST', url: tokenUrl, headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' }, body: form.toString() },
      'Azure AD token',
    );
    const { json, token } = tokenField(res, 'access_token', options.setSecret);
    if (res.status !== 200 || !token) {
      const reason = aadReason(json) ?? `status ${res.status}`;
      const hint =
        kind === 'workloadIdentity'
          ? "Check the federated credential of the app registration (issuer and subject must match the service connection's)."
          : kind === 'certificate'
            ? "Check that the app registration holds the service connection's certificate and that it has not expired."
            : "Check the service principal's secret: it may have expired (renew it and edit the service connection).";
      throw new RegistryError(`Azure AD refused the service connection ${name}: ${reason}. ${hint}`, {
        status: res.status,
        code: typeof json?.error === 'string' ? json.error : undefined,
        registry: new URL(authority).host,
      });
    }
    return token;
  });
}

async function managedIdentityToken(
  endpoint: EndpointInfo,
  options: AzureAdOptions & { setSecret: (s: string) => void },
  send: Send,
  scope: string,
  name: string,
): Promise<string> {
  const url = new URL(options.imdsUrl ?? DEFAULT_IMDS_URL);
  url.searchParams.set('api-version', '2018-02-01');
  url.searchParams.set('resource', scope.replace(/\.default$/, ''));
  const clientId = options.managedIdentityClientId ?? endpoint.auth.managedidentityclientid;
  if (clientId) url.searchParams.set('client_id', clientId);
  let res: HttpResponse;
  try {
    res = await send({ method: 'GET', url: url.toString(), headers: { Metadata: 'true', Accept: 'application/json' } }, 'managed identity token');
  } catch (err) {
    throw new RegistryError(
      `The service connection ${name} uses a managed identity, but the instance metadata service (${url.host}) did not answer: ${(err as Error).message}. Managed identity works only on a self-hosted agent on an Azure VM (or scale set) with an identity assigned.`,
      { cause: err, code: (err as RegistryError).code },
    );
  }
  const { json, token } = tokenField(res, 'access_token', options.setSecret);
  if (res.status !== 200 || !token) {
    throw new RegistryError(
      `The managed identity of this agent could not get a token (${aadReason(json) ?? `status ${res.status}`}). Check that the VM has an identity assigned and that it may use the registry.`,
      { status: res.status, code: typeof json?.error === 'string' ? json.error : undefined },
    );
  }
  return token;
}

/** ARM audience: the connection's ARM URL (sovereign clouds) or the public cloud's. */
function armScope(endpoint: EndpointInfo): string {
  const candidate = endpoint.data.environmenturl ?? endpoint.url;
  try {
    const u = new URL(candidate);
    if (/^management\./i.test(u.host)) return `${u.protocol}//${u.host}/.default`;
  } catch {
    // not a URL: the default
  }
  return DEFAULT_ARM_SCOPE;
}

/** An RS256 client assertion signed with the certificate's key (Microsoft identity platform "certificate credentials"). */
export function certificateAssertion(pem: string, clientId: string, audience: string, now: number = Date.now()): string {
  const certBlock = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(pem)?.[0];
  const keyBlock = /-----BEGIN (?:RSA |ENCRYPTED )?PRIVATE KEY-----[\s\S]+?-----END (?:RSA |ENCRYPTED )?PRIVATE KEY-----/.exec(pem)?.[0];
  if (!certBlock || !keyBlock) {
    throw new InputError('The service connection\'s certificate must be a PEM file holding both the certificate and its private key.');
  }
  const cert = new X509Certificate(certBlock);
  const key = createPrivateKey(keyBlock);
  const header = { alg: 'RS256', typ: 'JWT', x5t: createHash('sha1').update(cert.raw).digest('base64url') };
  const seconds = Math.floor(now / 1000);
  const claims = { aud: audience, iss: clientId, sub: clientId, jti: randomUUID(), nbf: seconds - 60, iat: seconds, exp: seconds + 600 };
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
  return `${input}.${sign('sha256', Buffer.from(input), key).toString('base64url')}`;
}

function b64url(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64url');
}

/** Sends with retries on 408/429/5xx and transient network errors (Azure AD and ACR throttle too). */
export function azureSender(transport: HttpTransport, options: Pick<AzureAdOptions, 'retry' | 'random' | 'log' | 'signal' | 'callTimeoutMs'>): Send {
  const sending = { retry: { ...DEFAULT_RETRY, ...options.retry }, random: options.random, signal: options.signal, log: options.log };
  const timeoutMs = options.callTimeoutMs ?? AZURE_CALL_TIMEOUT_MS;
  return async (req, what) => {
    const host = new URL(req.url).host;
    const { res } = await sendWithRetries(transport, req, what, { ...sending, deadline: Date.now() + timeoutMs }, (err, attempts, timedOut) =>
      new RegistryError(timedOut ? `${what}: ${host} did not answer within ${Math.round(timeoutMs / 1000)} s (${attempts} attempt${attempts === 1 ? '' : 's'}); check that the agent reaches it.` : `${what}: could not reach ${host} (${err.code}) after ${attempts} attempt${attempts === 1 ? '' : 's'}.`, {
        code: err.code,
        retryable: isTransientNetworkError(err),
        registry: host,
        cause: err,
      }),
    );
    return res;
  };
}

/** A JSON answer and its string field `field` ('' when missing), which goes through setSecret at once. */
export function tokenField(res: HttpResponse, field: string, setSecret: (s: string) => void): { json?: Record<string, unknown>; token: string } {
  const json = jsonObject(res);
  const value = json?.[field];
  const token = typeof value === 'string' ? value : '';
  if (token) setSecret(token);
  return { json, token };
}

/** First line of an AAD error_description ("AADSTS7000215: Invalid client secret provided. …"), without trace ids. */
export function aadReason(json: Record<string, unknown> | undefined): string | undefined {
  const description = typeof json?.error_description === 'string' ? json.error_description : undefined;
  const first = description?.split(/\r?\n/)[0].replace(/\s*Trace ID:.*$/i, '').trim();
  if (first) return first.slice(0, 300);
  return typeof json?.error === 'string' ? json.error : undefined;
}
