// Compose → Kubernetes conversion: a golden file for a fixture that uses most of what compose
// offers, OpenAPI schema validation of every generated object (kubernetes-models), the warnings
// list, and the small parsers (ports, durations, sizes, command lines).
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { loadComposeProject } from '../../tasks/lib/kube/compose-project';
import { longPorts } from '../../tasks/lib/compose/ports';
import { cpuQuantity, durationSeconds, memoryQuantity } from '../../tasks/lib/compose/units';
import { words } from '../../tasks/lib/compose/words';
import { convertCompose } from '../../tasks/lib/kube/convert';
import { renderObjects } from '../../tasks/lib/kube/manifests';
import { parsePorts } from '../../tasks/lib/kube/service';
import type { KubeObject } from '../../tasks/lib/kube/objects';
import { validateWithSchemas } from '../support/kube-schemas';

const FIXTURE = path.join(__dirname, '..', 'fixtures', 'kube', 'compose', 'docker-compose.yml');
const GOLDEN = path.join(__dirname, '..', 'fixtures', 'kube', 'compose', 'expected.yaml');
const WORKER = 'registry.example.com/shop/worker:20261122.1';

function convertFixture() {
  const project = loadComposeProject([FIXTURE], { env: {} });
  return convertCompose(project, { imageFor: (s) => (s === 'worker' ? WORKER : undefined) });
}

test('the fixture converts to the golden manifests', () => {
  const { objects } = convertFixture();
  const text = renderObjects(objects);
  if (process.env.UPDATE_GOLDEN === '1') fs.writeFileSync(GOLDEN, text);
  assert.equal(text, fs.readFileSync(GOLDEN, 'utf8'), 'the conversion output changed; review it and run with UPDATE_GOLDEN=1 to accept');
});

test('every generated object validates against the Kubernetes OpenAPI schemas', async () => {
  const { objects } = convertFixture();
  assert.equal(objects.length, 16);
  for (const obj of objects) await validateWithSchemas(obj);
  // The validator is not a rubber stamp: a wrong type is refused.
  const broken = structuredClone(objects.find((o) => o.kind === 'Deployment')!);
  (broken.spec as any).replicas = 'three';
  await assert.rejects(validateWithSchemas(broken), /replicas/);
});

test('only current API versions are emitted, and every kind the issue asks for is there', () => {
  const { objects } = convertFixture();
  const kinds = objects.map((o) => `${o.apiVersion} ${o.kind} ${o.metadata.name}`);
  assert.deepEqual(kinds, [
    'v1 ConfigMap web-env',
    'v1 ConfigMap web-config',
    'v1 Secret api-key',
    'v1 PersistentVolumeClaim uploads',
    'apps/v1 Deployment web',
    'v1 Service web',
    'networking.k8s.io/v1 Ingress web',
    'apps/v1 Deployment api',
    'v1 Service api',
    'apps/v1 StatefulSet db',
    'v1 Service db',
    'apps/v1 DaemonSet agent',
    'batch/v1 Job migrate',
    'batch/v1 CronJob report',
    'apps/v1 Deployment worker',
    'autoscaling/v2 HorizontalPodAutoscaler worker',
  ]);
  assert.ok(!kinds.some((k) => /beta|extensions\//.test(k)));
  const web = objects.find((o) => o.kind === 'Deployment' && o.metadata.name === 'web') as any;
  const c = web.spec.template.spec.containers[0];
  assert.equal(web.spec.replicas, 3);
  assert.deepEqual(c.args, ['node', 'server.js', '--port', '8080']);
  assert.deepEqual(c.resources, { limits: { cpu: '500m', memory: '512Mi' }, requests: { cpu: '250m', memory: '128Mi' } });
  assert.deepEqual(c.livenessProbe.exec.command, ['wget', '-qO-', 'http://localhost:8080/health']);
  assert.equal(c.readinessProbe.periodSeconds, 10);
  assert.equal(web.spec.template.spec.terminationGracePeriodSeconds, 90);
  assert.deepEqual(c.securityContext.capabilities, { add: ['NET_BIND_SERVICE'], drop: ['ALL'] });
  assert.equal(web.metadata.annotations['com.example.team'], 'storefront');
  const api = objects.find((o) => o.kind === 'Deployment' && o.metadata.name === 'api') as any;
  assert.deepEqual(api.spec.template.spec.containers[0].command, ['/bin/api', '--verbose', 'two words']);
  const worker = objects.find((o) => o.kind === 'Deployment' && o.metadata.name === 'worker') as any;
  assert.equal(worker.spec.replicas, undefined, 'an HPA owns the replicas');
  assert.equal(worker.spec.template.spec.containers[0].image, WORKER, 'a build-only service takes its image from the lock');
  const svc = objects.find((o) => o.kind === 'Service' && o.metadata.name === 'web') as any;
  assert.equal(svc.spec.type, 'LoadBalancer');
  assert.deepEqual(svc.spec.ports, [{ name: '80', port: 80, targetPort: 8080, protocol: 'TCP' }]);
});

test('what is not converted is listed as a warning, never dropped silently', () => {
  const { warnings } = convertFixture();
  assert.deepEqual(warnings, [
    "compose service 'web': 'build' is not converted (Kubernetes runs images and does not build them; the image BuildAndTag pushed is deployed, pinned by the image lock).",
    "compose service 'web': 'depends_on' is not converted (Kubernetes starts pods independently; make the service retry its dependencies, or gate it with a readiness probe).",
    "compose service 'api': 'networks' is not converted (all pods share the cluster network; isolate services with NetworkPolicies in a manifest).",
    "compose service 'api': bind mount './local:/srv/local' is not converted (the agent's files are not on the cluster's nodes; use configs, a ConfigMap or a named volume).",
    "compose service 'worker': 'build' is not converted (Kubernetes runs images and does not build them; the image BuildAndTag pushed is deployed, pinned by the image lock).",
  ]);
});

test('secret values are returned for masking', () => {
  const { secretValues } = convertFixture();
  assert.ok(secretValues.includes('k3y-from-file-0001\n'));
  assert.ok(secretValues.includes(Buffer.from('k3y-from-file-0001\n').toString('base64')));
});

function tempCompose(text: string, extra: Record<string, string> = {}): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'col-kconv-'));
  fs.writeFileSync(path.join(dir, 'docker-compose.yml'), text);
  for (const [f, t] of Object.entries(extra)) fs.writeFileSync(path.join(dir, f), t);
  return path.join(dir, 'docker-compose.yml');
}

test('unknown keys, kompose labels and deploy options each give a warning', () => {
  const file = tempCompose(`services:
  app:
    image: example.com/app:1
    container_name: my-app
    logging: {driver: json-file}
    restart: on-failure
    user: www-data
    labels:
      kompose.service.group: g1
      "bad key!": x
    deploy:
      placement: {constraints: ["node.role==worker"]}
      restart_policy: {condition: on-failure, max_attempts: 3}
    x-custom: ignored
`);
  const { objects, warnings } = convertCompose(loadComposeProject([file], { env: {} }));
  assert.equal(objects.length, 1);
  assert.deepEqual(warnings, [
    "compose service 'app': 'container_name' is not converted (pod names are generated by their controller; refer to the service by its Service name).",
    "compose service 'app': 'logging' is not converted (the cluster collects what containers write to stdout and stderr; configure log shipping in the cluster).",
    "compose service 'app': 'deploy.placement' is not converted (this conversion writes no scheduling rules; use nodeSelector, affinity or topologySpreadConstraints in a manifest).",
    "compose service 'app': 'deploy.restart_policy.max_attempts' is not converted (the kubelet restarts a long-running container without limit; for a Job, set kompose.cronjob.backoff_limit).",
    "compose service 'app': label 'kompose.service.group' is not converted (this conversion makes one pod per service; write a pod with several containers in a manifest).",
    "compose service 'app': label 'bad key!' is not converted (it is not a Kubernetes annotation key: [prefix/]name, the name of letters, digits, '-', '_' and '.'; rename it).",
    'compose service \'app\': restart \'on-failure\' becomes a Deployment, whose pods always restart; use restart: "no" for a run-to-completion Job.',
    "compose service 'app': user 'www-data' is not converted (Kubernetes takes a numeric user id, runAsUser; write the id, such as 1000 or 1000:1000).",
  ], 'x- extension keys are allowed by the compose spec: no warning names x-custom');
});

test('clear errors name the service', () => {
  const noImage = tempCompose('services:\n  svc:\n    build: .\n');
  assert.throws(() => convertCompose(loadComposeProject([noImage], { env: {} })), /compose service 'svc' has no image/);
  const undeclared = tempCompose('services:\n  svc:\n    image: a/b:1\n    volumes: ["data:/data"]\n');
  assert.throws(() => convertCompose(loadComposeProject([undeclared], { env: {} })), /volume 'data' is not declared/);
  const badName = tempCompose('services:\n  Bad_Name_That_Is_Far_Too_Long_For_A_Kubernetes_Object_Name_Really_Much_Too_Long:\n    image: a/b:1\n');
  assert.throws(() => convertCompose(loadComposeProject([badName], { env: {} })), /cannot be a Kubernetes name/);
  const digitName = tempCompose('services:\n  1web:\n    image: a/b:1\n    ports: ["80"]\n');
  assert.throws(() => convertCompose(loadComposeProject([digitName], { env: {} })), /Service name must start with a letter/);
});

test('port syntaxes', () => {
  // compose's short and long syntax read as compose/ports.ts reads them, then as the Service's ports
  const portsOf = (value: unknown) => parsePorts(longPorts(value, 'test'), 'test', () => undefined);
  assert.deepEqual(portsOf(['80', '8080:80', '127.0.0.1:9000:9000/udp', '3000-3002:4000-4002', { target: 53, published: '5353', protocol: 'udp' }, '[::1]:7000:7001']), [
    { target: 80, published: undefined, protocol: 'TCP' },
    { target: 80, published: 8080, protocol: 'TCP' },
    { target: 9000, published: 9000, protocol: 'UDP' },
    { target: 4000, published: 3000, protocol: 'TCP' },
    { target: 4001, published: 3001, protocol: 'TCP' },
    { target: 4002, published: 3002, protocol: 'TCP' },
    { target: 53, published: 5353, protocol: 'UDP' },
    { target: 7001, published: 7000, protocol: 'TCP' },
  ]);
  assert.throws(() => portsOf(['99999']), /not a port number/);
  assert.throws(() => portsOf(['80/icmp']), /tcp, udp or sctp/);
});

test('durations, sizes, CPUs and command lines', () => {
  assert.equal(durationSeconds('1m30s', 'x'), 90);
  assert.equal(durationSeconds('500ms', 'x'), 0.5);
  assert.equal(durationSeconds('1h', 'x'), 3600);
  assert.throws(() => durationSeconds('soon', 'here'), /here: 'soon' is not a duration/);
  assert.equal(memoryQuantity('512M', 'x'), '512Mi');
  assert.equal(memoryQuantity('1g', 'x'), '1Gi');
  assert.equal(memoryQuantity('1.5GB', 'x'), '1536Mi');
  assert.equal(memoryQuantity('100000', 'x'), '100000');
  assert.equal(cpuQuantity('0.5', 'x'), '500m');
  assert.equal(cpuQuantity(2, 'x'), '2');
  assert.deepEqual(words(`sh -c 'echo "hi there"' a\\ b "c d"`, 'x'), ['sh', '-c', 'echo "hi there"', 'a b', 'c d']);
  assert.throws(() => words('echo "open', 'cmd'), /unclosed double quote/);
});

test('env_file and compose variables: values from the project environment', () => {
  const file = tempCompose(`services:
  app:
    image: example.com/app:\${TAG:-2}
    environment:
      - FROM_PIPELINE
      - FIXED=1
`);
  const { objects, warnings } = convertCompose(loadComposeProject([file], { env: { FROM_PIPELINE: 'yes' } }));
  const c = (objects[0] as any).spec.template.spec.containers[0];
  assert.equal(c.image, 'example.com/app:2');
  assert.deepEqual(c.env, [{ name: 'FROM_PIPELINE', value: 'yes' }, { name: 'FIXED', value: '1' }]);
  assert.deepEqual(warnings, []);
});

/** Converts one compose file's text; every object made must be valid Kubernetes. */
async function convertText(text: string, extra: Record<string, string> = {}) {
  const conversion = convertCompose(loadComposeProject([tempCompose(text, extra)], { env: {} }));
  for (const obj of conversion.objects) await validateWithSchemas(obj);
  return conversion;
}

const byName = (objects: KubeObject[], kind: string, name: string) => objects.find((o) => o.kind === kind && o.metadata.name === name) as any;
const COMMON = { 'app.kubernetes.io/part-of': 'app', 'app.kubernetes.io/managed-by': 'container-outer-loop' };

test('anonymous volumes become claims, kept across rollouts as compose keeps them; per replica in a StatefulSet', async () => {
  const { objects, warnings } = await convertText(`name: app
services:
  one:
    image: example.com/one:1
    volumes: ["/var/lib/one", {type: volume, target: /cache, read_only: true}]
  many:
    image: example.com/many:1
    deploy: {replicas: 3}
    volumes: ["/data", "shared:/shared"]
  scaled:
    image: example.com/scaled:1
    labels: {kompose.hpa.replicas.max: "4"}
    volumes: ["/data"]
  pinned:
    image: example.com/pinned:1
    labels: {kompose.controller.type: deployment}
    deploy: {replicas: 2}
    volumes: ["/data"]
  agent:
    image: example.com/agent:1
    deploy: {mode: global}
    volumes: ["/state"]
  other:
    image: example.com/other:1
    volumes: ["shared:/shared"]
volumes:
  shared: {}
`);
  const one = byName(objects, 'Deployment', 'one').spec.template.spec;
  assert.deepEqual(one.containers[0].volumeMounts, [{ name: 'one-var-lib-one', mountPath: '/var/lib/one' }, { name: 'one-cache', mountPath: '/cache', readOnly: true }]);
  assert.deepEqual(one.volumes, [{ name: 'one-var-lib-one', persistentVolumeClaim: { claimName: 'one-var-lib-one' } }, { name: 'one-cache', persistentVolumeClaim: { claimName: 'one-cache' } }]);
  assert.deepEqual(byName(objects, 'PersistentVolumeClaim', 'one-var-lib-one'), {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: { name: 'one-var-lib-one', labels: COMMON },
    spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '100Mi' } } },
  });
  assert.ok(!objects.some((o) => JSON.stringify(o).includes('emptyDir')), 'no anonymous volume is an emptyDir');

  // Several replicas: each gets its own claim, as each compose container gets its own volume.
  const many = byName(objects, 'StatefulSet', 'many');
  assert.equal(many.spec.replicas, 3);
  assert.deepEqual(many.spec.volumeClaimTemplates.map((c: KubeObject) => c.metadata.name), ['many-data']);
  assert.deepEqual(many.spec.template.spec.containers[0].volumeMounts, [{ name: 'many-data', mountPath: '/data' }, { name: 'shared', mountPath: '/shared' }]);
  assert.deepEqual(many.spec.template.spec.volumes, [{ name: 'shared', persistentVolumeClaim: { claimName: 'shared' } }], 'a named volume other services mount stays one claim');
  assert.deepEqual(byName(objects, 'StatefulSet', 'scaled').spec.volumeClaimTemplates.map((c: KubeObject) => c.metadata.name), ['scaled-data'], 'an autoscaled service has several replicas too');
  assert.ok(byName(objects, 'Deployment', 'pinned'));
  assert.ok(byName(objects, 'DaemonSet', 'agent'));
  assert.deepEqual(warnings, [
    "compose service 'pinned': the anonymous volume at /data becomes the claim 'pinned-data', which all pods of the Deployment share, where compose gives each container its own; a ReadWriteOnce claim is mounted on one node only (remove kompose.controller.type: deployment to get a StatefulSet with a claim per replica).",
    "compose service 'agent': the anonymous volume at /state becomes the claim 'agent-state', which all pods of the DaemonSet share, where compose gives each container its own; a ReadWriteOnce claim is mounted on one node only (use a ReadWriteMany storage class with kompose.volume.storage-class-name).",
    "compose service 'other': volume 'shared' is shared with another service ('many'): a ReadWriteOnce claim can only be mounted by pods on one node (use a ReadWriteMany storage class with kompose.volume.storage-class-name, or keep the pods on one node).",
  ]);
});

test('one service mounting a named volume twice is not told the volume is shared', async () => {
  const { objects, warnings } = await convertText(`services:
  app:
    image: example.com/app:1
    volumes: ["data:/data", {type: volume, source: data, target: /logs, volume: {subpath: logs}}]
volumes:
  data: {}
`);
  assert.deepEqual(warnings, []);
  const pod = byName(objects, 'Deployment', 'app').spec.template.spec;
  assert.deepEqual(pod.containers[0].volumeMounts, [{ name: 'data', mountPath: '/data' }, { name: 'data', mountPath: '/logs', subPath: 'logs' }]);
  assert.deepEqual(pod.volumes, [{ name: 'data', persistentVolumeClaim: { claimName: 'data' } }]);
  assert.equal(objects.filter((o) => o.kind === 'PersistentVolumeClaim').length, 1);
});

test('volume subpath, kompose.volume.subpath, nocopy and the :z/:Z flags', async () => {
  const { objects, warnings } = await convertText(`services:
  app:
    image: example.com/app:1
    labels: {kompose.volume.subpath: app}
    volumes: ["data:/data:nocopy", "data:/labelled:ro,z", "cache:/private:Z", {type: volume, source: data, target: /own, volume: {subpath: own/dir}}]
volumes:
  data: {labels: {com.example.backup: daily, kompose.volume.size: 1Gi, kompose.volume.selector: fast}}
  cache: {}
`);
  const pod = byName(objects, 'Deployment', 'app').spec.template.spec;
  assert.deepEqual(pod.containers[0].volumeMounts, [
    { name: 'data', mountPath: '/data', subPath: 'app' },
    { name: 'data', mountPath: '/labelled', readOnly: true, subPath: 'app' },
    { name: 'cache', mountPath: '/private', subPath: 'app' },
    { name: 'data', mountPath: '/own', subPath: 'own/dir' },
  ]);
  const claim = byName(objects, 'PersistentVolumeClaim', 'data');
  assert.deepEqual(claim.metadata.annotations, { 'com.example.backup': 'daily' });
  assert.deepEqual(claim.spec.resources, { requests: { storage: '1Gi' } });
  assert.deepEqual(warnings, [
    "compose service 'app': 'volumes.volume.nocopy' of the volume at /data is not converted (a claim starts empty: Kubernetes never copies the image's files into a volume, with nocopy or without; nothing to change; a service that relies on that copy needs an init container that fills the claim).",
    "compose service 'app': 'volumes.bind.selinux' of the volume at /labelled is not converted (SELinux relabelling is done by the container runtime, and a claim cannot ask for it; if your nodes enforce SELinux, set seLinuxOptions in the pod securityContext in a manifest).",
    "compose service 'app': 'volumes.bind.selinux' of the volume at /private is not converted (SELinux relabelling is done by the container runtime, and a claim cannot ask for it; if your nodes enforce SELinux, set seLinuxOptions in the pod securityContext in a manifest).",
    "compose service 'app': volume 'data': label 'kompose.volume.selector' is not converted (a claim is bound by its storage class; write spec.selector on the claim in a manifest).",
  ]);
  assert.throws(() => convertCompose(loadComposeProject([tempCompose('services:\n  app:\n    image: a/b:1\n    volumes: [{type: volume, source: d, target: /d, volume: {subpath: ../up}}]\nvolumes:\n  d: {}\n')], { env: {} })), {
    message: "compose service 'app': the subpath '../up' of the volume at /d must be a relative path inside the volume, without '..'.",
  });
});

test('tmpfs options: size becomes the sizeLimit of a Memory emptyDir, the others are named', async () => {
  const { objects, warnings } = await convertText(`services:
  app:
    image: example.com/app:1
    tmpfs: ["/run:size=64m,mode=1770,uid=1000", "/tmp"]
    volumes: [{type: tmpfs, target: /scratch, tmpfs: {size: 1g, mode: 0o1777}}]
`);
  const pod = byName(objects, 'Deployment', 'app').spec.template.spec;
  assert.deepEqual(pod.volumes, [
    { name: 'tmpfs-0', emptyDir: { medium: 'Memory', sizeLimit: '64Mi' } },
    { name: 'tmpfs-1', emptyDir: { medium: 'Memory' } },
    { name: 'tmpfs-2', emptyDir: { medium: 'Memory', sizeLimit: '1Gi' } },
  ]);
  assert.deepEqual(pod.containers[0].volumeMounts, [{ name: 'tmpfs-0', mountPath: '/run' }, { name: 'tmpfs-1', mountPath: '/tmp' }, { name: 'tmpfs-2', mountPath: '/scratch' }]);
  assert.deepEqual(warnings, [
    "compose service 'app': 'volumes.tmpfs.mode' of the volume at /scratch is not converted (an emptyDir gets the mode the kubelet gives it; set the mode in the image, or give the group access with kompose.security-context.fsgroup).",
    "compose service 'app': option 'mode=1770' of tmpfs /run is not converted (a Memory emptyDir has the mode, owner and mount options the kubelet gives it; set ownership with kompose.security-context.fsgroup).",
    "compose service 'app': option 'uid=1000' of tmpfs /run is not converted (a Memory emptyDir has the mode, owner and mount options the kubelet gives it; set ownership with kompose.security-context.fsgroup).",
  ]);
});

test('port names and application protocols reach the container and the Service', async () => {
  const { objects, warnings } = await convertText(`services:
  app:
    image: example.com/app:1
    ports:
      - {target: 8080, published: 80, name: web, app_protocol: http}
      - {target: 9090, name: metrics}
      - {target: 9091, name: Metrics Port}
      - {target: 9092, name: metrics}
      - {target: 50051, app_protocol: kubernetes.io/h2c}
`);
  assert.deepEqual(byName(objects, 'Deployment', 'app').spec.template.spec.containers[0].ports, [
    { name: 'web', containerPort: 8080, protocol: 'TCP' },
    { name: 'metrics', containerPort: 9090, protocol: 'TCP' },
    { containerPort: 9091, protocol: 'TCP' },
    { containerPort: 9092, protocol: 'TCP' },
    { containerPort: 50051, protocol: 'TCP' },
  ]);
  assert.deepEqual(byName(objects, 'Service', 'app').spec.ports, [
    { name: 'web', port: 80, targetPort: 8080, protocol: 'TCP', appProtocol: 'http' },
    { name: 'metrics', port: 9090, targetPort: 9090, protocol: 'TCP' },
    { name: '9091', port: 9091, targetPort: 9091, protocol: 'TCP' },
    { name: '9092', port: 9092, targetPort: 9092, protocol: 'TCP' },
    { name: '50051', port: 50051, targetPort: 50051, protocol: 'TCP', appProtocol: 'kubernetes.io/h2c' },
  ]);
  assert.deepEqual(warnings, [
    "compose service 'app': 'ports.name' 'Metrics Port' of port 9091 is not converted (a Kubernetes port name has at most 15 lower-case letters, digits and '-', with a letter; rename it).",
    "compose service 'app': 'ports.name' 'metrics' of port 9092 is not converted (another port has that name, and Kubernetes needs them unique; rename it).",
  ]);
});

test('kompose labels in deploy.labels are read as in labels; the others are named', async () => {
  const { objects, warnings } = await convertText(`services:
  app:
    image: example.com/app:1
    ports: ["80"]
    labels: {kompose.service.type: loadbalancer}
    deploy:
      labels:
        kompose.service.type: nodeport
        kompose.service.expose: app.example.com
        kompose.service.group: g
        kompose.service.healthcheck.readiness.http_get_path: /ready
        kompose.volumes.size: 1Gi
        com.example.tier: web
`);
  assert.equal(byName(objects, 'Service', 'app').spec.type, 'LoadBalancer', 'labels win over deploy.labels');
  assert.equal(byName(objects, 'Ingress', 'app').spec.rules[0].host, 'app.example.com');
  assert.deepEqual(byName(objects, 'Deployment', 'app').metadata.annotations, { 'com.example.tier': 'web' });
  assert.deepEqual(warnings, [
    "compose service 'app': label 'kompose.service.type' is set in labels ('loadbalancer') and in deploy.labels ('nodeport'); the value in labels is used.",
    "compose service 'app': label 'kompose.service.group' is not converted (this conversion makes one pod per service; write a pod with several containers in a manifest).",
    "compose service 'app': label 'kompose.service.healthcheck.readiness.http_get_path' is not converted (the probes are made from healthcheck:; write the check in healthcheck: (it becomes the liveness and readiness probes), or write probes in a manifest).",
    "compose service 'app': label 'kompose.volumes.size' is not converted (kompose defines no such label; check its spelling).",
  ]);
});

test('a Windows container path gets a readable message', () => {
  for (const volume of ['"C:\\\\data"', '"data:C:\\\\data"', '{type: volume, source: data, target: "C:\\\\data"}']) {
    const file = tempCompose(`services:\n  win:\n    image: example.com/win:1\n    volumes: [${volume}]\nvolumes:\n  data: {}\n`);
    assert.throws(() => convertCompose(loadComposeProject([file], { env: {} })), {
      message: "compose service 'win': the volume at C:\\data has a Windows container path. This conversion makes Linux pods, whose container paths start with '/'; deploy Windows containers with manifests of your own (source: manifests).",
    });
  }
  const relative = tempCompose('services:\n  app:\n    image: example.com/app:1\n    volumes: ["data:data"]\nvolumes:\n  data: {}\n');
  assert.throws(() => convertCompose(loadComposeProject([relative], { env: {} })), { message: "compose service 'app': the volume at 'data' needs an absolute container path, such as /data." });
});

test('bind mounts and other volume types are named, not dropped', async () => {
  const { warnings } = await convertText(`services:
  app:
    image: example.com/app:1
    volumes: ["./conf:/etc/app:ro,z", {type: npipe, source: '\\\\\\\\.\\\\pipe\\\\docker_engine', target: /pipe}, {type: image, source: example.com/models:1, target: /models}]
`);
  assert.deepEqual(warnings, [
    "compose service 'app': bind mount './conf:/etc/app' is not converted (the agent's files are not on the cluster's nodes; use configs, a ConfigMap or a named volume).",
    "compose service 'app': the volume of type npipe at /pipe is not converted (named pipes are a feature of Windows hosts; remove it).",
    "compose service 'app': the volume of type image at /models is not converted (image volumes need the ImageVolume feature of recent clusters; mount the image with an image volume in a manifest).",
  ]);
});

test('a short volume mode Compose ignores is named too', async () => {
  const { warnings } = await convertText('services:\n  app:\n    image: example.com/app:1\n    volumes: ["data:/data:cached"]\nvolumes:\n  data: {}\n');
  assert.deepEqual(warnings, ["compose service 'app': mode 'cached' of volume 'data:/data:cached' is not converted (Compose ignores it too; remove it)."]);
});
