// The release a deploy brings up: the compose files rendered and pinned to the lock, with this
// run's trace labels on the services it changes; or (rollbackTo) a release kept on the target, as it
// was kept. And what the release changes against what the project runs (the promotion diff).
import * as path from 'node:path';
import type Dockerode from 'dockerode';
import { loadCompose } from '../compose/load';
import { PinnedService, RenderResult, renderCompose, withServiceLabels } from '../compose/render';
import { parseYaml, toPlain } from '../util/yaml';
import type { TaskContext } from '../context';
import { InputError } from '../errors';
import type { ImageLock } from '../lock/types';
import { parseReference, repositoryName } from '../reference';
import type { CredentialSource } from '../auth';
import { ReleaseDiff, promotionDiff } from '../release/diff';
import { COMPOSE_TRACE_LABELS, releaseTrace, traceEntries } from '../release/trace';
import type { ComposeDeployOptions } from './options';
import { runningServices } from './running';
import { describeRelease, ReleaseMeta, StoredRelease } from './store';
import { renderedServices, serviceTraceLabels } from './trace';

/** What one deploy releases: the rendered file (as text and data), its pinned services, and where it comes from. */
export interface Release extends Pick<RenderResult, 'text' | 'model' | 'services'> {
  buildNumber?: string;
  lock?: ImageLock;
  lockDigest?: string;
}

/** The compose files loaded, merged and rendered for the environment, pinned to the lock. */
export async function renderRelease(options: ComposeDeployOptions, environment: string, project: string, ctx: TaskContext): Promise<Release> {
  const { lock, lockName } = options;
  const rendered = await ctx.group(`Render ${options.composeFiles.map((f) => path.basename(f)).join(' + ')} for ${environment}`, async () => {
    const app = loadCompose(options.composeFiles, { env: { ...(options.env ?? process.env), ...options.variables }, envFile: options.envFile, profiles: options.profiles, allowedPaths: options.allowedPaths });
    const result = renderCompose(app, {
      lock,
      lockName,
      allowUnpinned: options.allowUnpinned,
      header: [
        `Rendered by ComposeDeploy@1 for environment '${environment}' (compose project '${project}').`,
        `From ${options.composeFiles.map((f) => path.basename(f)).join(', ')}${lock ? `; images pinned by digest to the image lock${lock.buildNumber ? ` of build ${lock.buildNumber}` : ''}` : ''}.`,
        `Redeploy by hand: docker compose -p ${project} -f <this file> up -d`,
      ],
    });
    for (const w of result.warnings) ctx.warn(w);
    if (app.inactiveServices.length) ctx.info(`Not deployed (profile not active): ${app.inactiveServices.join(', ')}`);
    for (const p of result.services) ctx.info(`${p.service}: ${p.image}${p.source === 'lock' && p.declared && p.declared !== p.image ? `  (compose: ${p.declared})` : ''}`);
    return result;
  });
  return { ...rendered, buildNumber: lock?.buildNumber ?? options.buildNumber, lock, lockDigest: options.lockDigest };
}

/** The kept release of build `rollbackTo` (history: the releases kept on the target, newest first), to deploy again as it was kept. */
export function chosenRelease(history: StoredRelease[], rollbackTo: string, project: string, target: string, ctx: TaskContext): Release {
  const chosen = history.find((r) => r.meta.buildNumber === rollbackTo);
  if (!chosen) {
    throw new InputError(
      `Input 'rollbackTo': build '${rollbackTo}' is not among the releases of '${project}' kept on ${target}: ${history.length ? `the host keeps ${history.map(describeRelease).join(', ')}` : 'it keeps none (ComposeDeploy never deployed this project there)'}. Give one of their build numbers.`,
    );
  }
  ctx.info(`rollbackTo: redeploying ${describeRelease(chosen)} as it was kept, trace labels included.`);
  return keptRelease(chosen);
}

/** The rendered release with this run's trace labels on the services it creates or changes against `previous` (trace.ts). */
export function tracedRelease(release: Release, previous: StoredRelease | undefined, project: string, ctx: TaskContext): Release {
  const labels = traceEntries(releaseTrace(ctx, release.lock, release.lockDigest), COMPOSE_TRACE_LABELS);
  const before = previous && renderedServices(previous.rendered, `The kept release of '${project}'`);
  return { ...release, ...withServiceLabels(release, serviceTraceLabels(release.model, before, labels)) };
}

/** A kept release, to deploy again (rollbackTo). */
export function keptRelease(kept: StoredRelease): Release {
  const model = toPlain(parseYaml(kept.rendered, 'The kept release'), 'The kept release') as Record<string, unknown>;
  return { text: kept.rendered, model, services: pinsFromMeta(kept.meta), buildNumber: kept.meta.buildNumber, lock: kept.meta.lock, lockDigest: kept.meta.lockDigest };
}

/** The pinned services of a kept release, from the images its meta records. */
function pinsFromMeta(meta: ReleaseMeta): PinnedService[] {
  return Object.entries(meta.images).map(([service, image]) => {
    try {
      const ref = parseReference(image);
      return ref.digest ? { service, image, repository: repositoryName(ref), digest: ref.digest, source: 'lock' as const } : { service, image, repository: repositoryName(ref), source: 'unpinned' as const };
    } catch {
      return { service, image, source: 'unpinned' as const };
    }
  });
}

/** The promotion diff of the project on the target against the release's pinned services. */
export async function composeReleaseDiff(docker: Dockerode, project: string, pins: PinnedService[], credentials: CredentialSource, ctx: TaskContext): Promise<ReleaseDiff> {
  const running = await runningServices(docker, project);
  return promotionDiff(running, pins.map((p) => ({ service: p.service, image: p.image, digest: p.digest })), credentials, ctx);
}
