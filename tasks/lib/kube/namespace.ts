// The namespace a deploy applies to, made ready before the workloads: created (createNamespace) or
// checked, and the image pull secret of a Docker registry service connection applied in it.
import { createCredentialSource, dockerServerAddress, endpointRegistry } from '../auth';
import type { EndpointInfo, TaskContext } from '../context';
import { InputError } from '../errors';
import { applyObject, pullSecretObject } from './apply';
import { KubeApiError, KubeClient } from './client';
import type { KubernetesDeployOptions, PullSecretSpec } from './deploy-options';
import { MANAGED_BY_LABEL, MANAGED_BY_VALUE } from './objects';

/** The pull secret for a Docker registry service connection (createPullSecretFrom); its credential is read when the secret is applied. */
export function pullSecretFrom(endpoint: EndpointInfo, name: string, setSecret: (s: string) => void): PullSecretSpec {
  const credentials = createCredentialSource({ endpoint, setSecret, useDockerConfig: false });
  const registry = endpointRegistry(endpoint);
  return {
    name,
    registry,
    server: dockerServerAddress(registry),
    input: endpoint.input,
    getCredential: async () => {
      const c = await credentials(registry);
      return c && c.password ? { username: c.username, password: c.password } : undefined;
    },
  };
}

/** The namespace applied (createNamespace), else checked to exist where the account may read it. */
export async function ensureNamespace(client: KubeClient, options: KubernetesDeployOptions, ctx: TaskContext): Promise<void> {
  if (options.createNamespace) {
    await applyObject(
      client,
      { object: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: options.namespace, labels: { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE } } }, where: "input 'createNamespace'" },
      { fieldManager: options.fieldManager, force: false },
    );
    ctx.info(`Namespace '${options.namespace}' applied.`);
    return;
  }
  try {
    const ns = await client.get('v1', 'Namespace', undefined, options.namespace);
    if (!ns) throw new InputError(`Input 'namespace': namespace '${options.namespace}' does not exist in the cluster. Create it, or set createNamespace: true.`);
  } catch (err) {
    // Many deployers may not read namespaces; the apply itself will say if it is missing.
    if (err instanceof KubeApiError && err.status === 403) ctx.debug(`kubernetes: cannot read namespace ${options.namespace} (403); continuing`);
    else throw err;
  }
}

/** The pull secret (options.pullSecret) applied, its credential read now and masked. */
export async function applyPullSecret(client: KubeClient, options: KubernetesDeployOptions, ctx: TaskContext): Promise<void> {
  const spec = options.pullSecret!;
  const credential = await spec.getCredential();
  if (!credential) throw new InputError(`Input '${spec.input}': no credential was found for the registry ${spec.registry}.`);
  const secret = pullSecretObject(spec.name, options.namespace, spec.server, credential.username, credential.password, { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE });
  for (const s of secret.secrets) ctx.setSecret(s);
  await applyObject(client, { object: secret.object, where: `input '${spec.input}'` }, { fieldManager: options.fieldManager, force: true });
  ctx.info(`Image pull secret '${spec.name}' for ${spec.registry} applied (created through the API; no password on a command line).`);
}
