// Issue 13, high: the files a compose file (or BuildAndTag's dockerfile input) names are read only
// when they resolve, symlinks followed, inside the project directory or a folder of the
// allowedPaths input; /proc, /sys and /dev never. Before the fix `env_file: /proc/self/environ`
// put the task's start-up environment (registry passwords, SECRET_* variables) into the rendered
// compose file and into a ConfigMap of the published manifests.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, test } from 'node:test';
import { buildAndTag, BuildAndTagOptions } from '../../tasks/lib/build';
import { readServiceEnvFiles } from '../../tasks/lib/compose/dotenv';
import { loadCompose } from '../../tasks/lib/compose/load';
import { renderCompose } from '../../tasks/lib/compose/render';
import { FileError } from '../../tasks/lib/errors';
import { loadComposeProject } from '../../tasks/lib/kube/compose-project';
import { convertCompose } from '../../tasks/lib/kube/convert';
import { ReadablePaths } from '../../tasks/lib/readable-paths';
import { createTestContext } from '../support/context';
import { buildOptions } from '../support/images';

const work = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'col-confine-')));
after(() => fs.rmSync(work, { recursive: true, force: true }));

let projects = 0;
/** A project folder (the compose file's) with the given files, and a folder beside it, outside the project. */
function project(files: Record<string, string>, links: Record<string, string> = {}): { dir: string; outside: string; compose: string } {
  const root = path.join(work, `p${++projects}`);
  const dir = path.join(root, 'app');
  const outside = path.join(root, 'outside');
  fs.mkdirSync(outside, { recursive: true });
  fs.writeFileSync(path.join(outside, 'secret.env'), 'STOLEN=registry-password\n');
  fs.writeFileSync(path.join(outside, 'secret.txt'), 'registry-password');
  fs.writeFileSync(path.join(outside, 'compose.yml'), 'services:\n  base: {image: busybox}\n');
  fs.writeFileSync(path.join(outside, 'Dockerfile'), 'FROM busybox\n');
  for (const [name, body] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), body);
  }
  for (const [name, target] of Object.entries(links)) fs.symlinkSync(target.replace('$OUTSIDE', outside), path.join(dir, name));
  return { dir, outside, compose: path.join(dir, 'docker-compose.yml') };
}

const refusedOutside = (file: RegExp, key: RegExp) => (err: unknown) => {
  assert.ok(err instanceof FileError, `a FileError, not ${String(err)}`);
  assert.match(err.message, file, 'the message names the compose file');
  assert.match(err.message, key, 'the message names the key');
  assert.match(err.message, /outside the project directory/);
  assert.match(err.message, /allowedPaths/, 'the message says what to do');
  return true;
};

const refusedSystem = (err: unknown) => {
  assert.ok(err instanceof FileError, `a FileError, not ${String(err)}`);
  assert.match(err.message, /never read/);
  assert.match(err.message, /\/proc, \/sys or \/dev/);
  return true;
};

describe('compose files: what they name is read only inside the project or allowedPaths', () => {
  test('env_file: /proc/self/environ is refused, even when allowedPaths lists /', () => {
    const p = project({ 'docker-compose.yml': 'services:\n  web:\n    image: busybox\n    env_file: /proc/self/environ\n' });
    assert.throws(() => loadCompose([p.compose], { env: {} }), refusedSystem);
    assert.throws(() => loadCompose([p.compose], { env: {}, allowedPaths: ['/'] }), refusedSystem);
  });

  test('env_file /etc/shadow, or a link inside the project to a file outside, is refused naming the file and the key', () => {
    const direct = project({ 'docker-compose.yml': 'services:\n  web:\n    image: busybox\n    env_file: [/etc/shadow]\n' });
    assert.throws(() => loadCompose([direct.compose], { env: {} }), refusedOutside(/docker-compose\.yml/, /service 'web' env_file/));
    const linked = project({ 'docker-compose.yml': 'services:\n  web:\n    image: busybox\n    env_file: [{path: ./app.env, required: true}]\n' }, { 'app.env': '$OUTSIDE/secret.env' });
    assert.throws(() => loadCompose([linked.compose], { env: {} }), (err: unknown) => refusedOutside(/docker-compose\.yml/, /env_file/)(err) && /a link to/.test((err as Error).message));
  });

  test('a folder listed in allowedPaths may be read; its files are then inlined as before', () => {
    const p = project({ 'docker-compose.yml': 'services:\n  web:\n    image: busybox\n    env_file: ../outside/secret.env\n' });
    assert.throws(() => loadCompose([p.compose], { env: {} }), refusedOutside(/docker-compose\.yml/, /env_file/));
    const app = loadCompose([p.compose], { env: {}, allowedPaths: [p.outside] });
    const rendered = renderCompose(app, { allowUnpinned: true });
    assert.deepEqual((rendered.model.services as Record<string, { environment: unknown }>).web.environment, { STOLEN: 'registry-password' });
  });

  test('the project .env may not be a link out of the project', () => {
    const p = project({ 'docker-compose.yml': 'services:\n  web: {image: "busybox:${TAG:-1}"}\n' }, { '.env': '/proc/self/environ' });
    assert.throws(() => loadCompose([p.compose], { env: {} }), refusedSystem);
  });

  test('include, include env_file, extends.file, label_file, and the file of top-level secrets and configs', () => {
    const cases: [string, RegExp][] = [
      ['include: [../outside/compose.yml]\nservices:\n  web: {image: busybox}\n', /include\[0\] path/],
      ['include:\n  - path: inc/compose.yml\n    env_file: ../outside/secret.env\nservices:\n  web: {image: busybox}\n', /include\[0\] env_file/],
      ['services:\n  web: {extends: {file: ../outside/compose.yml, service: base}}\n', /service 'web' extends\.file/],
      ['services:\n  web: {image: busybox, label_file: ../outside/secret.env}\n', /service 'web' label_file/],
      ['services:\n  web: {image: busybox, secrets: [s]}\nsecrets:\n  s: {file: ../outside/secret.txt}\n', /secrets\.s\.file/],
      ['services:\n  web: {image: busybox, configs: [c]}\nconfigs:\n  c: {file: /etc/passwd}\n', /configs\.c\.file/],
    ];
    for (const [text, key] of cases) {
      const p = project({ 'docker-compose.yml': text, 'inc/compose.yml': 'services:\n  lib: {image: busybox}\n' });
      assert.throws(() => loadCompose([p.compose], { env: {} }), refusedOutside(/docker-compose\.yml/, key), text);
    }
  });

  test('a path that an included or extended file names is checked against the main project too', () => {
    const p = project({
      'docker-compose.yml': 'include: [inc/compose.yml]\nservices:\n  web: {extends: {file: base/compose.yml, service: base}}\n',
      'inc/compose.yml': 'services:\n  lib: {image: busybox, env_file: ../../outside/secret.env}\n',
      'base/compose.yml': 'services:\n  base: {image: busybox}\n',
    });
    assert.throws(() => loadCompose([p.compose], { env: {} }), refusedOutside(/inc\/compose\.yml/, /service 'lib' env_file/));
  });

  test('bind mounts are the engine\'s, not read by the tasks: a bind of / or /etc is kept', () => {
    const p = project({ 'docker-compose.yml': 'services:\n  web:\n    image: busybox\n    volumes: ["/:/host:ro", "/etc:/host-etc:ro", {type: bind, source: /proc, target: /p}]\n' });
    const app = loadCompose([p.compose], { env: {} });
    assert.equal((app.model.services as Record<string, { volumes: unknown[] }>).web.volumes.length, 3);
  });

  test('the env files a service reads are checked where they are read (readServiceEnvFiles)', () => {
    const p = project({ 'docker-compose.yml': 'services: {}\n' });
    const readable = new ReadablePaths(p.dir, []);
    assert.throws(() => readServiceEnvFiles([{ file: path.join(p.outside, 'secret.env') }], {}, {}, "service 'web' environment", readable), refusedOutside(/service 'web'/, /env_file/));
    assert.throws(() => readServiceEnvFiles([{ file: '/proc/self/environ' }], {}, {}, "service 'web' environment", new ReadablePaths(p.dir, ['/'])), refusedSystem);
  });

  test('a path that names nothing on the agent reads nothing: it is skipped or reported missing, as before; relative allowedPaths start at the working directory', () => {
    const p = project({ 'docker-compose.yml': 'services:\n  web: {image: busybox, env_file: {path: /nowhere/x.env, required: false}}\n' });
    loadCompose([p.compose], { env: {} });
    const relative = path.relative(process.cwd(), p.outside);
    assert.equal(new ReadablePaths(p.dir, [relative]).check(path.join(p.outside, 'secret.env'), 'x'), path.join(p.outside, 'secret.env'));
  });
});

describe('KubernetesDeploy: env_file and secret files of the conversion', () => {
  test('env_file /proc/self/environ never reaches a ConfigMap', () => {
    const p = project({ 'docker-compose.yml': 'services:\n  web:\n    image: busybox\n    env_file: /proc/self/environ\n' });
    assert.throws(() => convertCompose(loadComposeProject([p.compose], { env: {} })), refusedSystem);
  });

  test('a secret file outside the project is refused; inside allowedPaths it is converted', () => {
    const p = project({ 'docker-compose.yml': 'services:\n  web: {image: busybox, secrets: [s]}\nsecrets:\n  s: {file: ../outside/secret.txt}\n' });
    assert.throws(() => loadComposeProject([p.compose], { env: {} }), refusedOutside(/docker-compose\.yml/, /secrets\.s\.file/));
    const { objects } = convertCompose(loadComposeProject([p.compose], { env: {}, allowedPaths: [p.outside] }));
    assert.ok(objects.some((o) => o.kind === 'Secret'));
  });
});

describe('BuildAndTag: the dockerfile input and build contexts', () => {
  const pipeline = { buildNumber: '1', commit: undefined, buildId: '1', definition: 'd', branch: undefined, repositoryUri: undefined };
  const notContacted = async (): Promise<never> => {
    throw new Error('the engine must not be contacted: the inputs are checked first');
  };
  const options = (o: Partial<BuildAndTagOptions>): BuildAndTagOptions =>
    buildOptions(notContacted, { imageName: 'registry.example.com/app', tags: ['1'], buildRecordPath: path.join(work, 'record.json'), pipeline, ...o });

  test("dockerfile '../../../../etc/passwd' is refused before the engine is contacted", async () => {
    const p = project({ Dockerfile: 'FROM busybox\n' });
    const cwd = process.cwd();
    process.chdir(p.dir);
    try {
      await assert.rejects(buildAndTag(options({ dockerfile: '../../../../../../../../etc/passwd' }), createTestContext()), (err: unknown) => {
        assert.ok(err instanceof FileError, String(err));
        assert.match(err.message, /Input 'dockerfile'/);
        assert.match(err.message, /outside the build context '.*' and the working directory/);
        assert.match(err.message, /allowedPaths/);
        return true;
      });
    } finally {
      process.chdir(cwd);
    }
  });

  test('buildContext: / is refused; a Dockerfile in the working directory, outside the context, is accepted', async () => {
    const p = project({ 'docker/api.Dockerfile': 'FROM busybox\n', 'src/app.js': '' });
    const cwd = process.cwd();
    process.chdir(p.dir);
    try {
      await assert.rejects(buildAndTag(options({ buildContext: '/', dockerfile: 'docker/api.Dockerfile' }), createTestContext()), /Input 'buildContext' names '\/', which holds \/proc, \/sys, \/dev/);
      await assert.rejects(buildAndTag(options({ buildContext: 'src', dockerfile: 'docker/api.Dockerfile' }), createTestContext()), /the engine must not be contacted/, 'the inputs pass, so the task goes on to the engine');
    } finally {
      process.chdir(cwd);
    }
  });

  test('build.context: / is refused with a clear message, even when allowedPaths lists /', async () => {
    const p = project({ 'docker-compose.yml': 'services:\n  app:\n    image: registry.example.com/app\n    build: {context: /, dockerfile: /tmp/Dockerfile}\n' });
    for (const allowedPaths of [[], ['/']]) {
      await assert.rejects(buildAndTag(options({ composeFile: p.compose, allowedPaths }), createTestContext()), (err: unknown) => {
        assert.ok(err instanceof FileError, String(err));
        assert.match(err.message, /service 'app' build\.context/);
        assert.doesNotMatch(err.message, /EACCES|scandir/);
        assert.match(err.message, allowedPaths.length ? /\/proc, \/sys or \/dev/ : /outside the project directory/);
        return true;
      });
    }
  });

  test('a Dockerfile outside the project, named by build.dockerfile, is refused', async () => {
    const p = project({ 'docker-compose.yml': 'services:\n  app:\n    image: registry.example.com/app\n    build: {context: ., dockerfile: ../outside/Dockerfile}\n' });
    await assert.rejects(buildAndTag(options({ composeFile: p.compose }), createTestContext()), refusedOutside(/docker-compose\.yml/, /service 'app' build\.dockerfile/));
  });
});
