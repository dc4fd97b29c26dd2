// Azure AD access tokens for each identity an Azure connection can carry, for the scope the caller
// asks for (ACR and AKS ask for different ones), against test/support/azure-double.ts. The ACR
// exchange on top of it is in acr.test.ts, AKS in test/integration/kube-aks.test.ts.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { aadAccessToken, azureIdentityKind, isAzureEndpoint } from '../../tasks/lib/auth/azure-ad';
import type { EndpointInfo } from '../../tasks/lib/context';
import { InputError } from '../../tasks/lib/errors';
import { AzureDouble, JWT_BEARER, startAzureDouble } from '../support/azure-double';
import { makeCa } from '../support/pki';

/** The sovereign-cloud style audience the double accepts besides the public one. */
const OTHER_ARM = 'https://management.core.windows.net/';

function connection(double: AzureDouble, scheme: string, auth: Record<string, string>, url = 'https://management.azure.com/'): EndpointInfo {
  return { id: 'azure-conn', input: 'azureSubscription', url, scheme, auth: { tenantid: double.tenant, ...auth }, data: {} };
}

const tokenRequests = (double: AzureDouble) => double.log().filter((r) => r.path === `/${double.tenant}/oauth2/v2.0/token`);

describe('azureIdentityKind', () => {
  const endpoint = (scheme: string, auth: Record<string, string> = {}): EndpointInfo => ({ id: 'x', input: 'azureSubscription', url: '', scheme, auth, data: {} });
  const kind = (scheme: string, auth?: Record<string, string>) => azureIdentityKind(endpoint(scheme, auth));

  it('reads the identity from the scheme and the authentication type', () => {
    assert.equal(kind('ServicePrincipal', { authenticationtype: 'spnKey', serviceprincipalkey: 'k' }), 'secret');
    assert.equal(kind('ServicePrincipal', { authenticationtype: 'spnCertificate' }), 'certificate');
    assert.equal(kind('ServicePrincipal', { serviceprincipalcertificate: 'pem' }), 'certificate');
    assert.equal(kind('WorkloadIdentityFederation'), 'workloadIdentity');
    assert.equal(kind('ManagedServiceIdentity'), 'managedIdentity');
    assert.equal(kind('UsernamePassword'), undefined);
    assert.equal(isAzureEndpoint(endpoint('UsernamePassword')), false);
    assert.equal(isAzureEndpoint(endpoint('WorkloadIdentityFederation')), true);
  });
});

describe('aadAccessToken', () => {
  let double: AzureDouble;
  let certificatePem: string;
  before(async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'col-aad-cert-'));
    const pki = makeCa(path.join(dir, 'pki'), 'col-test-sp');
    certificatePem = `${fs.readFileSync(pki.caKey, 'utf8')}${pki.caPem}`;
    fs.rmSync(dir, { recursive: true, force: true });
    double = await startAzureDouble({ certificatePem });
  });
  after(() => double.stop());

  it('a secret: client credentials for the scope asked for, the secret and the token masked', async () => {
    const secrets = new Set<string>();
    const endpoint = connection(double, 'ServicePrincipal', { serviceprincipalid: double.clientId, serviceprincipalkey: double.clientSecret });
    const token = await aadAccessToken(endpoint, { authorityHost: double.url, scope: `${OTHER_ARM}.default`, setSecret: (s) => secrets.add(s) });
    assert.equal(token, double.issued.aad.at(-1));
    assert.deepEqual(tokenRequests(double).at(-1)?.form, { grant_type: 'client_credentials', client_id: double.clientId, scope: `${OTHER_ARM}.default`, client_secret: double.clientSecret });
    assert.ok(secrets.has(double.clientSecret) && secrets.has(token));
  });

  it('without a scope, the audience is the ARM URL of the connection', async () => {
    const endpoint = connection(double, 'ServicePrincipal', { serviceprincipalid: double.clientId, serviceprincipalkey: double.clientSecret }, OTHER_ARM);
    await aadAccessToken(endpoint, { authorityHost: double.url, setSecret: () => {} });
    assert.equal(tokenRequests(double).at(-1)?.form?.scope, `${OTHER_ARM}.default`);
  });

  it('a certificate: a signed client assertion the double verifies, and no secret', async () => {
    const endpoint = connection(double, 'ServicePrincipal', { serviceprincipalid: double.clientId, authenticationtype: 'spnCertificate', serviceprincipalcertificate: certificatePem });
    const token = await aadAccessToken(endpoint, { authorityHost: double.url, setSecret: () => {} });
    assert.equal(token, double.issued.aad.at(-1));
    const form = tokenRequests(double).at(-1)?.form;
    assert.equal(form?.client_assertion_type, JWT_BEARER);
    assert.equal(form?.client_secret, undefined);
  });

  it('workload identity: the OIDC token is the client assertion', async () => {
    const endpoint = connection(double, 'WorkloadIdentityFederation', { serviceprincipalid: double.clientId });
    const token = await aadAccessToken(endpoint, { authorityHost: double.url, getOidcToken: async () => double.federatedToken, setSecret: () => {} });
    assert.equal(token, double.issued.aad.at(-1));
    assert.equal(tokenRequests(double).at(-1)?.form?.client_assertion, double.federatedToken);
  });

  it('a managed identity: IMDS for the resource of the scope', async () => {
    const endpoint = connection(double, 'ManagedServiceIdentity', {});
    const token = await aadAccessToken(endpoint, { imdsUrl: double.imdsUrl, scope: `${OTHER_ARM}.default`, setSecret: () => {} });
    assert.equal(token, double.issued.aad.at(-1));
    assert.equal(double.log().at(-1)?.path, '/metadata/identity/oauth2/token');
  });

  it('a connection that is no Azure identity is an input error naming it', async () => {
    const endpoint = connection(double, 'UsernamePassword', { username: 'u', password: 'p' });
    await assert.rejects(aadAccessToken(endpoint, { authorityHost: double.url, setSecret: () => {} }), (err: Error) => err instanceof InputError && /'azure-conn' \(input 'azureSubscription'\) is not an Azure Resource Manager connection/.test(err.message));
  });
});

describe('a token endpoint that never answers', () => {
  it('fails once the call\'s time is up, naming the host, instead of waiting for each attempt\'s own timeout', async () => {
    const silent = http.createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const host = `127.0.0.1:${(silent.address() as AddressInfo).port}`;
    try {
      const endpoint: EndpointInfo = { id: 'azure-conn', input: 'azureSubscription', url: 'https://management.azure.com/', scheme: 'ServicePrincipal', auth: { tenantid: 't1', serviceprincipalid: 'c1', serviceprincipalkey: 's1' }, data: {} };
      const started = Date.now();
      await assert.rejects(
        aadAccessToken(endpoint, { authorityHost: `http://${host}`, setSecret: () => {}, callTimeoutMs: 1_000 }),
        new RegExp(`${host.replace(/\./g, '\\.')} did not answer within 1 s \\(1 attempt\\); check that the agent reaches it`),
      );
      assert.ok(Date.now() - started < 5_000, 'ended by the call\'s time, not the 30 s of one attempt');
    } finally {
      silent.closeAllConnections();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  });
});
