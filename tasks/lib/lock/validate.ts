// Hand-written check of a parsed lock against schemas/image-lock.schema.json. The schema is the
// published contract (and tests check written locks against it with ajv); this check runs in the
// bundled tasks without a schema engine and names the offending field in words a user can act on.
import { FileError } from '../errors';
import { isDigest } from '../reference';
import { isObject } from '../util/object';
import type { ImageLock, LockedImage, LockSource } from './types';

export const LOCK_SCHEMA_VERSION = 1;

const TAG = /^[\w][\w.-]{0,127}$/;
const PLATFORM = /^[a-z0-9]+\/[a-z0-9_]+(\/[a-z0-9]+)?$/;
const CREATED_AT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;
const COMPONENT = '[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*';
const REPOSITORY = new RegExp(`^(?:[^\\s@:/]+|\\[[0-9a-fA-F:]+\\])(?::[0-9]+)?(?:/${COMPONENT})+$`);

/** Throws a FileError naming `what` and the first field that breaks the format; returns the typed lock. */
export function validateLock(value: unknown, what: string): ImageLock {
  const fail = (field: string, problem: string): never => {
    throw new FileError(`${what} is not a valid image lock: ${field} ${problem}. Write it with PushWithDigest@1 or fix it by hand (format: docs/image-lock.md).`);
  };
  if (!isObject(value)) fail('the document', 'must be a JSON object');
  const doc = value as Record<string, unknown>;

  const version = doc.schemaVersion;
  if (version === undefined) fail('schemaVersion', 'is missing');
  if (typeof version !== 'number' || !Number.isInteger(version) || version < 1) fail('schemaVersion', `must be ${LOCK_SCHEMA_VERSION}, not ${JSON.stringify(version)}`);
  if ((version as number) > LOCK_SCHEMA_VERSION) {
    throw new FileError(
      `${what} was written by a newer version of PushWithDigest (schemaVersion ${version as number}); this task reads schemaVersion ${LOCK_SCHEMA_VERSION}. Update the Container Outer Loop extension.`,
    );
  }

  if (typeof doc.createdAt !== 'string' || !CREATED_AT.test(doc.createdAt) || Number.isNaN(Date.parse(doc.createdAt))) {
    fail('createdAt', `must be an ISO 8601 UTC time such as 2024-05-01T12:00:00.000Z, not ${JSON.stringify(doc.createdAt)}`);
  }
  for (const key of ['buildNumber', 'buildId', 'commit'] as const) {
    if (doc[key] !== undefined && (typeof doc[key] !== 'string' || doc[key] === '')) fail(key, 'must be a non-empty string when present');
  }
  if (doc.pipeline !== undefined) {
    if (!isObject(doc.pipeline)) fail('pipeline', 'must be an object');
    const pipeline = doc.pipeline as Record<string, unknown>;
    for (const key of ['definition', 'runId', 'project', 'collectionUri']) {
      if (pipeline[key] !== undefined && typeof pipeline[key] !== 'string') fail(`pipeline.${key}`, 'must be a string');
    }
  }
  if (!Array.isArray(doc.images)) fail('images', doc.images === undefined ? 'is missing' : 'must be an array');
  (doc.images as unknown[]).forEach((image, i) => validateImage(image, `images[${i}]`, fail));
  return doc as unknown as ImageLock;
}

function validateImage(value: unknown, at: string, fail: (field: string, problem: string) => never): void {
  if (!isObject(value)) fail(at, 'must be an object');
  const image = value as Record<string, unknown>;
  const label = typeof image.name === 'string' && image.name ? `${at} ('${image.name}')` : at;
  const str = (key: keyof LockedImage): string => {
    const v = image[key];
    if (v === undefined) fail(`${label}.${key}`, 'is missing');
    if (typeof v !== 'string' || v === '') fail(`${label}.${key}`, 'must be a non-empty string');
    return v as string;
  };
  str('name');
  const repository = str('repository');
  if (repository.length > 255 || !REPOSITORY.test(repository)) {
    fail(`${label}.repository`, `must be a fully qualified lower-case repository such as registry.example.com/team/app, not '${repository}'`);
  }
  const digest = str('digest');
  // The digests Docker, containerd and the kubelet accept: one rule with the reference grammar.
  if (!isDigest(digest)) fail(`${label}.digest`, `must be a digest Docker accepts (sha256:<64>, sha384:<96> or sha512:<128> lower-case hex digits), not '${digest}'`);
  const ref = str('ref');
  if (ref !== `${repository}@${digest}`) fail(`${label}.ref`, `must be repository@digest ('${repository}@${digest}'), not '${ref}'`);
  const source = image.source as LockSource;
  if (source !== 'built' && source !== 'resolved') fail(`${label}.source`, `must be 'built' or 'resolved', not ${JSON.stringify(image.source)}`);
  stringList(image.tags, `${label}.tags`, TAG, 'a tag ([A-Za-z0-9_][A-Za-z0-9_.-]{0,127})', fail);
  stringList(image.platforms, `${label}.platforms`, PLATFORM, 'a platform such as linux/amd64', fail);
  if (image.platformDigests !== undefined) {
    const digests = image.platformDigests;
    if (!isObject(digests)) fail(`${label}.platformDigests`, 'must be an object of platform to digest');
    for (const [platform, value] of Object.entries(digests as Record<string, unknown>)) {
      if (!(image.platforms as string[]).includes(platform)) fail(`${label}.platformDigests`, `names '${platform}', which platforms does not list`);
      if (typeof value !== 'string' || !isDigest(value)) fail(`${label}.platformDigests['${platform}']`, `must be a digest, not ${JSON.stringify(value)}`);
    }
  }
  for (const key of ['mediaType', 'imageId'] as const) {
    if (image[key] !== undefined && typeof image[key] !== 'string') fail(`${label}.${key}`, 'must be a string when present');
  }
}

function stringList(value: unknown, field: string, pattern: RegExp, expected: string, fail: (field: string, problem: string) => never): void {
  if (value === undefined) fail(field, 'is missing');
  if (!Array.isArray(value)) fail(field, 'must be an array of strings');
  const seen = new Set<string>();
  (value as unknown[]).forEach((item, i) => {
    if (typeof item !== 'string' || !pattern.test(item)) fail(`${field}[${i}]`, `must be ${expected}, not ${JSON.stringify(item)}`);
    if (seen.has(item as string)) fail(`${field}[${i}]`, `repeats '${item as string}'`);
    seen.add(item as string);
  });
}
