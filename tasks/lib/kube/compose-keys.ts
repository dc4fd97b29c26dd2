// What the Kubernetes conversion does with every key the compose-spec defines for a service: it
// converts it (the conversion reads it, and warns there about a value it cannot express), or it
// does not, for a reason and with what to do instead. checkServiceKeys walks a service against
// this table and warns about each key that is not converted, so none is dropped silently; a key
// the table does not know (not a compose-spec key) is warned about too. `x-` keys are extensions,
// allowed anywhere. test/unit/kube-convert-keys.test.ts checks the table against the spec's schema.
import { isObject } from '../util/object';

type Obj = Record<string, unknown>;

export interface NotConverted {
  why: string;
  /** What to do instead. */
  instead: string;
}

/**
 * `converted`; a reason it is not; or converted with rules for its sub-keys (`keys`). With `item`,
 * the value is a list whose mapping entries follow `keys` (`item` names an entry in a warning);
 * entries `skip` says the conversion drops whole (and warns about itself) are not walked.
 */
export type KeyRule = 'converted' | NotConverted | { keys: KeyTable; item?: (entry: Obj) => string; skip?: (entry: Obj) => boolean };
export type KeyTable = Record<string, KeyRule>;

const no = (why: string, instead: string): NotConverted => ({ why, instead });
const asResources = no('Kubernetes expresses CPU as requests and limits', 'use deploy.resources (cpus)');
const clusterDns = (instead: string) => no('pods use the cluster DNS', instead);
const swap = no('swap is configured per node (memorySwap)', 'configure swap on the nodes');
const realTime = no('Kubernetes has no real-time CPU scheduling', 'remove it');
const bindOnly = (what: string) => no(`${what} applies to host paths, which are not converted`, 'remove it, or mount a host path in a manifest');

const FILE_KEYS: KeyTable = {
  source: 'converted',
  target: 'converted',
  mode: 'converted',
  uid: no("the kubelet owns the files it projects", 'give the group access with kompose.security-context.fsgroup (the pod fsGroup)'),
  gid: no("the kubelet owns the files it projects", 'give the group access with kompose.security-context.fsgroup (the pod fsGroup)'),
};

export const VOLUME_KEYS: KeyTable = {
  type: 'converted',
  source: 'converted',
  target: 'converted',
  read_only: 'converted',
  consistency: no('it is a hint for file sharing on Docker Desktop', 'remove it'),
  bind: {
    keys: {
      selinux: no('SELinux relabelling is done by the container runtime, and a claim cannot ask for it', 'if your nodes enforce SELinux, set seLinuxOptions in the pod securityContext in a manifest'),
      propagation: bindOnly('mount propagation'),
      create_host_path: bindOnly('create_host_path'),
      recursive: bindOnly('a recursive mount'),
    },
  },
  volume: {
    keys: {
      labels: 'converted',
      nocopy: no("a claim starts empty: Kubernetes never copies the image's files into a volume, with nocopy or without", 'nothing to change; a service that relies on that copy needs an init container that fills the claim'),
      subpath: 'converted',
    },
  },
  tmpfs: {
    keys: {
      size: 'converted',
      mode: no('an emptyDir gets the mode the kubelet gives it', 'set the mode in the image, or give the group access with kompose.security-context.fsgroup'),
    },
  },
  image: no('image volumes need the ImageVolume feature of recent clusters', 'mount the image with an image volume in a manifest'),
};

export const PORT_KEYS: KeyTable = {
  name: 'converted',
  mode: 'converted',
  host_ip: no('a Service listens on the cluster network, not on an address of one host', 'restrict who may connect with a NetworkPolicy in a manifest'),
  target: 'converted',
  published: 'converted',
  protocol: 'converted',
  app_protocol: 'converted',
};

export const SERVICE_KEYS: KeyTable = {
  // ---- converted
  image: 'converted',
  command: 'converted',
  entrypoint: 'converted',
  environment: 'converted',
  env_file: { keys: { path: 'converted', format: 'converted', required: 'converted' }, item: (e) => `env_file '${String(e.path)}'` },
  working_dir: 'converted',
  user: 'converted',
  cap_add: 'converted',
  cap_drop: 'converted',
  privileged: 'converted',
  read_only: 'converted',
  stdin_open: 'converted',
  tty: 'converted',
  pull_policy: 'converted',
  labels: 'converted',
  annotations: 'converted',
  hostname: 'converted',
  extra_hosts: 'converted',
  stop_grace_period: 'converted',
  restart: 'converted',
  scale: 'converted',
  cpus: 'converted',
  mem_limit: 'converted',
  mem_reservation: 'converted',
  shm_size: 'converted',
  tmpfs: 'converted',
  expose: 'converted',
  // The loader resolves `extends`, and leaves out services of a profile (`docker compose up` does not start them).
  extends: { keys: { service: 'converted', file: 'converted' } },
  profiles: 'converted',
  ports: { keys: PORT_KEYS, item: (e) => `port ${String(e.target)}` },
  volumes: { keys: VOLUME_KEYS, item: (e) => `the volume at ${String(e.target)}`, skip: (e) => e.type !== 'volume' && e.type !== 'tmpfs' },
  configs: { keys: FILE_KEYS, item: (e) => `config '${String(e.source)}'` },
  secrets: { keys: FILE_KEYS, item: (e) => `secret '${String(e.source)}'` },
  healthcheck: {
    keys: {
      test: 'converted',
      interval: 'converted',
      timeout: 'converted',
      retries: 'converted',
      start_period: 'converted',
      disable: 'converted',
      start_interval: no('a probe has one period', 'the interval applies from the start; write a startupProbe in a manifest for a quicker check while the service starts'),
    },
  },
  deploy: {
    keys: {
      mode: 'converted',
      replicas: 'converted',
      labels: 'converted',
      resources: {
        keys: {
          limits: { keys: { cpus: 'converted', memory: 'converted', pids: no('Kubernetes limits processes per pod on the nodes (podPidsLimit)', 'configure podPidsLimit on the nodes') } },
          reservations: {
            keys: {
              cpus: 'converted',
              memory: 'converted',
              generic_resources: no('generic resources are a Swarm feature', 'request an extended resource in a manifest'),
              devices: no('devices reach pods through device plugins', "request the device plugin's resource in a manifest"),
            },
          },
        },
      },
      restart_policy: {
        keys: {
          condition: 'converted',
          delay: no('the kubelet restarts containers with its own back-off', 'remove it'),
          max_attempts: no('the kubelet restarts a long-running container without limit', 'for a Job, set kompose.cronjob.backoff_limit'),
          window: no('the kubelet restarts containers with its own back-off', 'remove it'),
        },
      },
      endpoint_mode: no('a Service balances over its pods in both modes', 'for dnsrr, set the label kompose.service.type: headless'),
      placement: no('this conversion writes no scheduling rules', 'use nodeSelector, affinity or topologySpreadConstraints in a manifest'),
      update_config: no("the rollout follows the workload's default strategy (rolling update)", 'write strategy.rollingUpdate in a manifest'),
      rollback_config: no('KubernetesDeploy rolls back a failed rollout itself', 'remove it'),
    },
  },

  // ---- not converted
  build: no('Kubernetes runs images and does not build them', 'the image BuildAndTag pushed is deployed, pinned by the image lock'),
  depends_on: no('Kubernetes starts pods independently', 'make the service retry its dependencies, or gate it with a readiness probe'),
  links: no('services reach each other by their Service name in Kubernetes', "use the other service's name as the host name"),
  external_links: no('containers outside the project do not exist in the cluster', 'reach them through a Service of type ExternalName in a manifest'),
  network_mode: no('all pods share the cluster network', 'use hostNetwork, or several containers in one pod, in a manifest'),
  networks: no('all pods share the cluster network', 'isolate services with NetworkPolicies in a manifest'),
  container_name: no('pod names are generated by their controller', 'refer to the service by its Service name'),
  logging: no('the cluster collects what containers write to stdout and stderr', 'configure log shipping in the cluster'),
  ulimits: no('the container runtime of each node sets ulimits', "set them in the image's entrypoint (ulimit), or on the nodes"),
  sysctls: no('sysctls are a pod setting, and the kubelet accepts only an allow-list of them', 'write securityContext.sysctls in a manifest (an unsafe one needs --allowed-unsafe-sysctls on the nodes)'),
  devices: no('devices reach pods through device plugins', "request the device plugin's resource in a manifest"),
  device_cgroup_rules: no('the kubelet and device plugins decide device access', 'use a device plugin'),
  gpus: no('GPUs reach pods through a device plugin', "request the plugin's resource (such as nvidia.com/gpu) in a manifest"),
  dns: clusterDns('write dnsPolicy and dnsConfig in a manifest'),
  dns_search: clusterDns('write dnsConfig.searches in a manifest'),
  dns_opt: clusterDns('write dnsConfig.options in a manifest'),
  domainname: clusterDns('give the pods a subdomain with a headless Service in a manifest'),
  pid: no('each pod has its own process namespace', 'use shareProcessNamespace or hostPID in a manifest'),
  ipc: no('each pod has its own IPC namespace, shared by its containers', 'use hostIPC in a manifest'),
  uts: no('each pod has its own UTS namespace', "use hostNetwork in a manifest (it shares the host's UTS namespace too)"),
  userns_mode: no('user namespaces are a pod setting', 'set hostUsers in a manifest'),
  cgroup: no('the container runtime of each node sets the cgroup namespace', 'remove it'),
  cgroup_parent: no('the kubelet places pods in cgroups of its own', 'remove it'),
  security_opt: no('these options are securityContext fields in Kubernetes', 'write seccompProfile, appArmorProfile or seLinuxOptions in a manifest'),
  init: no('Kubernetes injects no init process', 'add an init (tini, dumb-init) to the image'),
  isolation: no("Windows isolation is set by the node's runtime", 'choose it with a RuntimeClass in a manifest'),
  runtime: no('the runtime is chosen by a RuntimeClass', 'set runtimeClassName in a manifest'),
  platform: no('the scheduler picks the nodes', 'use a nodeSelector on kubernetes.io/arch and kubernetes.io/os in a manifest'),
  mac_address: no('pods get their addresses from the cluster network', 'remove it'),
  group_add: no('supplemental groups are a pod setting', 'write securityContext.supplementalGroups in a manifest'),
  credential_spec: no('Windows gMSA needs a GMSACredentialSpec resource', 'set securityContext.windowsOptions in a manifest'),
  oom_score_adj: no("the kubelet derives it from the pod's QoS class", 'set deploy.resources (limits equal to reservations make the pod Guaranteed)'),
  oom_kill_disable: no('the kubelet and the kernel handle out-of-memory containers', 'set deploy.resources.limits.memory high enough'),
  cpu_count: asResources,
  cpu_percent: asResources,
  cpu_shares: asResources,
  cpu_quota: asResources,
  cpu_period: asResources,
  cpu_rt_runtime: realTime,
  cpu_rt_period: realTime,
  cpuset: no('CPU pinning is the job of the CPU manager on the nodes', 'use the static CPU manager policy with Guaranteed pods'),
  mem_swappiness: swap,
  memswap_limit: swap,
  pids_limit: no('the kubelet limits processes per pod (podPidsLimit)', 'configure podPidsLimit on the nodes'),
  blkio_config: no('Kubernetes has no block I/O limits', 'use a storage class with the I/O limits you need'),
  storage_opt: no("a container's writable layer belongs to the node", 'limit it with an ephemeral-storage resource in a manifest'),
  stop_signal: no('Kubernetes stops containers with SIGTERM', 'set STOPSIGNAL in the image'),
  volumes_from: no('pods do not share volumes with other pods', 'mount the same named volume in both services'),
  pull_refresh_after: no('the kubelet pulls by imagePullPolicy only, and a digest-pinned image never changes', 'remove it'),
  label_file: no('labels are read from the compose file only', 'put the labels in the compose file'),
  attach: no('Kubernetes does not attach to container output', 'read it with kubectl logs'),
  develop: no('compose watch is a development feature', 'remove it from the deployment'),
  pre_start: no('each hook is a container of its own, which this conversion does not build', 'write initContainers in a manifest'),
  post_start: no('a container has one postStart handler, run without its own user, directory or environment', 'write lifecycle.postStart in a manifest'),
  pre_stop: no('a container has one preStop handler, run without its own user, directory or environment', 'write lifecycle.preStop in a manifest'),
  use_api_socket: no('there is no Docker engine in the cluster', 'remove it'),
  models: no('model runners are a Docker feature', 'deploy the model server as a service of its own'),
  provider: no('a provider service is managed by an external tool, not run as a container', 'create what it stands for outside the cluster, or in a manifest'),
};

/** The `kompose.*` labels of a service (in `labels` or `deploy.labels`) that the conversion reads. */
export const KOMPOSE_LABELS = new Set([
  'kompose.controller.type', 'kompose.service.type', 'kompose.service.expose', 'kompose.service.expose.tls-secret',
  'kompose.service.expose.ingress-class-name', 'kompose.service.nodeport.port', 'kompose.service.external-traffic-policy',
  'kompose.volume.size', 'kompose.volume.storage-class-name', 'kompose.volume.type', 'kompose.volume.subpath', 'kompose.image-pull-secret',
  'kompose.image-pull-policy', 'kompose.serviceaccount-name', 'kompose.security-context.fsgroup', 'kompose.cronjob.schedule',
  'kompose.cronjob.concurrency_policy', 'kompose.cronjob.backoff_limit', 'kompose.hpa.replicas.min', 'kompose.hpa.replicas.max',
  'kompose.hpa.cpu', 'kompose.hpa.memory',
]);

const probeLabels = no('the probes are made from healthcheck:', 'write the check in healthcheck: (it becomes the liveness and readiness probes), or write probes in a manifest');

/** The other labels kompose defines (by name, or by prefix when ending in `.`), and why they are not converted. */
export const KOMPOSE_LABELS_NOT_CONVERTED: Record<string, NotConverted> = {
  'kompose.service.group': no('this conversion makes one pod per service', 'write a pod with several containers in a manifest'),
  'kompose.service.healthcheck.readiness.': probeLabels,
  'kompose.service.healthcheck.liveness.': probeLabels,
  'kompose.service.suffix-lb': no('this conversion makes one Service per compose service, for all its protocols', 'write more Services in a manifest'),
  'kompose.service.suffix-lb-tcp': no('this conversion makes one Service per compose service, for all its protocols', 'write more Services in a manifest'),
  'kompose.service.suffix-lb-udp': no('this conversion makes one Service per compose service, for all its protocols', 'write more Services in a manifest'),
  'kompose.init.containers.': no('init containers are not converted', 'write initContainers in a manifest'),
  'kompose.volume.selector': no('a claim is bound by its storage class', 'write spec.selector on the claim in a manifest'),
};

/** Why a `kompose.*` label is not converted, or undefined when the conversion reads it. */
export function komposeLabelNotConverted(key: string, supported: Set<string> = KOMPOSE_LABELS): NotConverted | undefined {
  if (supported.has(key)) return undefined;
  const rule = Object.entries(KOMPOSE_LABELS_NOT_CONVERTED).find(([name]) => (name.endsWith('.') ? key.startsWith(name) : key === name));
  return rule?.[1] ?? { why: 'kompose defines no such label', instead: 'check its spelling' };
}

/** The warning for a key that is not converted: `'key'` (of an entry) `is not converted (why; what to do).` */
export function notConvertedMessage(path: string, rule: NotConverted, of?: string): string {
  return `'${path}'${of ? ` of ${of}` : ''} is not converted (${rule.why}; ${rule.instead}).`;
}

const UNKNOWN: NotConverted = { why: 'it is not a compose-spec key', instead: 'check its spelling' };

/** Warns about each key of `value` (a service, in long syntax where it has one) that `table` does not convert. */
export function checkServiceKeys(value: Obj, warn: (message: string) => void): void {
  walk(value, SERVICE_KEYS, '', undefined, warn);
}

function walk(value: Obj, table: KeyTable, prefix: string, of: string | undefined, warn: (message: string) => void): void {
  for (const [key, sub] of Object.entries(value)) {
    if (key.startsWith('x-')) continue;
    const path = `${prefix}${key}`;
    const rule = Object.hasOwn(table, key) ? table[key] : UNKNOWN;
    if (rule === 'converted') continue;
    if ('why' in rule) {
      warn(notConvertedMessage(path, rule, of));
      continue;
    }
    const { keys, item, skip } = rule;
    if (item) {
      for (const entry of Array.isArray(sub) ? sub : []) {
        if (isObject(entry) && !skip?.(entry)) walk(entry, keys, `${path}.`, item(entry), warn);
      }
    } else if (isObject(sub)) walk(sub, keys, `${path}.`, of, warn);
  }
}

export function labelNotConverted(key: string, rule: NotConverted): string {
  return `label '${key}' is not converted (${rule.why}; ${rule.instead}).`;
}
