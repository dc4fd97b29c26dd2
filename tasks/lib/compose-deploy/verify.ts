// Verification: each running container of the project runs the image the rendered file pinned —
// its image's RepoDigests (what the engine pulled the image by) hold the lock's repository@digest,
// compared by parsed repository (RepoDigests spell Docker Hub images `busybox@…`).
import type Dockerode from 'dockerode';
import type { PinnedService } from '../compose/render';
import { OuterLoopError } from '../errors';
import { parseReference, repositoryName } from '../reference';
import type { ContainerState } from '../compose/containers';

export class VerifyError extends OuterLoopError {}

export interface VerifiedContainer {
  service: string;
  container: string;
  image: string;
  /** The digest the container's image was pulled by, for this repository. */
  digest?: string;
  state: string;
  /** true: matches the lock; false: does not; undefined: unpinned (allowUnpinned), nothing to compare. */
  verified?: boolean;
}

export async function verifyDigests(docker: Dockerode, states: ContainerState[], pins: PinnedService[]): Promise<VerifiedContainer[]> {
  const byService = new Map(pins.map((p) => [p.service, p]));
  const repoDigestsOf = new Map<string, string[]>();
  const rows: VerifiedContainer[] = [];
  for (const s of states) {
    const pin = byService.get(s.service);
    if (!pin) continue; // not part of this release (an orphan left by removeOrphans: false)
    let repoDigests = repoDigestsOf.get(s.imageId);
    if (!repoDigests) {
      try {
        repoDigests = (await docker.getImage(s.imageId).inspect()).RepoDigests ?? [];
      } catch {
        repoDigests = [];
      }
      repoDigestsOf.set(s.imageId, repoDigests);
    }
    const digests = repoDigests.flatMap((rd) => {
      try {
        const r = parseReference(rd);
        return r.digest ? [{ repository: repositoryName(r), digest: r.digest }] : [];
      } catch {
        return [];
      }
    });
    const state = s.health ? `${s.status} (${s.health})` : s.exitCode === 0 && s.status === 'exited' ? 'exited 0 (one-shot)' : s.status;
    if (pin.source === 'unpinned' || !pin.digest || !pin.repository) {
      rows.push({ service: s.service, container: s.name, image: s.configImage, digest: digests.find((d) => d.repository === pin.repository)?.digest, state, verified: undefined });
      continue;
    }
    const match = digests.some((d) => d.repository === pin.repository && d.digest === pin.digest);
    const same = digests.find((d) => d.repository === pin.repository);
    rows.push({ service: s.service, container: s.name, image: s.configImage, digest: match ? pin.digest : same?.digest, state, verified: match });
  }
  const wrong = rows.filter((r) => r.verified === false);
  if (wrong.length) {
    throw new VerifyError(
      `Verification failed: ${wrong.map((r) => `${r.container} (service ${r.service}) runs ${r.image} whose image has ${r.digest ?? 'no registry digest'}, not the locked ${byService.get(r.service)?.digest}`).join('; ')}.`,
    );
  }
  return rows;
}

export function summaryTable(rows: VerifiedContainer[]): string {
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  const lines = ['| service | container | image | digest | state | verified |', '|---|---|---|---|---|---|'];
  for (const r of rows) {
    const verified = r.verified === true ? '✅ matches the lock' : r.verified === false ? '❌ differs' : '⚠️ not pinned';
    lines.push(`| ${esc(r.service)} | ${esc(r.container)} | \`${esc(r.image.replace(/@sha256:.*/, ''))}\` | \`${r.digest ?? '—'}\` | ${esc(r.state)} | ${verified} |`);
  }
  return lines.join('\n');
}
