// What the steps of the compose conversion (convert.ts, container.ts, pod.ts, workload.ts,
// volumes.ts, service.ts) share: the service being converted, the pod being built, and the
// Kubernetes rules for the names they make.
import { InputError } from '../errors';
import type { ComposeProject } from './compose-project';
import type { KubeObject } from './objects';
import type { PortSpec } from './service';

export type Obj = Record<string, unknown>;

export interface ServiceContext {
  k8s: string; // object name
  where: string;
  labels: Record<string, string>; // compose labels (kompose.* included)
  warn: (message: string) => void;
}

export type WorkloadKind = 'Deployment' | 'StatefulSet' | 'DaemonSet' | 'Job' | 'CronJob';

/** A compose service being converted: its keys in the long syntax, what it is called and labelled. */
export interface ServiceInput {
  name: string;
  raw: Obj;
  deploy: Obj;
  image: string;
  ctx: ServiceContext;
  /** The compose labels and deploy.labels that are not `kompose.*`, as the objects' annotations. */
  annotations: Record<string, string>;
  selector: Record<string, string>;
  labels: Record<string, string>;
}

/** A PersistentVolumeClaim the conversion makes. */
export interface Claim {
  claim: KubeObject;
  /** The service that first mounted it. */
  service: string;
}

/** What the services' conversions add to: the objects, and those that several services may share by name. */
export interface Collected {
  objects: KubeObject[];
  warnings: string[];
  secretValues: string[];
  claims: Map<string, Claim>;
  configMaps: Map<string, KubeObject>;
  secrets: Map<string, KubeObject>;
  /** The services that mount each named volume. */
  volumeUsers: Map<string, Set<string>>;
  /** The `app.kubernetes.io/part-of` value: the compose project's name. */
  partOf: string;
}

/**
 * The pod of one service while it is built. Each step (container.ts, pod.ts) reads the service and
 * adds one concern to the container or the pod spec, as kompose's PodSpecOptions do.
 */
export interface PodBuild {
  service: ServiceInput;
  project: ComposeProject;
  out: Collected;
  /** The workload the pod is for; a StatefulSet's claims go to its claimTemplates. */
  workload: { kind: WorkloadKind; severalPods: boolean; claimTemplates: KubeObject[] };
  container: Obj;
  spec: Obj;
  /** The service's `ports` and `expose` (setPorts reads them), for its Service too. */
  ports: PortSpec[];
  exposed: PortSpec[];
}

export type PodStep = (pod: PodBuild) => void;

export const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
export const DNS_1035 = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
export const QUALIFIED_NAME = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
export const CONFIG_KEY = /^[-._a-zA-Z0-9]+$/;
export const ENV_NAME = /^[-._a-zA-Z][-._a-zA-Z0-9]*$/;

/** A compose name as a Kubernetes object name (`_` and `.` become `-`), or an error naming `what`. */
export function k8sName(name: string, what: string): string {
  const n = name.toLowerCase().replace(/[_.]/g, '-');
  if (!DNS_LABEL.test(n) || n.length > 63) {
    throw new InputError(`${what}: '${name}' cannot be a Kubernetes name (lower-case letters, digits and '-', at most 63 characters). Rename it.`);
  }
  return n;
}

/** The entries whose keys Kubernetes takes as annotation keys; each other one is warned about. */
export function validAnnotations(map: Record<string, string>, warn: (message: string) => void): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(map)) {
    const name = k.includes('/') ? k.slice(k.lastIndexOf('/') + 1) : k;
    if (QUALIFIED_NAME.test(k) && name.length <= 63 && k.length <= 316) out[k] = v;
    else warn(`label '${k}' is not converted (it is not a Kubernetes annotation key: [prefix/]name, the name of letters, digits, '-', '_' and '.'; rename it).`);
  }
  return out;
}
