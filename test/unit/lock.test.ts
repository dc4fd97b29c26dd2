import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import Ajv2020 from 'ajv/dist/2020';
import { readLock, writeLock } from '../../tasks/lib/lock/file';
import { indexLock } from '../../tasks/lib/lock/pin';
import type { ImageLock } from '../../tasks/lib/lock/types';
import { validateLock } from '../../tasks/lib/lock/validate';

const schema = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'schemas', 'image-lock.schema.json'), 'utf8'));
const ajv = new Ajv2020({ allErrors: true, strict: false });
const schemaValid = ajv.compile(schema);
const D = `sha256:${'a'.repeat(64)}`;

function lock(): ImageLock {
  return {
    schemaVersion: 1,
    createdAt: '2026-11-22T05:00:00.000Z',
    buildNumber: '20261122.1',
    commit: '0123456789abcdef0123456789abcdef01234567',
    images: [
      { name: 'api', repository: 'registry.example.com/shop/api', tags: ['1.0.0', 'latest'], digest: D, ref: `registry.example.com/shop/api@${D}`, source: 'built', platforms: ['linux/amd64'] },
      { name: 'cache', repository: 'docker.io/library/redis', tags: ['7'], digest: D, ref: `docker.io/library/redis@${D}`, source: 'resolved', platforms: ['linux/amd64', 'linux/arm64/v8'] },
    ],
  };
}

test('a good lock passes both the hand-written check and the published JSON schema', () => {
  assert.equal(schemaValid(lock()), true, JSON.stringify(schemaValid.errors));
  assert.doesNotThrow(() => validateLock(lock(), 'lock'));
});

test("a built image index's per-platform digests pass both checks; one for a platform the image does not list fails", () => {
  const l = lock();
  l.images[0] = { ...l.images[0], platforms: ['linux/amd64', 'linux/arm64'], platformDigests: { 'linux/amd64': `sha256:${'b'.repeat(64)}`, 'linux/arm64': `sha256:${'c'.repeat(64)}` } };
  assert.equal(schemaValid(l), true, JSON.stringify(schemaValid.errors));
  assert.doesNotThrow(() => validateLock(l, 'lock'));
  l.images[0].platformDigests = { 'linux/s390x': D };
  assert.throws(() => validateLock(l, 'The image lock'), /\('api'\)\.platformDigests names 'linux\/s390x', which platforms does not list/);
});

test('bad locks fail both checks, and the message names the field', () => {
  const cases: [string, (l: any) => void, RegExp][] = [
    ['no schemaVersion', (l) => delete l.schemaVersion, /schemaVersion is missing/],
    ['digest not a digest', (l) => (l.images[0].digest = 'sha256:abc'), /images\[0\] \('api'\)\.digest must be a digest/],
    ['digest of an algorithm Docker refuses', (l) => (l.images[0].digest = `blake3:${'a'.repeat(64)}`), /\.digest must be a digest Docker accepts/],
    ['sha384 of the wrong length', (l) => (l.images[0].digest = `sha384:${'a'.repeat(64)}`), /\.digest must be a digest Docker accepts/],
    ['ref not repository@digest', (l) => (l.images[0].ref = 'registry.example.com/shop/api:1.0.0'), /\.ref must be repository@digest/],
    ['unknown source', (l) => (l.images[1].source = 'pulled'), /\.source must be 'built' or 'resolved'/],
    ['bad tag', (l) => (l.images[0].tags = ['bad tag']), /tags\[0\] must be a tag/],
    ['repeated tag', (l) => (l.images[0].tags = ['1', '1']), /repeats '1'/],
    ['upper-case repository', (l) => (l.images[0].repository = 'registry.example.com/Shop/api'), /repository must be a fully qualified lower-case repository/],
    ['images missing', (l) => delete l.images, /images is missing/],
    ['bad createdAt', (l) => (l.createdAt = 'yesterday'), /createdAt must be an ISO 8601/],
    ['platformDigests not an object', (l) => (l.images[1].platformDigests = ['linux/amd64']), /\('cache'\)\.platformDigests must be an object of platform to digest/],
    ['platformDigests of a bad digest', (l) => (l.images[1].platformDigests = { 'linux/amd64': 'sha256:abc' }), /platformDigests\['linux\/amd64'\] must be a digest/],
  ];
  for (const [name, mutate, message] of cases) {
    const l = lock();
    mutate(l);
    assert.throws(() => validateLock(l, 'The image lock'), message, name);
    if (name !== 'ref not repository@digest' && name !== 'repeated tag') assert.equal(schemaValid(l), false, `schema accepts: ${name}`);
  }
  assert.throws(() => validateLock({ ...lock(), schemaVersion: 2 }, 'x'), /newer version of PushWithDigest.*Update the Container Outer Loop extension/);
});

test('writeLock keeps createdAt when the images are unchanged, so a re-run writes the same bytes', () => {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'col-lock-')), 'image-lock.json');
  writeLock(file, lock());
  const first = fs.readFileSync(file);
  writeLock(file, { ...lock(), createdAt: '2026-11-23T00:00:00.000Z' });
  assert.deepEqual(fs.readFileSync(file), first);
  const changed = lock();
  changed.images[0].tags = ['1.0.1'];
  writeLock(file, { ...changed, createdAt: '2026-11-23T00:00:00.000Z' });
  assert.equal(readLock(file).createdAt, '2026-11-23T00:00:00.000Z');
  fs.writeFileSync(file, '{ not json');
  assert.throws(() => readLock(file), /is not valid JSON/);
  assert.throws(() => readLock(`${file}.missing`), /does not exist/);
});

test('indexLock matches by parsed repository, not by text', () => {
  const l = lock();
  const index = indexLock(l);
  assert.equal(index.find('registry.example.com/shop/api:rc1', 'x')?.name, 'api');
  assert.equal(index.find(`registry.example.com/shop/api@${D}`, 'x')?.name, 'api');
  assert.equal(index.find('redis:7', 'x')?.name, 'cache', 'docker.io/library/ normalisation');
  assert.equal(index.find('docker.io/library/redis', 'x')?.name, 'cache');
  assert.equal(index.find('registry.example.com/shop/api-worker:1', 'x'), undefined, 'a shared prefix is another repository');
  assert.equal(index.find('other.example.com/shop/api:1', 'x'), undefined);
  assert.throws(() => index.find('Bad Image', "Compose service 'web' image"), /Compose service 'web' image/);
});
