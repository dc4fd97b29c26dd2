// The steps that build a converted service's pod spec around its container, one concern each:
// volumes (with configs and secrets), grace period, hostname, host aliases, pull secret, service
// account, fsGroup. Each one reads the service's compose keys (or kompose labels) and adds to
// `pod.spec`; what it cannot convert it warns about.
import { extraHostEntries } from '../compose/build';
import { durationSeconds } from '../compose/units';
import { DNS_LABEL, Obj, PodBuild } from './convert-context';
import { MANAGED_BY_LABEL, MANAGED_BY_VALUE, PART_OF_LABEL } from './objects';
import { convertFiles, convertVolumes } from './volumes';

/**
 * `volumes`, `tmpfs`, `shm_size`, `configs` and `secrets` (volumes.ts) as the pod's volumes and the
 * container's mounts; the claims go to the shared objects, or to a StatefulSet's claimTemplates.
 */
export function setVolumes({ service, project, out, workload, container, spec }: PodBuild): void {
  const { raw, ctx } = service;
  const volumes = new Map<string, Obj>();
  const mounts: Obj[] = [];
  const labels = { [PART_OF_LABEL]: out.partOf, [MANAGED_BY_LABEL]: MANAGED_BY_VALUE };
  convertVolumes(raw, ctx, project, { service: service.name, ...workload, volumes, mounts, claims: out.claims, labels, volumeUsers: out.volumeUsers });
  convertFiles('configs', raw.configs, ctx, project, { volumes, mounts, store: out.configMaps, labels, secretValues: out.secretValues });
  convertFiles('secrets', raw.secrets, ctx, project, { volumes, mounts, store: out.secrets, labels, secretValues: out.secretValues });
  if (mounts.length) container.volumeMounts = mounts;
  if (volumes.size) spec.volumes = [...volumes.values()];
}

/** `stop_grace_period` as terminationGracePeriodSeconds (whole seconds, rounded up). */
export function setGracePeriod({ spec, service: { raw, ctx } }: PodBuild): void {
  if (raw.stop_grace_period === undefined) return;
  spec.terminationGracePeriodSeconds = Math.ceil(durationSeconds(raw.stop_grace_period, `${ctx.where} stop_grace_period`));
}

/** `hostname`, when it is a DNS label (lower-cased). */
export function setHostname({ spec, service: { raw, ctx } }: PodBuild): void {
  if (raw.hostname === undefined) return;
  const host = String(raw.hostname).toLowerCase();
  if (DNS_LABEL.test(host)) spec.hostname = host;
  else ctx.warn(`hostname '${raw.hostname}' is not converted (a pod hostname is a DNS label: lower-case letters, digits and '-'; change it).`);
}

/** `extra_hosts` (`host:ip`, `host=ip`, or a mapping of host to one or more addresses) as the pod's hostAliases, one per address. */
export function setHostAliases({ spec, service: { raw, ctx } }: PodBuild): void {
  const byAddress = new Map<string, string[]>();
  for (const [host, ip] of extraHostEntries(raw.extra_hosts, `${ctx.where}: extra_hosts`)) {
    if (ip === 'host-gateway') {
      ctx.warn(`extra_hosts '${host}' (host-gateway) is not converted (host-gateway is the address of the Docker host, which pods do not have; use a Service, or the node's address in a manifest).`);
      continue;
    }
    byAddress.set(ip, [...(byAddress.get(ip) ?? []), host]);
  }
  if (byAddress.size) spec.hostAliases = [...byAddress].map(([ip, hostnames]) => ({ ip, hostnames }));
}

/** The `kompose.image-pull-secret` label as the pod's imagePullSecrets. */
export function setPullSecret({ spec, service: { ctx } }: PodBuild): void {
  const name = ctx.labels['kompose.image-pull-secret'];
  if (name) spec.imagePullSecrets = [{ name }];
}

/** The `kompose.serviceaccount-name` label as the pod's serviceAccountName. */
export function setServiceAccount({ spec, service: { ctx } }: PodBuild): void {
  const name = ctx.labels['kompose.serviceaccount-name'];
  if (name) spec.serviceAccountName = name;
}

/** The `kompose.security-context.fsgroup` label as the pod's securityContext.fsGroup. */
export function setFsGroup({ spec, service: { ctx } }: PodBuild): void {
  const value = ctx.labels['kompose.security-context.fsgroup'];
  if (value === undefined) return;
  const group = Number(value);
  if (Number.isInteger(group) && group >= 0) spec.securityContext = { fsGroup: group };
  else ctx.warn(`label kompose.security-context.fsgroup '${value}' is not converted (it must be a numeric group id).`);
}
