// Rendering the deployed compose file: pinning by parsed repository, unpinned images, comments kept,
// `$` and YAML 1.1 safety, profiles, extends, env files, hostile YAML.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, test } from 'node:test';
import { parse } from 'yaml';
import { loadCompose } from '../../tasks/lib/compose/load';
import { mountTarget, portKey } from '../../tasks/lib/compose/merge';
import { renderCompose } from '../../tasks/lib/compose/render';
import type { ImageLock, LockedImage } from '../../tasks/lib/lock/types';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'col-render-'));
after(() => fs.rmSync(work, { recursive: true, force: true }));

let n = 0;
function write(files: Record<string, string>): string {
  const dir = path.join(work, `case-${++n}`);
  for (const [name, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), content);
  }
  return dir;
}

const digest = (c: string) => `sha256:${c.repeat(64)}`;
function locked(name: string, repository: string, d: string, tags: string[] = ['1.0'], source: 'built' | 'resolved' = 'built'): LockedImage {
  return { name, repository, tags, digest: d, ref: `${repository}@${d}`, source, platforms: ['linux/amd64'] };
}
const LOCK: ImageLock = {
  schemaVersion: 1,
  createdAt: '2026-11-22T05:40:00.000Z',
  buildNumber: '20261122.1',
  images: [
    locked('app', 'registry.example.com/shop/app', digest('a')),
    locked('app-worker', 'registry.example.com/shop/app-worker', digest('b')),
    locked('api', 'registry.example.com/shop/api', digest('c')),
    locked('redis', 'docker.io/library/redis', digest('d'), ['7'], 'resolved'),
  ],
};

describe('pinning', () => {
  test('every image pinned by parsed repository: shared prefixes, Docker Hub names, build-only services, digests in the file', () => {
    const dir = write({
      'docker-compose.yml': [
        'services:',
        '  app: {image: "registry.example.com/shop/app:1.0", build: ./app}',
        '  worker: {image: registry.example.com/shop/app-worker}',
        '  api: {build: {context: ./api}}',
        '  cache: {image: "redis:7"}',
        `  pinned: {image: "registry.example.com/tools/x@${digest('e')}"}`,
        '',
      ].join('\n'),
    });
    const app = loadCompose([path.join(dir, 'docker-compose.yml')], { env: {} });
    const r = renderCompose(app, { lock: LOCK, allowUnpinned: false });
    const services = (parse(r.text) as { services: Record<string, Record<string, unknown>> }).services;
    assert.equal(services.app.image, `registry.example.com/shop/app@${digest('a')}`);
    assert.equal(services.worker.image, `registry.example.com/shop/app-worker@${digest('b')}`, 'app-worker is not app');
    assert.equal(services.api.image, `registry.example.com/shop/api@${digest('c')}`, 'a build-only service is pinned by its name');
    assert.equal(services.cache.image, `docker.io/library/redis@${digest('d')}`, 'redis:7 is docker.io/library/redis');
    assert.equal(services.pinned.image, `registry.example.com/tools/x@${digest('e')}`);
    for (const s of Object.values(services)) assert.equal(s.build, undefined);
    assert.deepEqual(
      r.services.map((s) => [s.service, s.source]),
      [['app', 'lock'], ['worker', 'lock'], ['api', 'lock'], ['cache', 'lock'], ['pinned', 'digest-in-compose']],
    );
  });

  test('images the lock cannot pin fail, listing each, unless allowUnpinned (then a warning)', () => {
    const dir = write({ 'docker-compose.yml': 'services:\n  app: {image: "registry.example.com/shop/app:1"}\n  db: {image: "postgres:16"}\n  other: {image: "registry.example.com/shop/other:2"}\n' });
    const app = loadCompose([path.join(dir, 'docker-compose.yml')], { env: {} });
    assert.throws(() => renderCompose(app, { lock: LOCK, lockName: 'lock.json', allowUnpinned: false }), /Input 'allowUnpinned': these services use images the image lock 'lock\.json' cannot pin to a digest: db \(postgres:16\), other \(registry\.example\.com\/shop\/other:2\)/);
    const r = renderCompose(app, { lock: LOCK, allowUnpinned: true });
    assert.match(r.warnings.join('\n'), /not pinned by digest \(allowUnpinned\): db \(postgres:16\), other/);
    assert.equal((parse(r.text) as { services: Record<string, { image: string }> }).services.db.image, 'postgres:16');
    fs.writeFileSync(path.join(dir, 'built.yml'), 'services:\n  newsvc: {build: ./newsvc}\n');
    assert.throws(() => renderCompose(loadCompose([path.join(dir, 'built.yml')], { env: {} }), { lock: LOCK, allowUnpinned: true }), /'newsvc' has only 'build:' and the image lock has no image named 'newsvc'/);
  });

  test('an invalid image reference names the service', () => {
    const dir = write({ 'docker-compose.yml': 'services:\n  app: {image: "Registry.Example.com/Shop/App:1"}\n' });
    assert.throws(() => renderCompose(loadCompose([path.join(dir, 'docker-compose.yml')], { env: {} }), { lock: LOCK, allowUnpinned: false }), /Compose service 'app': image/);
  });
});

describe('the rendered file', () => {
  test('is the first file edited in place: comments and layout kept, a header added, overrides and interpolation applied', () => {
    const dir = write({
      'docker-compose.yml': '# Shop, base file\nservices:\n  app:\n    # the front end\n    image: registry.example.com/shop/app:${TAG}\n    ports:\n      - "8080:80" # public\n    environment:\n      MODE: ${MODE:-prod}\n',
      'docker-compose.qa.yml': 'services:\n  app:\n    environment:\n      MODE: qa\n',
    });
    const app = loadCompose([path.join(dir, 'docker-compose.yml'), path.join(dir, 'docker-compose.qa.yml')], { env: { TAG: '1.0' } });
    const r = renderCompose(app, { lock: LOCK, allowUnpinned: false, header: ['Rendered for qa'] });
    assert.ok(r.inPlace);
    assert.match(r.text, /^# Rendered for qa\n\n# Shop, base file\n/);
    assert.match(r.text, /# the front end\n    image: registry\.example\.com\/shop\/app@sha256:a{64}\n/);
    assert.match(r.text, /- "8080:80" # public/);
    assert.match(r.text, /MODE: qa/);
    assert.deepEqual(parse(r.text), r.model);
  });

  test('literal $ is written as $$ (Compose interpolates the file again); YAML 1.1 look-alikes are quoted', () => {
    const dir = write({ 'c.yml': 'services:\n  app:\n    image: registry.example.com/shop/app:1\n    environment:\n      PRICE: "$$5"\n      FROM_VAR: ${V}\n      BOOL: ${B}\n      OCT: ${O}\n      SEXA: ${S}\n' });
    const app = loadCompose([path.join(dir, 'c.yml')], { env: { V: 'a$b', B: 'yes', O: '0755', S: '22:22' } });
    const r = renderCompose(app, { lock: LOCK, allowUnpinned: false });
    assert.match(r.text, /PRICE: "\$\$5"/);
    assert.match(r.text, /FROM_VAR: a\$\$b/);
    assert.match(r.text, /BOOL: "yes"/);
    assert.match(r.text, /OCT: "0755"/);
    assert.match(r.text, /SEXA: "22:22"/);
  });

  test('Compose v2 interpolation: nested defaults and ${V:+replacement}', () => {
    const dir = write({ 'c.yml': 'services:\n  app:\n    image: registry.example.com/shop/app:${TAG:-${DEFAULT_TAG}-x}\n    environment:\n      ALT: ${SET:+yes}\n      NONE: ${UNSET:+yes}\n' });
    const app = loadCompose([path.join(dir, 'c.yml')], { env: { DEFAULT_TAG: '9', SET: '1' } });
    const env = (app.model.services as Record<string, Record<string, Record<string, string>>>).app.environment;
    assert.equal(app.services[0].image, 'registry.example.com/shop/app:9-x');
    assert.deepEqual(env, { ALT: 'yes', NONE: '' });
  });

  test('env_file and variables from the agent (`- NAME`) are inlined; a missing optional env_file is skipped', () => {
    const dir = write({
      'app.env': 'A=from-file\nB=from-file\n',
      'c.yml': 'services:\n  app:\n    image: registry.example.com/shop/app:1\n    env_file: [app.env, {path: missing.env, required: false}]\n    environment:\n      - B=override\n      - FROM_AGENT\n      - NOT_SET\n',
    });
    const app = loadCompose([path.join(dir, 'c.yml')], { env: { FROM_AGENT: 'agent-value' } });
    const r = renderCompose(app, { lock: LOCK, allowUnpinned: false });
    const svc = (parse(r.text) as { services: { app: Record<string, unknown> } }).services.app;
    assert.deepEqual(svc.environment, { A: 'from-file', B: 'override', FROM_AGENT: 'agent-value' });
    assert.equal(svc.env_file, undefined);
    fs.writeFileSync(path.join(dir, 'd.yml'), 'services:\n  app:\n    image: registry.example.com/shop/app:1\n    env_file: nowhere.env\n');
    assert.throws(() => renderCompose(loadCompose([path.join(dir, 'd.yml')], { env: {} }), { lock: LOCK, allowUnpinned: false }), /env_file 'nowhere\.env' does not exist/);
  });

  test('profiles: only active services are rendered, without their profiles key', () => {
    const dir = write({ 'c.yml': 'services:\n  app: {image: "registry.example.com/shop/app:1"}\n  debug: {image: "registry.example.com/shop/api:1", profiles: [debug]}\n  tools: {image: "redis:7", profiles: [tools]}\n' });
    const file = path.join(dir, 'c.yml');
    const none = loadCompose([file], { env: {}, profiles: [] });
    assert.deepEqual(none.services.map((s) => s.name), ['app']);
    assert.deepEqual(none.inactiveServices, ['debug', 'tools']);
    const debug = renderCompose(loadCompose([file], { env: {}, profiles: ['debug'] }), { lock: LOCK, allowUnpinned: false });
    const services = (parse(debug.text) as { services: Record<string, Record<string, unknown>> }).services;
    assert.deepEqual(Object.keys(services), ['app', 'debug']);
    assert.equal(services.debug.profiles, undefined);
    assert.equal(loadCompose([file], { env: {} }).services.length, 3, 'without a profiles option (build, push) every service is kept');
    fs.writeFileSync(path.join(dir, 'only.yml'), 'services:\n  debug: {image: "redis:7", profiles: [debug]}\n');
    assert.throws(() => loadCompose([path.join(dir, 'only.yml')], { env: {}, profiles: [] }), /every service needs a profile that is not active/);
  });

  test('extends: cycles, references to missing services and missing files are refused with clear messages; a base with depends_on is fine', () => {
    const dir = write({
      'cycle.yml': 'services:\n  a: {extends: {service: b}, image: "redis:7"}\n  b: {extends: {service: a}}\n',
      'deps.yml': 'services:\n  base: {image: "redis:7", depends_on: [db]}\n  db: {image: "redis:7"}\n  app: {extends: {service: base}}\n',
      'ghostdep.yml': 'services:\n  base: {image: "redis:7", depends_on: [db]}\n  app: {extends: {service: base}}\n',
      'nofile.yml': 'services:\n  app: {extends: {file: nowhere.yml, service: x}}\n',
      'noservice.yml': 'services:\n  app: {extends: {service: ghost}}\n',
    });
    assert.throws(() => loadCompose([path.join(dir, 'cycle.yml')], { env: {} }), /extends itself through 'a' → 'b' → 'a'/);
    const deps = loadCompose([path.join(dir, 'deps.yml')], { env: {} }).model.services as Record<string, Record<string, unknown>>;
    assert.deepEqual(deps.app.depends_on, ['db'], 'Compose v2 extends a base with depends_on when the service it names exists');
    assert.throws(() => loadCompose([path.join(dir, 'ghostdep.yml')], { env: {} }), /service 'base' refers to service 'db' in 'depends_on', which is not defined/);
    assert.throws(() => loadCompose([path.join(dir, 'nofile.yml')], { env: {} }), /extends a service in '.*nowhere\.yml', which does not exist/);
    assert.throws(() => loadCompose([path.join(dir, 'noservice.yml')], { env: {} }), /service 'ghost' \(named by 'extends'\) does not exist/);
  });
});

describe('hostile and broken YAML', () => {
  test('an alias bomb is refused (it would expand to 10^10 nodes), as are duplicate keys, invalid YAML and huge files', () => {
    const levels = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]'];
    for (let i = 1; i <= 10; i++) {
      const prev = String.fromCharCode(96 + i);
      const cur = String.fromCharCode(97 + i);
      levels.push(`${cur}: &${cur} [${Array(10).fill(`*${prev}`).join(',')}]`);
    }
    const dir = write({
      'bomb.yml': `x-bomb:\n${levels.map((l) => `  ${l}`).join('\n')}\nservices:\n  app: {image: "redis:7"}\n`,
      'dup.yml': 'services:\n  app: {image: "redis:7"}\n  app: {image: "redis:6"}\n',
      'broken.yml': 'services:\n  app: [unclosed\n',
      'notmap.yml': '- just\n- a list\n',
    });
    assert.throws(() => loadCompose([path.join(dir, 'bomb.yml')], { env: {} }), /bomb\.yml.*aliases are limited/);
    assert.throws(() => loadCompose([path.join(dir, 'dup.yml')], { env: {} }), /dup\.yml' is not valid YAML: Map keys must be unique/);
    assert.throws(() => loadCompose([path.join(dir, 'broken.yml')], { env: {} }), /broken\.yml' is not valid YAML/);
    assert.throws(() => loadCompose([path.join(dir, 'notmap.yml')], { env: {} }), /notmap\.yml' must be a mapping/);
    const huge = path.join(dir, 'huge.yml');
    fs.writeFileSync(huge, `services:\n  app: {image: "redis:7"}\n# ${'x'.repeat(5 * 1024 * 1024)}\n`);
    assert.throws(() => loadCompose([huge], { env: {} }), /files over 4194304 bytes are refused/);
  });
});

test('merge keys: container paths of volumes and port identities', () => {
  assert.equal(mountTarget('./data:/data:ro'), '/data');
  assert.equal(mountTarget('cache:/cache'), '/cache');
  assert.equal(mountTarget('/anonymous'), '/anonymous');
  assert.equal(mountTarget('C:\\data:/data'), '/data');
  assert.equal(mountTarget({ type: 'bind', source: '.', target: '/src' }), '/src');
  assert.equal(portKey('8080:80'), portKey({ target: 80, published: '8080' }));
  assert.notEqual(portKey('8080:80'), portKey({ target: 80, published: 8080 }), 'Compose v2 compares a long-syntax published number as written, so it keeps both');
  assert.notEqual(portKey('8080:80'), portKey('8080:80/udp'));
  assert.equal(portKey('127.0.0.1:8080:80'), '127.0.0.1|8080|80|tcp');
  assert.equal(portKey('9000'), portKey('0.0.0.0::9000/tcp'));
});
