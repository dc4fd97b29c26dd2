// What a deploy reports: the job summary, the deployedDigests output, and each workload's images
// before and after (for the notification).
import type { TaskContext } from '../context';
import type { ServiceImages } from '../release/notify';
import { provenanceTable } from '../release/trace';
import type { ApplyItem } from './apply';
import type { KubernetesDeployOptions, KubernetesDeployResult } from './deploy-options';
import { isObject } from '../util/object';
import { getPath, podSpecOf } from './objects';
import type { Rendered } from './render';
import type { BeforeState } from './rollback';

/** The job summary: the namespace and strategy, how the deploy ended, each image as pinned, and the provenance of the lock. */
export function writeSummary(ctx: TaskContext, options: KubernetesDeployOptions, rendered: Rendered, result: KubernetesDeployResult, outcome: string): void {
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  const lines = [
    `### KubernetesDeploy: ${esc(options.namespace)} (${options.renderOnly ? 'render only' : `${options.strategy}${options.strategy === 'canary' ? ` ${options.action}` : ''}`})`,
    '',
    outcome.split('\n')[0],
    '',
    '| object | container | image |',
    '|---|---|---|',
    ...rendered.pins.images.map((p) => `| ${esc(p.object)} | ${esc(p.container)} | \`${esc(p.to)}\`${p.source === 'unpinned' ? ' (not pinned)' : ''} |`),
  ];
  if (result.imageChecks.length) {
    lines.push('', `Running containers verified against the pinned digests: ${result.imageChecks.filter((c) => c.ok === true).length} of ${result.imageChecks.length}.`);
  }
  if (result.rolledBack) lines.push('', '**Rolled back.**');
  if (options.lock) lines.push('', provenanceTable(options.lock, rendered.pins.images.map((p) => ({ service: p.lockName ?? p.container, image: p.to }))));
  ctx.addSummary('kubernetes-deploy', `${lines.join('\n')}\n`);
}

/** The deployedDigests output: image name (the lock's, else the container's) → pinned reference. */
export function deployedDigests(rendered: Rendered): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of rendered.pins.images) {
    if (p.source === 'unpinned') continue;
    out[p.lockName ?? p.container] = p.to;
  }
  return out;
}

/** Each workload's containers, with the image its template had before this deployment and the pinned one it gets (for the notification). */
export function imageChanges(workloads: ApplyItem[], before: Map<ApplyItem, BeforeState>): ServiceImages[] {
  const images = (spec: unknown) => {
    const containers = isObject(spec) && Array.isArray(spec.containers) ? spec.containers : [];
    return new Map(containers.filter(isObject).map((c) => [String(c.name), typeof c.image === 'string' ? c.image : undefined]));
  };
  return workloads.flatMap((w) => {
    const old = images(getPath(before.get(w)?.template, ['spec']));
    return [...images(podSpecOf(w.object))].map(([container, image]) => ({ service: `${w.object.kind.toLowerCase()}/${w.object.metadata.name}/${container}`, before: old.get(container), after: image }));
  });
}
