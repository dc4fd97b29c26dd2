// AKS credentials through an Azure Resource Manager connection:
//   1. an Azure AD token for ARM with the connection's identity (tasks/lib/auth/azure-ad.ts:
//      secret, certificate, workload identity federation or managed identity);
//   2. POST https://management.azure.com/subscriptions/<sub>/resourceGroups/<rg>/providers/
//      Microsoft.ContainerService/managedClusters/<cluster>/listClusterUserCredential
//      ?api-version=2024-02-01 (or listClusterAdminCredential) → {kubeconfigs: [{name, value: base64}]};
//   3. for a cluster with Azure AD integration the kubeconfig's user is a kubelogin exec plugin (or
//      the removed azure auth-provider): instead of needing kubelogin on the agent, the task gets an
//      Azure AD token for the AKS server application (the `--server-id` of the kubeconfig, by default
//      6dae42f8-4368-4678-94ff-3960e28e3630) with the same identity, as `kubelogin --login spn` /
//      `workloadidentity` / `msi` would.
// Everything Azure-side is injectable so tests run against a double on 127.0.0.1.
import type { EndpointInfo } from '../context';
import { InputError, OuterLoopError } from '../errors';
import { aadAccessToken, azureSender, type AzureAdOptions } from '../auth/azure-ad';
import { HttpTransport } from '../util/http';
import { parseYaml, toPlain } from '../util/yaml';
import { ResolvedKubeconfig, parseKubeconfig, registerKubeconfigSecrets } from './kubeconfig';
import { isObject } from '../util/object';

export const AKS_SERVER_APP_ID = '6dae42f8-4368-4678-94ff-3960e28e3630';
export const AKS_API_VERSION = '2024-02-01';

export interface AksOptions extends Omit<AzureAdOptions, 'scope'> {
  endpoint: EndpointInfo;
  resourceGroup: string;
  cluster: string;
  admin: boolean;
  /** ARM base URL; default the connection's (environment) URL, else https://management.azure.com. */
  armUrl?: string;
  setSecret: (s: string) => void;
}

export async function aksKubeconfig(options: AksOptions): Promise<ResolvedKubeconfig> {
  const endpoint = options.endpoint;
  const subscription = endpoint.data.subscriptionid;
  if (!subscription) throw new InputError(`Input '${endpoint.input}': the Azure connection '${endpoint.id}' has no subscription id. Use a connection scoped to the cluster's subscription.`);
  const arm = (options.armUrl ?? endpoint.data.environmenturl ?? (endpoint.url || 'https://management.azure.com')).replace(/\/+$/, '');
  const transport = options.transport ?? new HttpTransport();
  try {
    const common = { ...options, transport };
    const armToken = await aadAccessToken(endpoint, { ...common, scope: `${new URL(arm).origin}/.default` });
    const action = options.admin ? 'listClusterAdminCredential' : 'listClusterUserCredential';
    const url = `${arm}/subscriptions/${encodeURIComponent(subscription)}/resourceGroups/${encodeURIComponent(options.resourceGroup)}/providers/Microsoft.ContainerService/managedClusters/${encodeURIComponent(options.cluster)}/${action}?api-version=${AKS_API_VERSION}`;
    // ARM throttles too: the one retry rule and a total time, as every Azure call has.
    const send = azureSender(transport, options);
    const res = await send({ method: 'POST', url, headers: { Authorization: `Bearer ${armToken}`, Accept: 'application/json', 'Content-Type': 'application/json' }, body: '' }, `Azure ${action}`);
    let json: { kubeconfigs?: { name?: string; value?: string }[]; error?: { code?: string; message?: string } } = {};
    try {
      json = JSON.parse(res.body.toString('utf8'));
    } catch {
      json = {};
    }
    const where = `AKS cluster '${options.cluster}' in resource group '${options.resourceGroup}' (subscription ${subscription})`;
    if (res.status === 404) throw new InputError(`Inputs 'azureResourceGroup'/'kubernetesCluster': the ${where} was not found${json.error?.message ? ` (${json.error.message})` : ''}.`);
    if (res.status === 401 || res.status === 403) {
      throw new OuterLoopError(
        `Azure refused ${action} on the ${where} for the identity of input '${endpoint.input}' (${res.status}${json.error?.code ? ` ${json.error.code}` : ''}). Give it the 'Azure Kubernetes Service Cluster ${options.admin ? 'Admin' : 'User'} Role' on the cluster${options.admin ? ', and check that local accounts are not disabled' : ''}.`,
      );
    }
    if (res.status !== 200) throw new OuterLoopError(`Azure answered ${res.status} to ${action} on the ${where}: ${json.error?.message ?? 'no details'}.`);
    const value = json.kubeconfigs?.[0]?.value;
    if (!value) throw new OuterLoopError(`Azure returned no kubeconfig for the ${where}.`);
    const text = Buffer.from(value, 'base64').toString('utf8');
    registerKubeconfigSecrets(text, options.setSecret);
    const source = `Input '${endpoint.input}' (AKS cluster '${options.cluster}')`;
    const config = parseKubeconfigLenient(text, source, options.setSecret);
    if (config.aad) {
      const serverId = config.aad.serverId ?? AKS_SERVER_APP_ID;
      const token = await aadAccessToken(endpoint, { ...common, scope: `${serverId}/.default` });
      options.setSecret(token);
      config.resolved.user = { token };
    }
    return config.resolved;
  } finally {
    if (!options.transport) transport.close();
  }
}

/** Parses the AKS kubeconfig; an Azure AD user (kubelogin exec or azure auth-provider) is noted, not run. */
function parseKubeconfigLenient(text: string, source: string, setSecret: (s: string) => void): { resolved: ResolvedKubeconfig; aad?: { serverId?: string } } {
  let data: unknown;
  try {
    data = toPlain(parseYaml(text, `${source}: the kubeconfig`), `${source}: the kubeconfig`);
  } catch (err) {
    throw new OuterLoopError(`${source}: Azure returned a kubeconfig that is not valid YAML (${(err as Error).message}).`);
  }
  const doc = isObject(data) ? data : {};
  const contexts = Array.isArray(doc.contexts) ? doc.contexts : [];
  const current = contexts.find((c) => isObject(c) && c.name === doc['current-context']) ?? contexts[0];
  const userName = isObject(current) && isObject(current.context) ? current.context.user : undefined;
  const users = Array.isArray(doc.users) ? doc.users : [];
  const entry = users.find((u) => isObject(u) && u.name === userName);
  const user = isObject(entry) && isObject(entry.user) ? entry.user : undefined;
  let aad: { serverId?: string } | undefined;
  if (user && isObject(user.exec) && /(^|\/)kubelogin(\.exe)?$/.test(String(user.exec.command ?? ''))) {
    const args = Array.isArray(user.exec.args) ? user.exec.args.map(String) : [];
    const i = args.indexOf('--server-id');
    aad = { serverId: i >= 0 ? args[i + 1] : args.find((a) => a.startsWith('--server-id='))?.slice('--server-id='.length) };
    delete user.exec;
  } else if (user && isObject(user['auth-provider']) && user['auth-provider'].name === 'azure') {
    const config = isObject(user['auth-provider'].config) ? user['auth-provider'].config : {};
    aad = { serverId: typeof config['apiserver-id'] === 'string' ? config['apiserver-id'] : undefined };
    delete user['auth-provider'];
  }
  // The caller puts the Azure AD token in place of the user it removed.
  const resolved = parseKubeconfig(aad ? JSON.stringify(doc) : text, { source, setSecret });
  return { resolved, aad };
}
