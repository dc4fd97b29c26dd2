// The buildx backend without an engine: the cacheFrom / cacheTo grammar, which builds go through
// buildx and why, and its command line and environment (a secret's value never on the command line).
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import type { ImageBuildSpec } from '../../tasks/lib/docker/build';
import { buildxEnvironment, buildxInvocation, buildxReason, cacheRegistries, parseCacheEntry } from '../../tasks/lib/docker/buildx';
import { agentSocket, keyAgent } from '../../tasks/lib/docker/ssh-agent';
import { InputError, InvalidReferenceError } from '../../tasks/lib/errors';
import { ReadablePaths } from '../../tasks/lib/readable-paths';

function spec(over: Partial<ImageBuildSpec> = {}): ImageBuildSpec {
  return {
    title: "'app'",
    context: '/src/app',
    dockerfile: '/src/app/Dockerfile',
    readable: new ReadablePaths('/src', [], 'the sources'),
    tags: ['registry.example.com/app:1', 'registry.example.com/app:latest'],
    buildArgs: {},
    labels: {},
    platforms: [],
    pull: false,
    noCache: false,
    cacheFrom: [],
    cacheTo: [],
    extraHosts: [],
    ulimits: [],
    secrets: [],
    ssh: [],
    ...over,
  };
}

const files = { metadataFile: '/private/metadata.json', dir: '/private' };

describe('cacheFrom and cacheTo entries (buildx syntax)', () => {
  test('registry, inline and local entries are read; an image alone is a registry cache to import', () => {
    assert.deepEqual(parseCacheEntry('type=registry,ref=myacr.azurecr.io/app:cache,mode=max', 'to', 'x'), { type: 'registry', attrs: { ref: 'myacr.azurecr.io/app:cache', mode: 'max' } });
    assert.deepEqual(parseCacheEntry('type=inline', 'to', 'x'), { type: 'inline', attrs: {} });
    assert.deepEqual(parseCacheEntry('type=local,src=/cache', 'from', 'x'), { type: 'local', attrs: { src: '/cache' } });
    assert.deepEqual(parseCacheEntry('myacr.azurecr.io/app:latest', 'from', 'x'), { type: 'registry', attrs: { ref: 'myacr.azurecr.io/app:latest' } });
  });

  test('a wrong entry is an error naming the input and saying what to write', () => {
    const fails = (text: string, direction: 'from' | 'to', says: RegExp) =>
      assert.throws(() => parseCacheEntry(text, direction, "Input 'cacheTo'"), (err: unknown) => err instanceof InputError && /^Input 'cacheTo'/.test(err.message) && says.test(err.message));
    fails('myacr.azurecr.io/app:cache', 'to', /is not a cache export; write type=registry,ref=REPOSITORY:TAG,mode=max or type=inline/);
    fails('type=inline', 'from', /type=inline, which buildx cannot import a cache from\. Use one of type=registry, type=local/);
    fails('type=registry', 'to', /needs ref=/);
    fails('type=local', 'to', /needs dest=/);
    fails('ref=x/y:z', 'to', /has no type=/);
    fails('type=registry,ref=a/b:c,mode=most', 'to', /mode=most; write mode=min .* or mode=max/);
    fails('type=registry,type=inline', 'to', /KEY=VALUE pairs/);
    assert.throws(() => parseCacheEntry('type=registry,ref=Not A Ref', 'from', "Input 'cacheFrom'"), InvalidReferenceError);
  });

  test('/build imports images (inline cache); an entry in buildx syntax, a cache export or several platforms need buildx', () => {
    assert.equal(buildxReason(spec({ cacheFrom: ['reg.example.com/app:cache', 'reg.example.com/app:latest'] })), undefined);
    assert.equal(buildxReason(spec({ cacheFrom: ['reg.example.com/app:latest', 'type=registry,ref=reg.example.com/app:cache'] })), "the cache import 'type=registry,ref=reg.example.com/app:cache' is in buildx's syntax");
    assert.equal(buildxReason(spec({ cacheTo: ['type=inline'] })), 'cacheTo exports a build cache');
    assert.equal(buildxReason(spec({ platforms: ['linux/amd64'] })), undefined);
    assert.equal(buildxReason(spec({ platforms: ['linux/amd64', 'linux/arm64'] })), '2 platforms (linux/amd64, linux/arm64) make one image index');
  });

  test('the registries whose credentials buildx gets are those of registry caches, once each', () => {
    assert.deepEqual(cacheRegistries(spec({ cacheFrom: ['a.example.com/app:1', 'type=local,src=/c'], cacheTo: ['type=registry,ref=a.example.com/app:c,mode=max', 'type=registry,ref=127.0.0.1:5000/x:y', 'type=inline'] })), ['a.example.com', '127.0.0.1:5000']);
  });
});

describe('the buildx command line and environment', () => {
  test('every setting of the spec is a flag, the platforms one list, the image loaded into the engine', () => {
    const { args, env, stdin } = buildxInvocation(
      spec({
        buildArgs: { NODE_ENV: 'production' },
        labels: { 'org.opencontainers.image.revision': 'abc' },
        target: 'final',
        platforms: ['linux/amd64', 'linux/arm64'],
        pull: true,
        noCache: true,
        cacheFrom: ['type=registry,ref=reg.example.com/app:cache'],
        cacheTo: ['type=registry,ref=reg.example.com/app:cache,mode=max'],
        network: 'host',
        extraHosts: ['db:10.0.0.5'],
        shmSize: 67108864,
        ulimits: [{ Name: 'nofile', Soft: 1024, Hard: 2048 }],
      }),
      files,
    );
    assert.deepEqual(args, [
      'buildx', 'build', '--progress', 'plain', '--metadata-file', '/private/metadata.json', '--provenance=false', '--sbom=false',
      '--file', '/src/app/Dockerfile', '--tag', 'registry.example.com/app:1', '--tag', 'registry.example.com/app:latest',
      '--build-arg', 'NODE_ENV=production', '--label', 'org.opencontainers.image.revision=abc', '--target', 'final',
      '--platform', 'linux/amd64,linux/arm64', '--pull', '--no-cache',
      '--cache-from', 'type=registry,ref=reg.example.com/app:cache', '--cache-to', 'type=registry,ref=reg.example.com/app:cache,mode=max',
      '--network', 'host', '--add-host', 'db:10.0.0.5', '--shm-size', '67108864', '--ulimit', 'nofile=1024:2048',
      '--load', '/src/app',
    ]);
    assert.deepEqual(env, {});
    assert.equal(stdin, undefined);
  });

  test('an inline Dockerfile goes on stdin', () => {
    const { args, stdin } = buildxInvocation(spec({ dockerfileInline: 'FROM scratch\n' }), files);
    assert.deepEqual(args.slice(args.indexOf('--file'), args.indexOf('--file') + 2), ['--file', '-']);
    assert.equal(stdin, 'FROM scratch\n');
  });

  test("secrets: by id and variable name on the command line, the value only in buildx's environment (a value that is not text: a file in the private folder)", () => {
    const text = 'npm-token-3f9a with spaces, commas=and equals';
    const binary = Buffer.from([0x00, 0xff, 0x10]);
    const invocation = buildxInvocation(spec({ secrets: [{ id: 'npmrc', value: Buffer.from(text) }, { id: 'keystore', value: binary }] }), files);
    assert.ok(invocation.args.includes('id=npmrc,env=COL_BUILD_SECRET_0'));
    assert.ok(invocation.args.includes(`id=keystore,src=${path.join('/private', 'secret-1')}`));
    assert.ok(!invocation.args.join('\n').includes('npm-token'), 'no value on the command line');
    assert.deepEqual(invocation.env, { COL_BUILD_SECRET_0: text });
    assert.deepEqual(invocation.secretFiles, [{ file: path.join('/private', 'secret-1'), value: binary }]);
  });

  test("SSH: the job's agent socket as it is; an agent of ours on a socket in the private folder", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'col-buildx-key-'));
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(dir, 'key')]);
    const key = fs.readFileSync(path.join(dir, 'key'), 'utf8');
    fs.rmSync(dir, { recursive: true, force: true });
    const ours = keyAgent('deploy', key, 'test key');
    const invocation = buildxInvocation(spec({ ssh: [agentSocket('default', '/run/user/1000/ssh-agent.sock'), ours] }), files);
    const ssh = invocation.args.flatMap((a, i) => (invocation.args[i - 1] === '--ssh' ? [a] : []));
    assert.deepEqual(ssh, ['default=/run/user/1000/ssh-agent.sock', `deploy=${path.join('/private', 'ssh-1.sock')}`]);
    assert.deepEqual(invocation.sshServers, [{ socket: path.join('/private', 'ssh-1.sock'), forward: ours }]);
    assert.ok(!invocation.args.join('\n').includes('PRIVATE KEY'));
  });

  test("buildx's environment: the private config and the engine; nothing of the agent's that picks another builder, context or output", () => {
    const saved = { ...process.env };
    try {
      Object.assign(process.env, { BUILDX_BUILDER: 'remote', BUILDX_NO_DEFAULT_LOAD: '1', DOCKER_CONTEXT: 'other', DOCKER_CONFIG: '/home/u/.docker', COL_BUILD_SECRET_7: 'stale', KEEP_ME: 'yes' });
      const env = buildxEnvironment('/private', 'unix:///var/run/docker.sock', { COL_BUILD_SECRET_0: 's' });
      for (const gone of ['BUILDX_BUILDER', 'BUILDX_NO_DEFAULT_LOAD', 'DOCKER_CONTEXT', 'COL_BUILD_SECRET_7']) assert.equal(env[gone], undefined, gone);
      assert.equal(env.DOCKER_CONFIG, '/private');
      assert.equal(env.DOCKER_HOST, 'unix:///var/run/docker.sock');
      assert.equal(env.COL_BUILD_SECRET_0, 's');
      assert.equal(env.KEEP_ME, 'yes');
    } finally {
      for (const key of Object.keys(process.env)) if (!(key in saved)) delete process.env[key];
      Object.assign(process.env, saved);
    }
  });
});
