// Registry credentials from the tasks' connection inputs: a Docker registry connection, or ACR
// through an Azure Resource Manager connection. (The cluster connection is in
// cluster-connection.ts, so the registry tasks' bundles do not carry the Kubernetes code.)
// Type-only imports of the adapter, like lock-input.ts.
import { createCredentialSource, type CredentialSource } from '../auth';
import { createPipelineOidcTokenGetter } from '../auth/azure-ad';
import type { EndpointInfo, TaskContext } from '../context';
import { InputError } from '../errors';
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

/** The private key of an SSH service connection (its password field is then the key's passphrase), registered for masking. */
export function sshEndpointKey(inputs: Inputs, name: string, ctx: TaskContext): { privateKey: string; passphrase?: string; what: string } | undefined {
  const e = inputs.endpoint(name);
  if (!e) return undefined;
  const privateKey = (e.data.privatekey ?? e.auth.privatekey ?? '').trim();
  if (!privateKey) throw new InputError(`Input '${name}': the service connection '${e.id}' has no private key. Builds sign with a key (RUN --mount=type=ssh); add one to the connection.`);
  const passphrase = e.auth.password || undefined;
  ctx.setSecret(privateKey);
  if (passphrase) ctx.setSecret(passphrase);
  return { privateKey, passphrase, what: `Input '${name}' (service connection '${e.id}')` };
}
