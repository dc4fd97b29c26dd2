// The Kubernetes cluster from KubernetesDeploy's connection inputs: a Kubernetes connection
// (Kubeconfig, ServiceAccount or AzureSubscription authorization) as a kubeconfig, or AKS through an
// Azure Resource Manager connection.
import type { EndpointInfo, TaskContext } from '../context';
import { InputError } from '../errors';
import { aksKubeconfig } from '../kube/aks';
import { ResolvedKubeconfig, parseKubeconfig, registerKubeconfigSecrets } from '../kube/kubeconfig';
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

/**
 * A `kubernetes` service connection as the agent hands it over:
 *  - authorizationType Kubeconfig (scheme Kubernetes): auth `kubeconfig` (+ `clusterContext`);
 *  - ServiceAccount (scheme Token): url = API server, auth `apiToken` (base64 of the token, as the
 *    secret's `data.token`), `serviceAccountCertificate` (the CA, base64 of the PEM, as `data.ca.crt`);
 *  - AzureSubscription (scheme Kubernetes): the same token and certificate fields, made by Azure DevOps.
 * `acceptUntrustedCerts` (data) skips TLS verification.
 */
export function kubeconfigFromEndpoint(endpoint: EndpointInfo, setSecret: (s: string) => void): ResolvedKubeconfig {
  const source = `Input '${endpoint.input}' (service connection '${endpoint.id}')`;
  const type = (endpoint.data.authorizationtype ?? '').toLowerCase();
  const insecure = /^true$/i.test(endpoint.data.acceptuntrustedcerts ?? '');
  const kubeconfig = endpoint.auth.kubeconfig;
  if ((type === 'kubeconfig' || (!type && kubeconfig)) && kubeconfig) {
    registerKubeconfigSecrets(kubeconfig, setSecret);
    const resolved = parseKubeconfig(kubeconfig, { source, context: endpoint.auth.clustercontext || undefined, setSecret });
    if (insecure) resolved.cluster.insecureSkipTlsVerify = true;
    return resolved;
  }
  const apiToken = endpoint.auth.apitoken ?? endpoint.auth.serviceaccounttoken;
  if (apiToken) {
    setSecret(apiToken);
    const token = decodeMaybeBase64(apiToken);
    setSecret(token);
    const certificate = endpoint.auth.serviceaccountcertificate;
    let ca: string | undefined;
    if (certificate) {
      ca = certificate.includes('-----BEGIN') ? certificate : Buffer.from(certificate, 'base64').toString('utf8');
      if (!ca.includes('-----BEGIN')) throw new InputError(`${source}: the service account certificate is neither a PEM certificate nor base64 of one.`);
    }
    if (!endpoint.url) throw new InputError(`${source}: the connection has no server URL.`);
    return {
      contextName: 'service-connection',
      clusterName: 'service-connection',
      userName: 'service-account',
      cluster: { server: endpoint.url.replace(/\/+$/, ''), ca, insecureSkipTlsVerify: insecure },
      user: { token },
      baseDir: process.cwd(),
      source,
    };
  }
  throw new InputError(`${source} has neither a kubeconfig nor a service account token. Edit the service connection (authorization type '${endpoint.data.authorizationtype ?? 'unknown'}').`);
}

/** A service account token pasted into the connection is base64 (as `data.token` of its secret); raw JWTs are accepted too. */
function decodeMaybeBase64(value: string): string {
  const trimmed = value.trim();
  if (/^eyJ[\w-]+\.[\w-]+\./.test(trimmed)) return trimmed; // already a JWT
  if (/^[A-Za-z0-9+/=\s]+$/.test(trimmed)) {
    const decoded = Buffer.from(trimmed, 'base64').toString('utf8');
    if (decoded && /^[\x20-\x7e]+$/.test(decoded)) return decoded.trim();
  }
  return trimmed;
}
