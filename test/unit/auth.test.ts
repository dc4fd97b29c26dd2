// Credentials: service connections, the docker config (auths, credHelpers, credsStore through a
// real helper program on PATH), X-Registry-Auth, and the private docker config for CLIs.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  DOCKER_HUB_SERVER,
  createCredentialSource,
  normalizeRegistryHost,
  registryAuthConfig,
  registryAuthHeader,
  withPrivateDockerConfig,
} from '../../tasks/lib/auth';
import type { EndpointInfo } from '../../tasks/lib/context';
import { FileError, InputError } from '../../tasks/lib/errors';
import { createTestContext } from '../support/context';

const HELPER_SECRET = 'helper-s3cret-VALUE!';

let root: string;
let binDir: string;
let helperLog: string;

/** A docker config folder holding `config`. */
function configDir(config: object | string): string {
  const dir = fs.mkdtempSync(path.join(root, 'cfg-'));
  fs.writeFileSync(path.join(dir, 'config.json'), typeof config === 'string' ? config : JSON.stringify(config));
  return dir;
}

function env(): NodeJS.ProcessEnv {
  return { ...process.env, PATH: `${binDir}${path.delimiter}${process.env.PATH}`, HOME: path.join(root, 'home') };
}

before(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'col-auth-test-'));
  binDir = path.join(root, 'bin');
  fs.mkdirSync(binDir);
  fs.mkdirSync(path.join(root, 'home'));
  helperLog = path.join(root, 'helper.log');
  // A credential helper as the docker-credential-helpers protocol defines it: the action is the
  // only argument, the server URL comes on stdin (no newline), the answer is JSON on stdout, and
  // "credentials not found in native keychain" with exit 1 when there is nothing.
  const script = `#!/bin/sh
server=$(cat)
printf '%s|%s|%s\\n' "$#" "$1" "$server" >> '${helperLog}'
[ "$#" = 1 ] && [ "$1" = get ] || { echo "usage: get" >&2; exit 2; }
case "$server" in
  myreg.example.com|https://index.docker.io/v1/)
    printf '{"ServerURL":"%s","Username":"helper-user","Secret":"${HELPER_SECRET}"}' "$server" ;;
  tokens.example.com)
    printf '{"ServerURL":"%s","Username":"<token>","Secret":"identity-from-helper"}' "$server" ;;
  broken.example.com)
    echo "keychain locked" >&2; exit 3 ;;
  *)
    echo "credentials not found in native keychain"; exit 1 ;;
esac
`;
  fs.writeFileSync(path.join(binDir, 'docker-credential-test'), script, { mode: 0o755 });
});

after(() => fs.rmSync(root, { recursive: true, force: true }));

describe('registry host normalisation', () => {
  it('maps every spelling of Docker Hub to docker.io and strips scheme and path', () => {
    for (const v of ['https://index.docker.io/v1/', 'index.docker.io', 'docker.io', 'registry-1.docker.io', 'https://registry.hub.docker.com']) {
      assert.equal(normalizeRegistryHost(v), 'docker.io');
    }
    assert.equal(normalizeRegistryHost('https://MyReg.example.com:5000/v2/'), 'myreg.example.com:5000');
    assert.equal(normalizeRegistryHost('contoso.azurecr.io'), 'contoso.azurecr.io');
  });
});

describe('docker config: auths', () => {
  it('reads a base64 auth entry and registers the password and every base64 form', async () => {
    const password = 'pa:ss w0rd';
    const auth = Buffer.from(`alice:${password}`).toString('base64');
    const ctx = createTestContext();
    const source = createCredentialSource({
      dockerConfigDir: configDir({ auths: { 'myreg.example.com:5000': { auth } } }),
      setSecret: (s) => ctx.setSecret(s),
      env: env(),
    });
    assert.deepEqual(await source('myreg.example.com:5000'), { username: 'alice', password });
    assert.equal(await source('other.example.com'), undefined);
    assert.ok(ctx.secrets.has(password));
    assert.ok(ctx.secrets.has(Buffer.from(password).toString('base64')));
    assert.ok(ctx.secrets.has(auth), 'the auth value itself');
  });

  it('finds Docker Hub under https://index.docker.io/v1/, and reads username/password fields and identity tokens', async () => {
    const dir = configDir({
      auths: {
        [DOCKER_HUB_SERVER]: { username: 'hubuser', password: 'hubpass' },
        'https://tokens.example.com': { auth: Buffer.from('<token>:').toString('base64'), identitytoken: 'refresh-123' },
      },
    });
    const secrets: string[] = [];
    const source = createCredentialSource({ dockerConfigDir: dir, setSecret: (s) => secrets.push(s), env: env() });
    assert.deepEqual(await source('docker.io'), { username: 'hubuser', password: 'hubpass' });
    assert.deepEqual(await source('tokens.example.com'), { username: '<token>', password: '', identityToken: 'refresh-123' });
    assert.ok(secrets.includes('hubpass') && secrets.includes('refresh-123'));
  });

  it('uses $DOCKER_CONFIG, then ~/.docker, and never writes to it', async () => {
    const home = path.join(root, 'home');
    fs.mkdirSync(path.join(home, '.docker'), { recursive: true });
    const file = path.join(home, '.docker', 'config.json');
    fs.writeFileSync(file, JSON.stringify({ auths: { 'home.example.com': { auth: Buffer.from('h:p').toString('base64') } } }));
    const beforeBytes = fs.readFileSync(file);
    const beforeMtime = fs.statSync(file).mtimeMs;
    const fromHome = createCredentialSource({ setSecret: () => {}, env: env() });
    assert.deepEqual(await fromHome('home.example.com'), { username: 'h', password: 'p' });
    const viaVar = createCredentialSource({ setSecret: () => {}, env: { ...env(), DOCKER_CONFIG: configDir({ auths: { 'var.example.com': { username: 'v', password: 'w' } } }) } });
    assert.deepEqual(await viaVar('var.example.com'), { username: 'v', password: 'w' });
    assert.equal(await viaVar('home.example.com'), undefined);
    assert.deepEqual(fs.readFileSync(file), beforeBytes);
    assert.equal(fs.statSync(file).mtimeMs, beforeMtime);
  });

  it('no config is anonymous; a malformed one is a FileError naming the file', async () => {
    const empty = fs.mkdtempSync(path.join(root, 'empty-'));
    assert.equal(await createCredentialSource({ dockerConfigDir: empty, setSecret: () => {}, env: env() })('x.example.com'), undefined);
    const bad = configDir('{ "auths": ');
    await assert.rejects(createCredentialSource({ dockerConfigDir: bad, setSecret: () => {}, env: env() })('x.example.com'), (err: Error) => {
      return err instanceof FileError && err.message.includes(path.join(bad, 'config.json'));
    });
  });
});

describe('docker config: credential helpers', () => {
  it('runs docker-credential-<name> get with the server URL on stdin only', async () => {
    fs.rmSync(helperLog, { force: true });
    const ctx = createTestContext();
    const source = createCredentialSource({
      dockerConfigDir: configDir({ credHelpers: { 'myreg.example.com': 'test' }, auths: { 'myreg.example.com': { auth: Buffer.from('ignored:ignored').toString('base64') } } }),
      setSecret: (s) => ctx.setSecret(s),
      env: env(),
    });
    assert.deepEqual(await source('myreg.example.com'), { username: 'helper-user', password: HELPER_SECRET });
    // The helper saw exactly one argument, 'get', and the server URL on stdin.
    assert.deepEqual(fs.readFileSync(helperLog, 'utf8').trim().split('\n'), ['1|get|myreg.example.com']);
    assert.ok(ctx.secrets.has(HELPER_SECRET));
    assert.ok(ctx.secrets.has(Buffer.from(HELPER_SECRET).toString('base64')));
    assert.ok(ctx.secrets.has(Buffer.from(`helper-user:${HELPER_SECRET}`).toString('base64')));
  });

  it('credsStore serves Docker Hub under its legacy URL, and "not found" falls back to auths', async () => {
    fs.rmSync(helperLog, { force: true });
    const source = createCredentialSource({
      dockerConfigDir: configDir({ credsStore: 'test', auths: { 'plain.example.com': { username: 'p', password: 'q' } } }),
      setSecret: () => {},
      env: env(),
    });
    assert.deepEqual(await source('docker.io'), { username: 'helper-user', password: HELPER_SECRET });
    assert.deepEqual(await source('plain.example.com'), { username: 'p', password: 'q' });
    assert.deepEqual(fs.readFileSync(helperLog, 'utf8').trim().split('\n'), [`1|get|${DOCKER_HUB_SERVER}`, '1|get|plain.example.com']);
  });

  it('a helper answering <token> gives an identity token', async () => {
    const source = createCredentialSource({ dockerConfigDir: configDir({ credHelpers: { 'tokens.example.com': 'test' } }), setSecret: () => {}, env: env() });
    assert.deepEqual(await source('tokens.example.com'), { username: '', password: '', identityToken: 'identity-from-helper' });
  });

  it('a missing helper is skipped; a failing one is an error with its message', async () => {
    const missing = createCredentialSource({
      dockerConfigDir: configDir({ credsStore: 'desktop', auths: { 'a.example.com': { username: 'a', password: 'b' } } }),
      setSecret: () => {},
      env: env(),
    });
    assert.deepEqual(await missing('a.example.com'), { username: 'a', password: 'b' });
    const failing = createCredentialSource({ dockerConfigDir: configDir({ credHelpers: { 'broken.example.com': 'test' } }), setSecret: () => {}, env: env() });
    await assert.rejects(failing('broken.example.com'), /docker-credential-test failed for broken\.example\.com: keychain locked/);
    const badName = createCredentialSource({ dockerConfigDir: configDir({ credHelpers: { 'x.example.com': '../../bin/sh' } }), setSecret: () => {}, env: env() });
    await assert.rejects(badName('x.example.com'), FileError);
  });
});

describe('service connections', () => {
  const endpoint = (url: string, auth: Record<string, string>, data: Record<string, string> = {}): EndpointInfo => ({
    id: 'ep-1',
    input: 'containerRegistry',
    url,
    scheme: 'UsernamePassword',
    auth,
    data,
  });

  it('a dockerregistry connection wins for its registry; others fall through to the docker config', async () => {
    const ctx = createTestContext();
    const source = createCredentialSource({
      endpoint: endpoint('https://index.docker.io/v1/', { username: 'hub', password: 'hub-pass', registry: 'https://index.docker.io/v1/' }),
      dockerConfigDir: configDir({ auths: { [DOCKER_HUB_SERVER]: { username: 'cfg', password: 'cfg-pass' }, 'other.example.com': { username: 'o', password: 'p' } } }),
      setSecret: (s) => ctx.setSecret(s),
      env: env(),
    });
    assert.deepEqual(await source('docker.io'), { username: 'hub', password: 'hub-pass' });
    assert.deepEqual(await source('other.example.com'), { username: 'o', password: 'p' });
    assert.ok(ctx.secrets.has('hub-pass'), 'registered when the connection is read, before any use');
    assert.ok(ctx.secrets.has(Buffer.from('hub:hub-pass').toString('base64')));
  });

  it('takes the registry from data.registry or the URL, with a port', async () => {
    const source = createCredentialSource({ endpoint: endpoint('https://myreg.example.com:5000/', { username: 'u', password: 'p' }), setSecret: () => {}, useDockerConfig: false });
    assert.deepEqual(await source('myreg.example.com:5000'), { username: 'u', password: 'p' });
    assert.equal(await source('myreg.example.com'), undefined);
    const viaData = createCredentialSource({ endpoint: endpoint('', { username: 'u', password: 'p' }, { registry: 'data.example.com' }), setSecret: () => {}, useDockerConfig: false });
    assert.deepEqual(await viaData('data.example.com'), { username: 'u', password: 'p' });
  });

  it('a connection without a password is an input error naming the input', () => {
    assert.throws(() => createCredentialSource({ endpoint: endpoint('https://r.example.com', { username: 'u' }), setSecret: () => {} }), (err: Error) => err instanceof InputError && /'containerRegistry'/.test(err.message));
  });
});

describe('X-Registry-Auth and the private docker config', () => {
  it('encodes base64url JSON (padded, as the engine decodes it) and registers it as a secret', () => {
    const secrets: string[] = [];
    const credential = { username: 'user', password: 'p>?~ss' };
    const value = registryAuthHeader(credential, 'docker.io', (s) => secrets.push(s));
    assert.match(value, /^[A-Za-z0-9_-]+=*$/);
    assert.deepEqual(JSON.parse(Buffer.from(value, 'base64url').toString('utf8')), { username: 'user', password: 'p>?~ss', serveraddress: DOCKER_HUB_SERVER });
    assert.ok(secrets.includes(value));
    assert.ok(secrets.includes('p>?~ss'));
    assert.ok(secrets.includes(Buffer.from('p>?~ss').toString('base64')));
    assert.deepEqual(registryAuthConfig({ username: '', password: '', identityToken: 'tok' }, 'myreg.example.com'), { identitytoken: 'tok', serveraddress: 'myreg.example.com' });
    assert.deepEqual(registryAuthConfig(undefined, 'myreg.example.com'), { serveraddress: 'myreg.example.com' });
  });

  it('withPrivateDockerConfig writes a 0700 folder with a 0600 config.json and removes it, even on failure', async () => {
    let seen = '';
    const secrets: string[] = [];
    const result = await withPrivateDockerConfig(
      [
        { registry: 'docker.io', credential: { username: 'a', password: 'b' } },
        { registry: '127.0.0.1:5000', credential: { username: 'c', password: 'd' } },
      ],
      async (dir) => {
        seen = dir;
        assert.equal(fs.statSync(dir).mode & 0o777, 0o700);
        const file = path.join(dir, 'config.json');
        assert.equal(fs.statSync(file).mode & 0o777, 0o600);
        const config = JSON.parse(fs.readFileSync(file, 'utf8'));
        assert.deepEqual(config, {
          auths: { [DOCKER_HUB_SERVER]: { auth: Buffer.from('a:b').toString('base64') }, '127.0.0.1:5000': { auth: Buffer.from('c:d').toString('base64') } },
        });
        return 42;
      },
      { setSecret: (s) => secrets.push(s) },
    );
    assert.equal(result, 42);
    assert.equal(fs.existsSync(seen), false);
    assert.ok(secrets.includes(Buffer.from('c:d').toString('base64')));

    await assert.rejects(
      withPrivateDockerConfig([{ registry: 'x.example.com', credential: { username: 'u', password: 'p' } }], async (dir) => {
        seen = dir;
        throw new Error('boom');
      }),
      /boom/,
    );
    assert.equal(fs.existsSync(seen), false);
  });
});
