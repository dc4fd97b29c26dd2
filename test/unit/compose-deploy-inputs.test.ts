// ComposeDeploy's bad input: each a clear error naming the input, raised before any host is
// contacted (the target here is a socket that does not exist, so reaching it would fail differently).
// Also: project names, and the Compose CLI (v2 found through `docker compose`, v1 as docker-compose)
// with fake executables that record what they are given.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, test } from 'node:test';
import { createCredentialSource } from '../../tasks/lib/auth';
import { composeEnvironment, composeUp, findCompose } from '../../tasks/lib/compose/cli';
import { composeDeploy, ComposeDeployOptions, normaliseProjectName } from '../../tasks/lib/compose-deploy';
import { readLock } from '../../tasks/lib/lock/file';
import { createTestContext } from '../support/context';
import { composeDeployDefaults } from '../support/task-defaults';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'col-cd-inputs-'));
after(() => fs.rmSync(work, { recursive: true, force: true }));

const D = `sha256:${'a'.repeat(64)}`;
const base = path.join(work, 'docker-compose.yml');
fs.writeFileSync(base, 'services:\n  web:\n    image: registry.example.com/shop/web:${TAG:-1}\n');
const lockFile = path.join(work, 'lock.json');
fs.writeFileSync(
  lockFile,
  JSON.stringify({ schemaVersion: 1, createdAt: '2026-11-22T05:40:00.000Z', images: [{ name: 'web', repository: 'registry.example.com/shop/web', tags: ['1'], digest: D, ref: `registry.example.com/shop/web@${D}`, source: 'built', platforms: ['linux/amd64'] }] }),
);
const nowhere = `unix://${path.join(work, 'no-engine.sock')}`;

function options(over: Partial<ComposeDeployOptions> = {}): ComposeDeployOptions {
  return {
    composeFiles: [base],
    environmentName: 'qa',
    lock: readLock(lockFile),
    lockName: lockFile,
    variables: {},
    profiles: [],
    target: { type: 'local', dockerHost: nowhere },
    credentials: createCredentialSource({ setSecret: () => undefined, useDockerConfig: false }),
    waitTimeoutSeconds: 60,
    publishRenderedFile: false,
    env: {},
    ...composeDeployDefaults(),
    ...over,
  };
}

async function fails(over: Partial<ComposeDeployOptions>, pattern: RegExp): Promise<void> {
  const ctx = createTestContext();
  await assert.rejects(composeDeploy(options(over), ctx), (err: Error) => {
    assert.match(err.message, pattern);
    assert.doesNotMatch(err.message, /did not answer/, 'failed on the input, not on the host');
    return true;
  });
}

function file(name: string, content: string): string {
  const p = path.join(work, name);
  fs.writeFileSync(p, content);
  return p;
}

describe('bad input fails before any host is contacted', () => {
  test('the happy inputs do reach the (missing) host: the checks below are not vacuous', async () => {
    const ctx = createTestContext();
    await assert.rejects(composeDeploy(options(), ctx), /did not answer: the socket does not exist/);
    assert.ok(fs.existsSync(ctx.outputs.renderedComposeFile), 'rendered before connecting');
  });

  test('keepReleases: from 1 to 50', async () => {
    for (const keepReleases of [0, 51, 2.5]) await fails({ keepReleases }, new RegExp(`Input 'keepReleases' must be from 1 to 50, not ${keepReleases}\\.`));
  });

  test('rollbackTo needs no image lock: it reaches the host', async () => {
    const ctx = createTestContext();
    await assert.rejects(composeDeploy(options({ lock: undefined, rollbackTo: '20261201.7' }), ctx), /did not answer: the socket does not exist/);
  });

  test('renderedArtifactName: a name Azure Pipelines refuses (a path, .., a forbidden character) is refused by name', async () => {
    for (const name of ['../../../tmp/x', 'a\\b', 'x:y', '..', 'two\nlines']) {
      await fails({ publishRenderedFile: true, artifactName: name }, /Input 'renderedArtifactName': .*not a valid artifact name/);
    }
  });

  test('compose files: a missing override, invalid YAML, an alias bomb, duplicate keys, an unset required variable', async () => {
    await fails({ composeFiles: [base, path.join(work, 'docker-compose.prod.yml')] }, /Input 'composeFiles': '.*docker-compose\.prod\.yml' does not exist/);
    await fails({ composeFiles: [base, file('broken.yml', 'services: [\n')] }, /broken\.yml' is not valid YAML/);
    const bomb = ['a: &a [x, x, x, x, x, x, x, x, x, x]', ...Array.from({ length: 9 }, (_, i) => `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [${Array(10).fill(`*${String.fromCharCode(97 + i)}`).join(', ')}]`)];
    await fails({ composeFiles: [base, file('bomb.yml', `x-b:\n${bomb.map((l) => `  ${l}`).join('\n')}\n`)] }, /bomb\.yml.*aliases are limited/);
    await fails({ composeFiles: [file('dup.yml', 'services:\n  web: {image: a}\n  web: {image: b}\n')] }, /dup\.yml' is not valid YAML: Map keys must be unique/);
    await fails({ composeFiles: [file('req.yml', 'services:\n  web:\n    image: registry.example.com/shop/web:${RELEASE_TAG:?set RELEASE_TAG}\n')] }, /variable 'RELEASE_TAG' is not set: set RELEASE_TAG/);
    await fails({ composeFiles: [] }, /Input 'composeFiles' is required/);
    await fails({ envFile: path.join(work, 'missing.env') }, /Input 'envFile': '.*missing\.env' does not exist/);
  });

  test('the lock: none given, an image it does not have (reading it: readLockInput, compose-lock-from-build.test.ts)', async () => {
    await fails({ lock: undefined }, /Input 'lockFile': no image lock was given/);
    await fails({ composeFiles: [file('two.yml', 'services:\n  web: {image: "registry.example.com/shop/web:1"}\n  db: {image: "postgres:16"}\n')] }, /Input 'allowUnpinned':.*db \(postgres:16\)/);
  });

  test('the target and the gate: bounds, service connections without what they need', async () => {
    await fails({ waitTimeoutSeconds: 0 }, /Input 'waitTimeoutSeconds' must be from 1 to 3600/);
    await fails({ environmentName: ' ' }, /Input 'environmentName' is required/);
    await fails({ target: { type: 'tls' } }, /Input 'dockerHostEndpoint' is required when dockerHostType is tls/);
    const tls = (auth: Record<string, string>, url = 'tcp://docker.example.com:2376') => ({ type: 'tls' as const, dockerHostEndpoint: { id: 'h', input: 'dockerHostEndpoint', url, scheme: 'Certificate', auth, data: {} } });
    await fails({ target: tls({ cacert: '-----BEGIN CERTIFICATE-----' }) }, /has no certificate, key/);
    await fails({ target: tls({ cacert: 'x', cert: 'y', key: 'z' }, 'http//nope') }, /URL 'http\/\/nope', which is not tcp:\/\/host:port/);
    await fails({ target: tls({ cacert: 'not pem', cert: '-----BEGIN CERTIFICATE-----', key: '-----BEGIN PRIVATE KEY-----' }) }, /CA certificate .* is not a PEM certificate/);
    const ssh = (data: Record<string, string>, auth: Record<string, string> = { username: 'deploy' }, sshHostKey?: string) => ({ type: 'ssh' as const, sshHostKey, sshEndpoint: { id: 's', input: 'sshEndpoint', url: '', scheme: 'UsernamePassword', auth, data } });
    await fails({ target: ssh({ host: 'h.example' }) }, /Input 'sshEndpoint': .* has neither a private key nor a password/);
    await fails({ target: ssh({ privatekey: 'k' }) }, /Input 'sshEndpoint': .* has no host/);
    await fails({ target: ssh({ host: 'h', port: '99999', privatekey: 'k' }) }, /port '99999'/);
    await fails({ target: ssh({ host: 'h', privatekey: 'k' }, { username: 'd' }, 'md5:aa:bb') }, /Input 'sshHostKey' must be the host key's SHA256 fingerprint/);
  });
});

test('project names are what Compose v2 accepts, and environments get their own', () => {
  assert.equal(normaliseProjectName('Shop.Web-QA'), 'shop-web-qa');
  assert.equal(normaliseProjectName('My Repo/Prod'), 'my-repo-prod');
  assert.equal(normaliseProjectName('__internal_tool'), 'internal_tool');
  assert.equal(normaliseProjectName('Ünïcode-Stage'), 'unicode-stage');
  assert.equal(normaliseProjectName('!!!'), '');
  for (const name of ['Shop.Web-QA', 'a'.repeat(100), '--x--', 'Proj_1.2.3']) assert.match(normaliseProjectName(name), /^[a-z0-9][a-z0-9_-]*$/);
});

describe('the Compose CLI', () => {
  const bin = path.join(work, 'bin');
  const record = path.join(work, 'calls.log');
  fs.mkdirSync(bin);
  const script = (name: string, version: string, plugin: boolean) =>
    fs.writeFileSync(
      path.join(bin, name),
      `#!/bin/sh\necho "$0 $* | DOCKER_CONFIG=$DOCKER_CONFIG DOCKER_HOST=$DOCKER_HOST COMPOSE_FILE=$COMPOSE_FILE SECRET=$SECRET_THING" >> ${record}\n` +
        `${plugin ? 'if [ "$1" = compose ]; then shift; fi\n' : ''}case "$*" in *"version --short"*) echo "${version}";; esac\nexit 0\n`,
      { mode: 0o755 },
    );

  test('v2 through `docker compose` (found first), with --pull never; a clean environment', async () => {
    script('docker', 'v2.29.7', true);
    script('docker-compose', '1.29.2', false);
    const saved = { COMPOSE_FILE: process.env.COMPOSE_FILE, SECRET_THING: process.env.SECRET_THING };
    process.env.COMPOSE_FILE = 'agent-compose.yml';
    process.env.SECRET_THING = 'agent-secret';
    try {
      const env = { ...composeEnvironment({ DOCKER_HOST: 'unix:///target.sock' }, path.join(work, 'cfg')), PATH: `${bin}:${process.env.PATH}` };
      const cli = await findCompose({ env, askVersion: true });
      assert.deepEqual([cli.command, cli.prefix, cli.version, cli.major], ['docker', ['compose'], '2.29.7', 2]);
      fs.writeFileSync(record, '');
      await composeUp(cli, { project: 'shop-qa', file: '/r/shop-qa.yml', projectDir: work, env, removeOrphans: true, timeoutMs: 10_000, onLine: () => undefined });
      const call = fs.readFileSync(record, 'utf8');
      assert.match(call, /docker compose --ansi never -p shop-qa --project-directory .* -f \/r\/shop-qa\.yml up -d --no-build --pull never --remove-orphans/);
      assert.match(call, new RegExp(`DOCKER_CONFIG=${path.join(work, 'cfg')} DOCKER_HOST=unix:///target.sock COMPOSE_FILE= SECRET=\\n`));
    } finally {
      for (const [k, v] of Object.entries(saved)) if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });

  test('v1 as docker-compose when the docker CLI has no compose plugin; no --pull flag; a failure carries the output', async () => {
    fs.writeFileSync(path.join(bin, 'docker'), '#!/bin/sh\necho "docker: unknown command: docker compose" >&2\nexit 1\n', { mode: 0o755 });
    const env = { ...composeEnvironment({}, work), PATH: `${bin}:${process.env.PATH}` };
    const cli = await findCompose({ env, askVersion: true });
    assert.deepEqual([path.basename(cli.command), cli.prefix, cli.major], ['docker-compose', [], 1]);
    fs.writeFileSync(record, '');
    await composeUp(cli, { project: 'p', file: '/r/p.yml', projectDir: work, env, removeOrphans: false, timeoutMs: 10_000, onLine: () => undefined });
    assert.match(fs.readFileSync(record, 'utf8'), /docker-compose --ansi never -p p --project-directory .* -f \/r\/p\.yml up -d --no-build \|/);
    const failing = path.join(bin, 'failing-compose');
    fs.writeFileSync(failing, '#!/bin/sh\ncase "$*" in *"version --short"*) echo 1.29.2; exit 0;; esac\necho "ERROR: port is already allocated"\necho "##vso[task.complete result=Succeeded]"\nexit 3\n', { mode: 0o755 });
    const bad = await findCompose({ env, path: failing, askVersion: true });
    await assert.rejects(composeUp(bad, { project: 'p', file: '/r/p.yml', projectDir: work, env, removeOrphans: true, timeoutMs: 10_000, onLine: () => undefined }), (err: Error) => {
      assert.match(err.message, /failing-compose up exited with code 3:\nERROR: port is already allocated/);
      assert.doesNotMatch(err.message, /##vso\[/, 'tool output cannot inject logging commands');
      return true;
    });
    await assert.rejects(findCompose({ env, path: path.join(bin, 'nope'), askVersion: true }), /Input 'dockerComposePath': '.*nope' is not an executable file/);
    await assert.rejects(findCompose({ env, path: path.join(bin, 'docker'), askVersion: true }), /Input 'dockerComposePath': '.*docker' did not answer 'compose version --short'/);
    const mute = path.join(bin, 'mute-compose');
    fs.writeFileSync(mute, '#!/bin/sh\nexit 1\n', { mode: 0o755 });
    await assert.rejects(findCompose({ env, path: mute, askVersion: true }), /Input 'dockerComposePath': '.*mute-compose' did not answer 'version --short'/);
  });
});
