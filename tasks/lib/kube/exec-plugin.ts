// Exec credential plugins (client.authentication.k8s.io/v1 and v1beta1 ExecCredential), as
// client-go runs them: the kubeconfig's command, args and env (never a token on a command line: the
// plugin prints the credential on stdout), KUBERNETES_EXEC_INFO carrying the ExecCredential request,
// a relative command resolved from the kubeconfig's folder. credentials.ts caches what it prints
// until its expirationTimestamp and runs it again on a 401.
import * as path from 'node:path';
import { InputError, errorMessage } from '../errors';
import { RunResult, runProgram } from '../util/process';
import type { ResolvedKubeconfig } from './kubeconfig';
import { isObject } from '../util/object';

const EXEC_API_VERSIONS = ['client.authentication.k8s.io/v1', 'client.authentication.k8s.io/v1beta1'];

export interface ExecConfig {
  apiVersion: string;
  command: string;
  args: string[];
  env: { name: string; value: string }[];
  installHint?: string;
  provideClusterInfo: boolean;
  interactiveMode?: string;
}

/** The `exec` stanza of a kubeconfig user. */
export function parseExecConfig(value: unknown, where: string, baseDir: string): ExecConfig {
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

/** What running a plugin needs from CredentialOptions (credentials.ts). */
export interface ExecOptions {
  /** TaskContext.setSecret (every form of a value). */
  setSecret: (s: string) => void;
  log?: { debug(message: string): void };
  /** Environment the plugin inherits (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** How long the plugin may run (default 60 s). */
  execTimeoutMs?: number;
}

export interface ExecResult {
  token?: string;
  clientCertificate?: string;
  clientKey?: string;
  expiresAt?: number;
}

/** Runs an exec credential plugin once and parses its ExecCredential. */
export async function runExecPlugin(exec: ExecConfig, config: ResolvedKubeconfig, options: ExecOptions): Promise<ExecResult> {
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
