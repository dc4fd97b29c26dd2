// The Kubernetes cluster from KubernetesDeploy's connection inputs: a Kubernetes connection, or
// AKS through an Azure Resource Manager connection.
import type { TaskContext } from '../context';
import { InputError } from '../errors';
import { aksKubeconfig } from '../kube/aks';
import { ResolvedKubeconfig, kubeconfigFromEndpoint } from '../kube/kubeconfig';
import { Inputs, oidcTokenGetter } from './connections';

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
    const admin = inputs.bool('useClusterAdmin');
    return () => aksKubeconfig({ endpoint: azure, resourceGroup, cluster, admin, getOidcToken: oidcTokenGetter(ctx, azure), setSecret, log: ctx, signal: ctx.signal });
  }
  const endpoint = inputs.endpoint('kubernetesServiceConnection');
  if (!endpoint) throw new InputError("Input 'kubernetesServiceConnection' is required: choose the Kubernetes service connection to deploy with.");
  const resolved = kubeconfigFromEndpoint(endpoint, setSecret);
  return async () => resolved;
}
