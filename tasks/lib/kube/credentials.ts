// What the API client authenticates with, from a kubeconfig user: a static token, a token file
// (re-read every minute, as client-go does), a client certificate and key, basic auth, or an exec
// plugin's token or certificate, cached until it expires and renewed when the client asks (once,
// on a 401).
import * as fs from 'node:fs';
import { InputError } from '../errors';
import { type ExecOptions, runExecPlugin } from './exec-plugin';
import type { ResolvedKubeconfig } from './kubeconfig';

export interface Credentials {
  token?: string;
  clientCertificate?: string;
  clientKey?: string;
  basic?: string;
}

export interface CredentialOptions extends ExecOptions {
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
