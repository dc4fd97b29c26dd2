// What a compose project runs now on the target, per service, through the Engine API (containers
// found by their com.docker.compose.* labels, never by name): the image each service's containers
// were created from and the registry digests they run. Used by the promotion diff before a deploy.
import type Dockerode from 'dockerode';
import { projectContainers } from '../compose/containers';
import { parseReference, repositoryName } from '../reference';
import type { RunningImage } from '../release/diff';

/**
 * One entry per service of the project that has containers (one-off `run` containers left out).
 * A container created from `repo@digest` (as every release of ComposeDeploy is) runs that digest;
 * one created from a tag runs the digest its image was pulled by (RepoDigests) for that repository,
 * or none known.
 */
export async function runningServices(docker: Dockerode, project: string): Promise<RunningImage[]> {
  const byService = new Map<string, { image: string; digests: Set<string> }>();
  const repoDigests = new Map<string, string[]>();
  for (const c of await projectContainers(docker, project)) {
    const entry = byService.get(c.service) ?? { image: c.configImage, digests: new Set<string>() };
    byService.set(c.service, entry);
    const digest = await containerDigest(docker, c.configImage, c.imageId, repoDigests);
    if (digest) entry.digests.add(digest);
  }
  return [...byService].map(([service, e]) => ({ service, image: e.image, digests: [...e.digests].sort() }));
}

async function containerDigest(docker: Dockerode, configImage: string, imageId: string, cache: Map<string, string[]>): Promise<string | undefined> {
  let ref;
  try {
    ref = parseReference(configImage);
  } catch {
    return undefined; // an image id, or a name the grammar does not take: no registry digest to name
  }
  if (ref.digest) return ref.digest;
  let digests = cache.get(imageId);
  if (!digests) {
    digests = await docker
      .getImage(imageId)
      .inspect()
      .then((i) => i.RepoDigests ?? [])
      .catch(() => []);
    cache.set(imageId, digests);
  }
  const repository = repositoryName(ref);
  for (const rd of digests) {
    try {
      const r = parseReference(rd);
      if (r.digest && repositoryName(r) === repository) return r.digest;
    } catch {
      // not a reference: skip it
    }
  }
  return undefined;
}
