// The service connections the tasks' inputs name, turned into what the library takes: registry
// credentials (a Docker registry connection, or ACR through an Azure Resource Manager connection)
// and a Kubernetes cluster (a Kubernetes connection, or AKS through an Azure Resource Manager
// connection). Type-only imports of the adapter, like lock-input.ts.
import { createCredentialSource } from '../auth';
import { createPipelineOidcTokenGetter } from '../auth/acr';
import type { EndpointInfo, TaskContext } from '../context';
import { InputError } from '../errors';
import { aksKubeconfig } from '../kube/aks';
import { ResolvedKubeconfig, kubeconfigFromEndpoint } from '../kube/kubeconfig';
import type { CredentialSource } from '../registry/client';
import type { TaskInputs } from './index';

type Inputs = Pick<TaskInputs, 'string' | 'required' | 'bool' | 'choice' | 'endpoint'>;

/** The job's OIDC token for an Azure connection with workload identity federation. */
function oidcTokenGetter(ctx: TaskContext, azure: EndpointInfo) {
  return createPipelineOidcTokenGetter({
    requestUri: ctx.variable('System.OidcRequestUri'),
    accessToken: ctx.variable('System.AccessToken'),
    serviceConnectionId: azure.id,
    setSecret: (s) => ctx.setSecret(s),
  });
}

/** Credentials from containerRegistryType: containerRegistry, or azureSubscription + azureContainerRegistry. */
export function registryCredentials(inputs: Inputs, ctx: TaskContext): CredentialSource {
  const useAcr = inputs.choice('containerRegistryType', ['dockerRegistry', 'azureContainerRegistry'] as const) === 'azureContainerRegistry';
  const azure = useAcr ? inputs.endpoint('azureSubscription') : undefined;
  if (useAcr && !azure) throw new InputError("Input 'azureSubscription' is required when the registry type is Azure Container Registry.");
  return createCredentialSource({
    endpoint: useAcr ? undefined : inputs.endpoint('containerRegistry'),
    acr: azure && { endpoint: azure, loginServer: inputs.required('azureContainerRegistry'), getOidcToken: oidcTokenGetter(ctx, azure) },
    setSecret: (s) => ctx.setSecret(s),
  });
}

/**
 * The cluster from connectionType: kubernetesServiceConnection, or azureSubscription +
 * azureResourceGroup + kubernetesCluster (+ useClusterAdmin). The inputs are checked now; AKS
 * credentials are fetched when the returned function is called.
 */
export function kubernetesConnection(inputs: Inputs, ctx: TaskContext): () => Promise<ResolvedKubeconfig> {
  const setSecret = (s: string) => ctx.setSecret(s);
  if (inputs.choice('connectionType', ['kubernetesServiceConnection', 'azureResourceManager'] as const) === 'azureResourceManager') {
    const azure = inputs.endpoint('azureSubscription');
    if (!azure) throw new InputError("Input 'azureSubscription' is required when the connection type is Azure Resource Manager.");
    const resourceGroup = inputs.required('azureResourceGroup');
    const cluster = inputs.required('kubernetesCluster');
    const admin = inputs.bool('useClusterAdmin', false);
    return () => aksKubeconfig({ endpoint: azure, resourceGroup, cluster, admin, getOidcToken: oidcTokenGetter(ctx, azure), setSecret, log: ctx, signal: ctx.signal });
  }
  const endpoint = inputs.endpoint('kubernetesServiceConnection');
  if (!endpoint) throw new InputError("Input 'kubernetesServiceConnection' is required: choose the Kubernetes service connection to deploy with.");
  const resolved = kubeconfigFromEndpoint(endpoint, setSecret);
  return async () => resolved;
}
