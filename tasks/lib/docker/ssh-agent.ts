// SSH agents a build can use through `RUN --mount=type=ssh`: the job's own agent (SSH_AUTH_SOCK),
// or an agent of ours in this process that holds one private key (from an SSH service connection
// or a key file) and signs with it. The key never goes to a file, the engine or the build: the
// build's ssh client asks the agent to sign, over the BuildKit session.
import * as net from 'node:net';
import { Duplex } from 'node:stream';
import { InputError } from '../errors';
import { lazyRequire } from '../util/lazy';
import type { SshForward } from './session';

type ParsedKey = { type: string; comment?: string; getPublicSSH(): Buffer; sign(data: Buffer, algo?: string): Buffer | Error; isPrivateKey(): boolean };
const parseKey = lazyRequire<(text: string, passphrase?: string) => ParsedKey | ParsedKey[] | Error>(() => require('ssh2').utils.parseKey);
// ECDSA and DSA signatures come from node as ASN.1; the agent protocol wants SSH's encoding.
const sshSignature = lazyRequire<(sig: Buffer, type: string) => Buffer | false>(() => require('ssh2/lib/protocol/utils').convertSignature);

// The agent protocol (draft-miller-ssh-agent): each message is uint32 length, byte type, body.
const REQUEST_IDENTITIES = 11;
const IDENTITIES_ANSWER = 12;
const SIGN_REQUEST = 13;
const SIGN_RESPONSE = 14;
const FAILURE = 5;
const RSA_SHA2_256 = 2;
const RSA_SHA2_512 = 4;

const sshString = (bytes: Buffer | string) => {
  const body = Buffer.from(bytes);
  const length = Buffer.alloc(4);
  length.writeUInt32BE(body.length);
  return Buffer.concat([length, body]);
};
const message = (type: number, ...parts: Buffer[]) => sshString(Buffer.concat([Buffer.from([type]), ...parts]));

/** The answer of an agent holding `key` to one request (type and body); anything but listing and signing is refused, as agents may. */
function answer(key: ParsedKey, publicBlob: Buffer, type: number, body: Buffer): Buffer {
  if (type === REQUEST_IDENTITIES) {
    const count = Buffer.alloc(4);
    count.writeUInt32BE(1);
    return message(IDENTITIES_ANSWER, count, sshString(publicBlob), sshString(key.comment ?? ''));
  }
  if (type !== SIGN_REQUEST || body.length < 4) return message(FAILURE);
  const blobLength = body.readUInt32BE(0);
  const blob = body.subarray(4, 4 + blobLength);
  const dataLength = body.readUInt32BE(4 + blobLength);
  const data = body.subarray(8 + blobLength, 8 + blobLength + dataLength);
  const flags = body.length >= 12 + blobLength + dataLength ? body.readUInt32BE(8 + blobLength + dataLength) : 0;
  if (!blob.equals(publicBlob)) return message(FAILURE);
  const rsa = key.type === 'ssh-rsa';
  const [format, hash] = !rsa ? [key.type, undefined] : flags & RSA_SHA2_512 ? ['rsa-sha2-512', 'sha512'] : flags & RSA_SHA2_256 ? ['rsa-sha2-256', 'sha256'] : ['ssh-rsa', 'sha1'];
  const raw = key.sign(data, hash);
  const signature = raw instanceof Error ? false : sshSignature()(raw, key.type);
  if (!signature) return message(FAILURE);
  return message(SIGN_RESPONSE, sshString(Buffer.concat([sshString(format), sshString(signature)])));
}

/** The agent listening on a socket (`default`: the job's SSH_AUTH_SOCK). */
export function agentSocket(id: string, socketPath: string): SshForward {
  return { id, socketPath, connect: () => net.connect(socketPath) };
}

/** An agent that holds one private key. The key is parsed now, so a wrong key or passphrase fails before the build. */
export function keyAgent(id: string, privateKey: string, what: string, passphrase?: string): SshForward {
  const parsed = parseKey()(privateKey, passphrase);
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (key instanceof Error || !key?.isPrivateKey()) {
    throw new InputError(`${what}: the SSH private key could not be read (${key instanceof Error ? key.message : 'not a private key'}). Give an OpenSSH or PEM private key${passphrase === undefined ? '' : ' and its passphrase'}.`);
  }
  const publicBlob = key.getPublicSSH();
  return {
    id,
    connect() {
      let pending = Buffer.alloc(0);
      return new Duplex({
        read() {},
        write(chunk: Buffer, _encoding, done) {
          pending = Buffer.concat([pending, chunk]);
          while (pending.length >= 5 && pending.length >= 4 + pending.readUInt32BE(0)) {
            const length = pending.readUInt32BE(0);
            this.push(answer(key, publicBlob, pending[4], pending.subarray(5, 4 + length)));
            pending = pending.subarray(4 + length);
          }
          done();
        },
        final(done) {
          this.push(null);
          done();
        },
      });
    },
  };
}
