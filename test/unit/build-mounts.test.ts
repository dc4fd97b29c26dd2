// Build secrets and SSH agents before the engine: the inputs' grammar and errors, the values read
// and masked, the protobuf the BuildKit session speaks (checked against protobufjs with BuildKit's
// own status .proto, as dockerode ships it), and our key agent against OpenSSH's ssh-add.
import { strict as assert } from 'node:assert';
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, test } from 'node:test';
import * as protobuf from 'protobufjs';
import { parseSecretsInput, readSecrets, readSsh, uniqueIds } from '../../tasks/lib/build/mounts';
import { decode, field, text } from '../../tasks/lib/docker/protobuf';
import { decodeBuildKitTrace } from '../../tasks/lib/docker/stream';
import { FileError, InputError } from '../../tasks/lib/errors';
import { ReadablePaths } from '../../tasks/lib/readable-paths';

const work = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'col-mounts-unit-')));
after(() => fs.rmSync(work, { recursive: true, force: true }));

function sources(env: Record<string, string> = {}) {
  const masked: string[] = [];
  return { masked, from: { env, readable: new ReadablePaths(work, []), setSecret: (v: string) => void masked.push(v) } };
}

describe('the secrets input', () => {
  test('id=NAME,env=VARIABLE and id=NAME,file=PATH, one per line', () => {
    assert.deepEqual(parseSecretsInput(['id=npmrc,env=NPM_TOKEN', 'id=key, file=/agent/_temp/key.pem']), [
      { id: 'npmrc', env: 'NPM_TOKEN' },
      { id: 'key', file: '/agent/_temp/key.pem' },
    ]);
  });

  for (const [line, says] of [
    ['npmrc', /is not id=NAME,env=VARIABLE or id=NAME,file=PATH/],
    ['id=npmrc', /needs exactly one of env=VARIABLE or file=PATH/],
    ['id=npmrc,env=A,file=b', /needs exactly one/],
    ['id=npmrc,src=b', /is not id=NAME/],
    ['id=np mrc,env=A', /'np mrc' is not a secret or SSH id/],
    ['id=a,id=b,env=A', /is not id=NAME/],
  ] as const) {
    test(`'${line}' is refused, naming the input`, () => assert.throws(() => parseSecretsInput([line]), (e: unknown) => e instanceof InputError && /^Input 'secrets'/.test(e.message) && says.test(e.message)));
  }

  test('values are read, registered for masking; a variable that is not set says how to map it', () => {
    const { masked, from } = sources({ NPM_TOKEN: 'the-token' });
    fs.writeFileSync(path.join(work, 'key.pem'), 'key-bytes');
    const secrets = readSecrets([{ id: 'npmrc', env: 'NPM_TOKEN' }, { id: 'key', file: path.join(work, 'key.pem') }], "Input 'secrets'", from);
    assert.deepEqual(secrets.map((s) => [s.id, s.value.toString()]), [['npmrc', 'the-token'], ['key', 'key-bytes']]);
    assert.deepEqual(masked, ['the-token', 'key-bytes']);
    assert.throws(() => readSecrets([{ id: 'npmrc', env: 'UNSET' }], "Input 'secrets'", from), /secret 'npmrc' comes from the variable UNSET, which is not set.*env:/);
    assert.throws(() => readSecrets([{ id: 'key', file: path.join(work, 'absent.pem') }], "Input 'secrets'", from), (e: unknown) => e instanceof FileError && /absent\.pem', which does not exist/.test(e.message));
  });

  test('a secret over BuildKit\'s 500 KB is refused before the build; /proc is never read', () => {
    const { from } = sources({ BIG: 'x'.repeat(500 * 1024 + 1) });
    assert.throws(() => readSecrets([{ id: 'big', env: 'BIG' }], "Input 'secrets'", from), /500 KB/);
    const anywhere = { ...from, readable: new ReadablePaths('/', []) };
    assert.throws(() => readSecrets([{ id: 'env', file: '/proc/self/environ' }], "Input 'secrets'", anywhere), /never read \/proc/);
  });
});

describe('the ssh input', () => {
  test("'default' without SSH_AUTH_SOCK says what to do; a missing path is named; an id given twice is refused", () => {
    const { from } = sources();
    assert.throws(() => readSsh(['default'], "Input 'ssh'", from), /SSH_AUTH_SOCK is not set.*InstallSSHKey/);
    assert.throws(() => readSsh([`deploy=${path.join(work, 'nope')}`], "Input 'ssh'", from), /'deploy' names .*nope', which does not exist/);
    assert.throws(() => uniqueIds([{ id: 'default' }, { id: 'default' }], "Inputs 'ssh' and 'sshEndpoint'"), /'default' is given twice/);
  });

  test('a file that is not a private key is refused before the build, naming it', () => {
    fs.writeFileSync(path.join(work, 'not-a-key'), 'hello');
    const { from } = sources();
    assert.throws(() => readSsh([`deploy=${path.join(work, 'not-a-key')}`], "Input 'ssh'", from), /Input 'ssh': 'deploy'.*could not be read/);
  });

  for (const type of ['ed25519', 'rsa', 'ecdsa']) {
    test(`our agent holding an ${type} key lists it and signs with it (OpenSSH's ssh-add -l and -T)`, async () => {
      const keyFile = path.join(work, `id_${type}`);
      fs.rmSync(keyFile, { force: true });
      fs.rmSync(`${keyFile}.pub`, { force: true });
      execFileSync('ssh-keygen', ['-q', '-t', type, '-N', '', '-C', `col-${type}`, '-f', keyFile]);
      const { masked, from } = sources();
      const [agent] = readSsh([`deploy=${keyFile}`], "Input 'ssh'", from);
      assert.ok(masked[0].includes('PRIVATE KEY'), 'the key text is registered for masking');
      const socket = path.join(work, `agent-${type}.sock`);
      const server = net.createServer((c) => {
        const a = agent.connect();
        c.pipe(a).pipe(c);
      });
      await new Promise<void>((r) => server.listen(socket, r));
      try {
        const env = { ...process.env, SSH_AUTH_SOCK: socket };
        const listed = await run('ssh-add', ['-l'], env);
        assert.match(listed.stdout, new RegExp(`col-${type}`));
        const signed = await run('ssh-add', ['-T', `${keyFile}.pub`], env);
        assert.equal(signed.status, 0, `ssh-add -T: ${signed.stderr}`);
        const other = path.join(work, `other_${type}`);
        fs.rmSync(other, { force: true });
        execFileSync('ssh-keygen', ['-q', '-t', type, '-N', '', '-f', other]);
        assert.notEqual((await run('ssh-add', ['-T', `${other}.pub`], env)).status, 0, 'a key the agent does not hold is not signed with');
      } finally {
        server.close();
      }
    });
  }
});

/** A child process run without blocking the event loop (the agent under test answers in this process). */
function run(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child: ChildProcess = spawn(cmd, args, { env });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d) => (stdout += d));
    child.stderr?.on('data', (d) => (stderr += d));
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

describe('the protobuf the session speaks', () => {
  test('fields round-trip: varints past 32 bits, strings, bytes, nested messages; a message cut short throws', () => {
    const entry = Buffer.concat([field(1, 'k'), field(2, 'v')]);
    const message = Buffer.concat([field(1, 'npmrc'), field(2, entry), field(3, 2 ** 40), field(4, Buffer.from([0, 255]))]);
    const fields = decode(message);
    assert.equal(text(fields, 1), 'npmrc');
    const nested = fields.find((f) => f.number === 2);
    assert.ok(nested && 'bytes' in nested);
    assert.deepEqual([text(decode(nested.bytes), 1), text(decode(nested.bytes), 2)], ['k', 'v']);
    assert.deepEqual(fields.find((f) => f.number === 3), { number: 3, varint: 2n ** 40n });
    assert.throws(() => decode(message.subarray(0, message.length - 1)), /runs past the message/);
  });

  test("BuildKit's progress decodes as protobufjs reads it with BuildKit's status .proto", () => {
    const root = protobuf.loadSync(require.resolve('dockerode/lib/proto/buildkit_status.proto'));
    const Status = root.lookupType('moby.buildkit.v1.StatusResponse');
    const bytes = Status.encode(
      Status.fromObject({
        vertexes: [
          { digest: 'sha256:1', name: '[1/2] FROM base', cached: true, completed: { seconds: 1 } },
          { digest: 'sha256:2', name: '[2/2] RUN make', error: 'exit code: 2' },
          { digest: 'sha256:3', name: 'still running' },
        ],
        logs: [{ vertex: 'sha256:2', msg: Buffer.from('compiling\nlinking\n') }],
        warnings: [{ vertex: 'sha256:2', short: Buffer.from('FromAsCasing') }],
      }),
    ).finish();
    assert.deepEqual(decodeBuildKitTrace(Buffer.from(bytes).toString('base64')), ['CACHED [1/2] FROM base', 'ERROR: [2/2] RUN make: exit code: 2', '  compiling', '  linking', 'WARNING: FromAsCasing']);
  });
});
