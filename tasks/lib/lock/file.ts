// Reading and writing the image lock file. Writing keeps `createdAt` when the images are the same
// as in the lock already there, so a re-run with nothing changed writes a byte-identical file.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FileError } from '../errors';
import type { ImageLock } from './types';
import { validateLock } from './validate';

export function readLock(file: string): ImageLock {
  if (!fs.existsSync(file)) throw new FileError(`The image lock '${file}' does not exist. PushWithDigest@1 writes it; check the lockFile input or the artifact download.`);
  let data: unknown;
  try {
    data = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new FileError(`The image lock '${file}' is not valid JSON (${(err as Error).message}).`);
  }
  return validateLock(data, `The image lock '${file}'`);
}

export function writeLock(file: string, lock: ImageLock): ImageLock {
  let previous: ImageLock | undefined;
  try {
    previous = readLock(file);
  } catch {
    previous = undefined;
  }
  const same = previous && JSON.stringify(withoutTime(previous)) === JSON.stringify(withoutTime(lock));
  const final = same ? { ...lock, createdAt: previous!.createdAt } : lock;
  validateLock(final, 'The image lock being written');
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  fs.writeFileSync(file, `${JSON.stringify(final, null, 2)}\n`);
  return final;
}

function withoutTime(lock: ImageLock): Omit<ImageLock, 'createdAt'> {
  const { createdAt: _ignored, ...rest } = lock;
  return rest;
}
