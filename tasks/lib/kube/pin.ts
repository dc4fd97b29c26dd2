// Pinning: every container, initContainer and ephemeralContainer image of every Pod, Deployment,
// StatefulSet, DaemonSet, ReplicaSet, ReplicationController, Job and CronJob is rewritten to the
// lock's pinned reference (repository@digest), found by *parsed* repository — never by text, so an
// `- image:` first in a list, images sharing a prefix (`app` and `app-worker`), references already
// carrying a tag or a digest, and CronJob templates all work. Unknown kinds pass through untouched.
// Documents are edited in place (only the image scalar changes), so comments survive.
import type { Scalar, YAMLMap } from 'yaml';
import { InputError, InvalidReferenceError } from '../errors';
import type { LockIndex } from '../lock/pin';
import type { LockedImage } from '../lock/types';
import { parseReference } from '../reference';
import { lazyRequire } from '../util/lazy';
import { type ManifestFile, documentNodes } from './manifests';
import { CONTAINER_LISTS, KubeObject, describe, podSpecOf, podSpecPath } from './objects';
import { isObject } from '../util/object';

const yaml = lazyRequire<typeof import('yaml')>(() => require('yaml'));

export interface PinnedImage {
  /** `Deployment web` */
  object: string;
  container: string;
  /** The reference as written. */
  from: string;
  /** The pinned reference. */
  to: string;
  digest?: string;
  /** The lock entry's name, when pinned from the lock. */
  lockName?: string;
  /** How it was pinned: from the lock, or the manifest already carried a digest not in the lock. */
  source: 'lock' | 'manifest-digest' | 'unpinned';
}

export interface PinReport {
  images: PinnedImage[];
  warnings: string[];
}

export interface PinOptions {
  lock?: LockIndex;
  /** Leave images the lock does not have as they are (with a warning) instead of failing. */
  allowUnpinned: boolean;
  /** Named in errors: 'lockFile', 'manifests', … */
  lockInput?: string;
}

/** Decides the pinned reference for one image; shared by the Document and plain-object walkers. */
export class Pinner {
  private readonly cache = new Map<string, { locked?: LockedImage; digest?: string; error?: Error }>();
  readonly report: PinReport = { images: [], warnings: [] };
  private readonly unpinned: string[] = [];

  constructor(private readonly options: PinOptions) {}

  pin(image: unknown, object: string, container: string): string | undefined {
    if (typeof image !== 'string' || !image.trim()) {
      throw new InputError(`${object}, container '${container}': has no image.`);
    }
    let entry = this.cache.get(image);
    if (!entry) {
      try {
        const ref = parseReference(image, `the image of ${object}, container '${container}'`);
        entry = { locked: this.options.lock?.find(image, `the image of ${object}`), digest: ref.digest };
      } catch (err) {
        entry = { error: err as Error };
      }
      this.cache.set(image, entry);
    }
    if (entry.error) {
      const message = entry.error instanceof InvalidReferenceError ? entry.error.message : String(entry.error);
      throw new InputError(`${object}, container '${container}': '${image}' is not a valid image reference (${message}). Replace placeholders before deploying.`);
    }
    if (entry.locked) {
      const to = entry.locked.ref;
      if (entry.digest && entry.digest !== entry.locked.digest) {
        this.report.warnings.push(`${object}, container '${container}': '${image}' carries digest ${entry.digest}, but the lock has ${entry.locked.digest}; the lock's digest is deployed.`);
      }
      this.report.images.push({ object, container, from: image, to, digest: entry.locked.digest, lockName: entry.locked.name, source: 'lock' });
      return to;
    }
    if (entry.digest) {
      this.report.images.push({ object, container, from: image, to: image, digest: entry.digest, source: 'manifest-digest' });
      return image;
    }
    this.report.images.push({ object, container, from: image, to: image, source: 'unpinned' });
    this.unpinned.push(`${object}, container '${container}': ${image}`);
    return image;
  }

  /** Throws unless every image was pinned (or allowUnpinned); warns about each unpinned one otherwise. */
  finish(): PinReport {
    if (this.unpinned.length > 0) {
      const list = this.unpinned.map((u) => `  - ${u}`).join('\n');
      const lockInput = this.options.lockInput ?? 'lockFile';
      if (!this.options.allowUnpinned) {
        throw new InputError(
          this.options.lock
            ? `${this.unpinned.length} image(s) are not in the image lock (input '${lockInput}'), so they cannot be pinned by digest:\n${list}\nAdd them to the lock (PushWithDigest@1 with composeFile, or its images input), or set allowUnpinned: true to deploy them by tag.`
            : `No image lock was given (input '${lockInput}'), so ${this.unpinned.length} image(s) cannot be pinned by digest:\n${list}\nSet lockFile (or lockFromBuild), or set allowUnpinned: true to deploy by tag.`,
        );
      }
      for (const u of this.unpinned) this.report.warnings.push(`Not pinned (allowUnpinned): ${u}`);
    }
    return this.report;
  }
}

// ---- plain objects ----------------------------------------------------------------------------

/** Pins plain objects in place (the compose conversion's output, and copies made for canaries). */
export function pinObjects(objects: KubeObject[], pinner: Pinner): void {
  for (const obj of objects) pinObject(obj, pinner);
}

export function pinObject(obj: KubeObject, pinner: Pinner): void {
  const spec = podSpecOf(obj);
  if (!spec) return;
  for (const list of CONTAINER_LISTS) {
    const containers = spec[list];
    if (!Array.isArray(containers)) continue;
    for (const c of containers) {
      if (!isObject(c)) continue;
      const pinned = pinner.pin(c.image, describe(obj), String(c.name ?? '?'));
      if (pinned !== undefined) c.image = pinned;
    }
  }
}

// ---- yaml Documents ---------------------------------------------------------------------------

/** Pins every document of the files in place; the plain `objects` of each document are updated too. */
export function pinManifestFiles(files: ManifestFile[], pinner: Pinner): void {
  for (const f of files) {
    for (const d of f.documents) {
      const nodes = documentNodes(d);
      d.objects.forEach((obj, i) => pinNode(nodes[i], obj, pinner));
    }
  }
}

function pinNode(node: unknown, obj: KubeObject, pinner: Pinner): void {
  const y = yaml();
  const specPath = podSpecPath(obj.kind);
  if (!specPath || !y.isMap(node)) return;
  const spec = (node as YAMLMap).getIn(specPath, true);
  if (!y.isMap(spec)) return;
  const plainSpec = podSpecOf(obj);
  for (const list of CONTAINER_LISTS) {
    const seq = spec.get(list, true);
    if (!y.isSeq(seq)) continue;
    const plainList = Array.isArray(plainSpec?.[list]) ? (plainSpec[list] as Record<string, unknown>[]) : [];
    seq.items.forEach((item, i) => {
      if (!y.isMap(item)) return;
      const map = item;
      const imageNode = map.get('image', true);
      const current = y.isScalar(imageNode) ? imageNode.value : y.isAlias(imageNode) ? plainList[i]?.image : imageNode;
      const pinned = pinner.pin(current, describe(obj), String(map.get('name') ?? plainList[i]?.name ?? '?'));
      if (pinned === undefined || pinned === current) return;
      if (y.isScalar(imageNode)) (imageNode as Scalar).value = pinned;
      else map.set('image', pinned);
      if (plainList[i]) plainList[i].image = pinned;
    });
  }
}
