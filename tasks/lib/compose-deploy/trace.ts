// The trace labels (release/trace.ts) of each service ComposeDeploy deploys. Compose recreates a
// container whenever its labels change, so labels that changed on every deploy (the run URL does)
// would restart every service of every release. They change only with the service: a service whose
// definition is the one of the last good release keeps that release's trace labels, so Compose
// leaves its containers alone; a new or changed service, recreated anyway, gets this run's. The
// labels of a container thus name the deploy that created it.
import { isDeepStrictEqual } from 'node:util';
import { listOrMapping } from '../compose/merge';
import { parseYaml, toPlain } from '../util/yaml';
import { COMPOSE_TRACE_LABELS } from '../release/trace';

const TRACE_KEYS = new Set(Object.values(COMPOSE_TRACE_LABELS));

/** The service's labels as a mapping, without and with only the trace labels. */
function splitLabels(service: Record<string, unknown>, name: string): { own: Record<string, unknown>; trace: Record<string, string> } {
  const own: Record<string, unknown> = {};
  const trace: Record<string, string> = {};
  for (const [k, v] of Object.entries(listOrMapping(service.labels, `service '${name}' labels`))) {
    if (TRACE_KEYS.has(k)) trace[k] = String(v);
    else own[k] = v;
  }
  return { own, trace };
}

/** The rendered services of a stored release (its rendered text), by name. */
export function renderedServices(text: string, what: string): Record<string, Record<string, unknown>> {
  const model = toPlain(parseYaml(text, what), what) as { services?: Record<string, Record<string, unknown>> };
  return model.services ?? {};
}

/** service → the trace labels it is deployed with. */
export function serviceTraceLabels(
  model: Record<string, unknown>,
  previous: Record<string, Record<string, unknown>> | undefined,
  labels: Record<string, string>,
): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {};
  for (const [name, service] of Object.entries(model.services as Record<string, Record<string, unknown>>)) {
    const before = previous?.[name];
    if (before) {
      const was = splitLabels(before, name);
      const { labels: _l, ...restBefore } = before;
      const { labels: _n, ...restNow } = service;
      const same = isDeepStrictEqual(restBefore, restNow) && isDeepStrictEqual(was.own, splitLabels(service, name).own);
      if (same && Object.keys(was.trace).length > 0) {
        out[name] = was.trace;
        continue;
      }
    }
    out[name] = labels;
  }
  return out;
}
