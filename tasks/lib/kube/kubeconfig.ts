// kubeconfig: parse, pick the context, and produce credentials for the API client.
//   clusters[].cluster: server, certificate-authority(-data), insecure-skip-tls-verify, tls-server-name
//   users[].user: token, tokenFile, client-certificate(-data), client-key(-data), username/password,
//                 exec (client.authentication.k8s.io/v1 and v1beta1 ExecCredential plugins)
//   contexts[].context: cluster, user, namespace; current-context (or the context asked for)
// The removed in-tree `auth-provider` plugins (azure, gcp, oidc) fail with what to do instead.
// Exec plugins run with the kubeconfig's command, args and env (never a token on a command line:
// the plugin prints the credential on stdout); KUBERNETES_EXEC_INFO carries the ExecCredential
// request; the credential is cached until its expirationTimestamp and renewed once on a 401, as
// client-go does. Every token and key goes through setSecret the moment it is read.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { toPlain, parseYaml } from '../util/yaml';
import type { EndpointInfo } from '../context';
import { InputError, errorMessage } from '../errors';
import { RunResult, runProgram } from '../util/process';
import { isObject } from '../util/object';

export interface KubeCluster {
  server: string;
  /** PEM of the certificate authorities to trust. */
  ca?: string;
  insecureSkipTlsVerify: boolean;
  tlsServerName?: string;
}

export interface ExecConfig {
  apiVersion: string;
  command: string;
  args: string[];
  env: { name: string; value: string }[];
  installHint?: string;
  provideClusterInfo: boolean;
  interactiveMode?: string;
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

const EXEC_API_VERSIONS = ['client.authentication.k8s.io/v1', 'client.authentication.k8s.io/v1beta1'];

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
  if (u.exec !== undefined) user.exec = execConfig(u.exec, `${where}: user '${userName}' exec`, baseDir);
  const namespace = typeof context.namespace === 'string' && context.namespace ? context.namespace : undefined;
  return { contextName, clusterName, userName, cluster, user, namespace, baseDir, source: options.source };
}

function execConfig(value: unknown, where: string, baseDir: string): ExecConfig {
  if (!isObject(value)) throw new InputError(`${where} must be a mapping.`);
  const apiVersion = String(value.apiVersion ?? '');
  if (!EXEC_API_VERSIONS.includes(apiVersion)) {
    throw new InputError(`${where}: apiVersion '${apiVersion}' is not supported (use ${EXEC_API_VERSIONS.join(' or ')}; v1alpha1 was removed in Kubernetes 1.24).`);
  }
  if (typeof value.command !== 'string' || !value.command) throw new InputError(`${where} has no command.`);
  // client-go: a relative command with a path separator is relative to the kubeconfig's folder.
  const command = value.command.includes('/') && !path.isAbsolute(value.command) ? path.resolve(baseDir, value.command) : value.command;
  const args = Array.isArray(value.args) ? value.args.map(String) : [];
  const env = Array.isArray(value.env)
    ? value.env.map((e, i) => {
        if (!isObject(e) || typeof e.name !== 'string') throw new InputError(`${where}: env[${i}] needs a name and a value.`);
        return { name: e.name, value: String(e.value ?? '') };
      })
    : [];
  const interactiveMode = typeof value.interactiveMode === 'string' ? value.interactiveMode : undefined;
  if (interactiveMode === 'Always') throw new InputError(`${where}: interactiveMode is Always, but a pipeline cannot answer prompts. Use a non-interactive login (e.g. kubelogin with a service principal or workload identity).`);
  return {
    apiVersion,
    command,
    args,
    env,
    installHint: typeof value.installHint === 'string' ? value.installHint : undefined,
    provideClusterInfo: value.provideClusterInfo === true,
    interactiveMode,
  };
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

// ---- credentials ------------------------------------------------------------------------------

export interface Credentials {
  token?: string;
  clientCertificate?: string;
  clientKey?: string;
  basic?: string;
}

export interface CredentialOptions {
  /** TaskContext.setSecret (every form of a value, as in ParseOptions). */
  setSecret: (s: string) => void;
  log?: { debug(message: string): void };
  /** Environment the exec plugin inherits (default process.env). */
  env?: NodeJS.ProcessEnv;
  execTimeoutMs?: number;
  now?: () => number;
}

/** Credentials of a kubeconfig user; exec plugin results are cached until they expire. */
export class KubeCredentials {
  private cached?: { credentials: Credentials; expiresAt?: number };
  private pending?: Promise<Credentials>;

  constructor(
    private readonly config: ResolvedKubeconfig,
    private readonly options: CredentialOptions,
  ) {}

  get canRefresh(): boolean {
    return !!this.config.user.exec || !!this.config.user.tokenFile;
  }

  async get(refresh = false): Promise<Credentials> {
    const now = (this.options.now ?? Date.now)();
    if (!refresh && this.cached && (this.cached.expiresAt === undefined || this.cached.expiresAt - 10_000 > now)) return this.cached.credentials;
    if (!refresh && this.pending) return this.pending;
    this.pending = this.load().finally(() => (this.pending = undefined));
    return this.pending;
  }

  private async load(): Promise<Credentials> {
    const user = this.config.user;
    const out: Credentials = { clientCertificate: user.clientCertificate, clientKey: user.clientKey };
    if (user.username !== undefined && user.password !== undefined) {
      out.basic = Buffer.from(`${user.username}:${user.password}`).toString('base64');
      this.options.setSecret(out.basic);
    }
    let expiresAt: number | undefined;
    if (user.token) out.token = user.token;
    else if (user.tokenFile) {
      try {
        out.token = fs.readFileSync(user.tokenFile, 'utf8').trim();
      } catch {
        throw new InputError(`${this.config.source}: the kubeconfig's tokenFile '${user.tokenFile}' cannot be read.`);
      }
      this.options.setSecret(out.token);
      expiresAt = (this.options.now ?? Date.now)() + 60_000; // re-read now and then, as client-go does
    }
    if (user.exec) {
      const result = await runExecPlugin(user.exec, this.config, this.options);
      if (result.token) out.token = result.token;
      if (result.clientCertificate) {
        out.clientCertificate = result.clientCertificate;
        out.clientKey = result.clientKey;
      }
      expiresAt = result.expiresAt;
    }
    this.cached = { credentials: out, expiresAt };
    return out;
  }
}

interface ExecResult {
  token?: string;
  clientCertificate?: string;
  clientKey?: string;
  expiresAt?: number;
}

/** Runs an exec credential plugin once and parses its ExecCredential. */
export async function runExecPlugin(exec: ExecConfig, config: ResolvedKubeconfig, options: CredentialOptions): Promise<ExecResult> {
  const where = `${config.source}: the kubeconfig's exec plugin '${exec.command}' (user '${config.userName}')`;
  const info: Record<string, unknown> = { apiVersion: exec.apiVersion, kind: 'ExecCredential', spec: { interactive: false } };
  if (exec.provideClusterInfo) {
    const cluster: Record<string, unknown> = { server: config.cluster.server, 'insecure-skip-tls-verify': config.cluster.insecureSkipTlsVerify };
    if (config.cluster.ca) cluster['certificate-authority-data'] = Buffer.from(config.cluster.ca).toString('base64');
    if (config.cluster.tlsServerName) cluster['tls-server-name'] = config.cluster.tlsServerName;
    (info.spec as Record<string, unknown>).cluster = cluster;
  }
  const env: NodeJS.ProcessEnv = { ...(options.env ?? process.env) };
  for (const e of exec.env) env[e.name] = e.value;
  env.KUBERNETES_EXEC_INFO = JSON.stringify(info);
  const timeoutMs = options.execTimeoutMs ?? 60_000;
  options.log?.debug(`kubeconfig: running the exec plugin ${exec.command} (${exec.args.length} argument(s))`);
  let result: RunResult;
  try {
    result = await runProgram(exec.command, exec.args, { env, deadline: Date.now() + timeoutMs, timeoutMessage: () => `no answer within ${timeoutMs} ms` });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new InputError(`${where} is not installed on the agent (not found on PATH).${exec.installHint ? ` ${exec.installHint.trim()}` : ''}`);
    }
    throw new InputError(`${where} failed: ${errorMessage(err)}.`);
  }
  if (result.code !== 0) {
    const detail = result.stderr.trim().split(/\r?\n/).slice(-3).join(' | ').slice(0, 400);
    throw new InputError(`${where} exited with code ${result.code}${detail ? `: ${detail}` : ''}.`);
  }
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(result.stdout) as Record<string, unknown>;
  } catch {
    throw new InputError(`${where} did not print an ExecCredential (JSON) on stdout.`);
  }
  const status = isObject(json.status) ? json.status : undefined;
  // Register before any check that could echo a field.
  if (status && typeof status.token === 'string' && status.token) options.setSecret(status.token);
  if (status && typeof status.clientKeyData === 'string' && status.clientKeyData) options.setSecret(status.clientKeyData);
  if (json.kind !== 'ExecCredential' || json.apiVersion !== exec.apiVersion) {
    throw new InputError(`${where} printed kind '${String(json.kind)}', apiVersion '${String(json.apiVersion)}'; expected an ExecCredential of ${exec.apiVersion}.`);
  }
  if (!status) throw new InputError(`${where} printed an ExecCredential without status.`);
  const token = typeof status.token === 'string' && status.token ? status.token : undefined;
  const cert = typeof status.clientCertificateData === 'string' && status.clientCertificateData ? status.clientCertificateData : undefined;
  const key = typeof status.clientKeyData === 'string' && status.clientKeyData ? status.clientKeyData : undefined;
  if (!token && !(cert && key)) throw new InputError(`${where} printed an ExecCredential with neither a token nor a client certificate and key.`);
  if (!!cert !== !!key) throw new InputError(`${where} printed a client certificate without its key (or a key without its certificate).`);
  let expiresAt: number | undefined;
  if (typeof status.expirationTimestamp === 'string') {
    const t = Date.parse(status.expirationTimestamp);
    if (Number.isNaN(t)) throw new InputError(`${where} printed an expirationTimestamp that is not a time ('${status.expirationTimestamp}').`);
    expiresAt = t;
  }
  return { token, clientCertificate: cert, clientKey: key, expiresAt };
}

// ---- from a service connection ------------------------------------------------------------------

/** A `kubernetes` service connection as the agent hands it over. */
export type KubernetesEndpoint = EndpointInfo;

/**
 * A `kubernetes` service connection as the agent hands it over:
 *  - authorizationType Kubeconfig (scheme Kubernetes): auth `kubeconfig` (+ `clusterContext`);
 *  - ServiceAccount (scheme Token): url = API server, auth `apiToken` (base64 of the token, as the
 *    secret's `data.token`), `serviceAccountCertificate` (the CA, base64 of the PEM, as `data.ca.crt`);
 *  - AzureSubscription (scheme Kubernetes): the same token and certificate fields, made by Azure DevOps.
 * `acceptUntrustedCerts` (data) skips TLS verification.
 */
export function kubeconfigFromEndpoint(endpoint: KubernetesEndpoint, setSecret: (s: string) => void): ResolvedKubeconfig {
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

/** Registers every credential a kubeconfig text holds before anything parses (or prints) it. */
export function registerKubeconfigSecrets(text: string, setSecret: (s: string) => void): void {
  for (const m of text.matchAll(/^\s*(?:token|password|client-key-data|id-token|refresh-token|access-token|client-secret)\s*:\s*["']?([^"'\s]+)["']?\s*$/gm)) {
    setSecret(m[1]);
  }
}
