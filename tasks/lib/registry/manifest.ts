// What the registry client knows of manifests themselves: the media types it asks for, the digest
// of a body, and the platforms an image index lists.
import { createHash } from 'node:crypto';
import { HttpResponse, header } from '../util/http';

export const MEDIA_TYPES = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
} as const;

const SCHEMA1_MEDIA_TYPES = ['application/vnd.docker.distribution.manifest.v1+prettyjws', 'application/vnd.docker.distribution.manifest.v1+json'];

/**
 * Index types first (a multi-arch tag must resolve to its index, never to a manifest the registry
 * picked), then single manifests. Docker schema 1 is deliberately absent: its digest is not the
 * hash of the body, and Docker Hub and distribution 3 no longer serve it.
 */
export const MANIFEST_ACCEPT = [MEDIA_TYPES.ociIndex, MEDIA_TYPES.dockerManifestList, MEDIA_TYPES.ociManifest, MEDIA_TYPES.dockerManifest].join(', ');

export function isIndexMediaType(mediaType: string | undefined): boolean {
  return mediaType === MEDIA_TYPES.ociIndex || mediaType === MEDIA_TYPES.dockerManifestList;
}

/** Docker schema 1, which has no stable digest. */
export function isSchema1MediaType(mediaType: string | undefined): boolean {
  return mediaType !== undefined && SCHEMA1_MEDIA_TYPES.includes(mediaType);
}

/** The media type a response declares, when it is a manifest type. */
export function contentType(res: HttpResponse): string | undefined {
  const value = header(res, 'content-type')?.split(';')[0].trim();
  // Some registries answer a generic type on HEAD; only manifest types say anything.
  return value && value.startsWith('application/vnd.') ? value : undefined;
}

export function computeDigest(algorithm: string, body: Buffer): string {
  const name = algorithm === 'sha512' ? 'sha512' : 'sha256';
  return `${name}:${createHash(name).update(body).digest('hex')}`;
}

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

export interface IndexEntry {
  digest: string;
  mediaType?: string;
  platform?: Platform;
}

export interface ManifestBody {
  mediaType?: string;
  manifests?: unknown[];
}

/** The images an index lists, with their platforms; attestation entries ('unknown/unknown') left out. */
export function listedImages(body: ManifestBody): Array<IndexEntry & { platform: Platform }> {
  const entries = Array.isArray(body.manifests) ? body.manifests : [];
  return entries.filter((m): m is IndexEntry & { platform: Platform } => {
    if (typeof m !== 'object' || m === null) return false;
    const { digest, platform } = m as { digest?: unknown; platform?: Platform };
    return typeof digest === 'string' && !!platform && platform.os !== 'unknown' && platform.architecture !== 'unknown';
  });
}

export function platformString(p: Platform): string {
  return [p.os, p.architecture, p.variant].filter(Boolean).join('/');
}

/** Default variants, as containerd's platforms.Normalize: arm64 is v8, arm is v7. */
function normalizePlatform(p: Platform): Platform {
  const arch = p.architecture === 'aarch64' ? 'arm64' : p.architecture === 'x86_64' ? 'amd64' : p.architecture;
  let variant = p.variant;
  if (arch === 'arm64' && !variant) variant = 'v8';
  if (arch === 'arm' && !variant) variant = 'v7';
  return { os: p.os.toLowerCase(), architecture: arch, variant };
}

/** The entry of an index for 'os/arch[/variant]'; without a variant, the default variant first, then any. */
export function pickPlatform<T extends { platform?: Platform }>(entries: T[], wanted: string): T | undefined {
  const [os, architecture, variant] = wanted.split('/');
  if (!os || !architecture) return undefined;
  const want = normalizePlatform({ os, architecture, variant });
  const candidates = entries.filter((e) => {
    if (!e.platform) return false;
    const have = normalizePlatform(e.platform);
    return have.os === want.os && have.architecture === want.architecture;
  });
  return (
    candidates.find((e) => normalizePlatform(e.platform as Platform).variant === want.variant) ??
    (variant === undefined ? candidates[0] : undefined)
  );
}
