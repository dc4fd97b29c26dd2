// kubeconfig: parse it and pick the context.
//   clusters[].cluster: server, certificate-authority(-data), insecure-skip-tls-verify, tls-server-name
//   users[].user: token, tokenFile, client-certificate(-data), client-key(-data), username/password,
//                 exec (parsed by exec-plugin.ts)
//   contexts[].context: cluster, user, namespace; current-context (or the context asked for)
// The removed in-tree `auth-provider` plugins (azure, gcp, oidc) fail with what to do instead.
// Every token and key goes through setSecret the moment it is read. What the API client sends is
// credentials.ts's; a service connection becomes a kubeconfig in ../pipeline/cluster-connection.ts.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { toPlain, parseYaml } from '../util/yaml';
import { InputError } from '../errors';
import { type ExecConfig, parseExecConfig } from './exec-plugin';
import { isObject } from '../util/object';

export interface KubeCluster {
  server: string;
  /** PEM of the certificate authorities to trust. */
  ca?: string;
  insecureSkipTlsVerify: boolean;
  tlsServerName?: string;
}

export interface KubeUser {
  token?: string;
  tokenFile?: string;
  clientCertificate?: string;
  clientKey?: string;
  username?: string;
  password?: string;
  exec?: ExecConfig;
}

export interface ResolvedKubeconfig {
  contextName: string;
  clusterName: string;
  userName: string;
  cluster: KubeCluster;
  user: KubeUser;
  namespace?: string;
  /** Where relative paths in the kubeconfig start (its folder). */
  baseDir: string;
  /** The input or connection that supplied it, for error messages. */
  source: string;
}

export interface ParseOptions {
  /** Named in errors: "Input 'kubernetesServiceConnection'", "the kubeconfig file '…'". */
  source: string;
  baseDir?: string;
  context?: string;
  /** TaskContext.setSecret: it registers every form of a value itself (each line of a PEM key, base64). */
  setSecret: (value: string) => void;
}

export function parseKubeconfig(text: string, options: ParseOptions): ResolvedKubeconfig {
  const where = `${options.source}: the kubeconfig`;
  let data: unknown;
  try {
    data = toPlain(parseYaml(text, where), where);
  } catch (err) {
    throw new InputError(`${where} is not valid YAML or JSON (${(err as Error).message.replace(/^.*?is not (valid|usable) YAML: /, '')}).`);
  }
  if (!isObject(data)) throw new InputError(`${where} is not a kubeconfig (a mapping with clusters, users and contexts).`);
  const named = (key: 'clusters' | 'users' | 'contexts', inner: 'cluster' | 'user' | 'context') => {
    const list = data[key];
    const map = new Map<string, Record<string, unknown>>();
    if (list === undefined || list === null) return map;
    if (!Array.isArray(list)) throw new InputError(`${where}: '${key}' must be a list.`);
    for (const item of list) {
      if (!isObject(item) || typeof item.name !== 'string') throw new InputError(`${where}: every entry of '${key}' needs a name.`);
      map.set(item.name, isObject(item[inner]) ? (item[inner] as Record<string, unknown>) : {});
    }
    return map;
  };
  const clusters = named('clusters', 'cluster');
  const users = named('users', 'user');
  const contexts = named('contexts', 'context');
  const contextName = options.context || (typeof data['current-context'] === 'string' ? data['current-context'] : '') || (contexts.size === 1 ? [...contexts.keys()][0] : '');
  if (!contextName) throw new InputError(`${where} has no current-context and ${contexts.size} contexts; name the context to use.`);
  const context = contexts.get(contextName);
  if (!context) throw new InputError(`${where} has no context '${contextName}' (it has: ${[...contexts.keys()].join(', ') || 'none'}).`);
  const clusterName = String(context.cluster ?? '');
  const userName = String(context.user ?? '');
  const c = clusters.get(clusterName);
  if (!c) throw new InputError(`${where}: context '${contextName}' names cluster '${clusterName}', which is not in the kubeconfig.`);
  const u = userName ? users.get(userName) : {};
  if (!u) throw new InputError(`${where}: context '${contextName}' names user '${userName}', which is not in the kubeconfig.`);
  const baseDir = options.baseDir ?? process.cwd();

  const server = typeof c.server === 'string' ? c.server.trim() : '';
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    throw new InputError(`${where}: cluster '${clusterName}' has no valid server URL ('${server}').`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new InputError(`${where}: cluster '${clusterName}' server '${server}' must be https://.`);
  if (c['proxy-url']) throw new InputError(`${where}: cluster '${clusterName}' uses proxy-url, which this task does not support. Reach the API server directly.`);
  const cluster: KubeCluster = {
    server: server.replace(/\/+$/, ''),
    ca: pemFrom(c['certificate-authority-data'], c['certificate-authority'], baseDir, `${where}: cluster '${clusterName}' certificate-authority`),
    insecureSkipTlsVerify: c['insecure-skip-tls-verify'] === true,
    tlsServerName: typeof c['tls-server-name'] === 'string' ? c['tls-server-name'] : undefined,
  };

  const user: KubeUser = {};
  if (u['auth-provider'] !== undefined) {
    const name = isObject(u['auth-provider']) ? String(u['auth-provider'].name) : '?';
    const hint =
      name === 'azure'
        ? 'Convert the kubeconfig with `kubelogin convert-kubeconfig`, or use the azureResourceManager connection type, which gets an Azure AD token for the cluster itself.'
        : name === 'gcp'
          ? 'Use the gke-gcloud-auth-plugin exec plugin (`gcloud container clusters get-credentials` writes it).'
          : 'Use an exec plugin (e.g. kubelogin for OIDC) instead.';
    throw new InputError(`${where}: user '${userName}' uses the auth-provider '${name}', which was removed from Kubernetes clients. ${hint}`);
  }
  if (typeof u.token === 'string' && u.token) {
    user.token = u.token.trim();
    options.setSecret(user.token);
  }
  if (typeof u.tokenFile === 'string' && u.tokenFile) user.tokenFile = path.resolve(baseDir, u.tokenFile);
  user.clientCertificate = pemFrom(u['client-certificate-data'], u['client-certificate'], baseDir, `${where}: user '${userName}' client-certificate`);
  user.clientKey = pemFrom(u['client-key-data'], u['client-key'], baseDir, `${where}: user '${userName}' client-key`);
  if (user.clientKey) options.setSecret(user.clientKey);
  if (!!user.clientCertificate !== !!user.clientKey) throw new InputError(`${where}: user '${userName}' has a client certificate without its key (or a key without its certificate).`);
  if (typeof u.username === 'string' && typeof u.password === 'string') {
    user.username = u.username;
    user.password = u.password;
    options.setSecret(u.password);
  }
  if (u.exec !== undefined) user.exec = parseExecConfig(u.exec, `${where}: user '${userName}' exec`, baseDir);
  const namespace = typeof context.namespace === 'string' && context.namespace ? context.namespace : undefined;
  return { contextName, clusterName, userName, cluster, user, namespace, baseDir, source: options.source };
}

function pemFrom(data: unknown, file: unknown, baseDir: string, what: string): string | undefined {
  if (typeof data === 'string' && data.trim()) {
    const text = Buffer.from(data.trim(), 'base64').toString('utf8');
    if (!text.includes('-----BEGIN')) throw new InputError(`${what}-data is not base64 of a PEM file.`);
    return text;
  }
  if (typeof file === 'string' && file) {
    const p = path.resolve(baseDir, file);
    try {
      return fs.readFileSync(p, 'utf8');
    } catch {
      throw new InputError(`${what} '${p}' cannot be read.`);
    }
  }
  return undefined;
}

/** Registers every credential a kubeconfig text holds before anything parses (or prints) it. */
export function registerKubeconfigSecrets(text: string, setSecret: (s: string) => void): void {
  for (const m of text.matchAll(/^\s*(?:token|password|client-key-data|id-token|refresh-token|access-token|client-secret)\s*:\s*["']?([^"'\s]+)["']?\s*$/gm)) {
    setSecret(m[1]);
  }
}
