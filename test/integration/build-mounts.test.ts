// BuildAndTag's build secrets and SSH agents on a real engine, through the BuildKit session: a
// secret read in a RUN step and then found nowhere (image, history, log, the engine's whole data
// root); an SSH mount that logs in to the test sshd on loopback with the key of an SSH service
// connection (our in-process agent) and with the job's own ssh-agent.
import { strict as assert } from 'node:assert';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type Dockerode from 'dockerode';
import { buildAndTag, BuildAndTagOptions } from '../../tasks/lib/build';
import { BASE_IMAGE, startEngineWithBaseImage } from '../support/base-image';
import { createTestContext } from '../support/context';
import type { TestEngine } from '../support/engine';
import { buildOptions, outputOf, writeProject } from '../support/images';
import { SshHost, startSshHost } from '../support/ssh-host';

let engine: TestEngine;
let docker: Dockerode;
let sshd: SshHost;
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'col-mounts-'));
const SECRET = `npm-token-${createHash('sha256').update(String(Math.random())).digest('hex').slice(0, 24)}`;

before(async () => {
  engine = await startEngineWithBaseImage();
  docker = engine.docker;
  sshd = await startSshHost();
});

after(async () => {
  await sshd?.stop();
  await engine?.stop();
  fs.rmSync(work, { recursive: true, force: true });
});

const project = (name: string, files: Record<string, string>) => writeProject(work, name, files);

/** noCache: a secret is not part of BuildKit's cache key, so a cached RUN step would not read this run's value. */
function options(dir: string, over: Partial<BuildAndTagOptions>): BuildAndTagOptions {
  return buildOptions(docker, {
    noCache: true, dockerfile: path.join(dir, 'Dockerfile'), buildContext: dir, imageName: `mounts/${path.basename(dir)}`, tags: ['1'], buildRecordPath: path.join(dir, 'record.json'), ...over });
}

const fileIn = (image: string, file: string) => outputOf(docker, image, ['cat', file]);

async function imageBytes(image: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of (await docker.getImage(image).get()) as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks);
}

describe('build secrets', () => {
  test('a secret from a variable is read in RUN and found nowhere afterwards: not in the image, its history, the log, or the engine data root', async () => {
    const dir = project('secret-env', {
      Dockerfile: `FROM ${BASE_IMAGE}\nRUN --mount=type=secret,id=npmrc,required=true sha256sum /run/secrets/npmrc | cut -d' ' -f1 > /secret-sha && ls -la /run/secrets\n`,
    });
    const ctx = createTestContext();
    await buildAndTag(options(dir, { secrets: ['id=npmrc,env=NPM_TOKEN'], env: { NPM_TOKEN: SECRET } }), ctx);
    const image = 'mounts/secret-env:1';

    assert.equal(await fileIn(image, '/secret-sha'), createHash('sha256').update(SECRET).digest('hex'), 'the RUN step read the secret');
    assert.ok(ctx.secrets.has(SECRET), 'registered for masking');
    assert.ok(!ctx.logs.join('\n').includes(SECRET), 'not in the log');
    assert.ok(!(await imageBytes(image)).includes(SECRET), 'not in any layer or config of the saved image');
    assert.ok(!JSON.stringify(await docker.getImage(image).history()).includes(SECRET), 'not in the history');
    const inspect = JSON.stringify(await docker.getImage(image).inspect());
    assert.ok(!inspect.includes(SECRET) && !inspect.includes('NPM_TOKEN'), 'not a build arg or env of the image');
    const { DockerRootDir } = await docker.info();
    const found = spawnSync('grep', ['-rlF', '--', SECRET, DockerRootDir], { encoding: 'utf8' });
    assert.equal(found.status, 1, `the engine keeps the secret nowhere on disk (build cache included): ${found.stdout}${found.stderr}`);
  });

  test('a compose service gets build.secrets from file: and environment:, by target id', async () => {
    const dir = project('secret-compose', {
      'compose.yaml': `services:\n  app:\n    image: mounts/secret-compose:1\n    build:\n      context: .\n      secrets:\n        - source: token\n          target: npmrc\n        - cert\nsecrets:\n  token:\n    environment: TOKEN_FOR_BUILD\n  cert:\n    file: ./cert.pem\n`,
      'cert.pem': 'certificate-text',
      Dockerfile: `FROM ${BASE_IMAGE}\nRUN --mount=type=secret,id=npmrc,required=true --mount=type=secret,id=cert,required=true cat /run/secrets/npmrc /run/secrets/cert | sha256sum | cut -d' ' -f1 > /sha\n`,
    });
    const ctx = createTestContext();
    await buildAndTag(options(dir, { composeFile: path.join(dir, 'compose.yaml'), imageName: undefined, tags: [], env: { TOKEN_FOR_BUILD: SECRET } }), ctx);
    assert.equal(await fileIn('mounts/secret-compose:1', '/sha'), createHash('sha256').update(`${SECRET}certificate-text`).digest('hex'));
    assert.ok(!ctx.logs.join('\n').includes(SECRET));
  });

  test('a secret the Dockerfile requires but nobody gives fails the build, naming it', async () => {
    const dir = project('secret-missing', { Dockerfile: `FROM ${BASE_IMAGE}\nRUN --mount=type=secret,id=absent,required=true cat /run/secrets/absent\n` });
    await assert.rejects(buildAndTag(options(dir, { secrets: ['id=other,env=NPM_TOKEN'], env: { NPM_TOKEN: SECRET } }), createTestContext()), /absent/);
  });
});

/** A context whose image has the machine's ssh client (with its libraries), to log in to the test sshd from a RUN step. */
function sshClientProject(name: string, mount: string): string {
  const dir = project(name, {});
  const rootfs = path.join(dir, 'rootfs');
  const copy = (file: string) => {
    const target = path.join(rootfs, file);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.copyFileSync(fs.realpathSync(file), target);
  };
  const ssh = fs.realpathSync('/usr/bin/ssh');
  copy(ssh);
  const libs = spawnSync('ldd', [ssh], { encoding: 'utf8' }).stdout.matchAll(/(\/\S+\.so[^\s]*)/g);
  for (const [lib] of libs) copy(lib);
  const proof = path.join(work, `${name}-proof`);
  fs.writeFileSync(proof, `reached over ssh: ${name}\n`);
  fs.writeFileSync(
    path.join(dir, 'Dockerfile'),
    `FROM ${BASE_IMAGE}\nCOPY rootfs/ /\nRUN --mount=type=ssh${mount} ssh -F /dev/null -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -p ${sshd.port} ${sshd.user}@127.0.0.1 cat ${proof} > /ssh-proof\n`,
  );
  return dir;
}

describe('SSH mounts', () => {
  test('a RUN step logs in to the test sshd with the key of an SSH service connection; the key is in no file and no log', async () => {
    const dir = sshClientProject('ssh-key', '');
    const ctx = createTestContext();
    // network host: the RUN step reaches the sshd on the host's loopback.
    const compose = path.join(dir, 'compose.yaml');
    fs.writeFileSync(compose, `services:\n  app:\n    image: mounts/ssh-key:1\n    build:\n      context: .\n      network: host\n`);
    await buildAndTag(options(dir, { composeFile: compose, imageName: undefined, tags: [], sshKey: { privateKey: sshd.privateKey, what: "Input 'sshEndpoint'" } }), ctx);
    assert.equal(await fileIn('mounts/ssh-key:1', '/ssh-proof'), 'reached over ssh: ssh-key');
    const keyBody = sshd.privateKey.split('\n')[1];
    assert.ok(!ctx.logs.join('\n').includes(keyBody), 'the key is not in the log');
    assert.ok(!(await imageBytes('mounts/ssh-key:1')).includes(keyBody), 'the key is not in the image');
  });

  test('a key the sshd does not accept fails the RUN step', async () => {
    const dir = sshClientProject('ssh-rejected', '');
    fs.writeFileSync(path.join(dir, 'compose.yaml'), `services:\n  app:\n    image: mounts/ssh-rejected:1\n    build:\n      context: .\n      network: host\n`);
    await assert.rejects(buildAndTag(options(dir, { composeFile: path.join(dir, 'compose.yaml'), imageName: undefined, tags: [], sshKey: { privateKey: sshd.rejectedKey, what: "Input 'sshEndpoint'" } }), createTestContext()), /exit code: 255/); // ssh: Permission denied
  });

  test('build.ssh names the job\'s ssh-agent (default) and a key file by id', async () => {
    const dir = sshClientProject('ssh-agent', ',id=deploy');
    const keyFile = path.join(dir, 'deploy_key');
    fs.writeFileSync(keyFile, sshd.privateKey, { mode: 0o600 });
    fs.writeFileSync(path.join(dir, 'compose.yaml'), `services:\n  app:\n    image: mounts/ssh-agent:1\n    build:\n      context: .\n      network: host\n      ssh:\n        - deploy=./deploy_key\n`);
    await buildAndTag(options(dir, { composeFile: path.join(dir, 'compose.yaml'), imageName: undefined, tags: [] }), createTestContext());
    assert.equal(await fileIn('mounts/ssh-agent:1', '/ssh-proof'), 'reached over ssh: ssh-agent');

    // The job's agent: a real ssh-agent holding the key, forwarded as `default`.
    const agentDir = fs.mkdtempSync(path.join(os.tmpdir(), 'col-agent-'));
    const socket = path.join(agentDir, 'agent.sock');
    const agent = spawn('ssh-agent', ['-D', '-a', socket], { stdio: 'ignore' });
    try {
      for (let i = 0; i < 100 && !fs.existsSync(socket); i++) await new Promise((r) => setTimeout(r, 50));
      const added = spawnSync('ssh-add', [keyFile], { env: { ...process.env, SSH_AUTH_SOCK: socket }, encoding: 'utf8' });
      assert.equal(added.status, 0, added.stderr);
      const viaAgent = sshClientProject('ssh-default', '');
      fs.writeFileSync(path.join(viaAgent, 'compose.yaml'), `services:\n  app:\n    image: mounts/ssh-default:1\n    build:\n      context: .\n      network: host\n`);
      await buildAndTag(options(viaAgent, { composeFile: path.join(viaAgent, 'compose.yaml'), imageName: undefined, tags: [], ssh: ['default'], env: { SSH_AUTH_SOCK: socket } }), createTestContext());
      assert.equal(await fileIn('mounts/ssh-default:1', '/ssh-proof'), 'reached over ssh: ssh-default');
    } finally {
      agent.kill();
      fs.rmSync(agentDir, { recursive: true, force: true });
    }
  });
});
