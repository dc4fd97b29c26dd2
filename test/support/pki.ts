// A test PKI made with openssl (Debian's package): a CA, and certificates it signs for servers
// (with subject alternative names) and clients (CN = user, O = groups, as Kubernetes reads them).
// Keys are RSA 2048 without a passphrase; everything lives in one folder, valid for two days.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface Pki {
  dir: string;
  caCert: string; // path
  caKey: string; // path
  caPem: string;
}

export interface IssuedCert {
  cert: string; // path
  key: string; // path
  certPem: string;
  keyPem: string;
}

function openssl(args: string[], cwd: string): void {
  try {
    execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    throw new Error(`openssl ${args.join(' ')} failed (install the Debian package openssl): ${(err as { stderr?: Buffer }).stderr ?? err}`);
  }
}

/** A self-signed CA in `dir` (one CA a folder). */
export function makeCa(dir: string, commonName: string): Pki {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', `/CN=${commonName}`], dir);
  return existingCa(dir);
}

/** The CA `makeCa` made in `dir` (e.g. by another process). */
export function existingCa(dir: string): Pki {
  return { dir, caCert: path.join(dir, 'ca.crt'), caKey: path.join(dir, 'ca.key'), caPem: fs.readFileSync(path.join(dir, 'ca.crt'), 'utf8') };
}

/** A certificate signed by the CA: `sans` (DNS names and IPs) make it a server certificate, `groups` become O= entries. */
export function issueCert(pki: Pki, name: string, subject: { commonName: string; groups?: string[]; sans?: string[] }): IssuedCert {
  const subj = `/CN=${subject.commonName}${(subject.groups ?? []).map((g) => `/O=${g}`).join('')}`;
  openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subj], pki.dir);
  const ext = [`extendedKeyUsage=${subject.sans ? 'serverAuth,clientAuth' : 'clientAuth'}`];
  if (subject.sans) ext.push(`subjectAltName=${subject.sans.map((s) => (/^[\d.]+$|:/.test(s) ? `IP:${s}` : `DNS:${s}`)).join(',')}`);
  fs.writeFileSync(path.join(pki.dir, `${name}.ext`), `${ext.join('\n')}\n`);
  openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.crt`, '-days', '2', '-extfile', `${name}.ext`], pki.dir);
  const cert = path.join(pki.dir, `${name}.crt`);
  const key = path.join(pki.dir, `${name}.key`);
  return { cert, key, certPem: fs.readFileSync(cert, 'utf8'), keyPem: fs.readFileSync(key, 'utf8') };
}

/** An RSA key pair (e.g. for signing service-account tokens): private and public PEM files. */
export function makeKeyPair(pki: Pki, name: string): { privateKey: string; publicKey: string } {
  openssl(['genrsa', '-out', `${name}.key`, '2048'], pki.dir);
  openssl(['rsa', '-in', `${name}.key`, '-pubout', '-out', `${name}.pub`], pki.dir);
  return { privateKey: path.join(pki.dir, `${name}.key`), publicKey: path.join(pki.dir, `${name}.pub`) };
}
