// Registry credentials from the tasks' connection inputs: a Docker registry connection, or ACR
// through an Azure Resource Manager connection. (The cluster connection is in
// cluster-connection.ts, so the registry tasks' bundles do not carry the Kubernetes code.)
// Type-only imports of the adapter, like lock-input.ts.
import { createCredentialSource } from '../auth';
import { createPipelineOidcTokenGetter } from '../auth/acr';
import type { EndpointInfo, TaskContext } from '../context';
import { InputError } from '../errors';
import type { CredentialSource } from '../registry/client';
import type { TaskInputs } from './index';

export type Inputs = Pick<TaskInputs, 'string' | 'required' | 'bool' | 'choice' | 'endpoint'>;

/** The job's OIDC token for an Azure connection with workload identity federation. */
export function oidcTokenGetter(ctx: TaskContext, azure: EndpointInfo) {
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
