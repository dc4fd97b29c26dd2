// The image lock (schemaVersion 1): the contract between PushWithDigest and the deploy tasks.
// The published form is schemas/image-lock.schema.json; docs/image-lock.md explains it.

export type LockSource = 'built' | 'resolved';

export interface LockedImage {
  /** Compose service or logical image name. */
  name: string;
  /** Fully qualified repository: domain/path. */
  repository: string;
  /** Tags pushed (built) or the tag resolved (resolved). */
  tags: string[];
  /** Manifest (or index) digest. */
  digest: string;
  /** repository@digest. */
  ref: string;
  source: LockSource;
  /** os/arch[/variant] the digest covers. */
  platforms: string[];
  /** A built image index: each platform's manifest digest, keys sorted ('linux/amd64' → sha256:…), as the registry lists them. */
  platformDigests?: Record<string, string>;
  mediaType?: string;
  /** Local image id of a built image. */
  imageId?: string;
}

export interface LockPipeline {
  definition?: string;
  runId?: string;
  project?: string;
  collectionUri?: string;
}

export interface ImageLock {
  schemaVersion: 1;
  createdAt: string;
  buildNumber?: string;
  buildId?: string;
  commit?: string;
  pipeline?: LockPipeline;
  images: LockedImage[];
}
