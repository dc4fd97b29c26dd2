// Build secrets and SSH agents (RUN --mount=type=secret / type=ssh), from BuildAndTag's `secrets`
// and `ssh` inputs, its SSH service connection, and a compose service's build.secrets and
// build.ssh. Everything is read and checked before the engine is contacted; the values are served
// only through the BuildKit session (tasks/lib/docker/session.ts) and registered with the agent's
// masking.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FileError, InputError } from '../errors';
import type { ReadablePaths } from '../readable-paths';
import type { BuildSecret, SshForward } from '../docker/session';
import { agentSocket, keyAgent } from '../docker/ssh-agent';

/** BuildKit's limit (session/secrets/secretsprovider: MaxSecretSize). */
const MAX_SECRET_BYTES = 500 * 1024;
const ID = /^[A-Za-z0-9_.-]+$/;

export interface BuildMounts {
  secrets: BuildSecret[];
  ssh: SshForward[];
}

/** Where a secret's value comes from, as compose's top-level `secrets:` and the secrets input say it. */
export type SecretSource = { id: string; file: string } | { id: string; env: string };

interface Sources {
  env: Record<string, string | undefined>;
  readable: ReadablePaths;
  setSecret(value: string): void;
}

function checkId(id: string, what: string): string {
  if (!ID.test(id)) throw new InputError(`${what}: '${id}' is not a secret or SSH id (letters, digits, '_', '.', '-').`);
  return id;
}

/** The secrets input: one `id=NAME,env=VARIABLE` or `id=NAME,file=PATH` per line. */
export function parseSecretsInput(lines: string[]): SecretSource[] {
  return lines.map((line) => {
    const fields: Record<string, string> = {};
    for (const part of line.split(',')) {
      const eq = part.indexOf('=');
      const key = part.slice(0, eq).trim();
      if (eq <= 0 || !['id', 'env', 'file'].includes(key) || key in fields) {
        throw new InputError(`Input 'secrets': '${line}' is not id=NAME,env=VARIABLE or id=NAME,file=PATH (one secret per line).`);
      }
      fields[key] = part.slice(eq + 1).trim();
    }
    const id = checkId(fields.id ?? '', "Input 'secrets'");
    if ((fields.env === undefined) === (fields.file === undefined)) throw new InputError(`Input 'secrets': secret '${id}' needs exactly one of env=VARIABLE or file=PATH.`);
    return fields.env !== undefined ? { id, env: fields.env } : { id, file: fields.file };
  });
}

/** The value of each secret, registered for masking; a missing variable or file is an error naming the secret. */
export function readSecrets(sources: SecretSource[], what: string, from: Sources): BuildSecret[] {
  const secrets = new Map<string, BuildSecret>();
  for (const source of sources) {
    let value: Buffer;
    if ('env' in source) {
      const text = from.env[source.env];
      if (text === undefined) throw new InputError(`${what}: secret '${source.id}' comes from the variable ${source.env}, which is not set. Secret variables reach a task only through the step's env: (env: { ${source.env}: $(${source.env}) }).`);
      value = Buffer.from(text);
    } else {
      const file = source.file;
      if (!fs.existsSync(file)) throw new FileError(`${what}: secret '${source.id}' comes from '${file}', which does not exist.`);
      value = from.readable.read(file, `${what}: secret '${source.id}'`);
    }
    if (value.length > MAX_SECRET_BYTES) throw new InputError(`${what}: secret '${source.id}' is ${value.length} bytes; BuildKit takes secrets of up to 500 KB. Mount a smaller file.`);
    if (value.length) from.setSecret(value.toString('utf8'));
    secrets.set(source.id, { id: source.id, value });
  }
  return [...secrets.values()];
}

/** The ssh input (and compose build.ssh): `default` (the job's SSH agent) or `ID=PATH` (an agent's socket or a private key file). */
export function readSsh(lines: string[], what: string, from: Sources): SshForward[] {
  return lines.map((line) => {
    const eq = line.indexOf('=');
    const id = checkId(eq < 0 ? line.trim() : line.slice(0, eq).trim(), what);
    const given = eq < 0 ? undefined : line.slice(eq + 1).trim();
    const target = given ?? from.env.SSH_AUTH_SOCK;
    if (!target) throw new InputError(`${what}: '${id}' has no path and SSH_AUTH_SOCK is not set, so there is no agent to forward. Start an agent (the InstallSSHKey task does), or give ${id}=PATH to a private key.`);
    const file = path.resolve(from.readable.check(target, `${what}: '${id}'`));
    const stat = fs.statSync(file, { throwIfNoEntry: false });
    if (!stat) throw new FileError(`${what}: '${id}' names '${target}', which does not exist.`);
    if (stat.isSocket()) return agentSocket(id, file);
    const key = fs.readFileSync(file, 'utf8');
    from.setSecret(key.trim());
    return keyAgent(id, key, `${what}: '${id}' (${target})`);
  });
}

/** Mounts of one build: the inputs' (given for every build) win over the service's where both give an id. */
export function mergeMounts(inputs: BuildMounts, service?: BuildMounts): BuildMounts {
  const byId = <T extends { id: string }>(own: T[], over: T[]) => [...new Map([...own, ...over].map((m) => [m.id, m])).values()];
  return { secrets: byId(service?.secrets ?? [], inputs.secrets), ssh: byId(service?.ssh ?? [], inputs.ssh) };
}

/** Refuses an id given twice in one list (the ssh input and the SSH service connection both giving `default`, say). */
export function uniqueIds<T extends { id: string }>(items: T[], what: string): T[] {
  const seen = new Set<string>();
  for (const item of items) {
    if (seen.has(item.id)) throw new InputError(`${what}: '${item.id}' is given twice. Give each id once.`);
    seen.add(item.id);
  }
  return items;
}
