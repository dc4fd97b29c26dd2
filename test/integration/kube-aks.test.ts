// AKS through an Azure Resource Manager connection, against a double of Azure AD and ARM's
// listClusterUserCredential: a cluster with Azure AD integration (kubelogin exec kubeconfig, for
// which the task gets an Azure AD token for the AKS server application itself), admin credentials,
// and ARM's refusals.
import { strict as assert } from 'node:assert';
import { after, before, test } from 'node:test';
import * as YAML from 'yaml';
import { AKS_SERVER_APP_ID, aksKubeconfig } from '../../tasks/lib/kube/aks';
import { KubeClient } from '../../tasks/lib/kube/client';
import { AzureDouble, startAzureDouble } from '../support/azure-double';
import { KubeApiServer, kubeconfigFor, startKubeApi } from '../support/kube-api';

const tenant = 'a1b2c3d4-0000-4000-8000-00000000aaaa';
const clientId = 'c0ffee00-0000-4000-8000-00000000bbbb';
const clientSecret = 'sp~secret.aks-test-1234';
const tokens: Record<string, string> = { 'admin-static-token': 'clusterAdmin' };
let api: KubeApiServer;
let azure: AzureDouble;

before(async () => {
  api = await startKubeApi({ tokens, stepMs: 20 });
  const aad = YAML.parse(kubeconfigFor(api, { token: 'x' }));
  aad.users[0].user = {
    exec: {
      apiVersion: 'client.authentication.k8s.io/v1beta1',
      command: 'kubelogin',
      args: ['get-token', '--environment', 'AzurePublicCloud', '--server-id', AKS_SERVER_APP_ID, '--client-id', '80faf920-1908-4b52-b5ef-a8e7bedfc67a', '--tenant-id', tenant, '--login', 'devicecode'],
      installHint: 'kubelogin is not installed',
      interactiveMode: 'IfAvailable',
    },
  };
  azure = await startAzureDouble({
    tenant,
    clientId,
    clientSecret,
    aks: {
      subscription: 'sub-1234',
      resourceGroup: 'shop-rg',
      cluster: 'shop-aks',
      userKubeconfig: YAML.stringify(aad),
      adminKubeconfig: kubeconfigFor(api, { token: 'admin-static-token' }),
      onClusterToken: (t) => (tokens[t] = 'aad:deployer-sp'),
    },
  });
});
after(async () => {
  await api?.stop();
  await azure?.stop();
});

function endpoint() {
  return {
    id: 'azure-conn',
    input: 'azureSubscription',
    url: azure.url,
    scheme: 'ServicePrincipal',
    auth: { serviceprincipalid: clientId, serviceprincipalkey: clientSecret, tenantid: tenant, authenticationtype: 'spnKey' },
    data: { subscriptionid: 'sub-1234', environmentauthorityurl: azure.url },
  };
}

async function whoAmI(client: KubeClient): Promise<string | undefined> {
  const before = api.requests.length;
  await client.get('v1', 'Namespace', undefined, 'default');
  return api.requests.slice(before).at(-1)?.user;
}

test('an Azure AD cluster: user credentials, then an Azure AD token for the AKS server app instead of kubelogin', async () => {
  const secrets = new Set<string>();
  const config = await aksKubeconfig({ endpoint: endpoint(), resourceGroup: 'shop-rg', cluster: 'shop-aks', admin: false, setSecret: (s) => secrets.add(s) });
  assert.equal(config.user.exec, undefined, 'kubelogin is not needed on the agent');
  assert.ok(config.user.token && secrets.has(config.user.token));
  assert.ok(secrets.has(clientSecret));
  const scopes = azure.log().flatMap((r) => r.form?.scope ?? []);
  assert.deepEqual(scopes, [`${azure.url}/.default`, `${AKS_SERVER_APP_ID}/.default`]);
  assert.ok(azure.log().some((r) => r.path.endsWith('/managedClusters/shop-aks/listClusterUserCredential') && r.status === 200));
  const client = new KubeClient(config, { setSecret: () => undefined });
  assert.equal(await whoAmI(client), 'aad:deployer-sp');
  client.close();
});

test('admin credentials', async () => {
  const config = await aksKubeconfig({ endpoint: endpoint(), resourceGroup: 'shop-rg', cluster: 'shop-aks', admin: true, setSecret: () => undefined });
  const client = new KubeClient(config, { setSecret: () => undefined });
  assert.equal(await whoAmI(client), 'clusterAdmin');
  client.close();
});

test('ARM refusals are explained', async () => {
  await assert.rejects(aksKubeconfig({ endpoint: endpoint(), resourceGroup: 'shop-rg', cluster: 'other', admin: false, setSecret: () => undefined }), /Inputs 'azureResourceGroup'\/'kubernetesCluster': the AKS cluster 'other' in resource group 'shop-rg' \(subscription sub-1234\) was not found/);
  const wrongSecret = { ...endpoint(), auth: { ...endpoint().auth, serviceprincipalkey: 'wrong' } };
  await assert.rejects(aksKubeconfig({ endpoint: wrongSecret, resourceGroup: 'shop-rg', cluster: 'shop-aks', admin: false, setSecret: () => undefined }), /Azure AD refused the service connection 'azure-conn'.*Invalid client secret/);
  const noSub = { ...endpoint(), data: { environmentauthorityurl: azure.url } };
  await assert.rejects(aksKubeconfig({ endpoint: noSub as any, resourceGroup: 'shop-rg', cluster: 'shop-aks', admin: false, setSecret: () => undefined }), /has no subscription id/);
});
