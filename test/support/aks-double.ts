// ARM's AKS credential actions, served by the Azure double (azure-double.ts) when it is started
// with `aks`: POST /subscriptions/<s>/resourceGroups/<rg>/providers/Microsoft.ContainerService/
// managedClusters/<c>/listClusterUserCredential|listClusterAdminCredential?api-version=…, with a
// bearer token the double's Azure AD issued for ARM, answered with ARM's error shapes.

export interface AksClusterOptions {
  subscription: string;
  resourceGroup: string;
  cluster: string;
  /** The kubeconfig listClusterUserCredential returns (listClusterAdminCredential returns `adminKubeconfig`). */
  userKubeconfig: string;
  adminKubeconfig?: string;
  /** Called with each Azure AD token issued for the AKS server application (so the API server accepts it). */
  onClusterToken?: (token: string) => void;
  /** Whether the identity may list credentials (default true). */
  allowed?: boolean;
}

/** A scope for the AKS server application (`<application id>/.default`). */
export const AKS_SERVER_SCOPE = /^[0-9a-f-]{36}\/\.default$/;

const CREDENTIAL_PATH = /^\/subscriptions\/([^/]+)\/resourceGroups\/([^/]+)\/providers\/Microsoft\.ContainerService\/managedClusters\/([^/]+)\/(listClusterUserCredential|listClusterAdminCredential)$/;

/** The answer to a credential action, or undefined when the request is not one. */
export function aksCredentialAnswer(
  aks: AksClusterOptions,
  request: { method: string; url: URL; authorization: string },
  armClient: (bearer: string) => string | undefined,
): { status: number; body: unknown } | undefined {
  const m = CREDENTIAL_PATH.exec(request.url.pathname);
  if (request.method !== 'POST' || !m) return undefined;
  const armError = (status: number, code: string, message: string) => ({ status, body: { error: { code, message } } });
  const clientId = request.authorization.startsWith('Bearer ') ? armClient(request.authorization.slice(7)) : undefined;
  if (!clientId) return armError(401, 'InvalidAuthenticationToken', 'The access token is invalid.');
  if (!request.url.searchParams.get('api-version')) return armError(400, 'MissingApiVersionParameter', 'The api-version query parameter (?api-version=) is required for all requests.');
  const [, subscription, group, cluster, action] = m;
  if (subscription !== aks.subscription || group.toLowerCase() !== aks.resourceGroup.toLowerCase() || cluster !== aks.cluster) {
    return armError(404, 'ResourceNotFound', `The Resource 'Microsoft.ContainerService/managedClusters/${cluster}' under resource group '${group}' was not found.`);
  }
  if (aks.allowed === false) return armError(403, 'AuthorizationFailed', `The client '${clientId}' does not have authorization to perform action 'Microsoft.ContainerService/managedClusters/${action}/action'.`);
  const admin = action === 'listClusterAdminCredential';
  if (admin && !aks.adminKubeconfig) return armError(400, 'BadRequest', 'Getting static credential is not allowed because this cluster is set to disable local accounts.');
  const text = admin ? aks.adminKubeconfig! : aks.userKubeconfig;
  return { status: 200, body: { kubeconfigs: [{ name: admin ? 'clusterAdmin' : 'clusterUser', value: Buffer.from(text).toString('base64') }] } };
}
