// A test double of the Azure side of ACR authentication, on 127.0.0.1, following the documented
// protocols closely and strictly (a client that sends the wrong field fails here as it would there):
//
//  Microsoft identity platform (client credentials, v2.0 endpoint):
//    POST /<tenant>/oauth2/v2.0/token   application/x-www-form-urlencoded
//      grant_type=client_credentials, client_id, scope=<resource>/.default, and one of
//        client_secret                                          (service principal secret)
//        client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer
//        client_assertion=<federated token>                    (workload identity federation)
//        client_assertion=<RS256 JWT: x5t = cert SHA-1, aud = this endpoint, iss = sub = client_id>
//                                                               (certificate)
//      → 200 {token_type, expires_in, ext_expires_in, access_token}
//      → 400/401 {error, error_description: "AADSTS…: …", error_codes, timestamp, trace_id}
//  Instance metadata service (managed identity):
//    GET /metadata/identity/oauth2/token?api-version=2018-02-01&resource=…  with `Metadata: true`
//      → 200 {access_token, expires_in, expires_on, resource, token_type} (numbers as strings)
//  Azure DevOps OIDC token for a service connection:
//    POST /_apis/distributedtask/hubs/build/plans/<plan>/jobs/<job>/oidctoken?api-version=7.1&serviceConnectionId=…
//      with `Authorization: Bearer <System.AccessToken>` → {oidcToken}
//  ACR (github.com/Azure/acr docs/AAD-OAuth.md):
//    POST /oauth2/exchange  grant_type=access_token&service=<login server>&tenant=<tenant>&access_token=<AAD token>
//      → {refresh_token}; an unknown AAD token, a token for another tenant or audience → 401
//    GET  /oauth2/token?service=…&scope=…  with Basic 00000000-0000-0000-0000-000000000000:<refresh token>
//    POST /oauth2/token  grant_type=refresh_token&service=…&scope=…&refresh_token=…
//      → {access_token}  (the realm of this double's own registry endpoints, or of another registry
//        when `issueRegistryToken` signs tokens that registry trusts)
//    HEAD/GET /v2/<repo>/manifests/<ref>  Bearer challenge with realm=<this>/oauth2/token,
//      service=<login server>; manifests added with addManifest().
//  ARM, with `aks` (aks-double.ts): the AKS credential actions; the double's own URL is then an ARM
//    audience too (a connection's resource manager URL), and `<application id>/.default` gets a
//    token for the AKS server application.
import { createHash, randomBytes, verify, X509Certificate } from 'node:crypto';
import * as http from 'node:http';
import { AKS_SERVER_SCOPE, aksCredentialAnswer, type AksClusterOptions } from './aks-double';
import { closeServer, listenLocal, withBody } from './http-double';

export const ACR_NULL_USER = '00000000-0000-0000-0000-000000000000';
export const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const ARM_AUDIENCES = ['https://management.azure.com/', 'https://management.core.windows.net/'];

export interface AzureDoubleOptions {
  tenant?: string;
  clientId?: string;
  clientSecret?: string;
  /** The OIDC token Azure DevOps hands out, accepted as a federated client assertion. */
  federatedToken?: string;
  /** System.AccessToken the OIDC endpoint expects. */
  systemAccessToken?: string;
  /** PEM of a certificate registered on the app (certificate credentials). */
  certificatePem?: string;
  /** The registry's login server (the `service`); default this double's host:port. */
  loginServer?: string;
  /** Identities (AAD object ids / client ids) that have a role on the registry; default every one. */
  registryRoleFor?: (clientId: string) => boolean;
  /** Mint the registry access token (e.g. a JWT a real distribution registry trusts); default opaque. */
  issueRegistryToken?: (access: Array<{ type: string; name: string; actions: string[] }>, subject: string) => string;
  /** Play ARM for this AKS cluster too. */
  aks?: AksClusterOptions;
}

export interface AzureRecord {
  method: string;
  path: string;
  status: number;
  form?: Record<string, string>;
  headers: http.IncomingHttpHeaders;
}

export interface AzureDouble {
  /** http://127.0.0.1:PORT: authority host, ACR base URL and registry all at once. */
  url: string;
  host: string;
  loginServer: string;
  tenant: string;
  clientId: string;
  clientSecret: string;
  federatedToken: string;
  systemAccessToken: string;
  imdsUrl: string;
  /** What $(System.OidcRequestUri) would be. */
  oidcRequestUri: string;
  /** Tokens issued, by kind, so tests can check they were all registered as secrets. */
  issued: { aad: string[]; refresh: string[]; access: string[]; oidc: string[] };
  log(): AzureRecord[];
  /** Faults for the next matching requests: status and headers (e.g. Retry-After). */
  fail(pathPrefix: string, status: number, headers?: Record<string, string>): void;
  addManifest(repo: string, tags: string[], body: string, mediaType: string): string;
  stop(): Promise<void>;
}

export async function startAzureDouble(options: AzureDoubleOptions = {}): Promise<AzureDouble> {
  const tenant = options.tenant ?? 'a1b2c3d4-0000-4000-8000-00000000aaaa';
  const clientId = options.clientId ?? 'c0ffee00-0000-4000-8000-00000000bbbb';
  const clientSecret = options.clientSecret ?? `sp~secret.${randomBytes(12).toString('base64url')}`;
  const federatedToken = options.federatedToken ?? `eyJoidc.${randomBytes(16).toString('base64url')}.sig`;
  const systemAccessToken = options.systemAccessToken ?? `ado-${randomBytes(16).toString('hex')}`;
  const cert = options.certificatePem ? new X509Certificate(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(options.certificatePem)![0]) : undefined;

  const aadTokens = new Map<string, { tenant: string; audience: string; clientId: string }>();
  const refreshTokens = new Map<string, { clientId: string }>();
  const accessTokens = new Map<string, Set<string>>(); // token → scopes
  const manifests = new Map<string, { body: string; mediaType: string }>();
  const issued = { aad: [] as string[], refresh: [] as string[], access: [] as string[], oidc: [] as string[] };
  const records: AzureRecord[] = [];
  const faults: { prefix: string; status: number; headers?: Record<string, string> }[] = [];
  const usedAssertionIds = new Set<string>();
  let base = '';
  let loginServer = '';

  const armAudiences = () => (options.aks ? [...ARM_AUDIENCES, `${base}/`] : ARM_AUDIENCES);

  const server = http.createServer(
    withBody((req, res, bodyBytes) => {
      const url = new URL(req.url ?? '/', 'http://double');
      const body = bodyBytes.toString('utf8');
      const isForm = /^application\/x-www-form-urlencoded/i.test(req.headers['content-type'] ?? '');
      const form = req.method === 'POST' && isForm ? Object.fromEntries(new URLSearchParams(body)) : undefined;
      const record: AzureRecord = { method: req.method ?? '', path: url.pathname, status: 0, form, headers: req.headers };
      records.push(record);
      const reply = (status: number, json: unknown, headers: Record<string, string> = {}) => {
        record.status = status;
        const text = json === undefined ? '' : JSON.stringify(json);
        res.writeHead(status, { ...(text ? { 'Content-Type': 'application/json; charset=utf-8' } : {}), ...headers });
        res.end(req.method === 'HEAD' ? undefined : text);
      };
      const aadError = (status: number, error: string, code: number, text: string) =>
        reply(status, {
          error,
          error_description: `AADSTS${code}: ${text}\r\nTrace ID: ${randomBytes(8).toString('hex')}\r\nCorrelation ID: ${randomBytes(8).toString('hex')}\r\nTimestamp: ${new Date().toISOString()}`,
          error_codes: [code],
          timestamp: new Date().toISOString(),
          trace_id: randomBytes(8).toString('hex'),
        });
      const acrError = (status: number, code: string, message: string, headers?: Record<string, string>) => reply(status, { errors: [{ code, message }] }, headers);

      const fault = faults.findIndex((f) => url.pathname.startsWith(f.prefix));
      if (fault >= 0) {
        const [f] = faults.splice(fault, 1);
        return reply(f.status, { error: 'temporarily_unavailable', error_description: 'injected' }, f.headers);
      }

      // ---- Microsoft identity platform
      const aad = /^\/([^/]+)\/oauth2\/v2\.0\/token$/.exec(url.pathname);
      if (aad) {
        if (req.method !== 'POST' || !form) return aadError(400, 'invalid_request', 900144, "The request body must contain the following parameter: 'grant_type'.");
        if (aad[1] !== tenant) return aadError(400, 'invalid_request', 90002, `Tenant '${aad[1]}' not found.`);
        if (form.grant_type !== 'client_credentials') return aadError(400, 'unsupported_grant_type', 70003, 'The app requested an unsupported grant type.');
        if (form.client_id !== clientId) return aadError(400, 'unauthorized_client', 700016, `Application with identifier '${form.client_id}' was not found in the directory.`);
        const aksServer = options.aks && AKS_SERVER_SCOPE.test(form.scope ?? '') ? form.scope.slice(0, -'/.default'.length) : undefined;
        const audience = aksServer ?? armAudiences().find((a) => form.scope === `${a}.default` || form.scope === `${a.replace(/\/$/, '')}/.default`);
        if (!form.scope?.endsWith('/.default') || !audience) {
          return aadError(400, 'invalid_scope', 1002012, `The provided value for scope ${form.scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier.`);
        }
        let ok = false;
        if (form.client_secret !== undefined) {
          if (form.client_assertion !== undefined) return aadError(400, 'invalid_request', 50027, 'Send either a client secret or a client assertion, not both.');
          ok = form.client_secret === clientSecret;
          if (!ok) return aadError(401, 'invalid_client', 7000215, 'Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.');
        } else if (form.client_assertion !== undefined) {
          if (form.client_assertion_type !== JWT_BEARER) return aadError(400, 'invalid_request', 50027, 'Invalid client_assertion_type.');
          if (form.client_assertion === federatedToken) ok = true;
          else if (cert) {
            const problem = certificateAssertionProblem(form.client_assertion, cert, clientId, `${base}${url.pathname}`, usedAssertionIds);
            if (problem) return aadError(401, 'invalid_client', 700027, `Client assertion failed signature validation or claims: ${problem}.`);
            ok = true;
          }
          if (!ok) return aadError(400, 'invalid_request', 700211, 'No matching federated identity record found for presented assertion issuer.');
        } else {
          return aadError(401, 'invalid_client', 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.");
        }
        const token = `aad.${randomBytes(24).toString('base64url')}`;
        aadTokens.set(token, { tenant, audience, clientId });
        issued.aad.push(token);
        if (aksServer) options.aks!.onClusterToken?.(token);
        return reply(200, { token_type: 'Bearer', expires_in: 3599, ext_expires_in: 3599, access_token: token });
      }

      // ---- IMDS
      if (url.pathname === '/metadata/identity/oauth2/token') {
        if (req.headers.metadata !== 'true') return reply(400, { error: 'invalid_request', error_description: 'Required metadata header not specified' });
        if (url.searchParams.get('api-version') !== '2018-02-01') return reply(400, { error: 'invalid_request', error_description: 'Invalid api-version' });
        const resource = url.searchParams.get('resource') ?? '';
        const audience = ARM_AUDIENCES.find((a) => resource === a || resource === a.replace(/\/$/, ''));
        if (!audience) return reply(400, { error: 'invalid_resource', error_description: `AADSTS500011: The resource principal named ${resource} was not found in the tenant` });
        const token = `msi.${randomBytes(24).toString('base64url')}`;
        const identity = url.searchParams.get('client_id') ?? 'system-assigned';
        aadTokens.set(token, { tenant, audience, clientId: identity });
        issued.aad.push(token);
        const now = Math.floor(Date.now() / 1000);
        return reply(200, { access_token: token, client_id: identity, expires_in: '86399', expires_on: String(now + 86399), ext_expires_in: '86399', not_before: String(now), resource, token_type: 'Bearer' });
      }

      // ---- Azure DevOps OIDC token
      if (/^\/_apis\/distributedtask\/hubs\/[^/]+\/plans\/[^/]+\/jobs\/[^/]+\/oidctoken$/.test(url.pathname)) {
        if (req.method !== 'POST') return reply(405, { message: 'method not allowed' });
        if (req.headers.authorization !== `Bearer ${systemAccessToken}`) return reply(401, { message: 'TF400813: The user is not authorized to access this resource.' });
        if (!url.searchParams.get('api-version') || !url.searchParams.get('serviceConnectionId')) return reply(400, { message: 'serviceConnectionId and api-version are required' });
        issued.oidc.push(federatedToken);
        return reply(200, { oidcToken: federatedToken });
      }

      // ---- ACR: exchange AAD token for an ACR refresh token
      if (url.pathname === '/oauth2/exchange') {
        if (req.method !== 'POST' || !form) return acrError(400, 'UNSUPPORTED', 'POST a form');
        if (form.grant_type !== 'access_token') return acrError(400, 'UNSUPPORTED', `grant_type ${form.grant_type} is not supported`);
        if (form.service !== loginServer) return acrError(400, 'UNSUPPORTED', `service must be ${loginServer}`);
        const aadToken = form.access_token ? aadTokens.get(form.access_token) : undefined;
        if (!aadToken) return acrError(401, 'UNAUTHORIZED', 'the access token is not valid');
        if (form.tenant && form.tenant !== aadToken.tenant) return acrError(401, 'UNAUTHORIZED', 'the access token was issued for another tenant');
        if (options.registryRoleFor && !options.registryRoleFor(aadToken.clientId)) {
          return acrError(401, 'UNAUTHORIZED', 'The identity does not have a role assignment on the registry');
        }
        const refresh = `acr-refresh.${randomBytes(24).toString('base64url')}`;
        refreshTokens.set(refresh, { clientId: aadToken.clientId });
        issued.refresh.push(refresh);
        return reply(200, { refresh_token: refresh });
      }

      // ---- ACR: the registry's token realm
      if (url.pathname === '/oauth2/token') {
        let refresh: string | undefined;
        let params: URLSearchParams;
        let scopes: string[];
        if (req.method === 'POST') {
          if (!form || form.grant_type !== 'refresh_token') return acrError(400, 'UNSUPPORTED', 'grant_type must be refresh_token');
          params = new URLSearchParams(body);
          refresh = form.refresh_token;
          scopes = params.getAll('scope').flatMap((s) => s.split(' ')).filter(Boolean);
        } else {
          params = url.searchParams;
          scopes = params.getAll('scope');
          const m = /^Basic (.+)$/.exec(req.headers.authorization ?? '');
          if (m) {
            const decoded = Buffer.from(m[1], 'base64').toString('utf8');
            const colon = decoded.indexOf(':');
            if (decoded.slice(0, colon) !== ACR_NULL_USER) return acrError(401, 'UNAUTHORIZED', 'unknown user');
            refresh = decoded.slice(colon + 1);
          }
        }
        if (params.get('service') !== loginServer) return acrError(400, 'UNSUPPORTED', `service must be ${loginServer}`);
        const owner = refresh ? refreshTokens.get(refresh) : undefined;
        if (!owner) return acrError(401, 'UNAUTHORIZED', 'authentication required, visit https://aka.ms/acr/authorization for more information.');
        const access = scopes.map((s) => {
          const [type, name, actions] = [s.slice(0, s.indexOf(':')), s.slice(s.indexOf(':') + 1, s.lastIndexOf(':')), s.slice(s.lastIndexOf(':') + 1)];
          return { type, name, actions: actions.split(',') };
        });
        const token = options.issueRegistryToken?.(access, owner.clientId) ?? `acr-access.${randomBytes(24).toString('base64url')}`;
        accessTokens.set(token, new Set(scopes));
        issued.access.push(token);
        return reply(200, { access_token: token });
      }

      // ---- ARM: AKS credentials
      if (options.aks) {
        const armClient = (bearer: string) => {
          const t = aadTokens.get(bearer);
          return t && armAudiences().includes(t.audience) ? t.clientId : undefined;
        };
        const answer = aksCredentialAnswer(options.aks, { method: req.method ?? '', url, authorization: req.headers.authorization ?? '' }, armClient);
        if (answer) return reply(answer.status, answer.body);
      }

      // ---- the registry itself
      const manifest = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(url.pathname);
      if (manifest || url.pathname === '/v2/') {
        const scope = manifest ? `repository:${manifest[1]}:pull` : undefined;
        const challenge = `Bearer realm="${base}/oauth2/token",service="${loginServer}"${scope ? `,scope="${scope}"` : ''}`;
        const token = (req.headers.authorization ?? '').replace(/^Bearer /, '');
        const granted = accessTokens.get(token);
        if (!granted || (scope && !granted.has(scope))) {
          return acrError(401, 'UNAUTHORIZED', 'authentication required, visit https://aka.ms/acr/authorization for more information.', { 'WWW-Authenticate': challenge });
        }
        if (!manifest) return reply(200, {});
        const found = manifests.get(`${manifest[1]}@${manifest[2]}`);
        if (!found) return acrError(404, 'MANIFEST_UNKNOWN', 'manifest tagged by "x" is not found');
        record.status = 200;
        res.writeHead(200, { 'Content-Type': found.mediaType, 'Docker-Content-Digest': digestOf(found.body), 'Content-Length': String(Buffer.byteLength(found.body)) });
        res.end(req.method === 'HEAD' ? undefined : found.body);
        return;
      }
      return reply(404, { message: 'not found' });
    }),
  );

  const host = `127.0.0.1:${await listenLocal(server)}`;
  base = `http://${host}`;
  loginServer = options.loginServer ?? host;

  return {
    url: base,
    host,
    loginServer,
    tenant,
    clientId,
    clientSecret,
    federatedToken,
    systemAccessToken,
    imdsUrl: `${base}/metadata/identity/oauth2/token`,
    oidcRequestUri: `${base}/_apis/distributedtask/hubs/build/plans/11111111-plan/jobs/22222222-job/oidctoken`,
    issued,
    log: () => records.map((r) => ({ ...r })),
    fail: (prefix, status, headers) => void faults.push({ prefix, status, headers }),
    addManifest(repo, tags, body, mediaType) {
      const digest = digestOf(body);
      for (const ref of [digest, ...tags]) manifests.set(`${repo}@${ref}`, { body, mediaType });
      return digest;
    },
    stop: () => closeServer(server),
  };
}

function digestOf(body: string): string {
  return `sha256:${createHash('sha256').update(body).digest('hex')}`;
}

/** What is wrong with a certificate client assertion, as Entra ID checks it (undefined when valid). */
function certificateAssertionProblem(jwt: string, cert: X509Certificate, clientId: string, audience: string, used: Set<string>): string | undefined {
  const parts = jwt.split('.');
  if (parts.length !== 3) return 'not a JWT';
  let header: { alg?: string; x5t?: string };
  let claims: { aud?: string; iss?: string; sub?: string; exp?: number; nbf?: number; jti?: string };
  try {
    header = JSON.parse(Buffer.from(parts[0], 'base64url').toString('utf8'));
    claims = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
  } catch {
    return 'undecodable header or claims';
  }
  if (header.alg !== 'RS256') return `alg ${header.alg}`;
  if (header.x5t !== createHash('sha1').update(cert.raw).digest('base64url')) return 'x5t does not match a registered certificate';
  if (!verify('sha256', Buffer.from(`${parts[0]}.${parts[1]}`), cert.publicKey, Buffer.from(parts[2], 'base64url'))) return 'bad signature';
  if (claims.aud !== audience) return `aud ${claims.aud}, expected ${audience}`;
  if (claims.iss !== clientId || claims.sub !== clientId) return 'iss and sub must be the client id';
  const now = Math.floor(Date.now() / 1000);
  if (typeof claims.exp !== 'number' || claims.exp < now) return 'expired';
  if (typeof claims.nbf === 'number' && claims.nbf > now + 300) return 'not yet valid';
  if (!claims.jti || used.has(claims.jti)) return 'jti missing or replayed';
  used.add(claims.jti);
  return undefined;
}
