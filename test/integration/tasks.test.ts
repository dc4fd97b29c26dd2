// The bundled BuildAndTag and PushWithDigest run as the agent runs them, against a real engine and
// a registry with Bearer token auth: outputs, lock, and no secret anywhere in the visible log.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { readLock } from '../../tasks/lib/lock/file';
import { runBundledTask } from '../support/agent';
import { startEngineWithBaseImage } from '../support/base-image';
import type { TestEngine } from '../support/engine';
import { startRegistry, TestRegistry } from '../support/registry';
import { skopeoDigest } from '../support/skopeo';

const FIXTURE = path.join(__dirname, '..', 'fixtures', 'shop');
let engine: TestEngine;
let registry: TestRegistry;

before(async () => {
  engine = await startEngineWithBaseImage();
  registry = await startRegistry('token');
});

after(async () => {
  await registry?.stop();
  await engine?.stop();
});

test('BuildAndTag then PushWithDigest, bundled, with SYSTEM_DEBUG: lock equals the registry, no secret leaks, docker config untouched', async () => {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'col-home-'));
  const dockerConfig = path.join(home, '.docker', 'config.json');
  fs.mkdirSync(path.dirname(dockerConfig));
  fs.writeFileSync(dockerConfig, '{\n  "auths": {\n    "other.example.com": { "auth": "dXNlcjpwYXNz" }\n  }\n}\n');
  const configBefore = fs.readFileSync(dockerConfig);
  const realConfig = path.join(os.homedir(), '.docker', 'config.json');
  const realBefore = fs.existsSync(realConfig) ? fs.readFileSync(realConfig) : undefined;

  const shared = { env: { DOCKER_HOST: engine.dockerHost, HOME: home, SYSTEM_DEBUG: 'true' }, variables: { 'System.Debug': 'true', REGISTRY: registry.host } };
  const recordPath = path.join(home, 'build-record.json');
  const build = await runBundledTask('build-and-tag', {
    ...shared,
    inputs: { composeFile: path.join(FIXTURE, 'docker-compose.yml'), tags: '20261122.1', buildArgs: 'GREETING=hi', buildRecord: recordPath },
    env: { ...shared.env, REGISTRY: registry.host },
  });
  assert.equal(build.result, 'Succeeded', build.visible);
  assert.deepEqual(Object.keys(JSON.parse(build.variables.imageIds)).sort(), ['api', 'web']);

  // The third-party image of the compose file, pushed beforehand under a tag.
  await engine.docker.getImage('outer-loop/busybox:test').tag({ repo: `${registry.host}/third-party/cache`, tag: '1.0' });
  const seed = await runBundledTask('push-with-digest', {
    ...shared,
    inputs: { containerRegistry: 'reg', images: `${registry.host}/third-party/cache:1.0`, lockFile: path.join(home, 'seed-lock.json'), publishArtifact: 'false' },
    endpoints: [endpoint()],
  });
  assert.equal(seed.result, 'Succeeded', seed.visible);

  const lockFile = path.join(home, 'staging', 'image-lock.json');
  const push = await runBundledTask('push-with-digest', {
    ...shared,
    inputs: { containerRegistry: 'reg', buildRecord: recordPath, composeFile: path.join(FIXTURE, 'docker-compose.yml'), additionalTags: 'latest', lockFile },
    endpoints: [endpoint()],
    env: { ...shared.env, REGISTRY: registry.host },
  });
  assert.equal(push.result, 'Succeeded', push.visible);
  assert.equal(push.variables.lockFile, lockFile);
  assert.match(push.output, /##vso\[artifact\.upload [^\]]*artifactname=image-lock[^\]]*\]/);
  assert.match(push.output, /##vso\[task\.uploadsummary\]/);
  const lock = readLock(lockFile);
  const auth = { registry: registry.host, username: registry.username!, password: registry.password! };
  for (const image of lock.images) assert.equal(await skopeoDigest(`${image.repository}:${image.tags[0]}`, auth), image.digest, image.name);
  assert.deepEqual(JSON.parse(push.variables.digests), Object.fromEntries(lock.images.map((i) => [i.name, i.ref])));

  const everything = [build.visible, seed.visible, push.visible].join('\n');
  const password = registry.password!;
  for (const secret of [password, Buffer.from(password).toString('base64'), Buffer.from(`${registry.username}:${password}`).toString('base64')]) {
    assert.ok(!everything.includes(secret), `a form of the password appears in the log: ${secret.slice(0, 3)}…`);
  }
  assert.doesNotMatch(everything, /eyJ[\w-]+\.eyJ[\w-]+\./, 'no JWT (registry token) in the log');
  assert.match(everything, /##vso\[task\.debug\]/, 'debug output was on');
  // Logging-command messages escape % as %AZP25 (the agent unescapes them).
  assert.ok(push.output.includes(`##vso[task.setsecret]${password.replace(/%/g, '%AZP25')}`), 'the password was registered with the agent');
  assert.deepEqual(fs.readFileSync(dockerConfig), configBefore, '~/.docker/config.json is byte-identical');
  assert.deepEqual(fs.existsSync(realConfig) ? fs.readFileSync(realConfig) : undefined, realBefore);
});

function endpoint() {
  return {
    id: 'reg',
    url: `http://${registry.host}`,
    scheme: 'UsernamePassword',
    parameters: { username: registry.username!, password: registry.password!, registry: `http://${registry.host}` },
    data: { registrytype: 'Others' },
  };
}
