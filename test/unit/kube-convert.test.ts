// Compose → Kubernetes conversion: a golden file for a fixture that uses most of what compose
// offers, OpenAPI schema validation of every generated object (kubernetes-models), the warnings
// list, and the small parsers (ports, durations, sizes, command lines).
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { loadComposeProject } from '../../tasks/lib/kube/compose-project';
import { convertCompose, cpuQuantity, durationSeconds, memoryQuantity, parsePortsForTest, words } from '../../tasks/lib/kube/convert';
import { renderObjects } from '../../tasks/lib/kube/manifests';
import type { KubeObject } from '../../tasks/lib/kube/objects';

const FIXTURE = path.join(__dirname, '..', 'fixtures', 'kube', 'compose', 'docker-compose.yml');
const GOLDEN = path.join(__dirname, '..', 'fixtures', 'kube', 'compose', 'expected.yaml');
const WORKER = 'registry.example.com/shop/worker:20261122.1';

function convertFixture() {
  const project = loadComposeProject([FIXTURE], { env: {} });
  return convertCompose(project, { imageFor: (s) => (s === 'worker' ? WORKER : undefined) });
}

/** Validates an object with the kubernetes-models class for its apiVersion and kind (OpenAPI schemas). */
export async function validateWithSchemas(obj: KubeObject): Promise<void> {
  const modules: Record<string, () => Promise<Record<string, unknown>>> = {
    v1: () => import('kubernetes-models/v1'),
    'apps/v1': () => import('kubernetes-models/apps/v1'),
    'batch/v1': () => import('kubernetes-models/batch/v1'),
    'networking.k8s.io/v1': () => import('kubernetes-models/networking.k8s.io/v1'),
    'autoscaling/v2': () => import('kubernetes-models/autoscaling/v2'),
  };
  const load = modules[obj.apiVersion];
  assert.ok(load, `${obj.kind} uses apiVersion ${obj.apiVersion}, which is not a current API version`);
  const Model = (await load())[obj.kind] as new (data: unknown) => { validate(): void };
  assert.ok(Model, `no model for ${obj.apiVersion} ${obj.kind}`);
  new Model(obj).validate();
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
  assert.deepEqual(parsePortsForTest(['80', '8080:80', '127.0.0.1:9000:9000/udp', '3000-3002:4000-4002', { target: 53, published: '5353', protocol: 'udp' }, '[::1]:7000:7001']), [
    { target: 80, published: undefined, protocol: 'TCP' },
    { target: 80, published: 8080, protocol: 'TCP' },
    { target: 9000, published: 9000, protocol: 'UDP' },
    { target: 4000, published: 3000, protocol: 'TCP' },
    { target: 4001, published: 3001, protocol: 'TCP' },
    { target: 4002, published: 3002, protocol: 'TCP' },
    { target: 53, published: 5353, protocol: 'UDP' },
    { target: 7001, published: 7000, protocol: 'TCP' },
  ]);
  assert.throws(() => parsePortsForTest(['99999']), /not a port number/);
  assert.throws(() => parsePortsForTest(['80/icmp']), /tcp, udp or sctp/);
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
