// A compose service's ports as a Kubernetes Service (its type from `kompose.service.type`) and an
// Ingress (`kompose.service.expose`): `ports` are published on the Service at their published port,
// `expose` at their target port.
import { LongPort, Protocol, portNumber, portProtocol, portRange } from '../compose/ports';
import { InputError } from '../errors';
import { DNS_1035, DNS_LABEL, Obj, QUALIFIED_NAME, ServiceContext, WorkloadKind } from './convert-context';
import type { KubeObject } from './objects';

export interface PortSpec {
  target: number;
  published?: number;
  protocol: Protocol;
  /** The port's name, on the container and on the Service. */
  name?: string;
  appProtocol?: string;
}

/** A container port name (IANA_SVC_NAME): at most 15 lower-case letters, digits and single '-', with a letter. */
function isPortName(name: string): boolean {
  return name.length <= 15 && DNS_LABEL.test(name) && /[a-z]/.test(name) && !name.includes('--');
}

/** Long-syntax ports (compose/ports.ts longPorts) as the container's and the Service's; what Kubernetes cannot name is warned about. */
export function parsePorts(ports: LongPort[], where: string, warn: (message: string) => void): PortSpec[] {
  const names = new Set<string>();
  return ports.map((item) => {
    const target = portNumber(String(item.target), where, 'ports.target');
    const published = item.published === undefined || item.published === null || item.published === '' ? undefined : portRange(String(item.published), where, 'ports.published')[0];
    if (item.mode === 'host') warn(`'ports.mode' host of port ${target} is not converted (a Service balances over the pods and publishes no port of a node; write hostPort in a manifest).`);
    const port: PortSpec = { target, published, protocol: portProtocol(item.protocol, where) };
    if (item.name !== undefined) {
      const name = String(item.name);
      if (!isPortName(name)) warn(`'ports.name' '${name}' of port ${target} is not converted (a Kubernetes port name has at most 15 lower-case letters, digits and '-', with a letter; rename it).`);
      else if (names.has(name)) warn(`'ports.name' '${name}' of port ${target} is not converted (another port has that name, and Kubernetes needs them unique; rename it).`);
      else {
        names.add(name);
        port.name = name;
      }
    }
    if (item.app_protocol !== undefined) {
      const appProtocol = String(item.app_protocol);
      if (QUALIFIED_NAME.test(appProtocol)) port.appProtocol = appProtocol;
      else warn(`'ports.app_protocol' '${appProtocol}' of port ${target} is not converted (Kubernetes takes a name such as http, or a prefixed one such as kubernetes.io/h2c; change it).`);
    }
    return port;
  });
}

/** The container's `ports`: each target port and protocol once. */
export function containerPorts(ports: PortSpec[], exposed: PortSpec[]): Obj[] {
  return uniqueBy([...ports, ...exposed], (p) => `${p.target}/${p.protocol}`).map((p) => ({ ...(p.name ? { name: p.name } : {}), containerPort: p.target, protocol: p.protocol }));
}

/** The Service of a compose service's `ports` and `expose` (or a headless one), and the Ingress `kompose.service.expose` asks for. */
export function serviceAndIngress(
  ctx: ServiceContext,
  s: { service: string; kind: WorkloadKind; selector: Record<string, string>; labels: Record<string, string>; annotations: Record<string, string>; ports: PortSpec[]; exposed: PortSpec[] },
): KubeObject[] {
  const objects: KubeObject[] = [];
  const servicePorts = uniqueBy(
    [
      ...s.ports.map((p) => ({ ...p, port: p.published ?? p.target, nodePort: p.published })),
      ...s.exposed.map((p) => ({ ...p, port: p.target, nodePort: undefined })),
    ],
    (p) => `${p.port}/${p.protocol}`,
  );
  const serviceType = (ctx.labels['kompose.service.type'] ?? '').toLowerCase();
  if (servicePorts.length || serviceType === 'headless') {
    if (!DNS_1035.test(ctx.k8s)) throw new InputError(`${ctx.where}: a Service name must start with a letter; rename the compose service '${s.service}'.`);
    if (s.kind === 'Job' || s.kind === 'CronJob') ctx.warn('ports of a run-to-completion service get a Service anyway; nothing may answer on it for long.');
    objects.push(serviceFor(ctx.k8s, s.selector, s.labels, s.annotations, servicePorts, serviceType, ctx));
  }
  const expose = ctx.labels['kompose.service.expose'];
  if (expose !== undefined && expose !== '' && expose.toLowerCase() !== 'false') {
    if (!servicePorts.length) ctx.warn('label kompose.service.expose is not converted (an Ingress routes to a port, and the service has none; add ports).');
    else objects.push(ingressFor(ctx.k8s, s.labels, expose, servicePorts[0].port, ctx.labels));
  }
  return objects;
}

function serviceFor(
  name: string,
  selector: Record<string, string>,
  labels: Record<string, string>,
  annotations: Record<string, string>,
  ports: (PortSpec & { port: number })[],
  type: string,
  ctx: ServiceContext,
): KubeObject {
  const composeLabels = ctx.labels;
  const spec: Obj = { selector };
  const types: Record<string, string> = { clusterip: 'ClusterIP', nodeport: 'NodePort', loadbalancer: 'LoadBalancer', headless: 'ClusterIP', '': 'ClusterIP' };
  if (!(type in types)) ctx.warn(`label kompose.service.type '${type}' is not converted (clusterip, nodeport, loadbalancer and headless are; ClusterIP is used).`);
  spec.type = types[type] ?? 'ClusterIP';
  if (type === 'headless') spec.clusterIP = 'None';
  const nodePortLabel = composeLabels['kompose.service.nodeport.port'];
  spec.ports = ports.map((p, i) => {
    const port: Obj = { name: p.name ?? `${p.port}${p.protocol === 'TCP' ? '' : `-${p.protocol.toLowerCase()}`}`, port: p.port, targetPort: p.target, protocol: p.protocol };
    if (p.appProtocol) port.appProtocol = p.appProtocol;
    if (spec.type === 'NodePort' && i === 0 && nodePortLabel) {
      const n = Number(nodePortLabel);
      if (Number.isInteger(n) && n >= 1 && n <= 65535) port.nodePort = n;
      else ctx.warn(`label kompose.service.nodeport.port '${nodePortLabel}' is not converted (it must be a port number; change it).`);
    }
    return port;
  });
  const policy = composeLabels['kompose.service.external-traffic-policy'];
  if (policy) {
    const v = policy.toLowerCase() === 'local' ? 'Local' : policy.toLowerCase() === 'cluster' ? 'Cluster' : undefined;
    if (v && (spec.type === 'NodePort' || spec.type === 'LoadBalancer')) spec.externalTrafficPolicy = v;
    else ctx.warn(`label kompose.service.external-traffic-policy '${policy}' is not converted (it applies to NodePort and LoadBalancer services, as Local or Cluster; change it).`);
  }
  const metadata: KubeObject['metadata'] = { name, labels: { ...labels } };
  if (Object.keys(annotations).length) metadata.annotations = { ...annotations };
  return { apiVersion: 'v1', kind: 'Service', metadata, spec };
}

function ingressFor(name: string, labels: Record<string, string>, expose: string, port: number, composeLabels: Record<string, string>): KubeObject {
  const backend = { service: { name, port: { number: port } } };
  const hosts = expose.toLowerCase() === 'true' ? [''] : expose.split(',').map((h) => h.trim()).filter(Boolean);
  const rules = hosts.map((entry) => {
    const slash = entry.indexOf('/');
    const host = slash < 0 ? entry : entry.slice(0, slash);
    const p = slash < 0 ? '/' : entry.slice(slash);
    const rule: Obj = host ? { host } : {};
    rule.http = { paths: [{ path: p, pathType: 'Prefix', backend }] };
    return rule;
  });
  const spec: Obj = { rules };
  const className = composeLabels['kompose.service.expose.ingress-class-name'];
  if (className) spec.ingressClassName = className;
  const tlsSecret = composeLabels['kompose.service.expose.tls-secret'];
  if (tlsSecret) {
    const tlsHosts = rules.map((r) => r.host).filter((h): h is string => typeof h === 'string');
    spec.tls = [tlsHosts.length ? { hosts: tlsHosts, secretName: tlsSecret } : { secretName: tlsSecret }];
  }
  return { apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', metadata: { name, labels: { ...labels } }, spec };
}

function uniqueBy<T>(items: T[], key: (t: T) => string): T[] {
  const seen = new Set<string>();
  return items.filter((i) => {
    const k = key(i);
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}
