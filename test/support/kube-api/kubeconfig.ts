import * as YAML from 'yaml';
import type { Obj } from './resources';

/** A kubeconfig (YAML) for a server at `api.url` trusting `api.caPem` (the double, or the real control plane): token, client certificate, or exec plugin user. */
export function kubeconfigFor(
  api: { url: string; caPem?: string },
  user: { token?: string; clientCertificate?: { cert: string; key: string }; exec?: Obj },
  options: { namespace?: string; insecure?: boolean } = {},
): string {
  const cluster: Obj = { server: api.url };
  if (options.insecure) cluster['insecure-skip-tls-verify'] = true;
  else if (api.caPem) cluster['certificate-authority-data'] = Buffer.from(api.caPem).toString('base64');
  const u: Obj = {};
  if (user.token) u.token = user.token;
  if (user.clientCertificate) {
    u['client-certificate-data'] = Buffer.from(user.clientCertificate.cert).toString('base64');
    u['client-key-data'] = Buffer.from(user.clientCertificate.key).toString('base64');
  }
  if (user.exec) u.exec = user.exec;
  return YAML.stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'test', cluster }],
    users: [{ name: 'deployer', user: u }],
    contexts: [{ name: 'test', context: { cluster: 'test', user: 'deployer', ...(options.namespace ? { namespace: options.namespace } : {}) } }],
    'current-context': 'test',
  });
}
