// Azure Container Registry credentials from an Azure Resource Manager (`azurerm`) service
// connection, or from a `dockerregistry` connection of type "Azure Container Registry".
//
// The exchange, as ACR documents it (github.com/Azure/acr, docs/AAD-OAuth.md):
//   1. an Azure AD (Entra ID) access token for the connection's identity (azure-ad.ts: secret,
//      certificate, workload identity federation or managed identity), for Azure Resource
//      Manager (https://management.azure.com/.default by default), which ACR's exchange accepts;
//   2. POST https://<registry>/oauth2/exchange  grant_type=access_token&service=<registry>
//      &tenant=<tenant>&access_token=<AAD token>  →  {"refresh_token": "…"}
//   3. The ACR refresh token is the password, with the user name 00000000-0000-0000-0000-000000000000.
//      The registry client then runs the ordinary Bearer flow against ACR's realm
//      (GET https://<registry>/oauth2/token with Basic auth), exactly as `docker login` does.
//
// The registry URL is injectable, as everything Azure-side is, so tests run against
// test/support/azure-double.ts on 127.0.0.1. Every token goes through setSecret the moment it is parsed.
import type { EndpointInfo } from '../context';
import { InputError, RegistryError } from '../errors';
import { registryBaseUrl } from '../reference';
import { withTransport } from '../util/http';
import { AzureAdOptions, Send, aadAccessToken, aadReason, azureSender, tenantOf, tokenField } from './azure-ad';
import type { Credential } from './credential';

/** Username ACR expects with an ACR refresh token as the password. */
export const ACR_REFRESH_TOKEN_USERNAME = '00000000-0000-0000-0000-000000000000';

export interface AcrOptions extends AzureAdOptions {
  /** Login server of the registry: 'contoso.azurecr.io'. */
  loginServer: string;
  /** The azurerm connection (or ACR-type dockerregistry connection). Defaults to createCredentialSource's `endpoint`. */
  endpoint?: EndpointInfo;
  /** Base URL for /oauth2/exchange. Default: https://<loginServer> (http:// for a loopback registry). */
  registryUrl?: string;
}

/**
 * An ACR refresh token for the connection's identity (steps 1 and 2). Errors name the step that
 * failed and what to check.
 */
export async function acrRefreshToken(options: AcrOptions & { setSecret: (s: string) => void }): Promise<string> {
  const endpoint = options.endpoint;
  if (!endpoint) throw new InputError(`No Azure service connection was given for the container registry ${options.loginServer}.`);
  return withTransport(options.transport, async (transport) => {
    const aadToken = await aadAccessToken(endpoint, { ...options, transport });
    const send = azureSender(transport, options);
    return exchangeForRefreshToken({ loginServer: options.loginServer, registryUrl: options.registryUrl, tenant: tenantOf(endpoint), aadToken, setSecret: options.setSecret, send });
  });
}

/** Credential for the registry: the null-GUID user name and the ACR refresh token. */
export async function acrCredential(options: AcrOptions & { setSecret: (s: string) => void }): Promise<Credential> {
  const refreshToken = await acrRefreshToken(options);
  return { username: ACR_REFRESH_TOKEN_USERNAME, password: refreshToken };
}

/** Step 2: POST /oauth2/exchange → the ACR refresh token. */
export async function exchangeForRefreshToken(options: {
  loginServer: string;
  registryUrl?: string;
  tenant?: string;
  aadToken: string;
  setSecret: (s: string) => void;
  send: Send;
}): Promise<string> {
  // https://<loginServer>, or http:// for a loopback registry (as Docker does).
  const base = (options.registryUrl ?? registryBaseUrl(options.loginServer.replace(/^https?:\/\//, '').replace(/\/.*$/, ''))).replace(/\/+$/, '');
  const form = new URLSearchParams({ grant_type: 'access_token', service: options.loginServer, access_token: options.aadToken });
  if (options.tenant) form.set('tenant', options.tenant);
  const res = await options.send(
    { method: 'POST', url: `${base}/oauth2/exchange`, headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' }, body: form.toString() },
    `ACR token exchange with ${options.loginServer}`,
  );
  const { json, token: refreshToken } = tokenField(res, 'refresh_token', options.setSecret);
  if (res.status !== 200 || !refreshToken) {
    const reason = acrReason(json) ?? `status ${res.status}`;
    const hint =
      res.status === 401 || res.status === 403
        ? " Check that the service connection's identity has a role on the registry that allows pulling and pushing (AcrPush), and that the registry allows Azure AD authentication."
        : res.status === 404
          ? ` Check the registry's login server name ('${options.loginServer}').`
          : '';
    throw new RegistryError(`${options.loginServer} refused to exchange the Azure AD token for a registry token: ${reason}.${hint}`, {
      status: res.status,
      code: 'UNAUTHORIZED',
      registry: options.loginServer,
    });
  }
  return refreshToken;
}

function acrReason(json: Record<string, unknown> | undefined): string | undefined {
  const errors = json?.errors;
  if (Array.isArray(errors) && errors[0] && typeof (errors[0] as { message?: unknown }).message === 'string') {
    return String((errors[0] as { message: string }).message).slice(0, 300);
  }
  if (typeof json?.details === 'string') return json.details.slice(0, 300);
  return aadReason(json);
}
