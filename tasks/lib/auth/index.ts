// Registry credentials, looked up per registry in this order:
//   (a) the task's service connection: a `dockerregistry` connection (user name and password for
//       its registry; Docker Hub's https://index.docker.io/v1/ means docker.io), or an Azure
//       identity (`azurerm`, or a `dockerregistry` connection of type ACR) exchanged for an ACR
//       refresh token for its login server (see acr.ts, on azure-ad.ts);
//   (b) the agent user's docker config ($DOCKER_CONFIG/config.json or ~/.docker/config.json):
//       `credHelpers` for the registry, else `credsStore`, else `auths` (base64 `auth` or
//       username/password, `identitytoken`), the same precedence as the docker CLI. Helpers run as
//       `docker-credential-<name> get` with the server URL on stdin, never on the command line;
//   (c) anonymous (undefined).
// Every secret read goes through setSecret (with its base64 forms) at once. Nothing here writes
// to the user's docker config; withPrivateDockerConfig writes a throwaway one for CLIs.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { EndpointInfo, secretForms } from '../context';
import { FileError, InputError, RegistryError, errorMessage } from '../errors';
import { RunResult, runProgram } from '../util/process';
import { DOCKER_HUB_DOMAIN, isDockerHub } from '../reference';
import type { Credential, CredentialSource } from './credential';
import { AcrOptions, acrCredential } from './acr';
import { isAzureEndpoint } from './azure-ad';

export type { Credential, CredentialSource } from './credential';
export type { AcrOptions } from './acr';

/** The key Docker uses for Docker Hub in config files, credential helpers and X-Registry-Auth. */
export const DOCKER_HUB_SERVER = 'https://index.docker.io/v1/';
const HELPER_TIMEOUT_MS = 30_000;

export interface CredentialSourceOptions {
  /** The task's `dockerregistry` (or Azure) service connection. */
  endpoint?: EndpointInfo;
  /** ACR through an Azure identity: the login server and (unless `endpoint` is it) the azurerm connection. */
  acr?: AcrOptions;
  /** Folder holding config.json; default $DOCKER_CONFIG, else ~/.docker. */
  dockerConfigDir?: string;
  setSecret: (secret: string) => void;
  /** Read the docker config at all (default true). */
  useDockerConfig?: boolean;
  /** Environment for DOCKER_CONFIG, HOME and credential helpers (default process.env). */
  env?: NodeJS.ProcessEnv;
  log?: { debug(message: string): void };
}

/** 'https://index.docker.io/v1/' → 'docker.io'; 'https://myreg:5000/v2/' → 'myreg:5000'; lower case. */
export function normalizeRegistryHost(value: string): string {
  let host = value.trim().toLowerCase().replace(/^[a-z][a-z0-9+.-]*:\/\//, '');
  host = host.split('/')[0];
  return isDockerHub(host) ? DOCKER_HUB_DOMAIN : host;
}

/** The server address Docker uses for a registry: Docker Hub's legacy URL, else the host. */
export function dockerServerAddress(registry: string): string {
  const host = normalizeRegistryHost(registry);
  return host === DOCKER_HUB_DOMAIN ? DOCKER_HUB_SERVER : host;
}

/** The registry a Docker registry service connection is for (its registry field, else its URL), normalised. */
export function endpointRegistry(endpoint: EndpointInfo): string {
  return normalizeRegistryHost(endpoint.auth.registry || endpoint.data.registry || endpoint.url || DOCKER_HUB_SERVER);
}

function registerSecret(setSecret: (s: string) => void, value: string | undefined): void {
  if (!value) return;
  for (const form of secretForms(value)) setSecret(form);
}

export function createCredentialSource(options: CredentialSourceOptions): CredentialSource {
  const env = options.env ?? process.env;
  const sources: Array<{ registry: string; get: () => Promise<Credential | undefined> }> = [];

  const endpoint = options.endpoint;
  if (endpoint && !isAzureEndpoint(endpoint)) {
    const username = endpoint.auth.username ?? '';
    const password = endpoint.auth.password ?? '';
    const registry = endpointRegistry(endpoint);
    registerSecret(options.setSecret, password);
    if (password) registerSecret(options.setSecret, Buffer.from(`${username}:${password}`).toString('base64'));
    if (!username || !password) {
      throw new InputError(`Input '${endpoint.input}': the service connection '${endpoint.id}' has no user name or password. Edit the service connection.`);
    }
    const credential: Credential = { username, password };
    sources.push({ registry, get: async () => credential });
  }

  const azureEndpoint = options.acr?.endpoint ?? (endpoint && isAzureEndpoint(endpoint) ? endpoint : undefined);
  if (azureEndpoint) {
    const loginServer = options.acr?.loginServer || azureEndpoint.auth.loginserver || azureEndpoint.data.loginserver || (azureEndpoint.data.registrytype ? azureEndpoint.url : '');
    if (!loginServer) {
      throw new InputError(
        `Input '${azureEndpoint.input}': the Azure service connection '${azureEndpoint.id}' needs the container registry's login server (e.g. contoso.azurecr.io) to be given.`,
      );
    }
    const registry = normalizeRegistryHost(loginServer);
    let pending: Promise<Credential> | undefined;
    sources.push({
      registry,
      get: () => {
        pending ??= acrCredential({ ...options.acr, loginServer: registry, endpoint: azureEndpoint, setSecret: (s) => registerSecret(options.setSecret, s), log: options.acr?.log ?? options.log });
        return pending;
      },
    });
  }

  const useDockerConfig = options.useDockerConfig ?? true;
  const configDir = options.dockerConfigDir ?? (env.DOCKER_CONFIG || path.join(env.HOME || os.homedir(), '.docker'));
  const fromConfig = new Map<string, Promise<Credential | undefined>>();

  return async (registryDomain: string) => {
    const wanted = normalizeRegistryHost(registryDomain);
    const match = sources.find((s) => s.registry === wanted);
    if (match) return match.get();
    if (!useDockerConfig) return undefined;
    let pending = fromConfig.get(wanted);
    if (!pending) {
      pending = dockerConfigCredential(wanted, { dir: configDir, env, setSecret: options.setSecret, log: options.log });
      fromConfig.set(wanted, pending);
    }
    return pending;
  };
}

// ---------------------------------------------------------------------------------------------
// Docker config

interface AuthEntry {
  auth?: string;
  username?: string;
  password?: string;
  identitytoken?: string;
}

interface DockerConfigFile {
  auths?: Record<string, AuthEntry>;
  credHelpers?: Record<string, string>;
  credsStore?: string;
}

/** Reads config.json of a docker config folder; undefined when there is none. */
export function readDockerConfig(dir: string): DockerConfigFile | undefined {
  const file = path.join(dir, 'config.json');
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new FileError(`Cannot read the docker config ${file}: ${(err as Error).message}`);
  }
  if (!text.trim()) return undefined;
  try {
    const value = JSON.parse(text) as unknown;
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('not a JSON object');
    return value as DockerConfigFile;
  } catch (err) {
    throw new FileError(`The docker config ${file} is not valid JSON (${(err as Error).message}). Fix or remove it.`);
  }
}

/** Credential for one registry from a docker config folder, as the docker CLI would find it. */
export async function dockerConfigCredential(
  registry: string,
  options: { dir: string; env?: NodeJS.ProcessEnv; setSecret: (s: string) => void; log?: { debug(m: string): void } },
): Promise<Credential | undefined> {
  const wanted = normalizeRegistryHost(registry);
  const config = readDockerConfig(options.dir);
  if (!config) return undefined;
  const env = options.env ?? process.env;
  const authKey = findKey(config.auths, wanted);

  const helperKey = findKey(config.credHelpers, wanted);
  if (helperKey !== undefined) {
    const helper = (config.credHelpers as Record<string, string>)[helperKey];
    const found = await runCredentialHelper(helper, helperKey, { env, setSecret: options.setSecret, log: options.log });
    options.log?.debug(`docker config: credential helper '${helper}' for ${wanted}: ${found ? 'found' : 'nothing'}`);
    return found;
  }
  if (config.credsStore) {
    const server = authKey ?? dockerServerAddress(wanted);
    const found = await runCredentialHelper(config.credsStore, server, { env, setSecret: options.setSecret, log: options.log });
    options.log?.debug(`docker config: credsStore '${config.credsStore}' for ${wanted}: ${found ? 'found' : 'nothing'}`);
    if (found) return found;
  }
  if (authKey === undefined) return undefined;
  const entry = (config.auths as Record<string, AuthEntry>)[authKey] ?? {};
  let username = entry.username ?? '';
  let password = entry.password ?? '';
  if (entry.auth) {
    registerSecret(options.setSecret, entry.auth);
    const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) throw new FileError(`The docker config entry for ${authKey} has an 'auth' value that is not base64 of user:password.`);
    username ||= decoded.slice(0, colon);
    password ||= decoded.slice(colon + 1);
  }
  registerSecret(options.setSecret, password);
  if (entry.identitytoken) {
    registerSecret(options.setSecret, entry.identitytoken);
    options.log?.debug(`docker config: identity token for ${wanted}`);
    return { username, password, identityToken: entry.identitytoken };
  }
  if (!username && !password) return undefined;
  options.log?.debug(`docker config: user ${username} for ${wanted}`);
  return { username, password };
}

/** The key of `map` naming this registry: an exact match first, then any spelling of the same host. */
function findKey(map: Record<string, unknown> | undefined, wanted: string): string | undefined {
  if (!map || typeof map !== 'object') return undefined;
  const keys = Object.keys(map);
  return keys.find((k) => k === wanted) ?? keys.find((k) => normalizeRegistryHost(k) === wanted);
}

/**
 * `docker-credential-<helper> get` with the server URL on stdin. Undefined when the helper has
 * nothing for it or is not installed (then the docker config's other entries still apply).
 */
export async function runCredentialHelper(
  helper: string,
  serverUrl: string,
  options: { env?: NodeJS.ProcessEnv; setSecret: (s: string) => void; log?: { debug(m: string): void }; timeoutMs?: number },
): Promise<Credential | undefined> {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(helper)) {
    throw new FileError(`The docker config names a credential helper '${helper}' that is not a valid helper name.`);
  }
  const program = `docker-credential-${helper}`;
  const timeoutMs = options.timeoutMs ?? HELPER_TIMEOUT_MS;
  let result: RunResult;
  try {
    result = await runProgram(program, ['get'], { env: options.env ?? process.env, input: serverUrl, deadline: Date.now() + timeoutMs, timeoutMessage: () => `timed out after ${timeoutMs} ms` });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      options.log?.debug(`docker config: ${program} is not installed; ignoring it`);
      return undefined;
    }
    throw new RegistryError(`The docker credential helper ${program} failed: ${errorMessage(err)}`, { registry: normalizeRegistryHost(serverUrl) });
  }
  if (result.code !== 0) {
    const text = `${result.stdout} ${result.stderr}`;
    if (/credentials not found/i.test(text)) return undefined;
    const message = result.stderr.trim().split(/\r?\n/)[0]?.slice(0, 200) || result.stdout.trim().split(/\r?\n/)[0]?.slice(0, 200) || `exit code ${result.code}`;
    throw new RegistryError(`The docker credential helper ${program} failed for ${serverUrl}: ${message}`, { registry: normalizeRegistryHost(serverUrl) });
  }
  let json: { Username?: unknown; Secret?: unknown };
  try {
    json = JSON.parse(result.stdout) as { Username?: unknown; Secret?: unknown };
  } catch {
    throw new RegistryError(`The docker credential helper ${program} printed something that is not JSON.`, { registry: normalizeRegistryHost(serverUrl) });
  }
  const secret = typeof json.Secret === 'string' ? json.Secret : '';
  registerSecret(options.setSecret, secret);
  const username = typeof json.Username === 'string' ? json.Username : '';
  if (!secret) return undefined;
  if (username === '<token>') return { username: '', password: '', identityToken: secret };
  registerSecret(options.setSecret, Buffer.from(`${username}:${secret}`).toString('base64'));
  return { username, password: secret };
}

// ---------------------------------------------------------------------------------------------
// For the Docker Engine and for CLIs

export interface RegistryAuthConfig {
  username?: string;
  password?: string;
  identitytoken?: string;
  serveraddress: string;
}

/** The Engine API's auth config for a registry (what X-Registry-Auth encodes). */
export function registryAuthConfig(credential: Credential | undefined, serveraddress: string): RegistryAuthConfig {
  const server = dockerServerAddress(serveraddress);
  if (!credential) return { serveraddress: server };
  if (credential.identityToken) return { identitytoken: credential.identityToken, serveraddress: server };
  return { username: credential.username, password: credential.password, serveraddress: server };
}

/**
 * Docker Engine's X-Registry-Auth header: base64url (padded, as Go's base64.URLEncoding expects) of
 * {username, password, serveraddress}. The value, and the JSON, go through setSecret.
 */
export function registryAuthHeader(credential: Credential | undefined, serveraddress: string, setSecret?: (s: string) => void): string {
  const json = JSON.stringify(registryAuthConfig(credential, serveraddress));
  const value = Buffer.from(json, 'utf8').toString('base64').replace(/\+/g, '-').replace(/\//g, '_');
  if (setSecret && credential) {
    setSecret(value);
    registerSecret(setSecret, json); // with its base64
    registerSecret(setSecret, credential.password);
    registerSecret(setSecret, credential.identityToken);
  }
  return value;
}

/**
 * The agent user's docker CLI plugins (Compose v2 or buildx may be installed per user) are visible
 * under a private config folder: its cli-plugins links to theirs. Without it, the system plugin folders.
 */
export function linkCliPlugins(configDir: string, env: NodeJS.ProcessEnv = process.env): void {
  const userConfig = env.DOCKER_CONFIG || path.join(env.HOME || os.homedir(), '.docker');
  const plugins = path.join(userConfig, 'cli-plugins');
  if (fs.existsSync(plugins)) {
    try {
      fs.symlinkSync(plugins, path.join(configDir, 'cli-plugins'));
    } catch {
      /* without it, the plugins of the system plugin folders */
    }
  }
}

/**
 * Runs `fn` with a fresh private docker config folder (mode 0700, config.json 0600) holding these
 * credentials, for CLIs such as docker compose or buildx (DOCKER_CONFIG=<dir>; the user's CLI
 * plugins linked in). The folder is removed in `finally`; the user's own docker config is never touched.
 */
export async function withPrivateDockerConfig<T>(
  credentials: Array<{ registry: string; credential: Credential }>,
  fn: (dir: string) => Promise<T>,
  options: { setSecret?: (s: string) => void; tempRoot?: string } = {},
): Promise<T> {
  const dir = fs.mkdtempSync(path.join(options.tempRoot ?? os.tmpdir(), 'col-docker-config-'));
  try {
    fs.chmodSync(dir, 0o700);
    linkCliPlugins(dir);
    const auths: Record<string, AuthEntry> = {};
    for (const { registry, credential } of credentials) {
      const auth = Buffer.from(`${credential.username}:${credential.password}`).toString('base64');
      if (options.setSecret) {
        registerSecret(options.setSecret, credential.password);
        registerSecret(options.setSecret, credential.identityToken);
        if (credential.password) registerSecret(options.setSecret, auth);
      }
      auths[dockerServerAddress(registry)] = credential.identityToken ? { auth, identitytoken: credential.identityToken } : { auth };
    }
    const file = path.join(dir, 'config.json');
    const fd = fs.openSync(file, 'wx', 0o600);
    try {
      fs.writeSync(fd, JSON.stringify({ auths }, null, 2));
    } finally {
      fs.closeSync(fd);
    }
    return await fn(dir);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
