// ACR credentials from Azure identities, against test/support/azure-double.ts (Azure AD token
// endpoint, IMDS, Azure DevOps OIDC, ACR /oauth2/exchange and /oauth2/token, a registry).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, generateKeyPairSync } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createCredentialSource } from '../../tasks/lib/auth';
import { ACR_REFRESH_TOKEN_USERNAME, acrCredential } from '../../tasks/lib/auth/acr';
import { createPipelineOidcTokenGetter } from '../../tasks/lib/auth/azure-ad';
import type { EndpointInfo } from '../../tasks/lib/context';
import { InputError, RegistryError } from '../../tasks/lib/errors';
import { parseReference } from '../../tasks/lib/reference';
import { RegistryClient } from '../../tasks/lib/registry/client';
import { MEDIA_TYPES } from '../../tasks/lib/registry/manifest';
import { ACR_NULL_USER, AzureDouble, JWT_BEARER, startAzureDouble } from '../support/azure-double';
import { createTestContext } from '../support/context';

const FAST_RETRY = { attempts: 3, baseDelayMs: 5, maxDelayMs: 20, maxRetryAfterMs: 2_000 };

function azurerm(double: AzureDouble, scheme: string, auth: Record<string, string>): EndpointInfo {
  return {
    id: 'f00dcafe-0000-4000-8000-000000000001',
    input: 'azureSubscription',
    url: 'https://management.azure.com/',
    scheme,
    auth: { tenantid: double.tenant, ...auth },
    data: { subscriptionid: 'sub-1', environment: 'AzureCloud' },
  };
}

/** The requests of one kind the double saw. */
const requests = (double: AzureDouble, prefix: string) => double.log().filter((r) => r.path.startsWith(prefix));

describe('ACR exchange with a service principal secret', () => {
  let double: AzureDouble;
  before(async () => {
    double = await startAzureDouble();
  });
  after(() => double.stop());

  it('gets an AAD token by client credentials, exchanges it, and returns the null-GUID credential', async () => {
    const ctx = createTestContext();
    const endpoint = azurerm(double, 'ServicePrincipal', { serviceprincipalid: double.clientId, serviceprincipalkey: double.clientSecret, authenticationtype: 'spnKey' });
    const credential = await acrCredential({
      loginServer: double.loginServer,
      endpoint,
      authorityHost: double.url,
      setSecret: (s) => ctx.setSecret(s),
    });
    assert.equal(credential.username, ACR_REFRESH_TOKEN_USERNAME);
    assert.equal(credential.username, ACR_NULL_USER);
    assert.equal(credential.password, double.issued.refresh.at(-1));

    const [aad] = requests(double, `/${double.tenant}/oauth2/v2.0/token`);
    assert.equal(aad.status, 200);
    assert.deepEqual(aad.form, {
      grant_type: 'client_credentials',
      client_id: double.clientId,
      scope: 'https://management.azure.com/.default',
      client_secret: double.clientSecret,
    });
    const [exchange] = requests(double, '/oauth2/exchange');
    assert.equal(exchange.status, 200);
    assert.deepEqual(exchange.form, { grant_type: 'access_token', service: double.loginServer, access_token: double.issued.aad.at(-1), tenant: double.tenant });

    for (const secret of [double.clientSecret, double.issued.aad.at(-1)!, credential.password]) {
      assert.ok(ctx.secrets.has(secret), 'registered as a secret');
      assert.ok(ctx.secrets.has(Buffer.from(secret).toString('base64')), 'base64 form registered');
    }
  });

  it('a wrong secret fails with Azure AD\'s reason (no trace ids) and a hint', async () => {
    const endpoint = azurerm(double, 'ServicePrincipal', { serviceprincipalid: double.clientId, serviceprincipalkey: 'expired-secret' });
    await assert.rejects(acrCredential({ loginServer: double.loginServer, endpoint, authorityHost: double.url, setSecret: () => {} }), (err: RegistryError) => {
      assert.ok(err instanceof RegistryError);
      assert.equal(err.code, 'invalid_client');
      assert.match(err.message, /^Azure AD refused the service connection 'f00dcafe-.*' \(input 'azureSubscription'\): AADSTS7000215: Invalid client secret provided\./);
      assert.match(err.message, /secret: it may have expired/);
      assert.doesNotMatch(err.message, /Trace ID/);
      return true;
    });
  });

  it('an identity without a role on the registry fails at the exchange, naming AcrPush', async () => {
    const denied = await startAzureDouble({ registryRoleFor: () => false });
    const endpoint = azurerm(denied, 'ServicePrincipal', { serviceprincipalid: denied.clientId, serviceprincipalkey: denied.clientSecret });
    await assert.rejects(acrCredential({ loginServer: denied.loginServer, endpoint, authorityHost: denied.url, setSecret: () => {} }), (err: RegistryError) => {
      assert.equal(err.status, 401);
      assert.match(err.message, /refused to exchange the Azure AD token for a registry token: The identity does not have a role assignment on the registry\. .*AcrPush/);
      return true;
    });
    await denied.stop();
  });

  it('retries Azure AD when it throttles', async () => {
    double.fail(`/${double.tenant}/oauth2`, 429, { 'Retry-After': '0' });
    const endpoint = azurerm(double, 'ServicePrincipal', { serviceprincipalid: double.clientId, serviceprincipalkey: double.clientSecret });
    const credential = await acrCredential({ loginServer: double.loginServer, endpoint, authorityHost: double.url, setSecret: () => {}, retry: FAST_RETRY });
    assert.equal(credential.password, double.issued.refresh.at(-1));
  });

  it('a connection without a tenant is an input error', async () => {
    const endpoint = azurerm(double, 'ServicePrincipal', { serviceprincipalid: double.clientId, serviceprincipalkey: 'x', tenantid: '' });
    await assert.rejects(acrCredential({ loginServer: double.loginServer, endpoint, authorityHost: double.url, setSecret: () => {} }), InputError);
  });
});

describe('ACR exchange with workload identity federation', () => {
  let double: AzureDouble;
  before(async () => {
    double = await startAzureDouble();
  });
  after(() => double.stop());

  it('uses the pipeline OIDC token (from the agent\'s request URI) as the client assertion', async () => {
    const ctx = createTestContext();
    const endpoint = azurerm(double, 'WorkloadIdentityFederation', { serviceprincipalid: double.clientId });
    const getOidcToken = createPipelineOidcTokenGetter({
      requestUri: double.oidcRequestUri,
      accessToken: double.systemAccessToken,
      serviceConnectionId: endpoint.id,
      setSecret: (s) => ctx.setSecret(s),
    });
    const credential = await acrCredential({ loginServer: double.loginServer, endpoint, authorityHost: double.url, getOidcToken, setSecret: (s) => ctx.setSecret(s) });
    assert.equal(credential.password, double.issued.refresh.at(-1));

    const [oidc] = requests(double, '/_apis/distributedtask');
    assert.equal(oidc.status, 200);
    assert.equal(oidc.headers.authorization, `Bearer ${double.systemAccessToken}`);
    const [aad] = requests(double, `/${double.tenant}/oauth2/v2.0/token`);
    assert.deepEqual(aad.form, {
      grant_type: 'client_credentials',
      client_id: double.clientId,
      scope: 'https://management.azure.com/.default',
      client_assertion_type: JWT_BEARER,
      client_assertion: double.federatedToken,
    });
    for (const secret of [double.systemAccessToken, double.federatedToken, credential.password]) assert.ok(ctx.secrets.has(secret));
  });

  it('an assertion Azure AD does not know fails with a hint about the federated credential', async () => {
    const endpoint = azurerm(double, 'WorkloadIdentityFederation', { serviceprincipalid: double.clientId });
    await assert.rejects(
      acrCredential({ loginServer: double.loginServer, endpoint, authorityHost: double.url, getOidcToken: async () => 'eyJ.other.token', setSecret: () => {} }),
      /AADSTS700211: No matching federated identity record.*federated credential of the app registration/,
    );
  });

  it('without an OIDC request URI the error says where to run', async () => {
    const getter = createPipelineOidcTokenGetter({ requestUri: undefined, accessToken: undefined, serviceConnectionId: 'x', setSecret: () => {} });
    await assert.rejects(getter(), /no OIDC request URI or System\.AccessToken/);
  });
});

describe('ACR exchange with a certificate', () => {
  let double: AzureDouble;
  let pem: string;
  before(async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'col-acr-cert-'));
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    fs.writeFileSync(path.join(dir, 'key.pem'), keyPem, { mode: 0o600 });
    const out = spawnSync('openssl', ['req', '-x509', '-new', '-key', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=col-test-sp'], { encoding: 'utf8' });
    assert.equal(out.status, 0, out.stderr);
    pem = `${keyPem}${fs.readFileSync(path.join(dir, 'cert.pem'), 'utf8')}`;
    fs.rmSync(dir, { recursive: true, force: true });
    double = await startAzureDouble({ certificatePem: pem });
  });
  after(() => double.stop());

  it('signs a client assertion that Azure AD accepts (x5t, aud, iss/sub, RS256)', async () => {
    const endpoint = azurerm(double, 'ServicePrincipal', { serviceprincipalid: double.clientId, authenticationtype: 'spnCertificate', serviceprincipalcertificate: pem });
    const credential = await acrCredential({ loginServer: double.loginServer, endpoint, authorityHost: double.url, setSecret: () => {} });
    assert.equal(credential.password, double.issued.refresh.at(-1));
    const [aad] = requests(double, `/${double.tenant}/oauth2/v2.0/token`);
    assert.equal(aad.form?.client_assertion_type, JWT_BEARER);
    assert.equal(aad.form?.client_secret, undefined);
    const header = JSON.parse(Buffer.from(aad.form!.client_assertion.split('.')[0], 'base64url').toString('utf8'));
    assert.equal(header.alg, 'RS256');
    assert.equal(typeof header.x5t, 'string');
  });
});

describe('ACR exchange with a managed identity', () => {
  let double: AzureDouble;
  before(async () => {
    double = await startAzureDouble();
  });
  after(() => double.stop());

  it('asks IMDS with Metadata: true for the ARM resource', async () => {
    const ctx = createTestContext();
    const endpoint = azurerm(double, 'ManagedServiceIdentity', {});
    const credential = await acrCredential({ loginServer: double.loginServer, endpoint, imdsUrl: double.imdsUrl, setSecret: (s) => ctx.setSecret(s) });
    assert.equal(credential.password, double.issued.refresh.at(-1));
    const [imds] = requests(double, '/metadata/identity');
    assert.equal(imds.status, 200);
    assert.equal(imds.headers.metadata, 'true');
    assert.ok(ctx.secrets.has(double.issued.aad.at(-1)!));
  });

  it('explains that managed identity needs an Azure VM when IMDS does not answer', async () => {
    const endpoint = azurerm(double, 'ManagedServiceIdentity', {});
    await assert.rejects(
      acrCredential({ loginServer: double.loginServer, endpoint, imdsUrl: 'http://127.0.0.1:1/metadata/identity/oauth2/token', setSecret: () => {}, retry: FAST_RETRY }),
      /instance metadata service .* did not answer.*self-hosted agent on an Azure VM/,
    );
  });
});

describe('ACR end to end: credential source + registry client', () => {
  let double: AzureDouble;
  before(async () => {
    double = await startAzureDouble();
  });
  after(() => double.stop());

  it('resolves a manifest from the ACR double with the exchanged refresh token', async () => {
    const ctx = createTestContext();
    const body = JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPES.ociManifest, config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: `sha256:${'a'.repeat(64)}`, size: 2 }, layers: [] });
    const digest = double.addManifest('team/app', ['1.0'], body, MEDIA_TYPES.ociManifest);
    const endpoint = azurerm(double, 'ServicePrincipal', { serviceprincipalid: double.clientId, serviceprincipalkey: double.clientSecret });
    const credentials = createCredentialSource({
      acr: { loginServer: double.loginServer, endpoint, authorityHost: double.url },
      setSecret: (s) => ctx.setSecret(s),
      useDockerConfig: false,
    });
    const client = new RegistryClient({ credentials, setSecret: (s) => ctx.setSecret(s), log: ctx });
    const ref = parseReference(`${double.host}/team/app:1.0`);
    const resolved = await client.resolve(ref);
    assert.equal(resolved.digest, digest);
    assert.equal(resolved.digest, `sha256:${createHash('sha256').update(body).digest('hex')}`);
    assert.deepEqual(client.stats, { requests: 3, tokenRequests: 1, retries: 0 });
    await client.resolve(ref);
    assert.equal(client.stats.requests, 4);

    // The realm got Basic 00000000-…:<refresh token>, as docker login with the null GUID does.
    const [realm] = requests(double, '/oauth2/token');
    const basic = Buffer.from(`${ACR_NULL_USER}:${double.issued.refresh.at(-1)}`).toString('base64');
    assert.equal(realm.headers.authorization, `Basic ${basic}`);
    // One exchange for the whole run, and every token masked, nothing leaked in the logs.
    assert.equal(requests(double, '/oauth2/exchange').length, 1);
    const all = [double.clientSecret, ...double.issued.aad, ...double.issued.refresh, ...double.issued.access, basic];
    for (const s of all) assert.ok(ctx.secrets.has(s), `secret registered: ${s.slice(0, 8)}…`);
    const logs = ctx.logs.join('\n');
    for (const s of all) assert.ok(!logs.includes(s), 'no secret in the logs');
    client.close();
  });

  it('other registries do not get the ACR credential', async () => {
    const endpoint = azurerm(double, 'ServicePrincipal', { serviceprincipalid: double.clientId, serviceprincipalkey: double.clientSecret });
    const before = requests(double, '/oauth2/exchange').length;
    const credentials = createCredentialSource({ acr: { loginServer: double.loginServer, endpoint, authorityHost: double.url }, setSecret: () => {}, useDockerConfig: false });
    assert.equal(await credentials('other.azurecr.io'), undefined);
    assert.equal(requests(double, '/oauth2/exchange').length, before);
  });

  it('an Azure connection without a login server is an input error naming the input', () => {
    const endpoint = azurerm(double, 'ServicePrincipal', { serviceprincipalid: 'x', serviceprincipalkey: 'y' });
    assert.throws(() => createCredentialSource({ endpoint, setSecret: () => {} }), (err: Error) => err instanceof InputError && /Input 'azureSubscription'/.test(err.message));
  });
});
