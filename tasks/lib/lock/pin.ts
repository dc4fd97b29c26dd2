// Finding an image's pinned reference in the lock, matched by parsed repository (never by text),
// so `registry:5000/app:1`, `registry:5000/app@sha256:…` and `registry:5000/app` all find the
// lock's `registry:5000/app`, and `app` never matches `app-worker`.
import { parseReference, repositoryName } from '../reference';
import type { ImageLock, LockedImage } from './types';

export interface LockIndex {
  /** The locked image for an image reference, or undefined when the lock does not have its repository. */
  find(image: string, what: string): LockedImage | undefined;
}

export function indexLock(lock: ImageLock): LockIndex {
  const byRepository = new Map<string, LockedImage[]>();
  for (const image of lock.images) {
    const key = image.repository.toLowerCase();
    byRepository.set(key, [...(byRepository.get(key) ?? []), image]);
  }
  return {
    find(image, what) {
      const ref = parseReference(image, what);
      const candidates = byRepository.get(repositoryName(ref).toLowerCase()) ?? [];
      // One repository may be locked more than once (two tags of a third-party image): the tag decides.
      return (
        (ref.digest && candidates.find((c) => c.digest === ref.digest)) ||
        (ref.tag && candidates.find((c) => c.tags.includes(ref.tag as string))) ||
        candidates[0]
      );
    },
  };
}
