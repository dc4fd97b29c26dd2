// KubernetesDeploy drops no compose key silently. The fixture compose-spec-service-keys.json lists
// every key (and sub-key) the compose-spec's JSON schema defines for a service, walked from the
// schema of the compose-go that the harness's Compose v2 is built with; a test checks it is still
// that list. For each key the conversion's table (tasks/lib/kube/compose-keys.ts) says converted
// or not, and a sample service below uses it: a converted key must show in the objects (field
// values asserted), a key that is not converted must be named in a warning (the exact list of
// warnings is asserted). All samples are services of one project that Compose v2 must accept, so
// none is a shape Compose would refuse; every object made is validated against the Kubernetes
// OpenAPI schemas.
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseVolumeSpec } from '../../tasks/lib/compose/volume-spec';
import { KeyRule, KeyTable, NotConverted, SERVICE_KEYS, notConvertedMessage } from '../../tasks/lib/kube/compose-keys';
import { loadComposeProject } from '../../tasks/lib/kube/compose-project';
import { Conversion, convertCompose } from '../../tasks/lib/kube/convert';
import { renderObjects } from '../../tasks/lib/kube/manifests';
import type { KubeObject } from '../../tasks/lib/kube/objects';
import { isObject } from '../../tasks/lib/util/object';
import { composeV2Binary } from '../support/stack';
import { validateWithSchemas } from '../support/kube-schemas';

type Obj = Record<string, unknown>;

const FIXTURE = path.join(__dirname, '..', 'fixtures', 'kube', 'compose-spec-service-keys.json');
const COMPOSE_GO = 'github.com/compose-spec/compose-go/v2';
const SCHEMA_FILE = 'schema/compose-spec.json';

interface KeysFixture {
  $comment: string;
  source: { module: string; version: string; sum: string; file: string; url: string; walked: string };
  keys: string[];
}

const fixture = JSON.parse(fs.readFileSync(FIXTURE, 'utf8')) as KeysFixture;

// ---- the keys of a service in the compose-spec schema ------------------------------------------

/**
 * Every property path under `$defs.service`: the properties of its alternatives (`oneOf`, `anyOf`,
 * `allOf`), of list items, and of mapping values (`*`), `x-` extensions left out. A definition that
 * already encloses a path is not walked again below it (a `pre_start` hook is a container spec, as
 * the service itself is): its keys are those of the service.
 */
function schemaServiceKeys(schema: { $defs: Record<string, Obj> }): string[] {
  const props = (node: Obj, enclosing: Set<string>): [string, Obj][] => {
    if (typeof node.$ref === 'string') {
      const name = node.$ref.split('/').pop() as string;
      if (enclosing.has(name)) return [];
      enclosing.add(name);
      node = schema.$defs[name];
    }
    const out = Object.entries((node.properties ?? {}) as Record<string, Obj>);
    for (const alt of [...((node.oneOf ?? []) as Obj[]), ...((node.anyOf ?? []) as Obj[]), ...((node.allOf ?? []) as Obj[])]) out.push(...props(alt, enclosing));
    if (node.items) out.push(...props(node.items as Obj, enclosing));
    const values = [...Object.entries((node.patternProperties ?? {}) as Record<string, Obj>).filter(([p]) => p !== '^x-').map(([, v]) => v)];
    if (node.additionalProperties && typeof node.additionalProperties === 'object') values.push(node.additionalProperties as Obj);
    for (const v of values) out.push(...props(v, enclosing).map(([k, s]): [string, Obj] => [`*.${k}`, s]));
    return out;
  };
  const keys: string[] = [];
  const visit = (node: Obj, prefix: string, enclosing: Set<string>) => {
    const byKey = new Map<string, Obj[]>();
    for (const [k, s] of props(node, enclosing)) byKey.set(k, [...(byKey.get(k) ?? []), s]);
    for (const [k, subs] of byKey) {
      if (!keys.includes(`${prefix}${k}`)) keys.push(`${prefix}${k}`);
      for (const s of subs) visit(s, `${prefix}${k}.`, new Set(enclosing));
    }
  };
  visit({ $ref: '#/$defs/service' }, '', new Set());
  return keys;
}

/** The compose-go module the Compose binary was built with, and where Go keeps its source. */
function composeGoOf(binary: string): { version: string; sum: string; dir: string } {
  const info = execFileSync('go', ['version', '-m', binary], { encoding: 'utf8' });
  const dep = new RegExp(`^\\s+dep\\s+${COMPOSE_GO.replace(/[./]/g, '\\$&')}\\s+(\\S+)\\s+(\\S+)`, 'm').exec(info);
  assert.ok(dep, `${binary} names no ${COMPOSE_GO} module:\n${info}`);
  const download = JSON.parse(execFileSync('go', ['mod', 'download', '-json', `${COMPOSE_GO}@${dep[1]}`], { encoding: 'utf8' })) as { Dir: string; Sum: string };
  return { version: dep[1], sum: download.Sum, dir: download.Dir };
}

test("the fixture lists the service keys of the compose-spec schema that the harness's Compose v2 uses", async () => {
  const goModule = composeGoOf(await composeV2Binary());
  const keys = schemaServiceKeys(JSON.parse(fs.readFileSync(path.join(goModule.dir, SCHEMA_FILE), 'utf8')));
  if (process.env.UPDATE_FIXTURE === '1') {
    const updated: KeysFixture = {
      $comment: 'Every key the compose-spec defines for a service, walked from the JSON schema of compose-go (module, version and go.sum hash below), as test/unit/kube-convert-keys.test.ts walks it. Regenerate with UPDATE_FIXTURE=1 when the harness moves to another Compose v2.',
      source: { module: COMPOSE_GO, version: goModule.version, sum: goModule.sum, file: SCHEMA_FILE, url: `https://github.com/compose-spec/compose-go/blob/${goModule.version}/${SCHEMA_FILE}`, walked: '$defs.service' },
      keys,
    };
    fs.writeFileSync(FIXTURE, `${JSON.stringify(updated, null, 2)}\n`);
  }
  assert.equal(fixture.source.version, goModule.version, 'the harness builds Compose v2 with another compose-go: run with UPDATE_FIXTURE=1 and convert or warn about the new keys');
  assert.equal(fixture.source.sum, goModule.sum);
  assert.deepEqual(fixture.keys, keys);
  assert.ok(keys.length > 250 && keys.includes('volumes.volume.subpath') && keys.includes('ports.app_protocol'), `${keys.length} keys`);
});

// ---- the conversion's table against the keys ---------------------------------------------------

/** The rule for a key path, and the not-converted key above it that covers it, if any. */
function ruleOf(key: string): { rule?: KeyRule; coveredBy?: string } {
  let table: KeyTable = SERVICE_KEYS;
  const parts = key.split('.');
  for (let i = 0; i < parts.length; i++) {
    const rule = Object.hasOwn(table, parts[i]) ? table[parts[i]] : undefined;
    if (rule === undefined || i === parts.length - 1) return { rule };
    if (rule === 'converted') return {};
    if ('why' in rule) return { coveredBy: parts.slice(0, i + 1).join('.') };
    table = rule.keys;
  }
  return {};
}

/** Every key path the table names. */
function tableKeys(table: KeyTable, prefix = ''): string[] {
  return Object.entries(table).flatMap(([k, rule]) => [`${prefix}${k}`, ...(typeof rule === 'object' && 'keys' in rule ? tableKeys(rule.keys, `${prefix}${k}.`) : [])]);
}

test('the conversion says, for every key of the spec, that it converts it or why not; it names no other key', () => {
  const unknown = fixture.keys.filter((k) => {
    const { rule, coveredBy } = ruleOf(k);
    return rule === undefined && coveredBy === undefined;
  });
  assert.deepEqual(unknown, [], 'keys the conversion table does not cover');
  assert.deepEqual(tableKeys(SERVICE_KEYS).filter((k) => !fixture.keys.includes(k)), [], 'keys the spec does not define');
});

// ---- a sample service for every key --------------------------------------------------------------

interface Made {
  /** The objects named after the sample's service. */
  objects: KubeObject[];
  kind: string;
  /** The pod template's metadata and spec. */
  podMetadata: Obj;
  pod: Obj;
  container: Obj;
  /** The Service, when one was made. */
  service?: Obj;
  claims: Obj[];
}

interface Sample {
  service: Obj;
  /** The warnings, when the sample's key is converted (none by default), or not converted but warned about in its own words. */
  warnings?: string[];
  /** A key that is not converted: the entry its warning names (`of port 80`). */
  of?: string;
  /** Field values a converted key produced. */
  check?: (made: Made) => void;
  /** Top-level declarations the sample needs (volumes, networks, ...). */
  top?: Obj;
}

const IMAGE = 'registry.example.com/app:1';
const mounts = (m: Made) => m.container.volumeMounts as Obj[];
const podVolume = (m: Made, name: string) => (m.pod.volumes as Obj[]).find((v) => v.name === name);
const cfgTop = { configs: { cfg: { content: 'a=1\n' } } };
const secTop = { secrets: { sec: { file: './sec.txt' } } };
const vol = (name: string) => ({ volumes: { [name]: {} } });

const SAMPLES: Record<string, Sample> = {
  // ---- converted
  image: { service: {}, check: (m) => assert.equal(m.container.image, IMAGE) },
  command: { service: { command: 'serve --port "80 80"' }, check: (m) => assert.deepEqual(m.container.args, ['serve', '--port', '80 80']) },
  entrypoint: { service: { entrypoint: ['/bin/app', '-v'] }, check: (m) => assert.deepEqual(m.container.command, ['/bin/app', '-v']) },
  environment: { service: { environment: { A: '1' } }, check: (m) => assert.deepEqual(m.container.env, [{ name: 'A', value: '1' }]) },
  'env_file.path': { service: { env_file: [{ path: './app.env' }] }, check: (m) => assert.deepEqual(m.container.envFrom, [{ configMapRef: { name: 'env-file-path-env' } }]) },
  'env_file.format': { service: { env_file: [{ path: './raw.env', format: 'raw' }] }, check: (m) => assert.deepEqual(m.container.envFrom, [{ configMapRef: { name: 'env-file-format-env' } }]) },
  'env_file.required': { service: { env_file: [{ path: './missing.env', required: false }] }, check: (m) => assert.equal(m.container.envFrom, undefined) },
  working_dir: { service: { working_dir: '/srv' }, check: (m) => assert.equal(m.container.workingDir, '/srv') },
  user: { service: { user: '1000:2000' }, check: (m) => assert.deepEqual(m.container.securityContext, { runAsUser: 1000, runAsGroup: 2000 }) },
  cap_add: { service: { cap_add: ['NET_ADMIN'] }, check: (m) => assert.deepEqual(m.container.securityContext, { capabilities: { add: ['NET_ADMIN'] } }) },
  cap_drop: { service: { cap_drop: ['ALL'] }, check: (m) => assert.deepEqual(m.container.securityContext, { capabilities: { drop: ['ALL'] } }) },
  privileged: { service: { privileged: true }, check: (m) => assert.deepEqual(m.container.securityContext, { privileged: true }) },
  read_only: { service: { read_only: true }, check: (m) => assert.deepEqual(m.container.securityContext, { readOnlyRootFilesystem: true }) },
  stdin_open: { service: { stdin_open: true }, check: (m) => assert.equal(m.container.stdin, true) },
  tty: { service: { tty: true }, check: (m) => assert.equal(m.container.tty, true) },
  pull_policy: { service: { pull_policy: 'always' }, check: (m) => assert.equal(m.container.imagePullPolicy, 'Always') },
  labels: { service: { labels: { 'com.example.team': 'shop' } }, check: (m) => assert.equal((m.objects[0].metadata.annotations ?? {})['com.example.team'], 'shop') },
  annotations: { service: { annotations: { 'com.example.pod': 'yes' } }, check: (m) => assert.deepEqual(m.podMetadata.annotations, { 'com.example.pod': 'yes' }) },
  hostname: { service: { hostname: 'app' }, check: (m) => assert.equal(m.pod.hostname, 'app') },
  extra_hosts: {
    service: { extra_hosts: ['legacy:10.0.0.5', 'old=10.0.0.5', 'v6:::1'] },
    check: (m) => assert.deepEqual(m.pod.hostAliases, [{ ip: '10.0.0.5', hostnames: ['legacy', 'old'] }, { ip: '::1', hostnames: ['v6'] }]),
  },
  stop_grace_period: { service: { stop_grace_period: '1m30s' }, check: (m) => assert.equal(m.pod.terminationGracePeriodSeconds, 90) },
  restart: { service: { restart: 'no' }, check: (m) => assert.deepEqual([m.kind, m.pod.restartPolicy], ['Job', 'Never']) },
  scale: { service: { scale: 3 }, check: (m) => assert.equal((m.objects[0].spec as Obj).replicas, 3) },
  cpus: { service: { cpus: 1.5 }, check: (m) => assert.deepEqual(m.container.resources, { limits: { cpu: '1500m' } }) },
  mem_limit: { service: { mem_limit: '1g' }, check: (m) => assert.deepEqual(m.container.resources, { limits: { memory: '1Gi' } }) },
  mem_reservation: { service: { mem_reservation: '256m' }, check: (m) => assert.deepEqual(m.container.resources, { requests: { memory: '256Mi' } }) },
  shm_size: {
    service: { shm_size: '256m' },
    check: (m) => {
      assert.deepEqual(mounts(m), [{ name: 'tmpfs-0', mountPath: '/dev/shm' }]);
      assert.deepEqual(podVolume(m, 'tmpfs-0'), { name: 'tmpfs-0', emptyDir: { medium: 'Memory', sizeLimit: '256Mi' } });
    },
  },
  tmpfs: {
    service: { tmpfs: ['/run:size=64m', '/tmp'] },
    check: (m) => {
      assert.deepEqual(mounts(m), [{ name: 'tmpfs-0', mountPath: '/run' }, { name: 'tmpfs-1', mountPath: '/tmp' }]);
      assert.deepEqual(m.pod.volumes, [{ name: 'tmpfs-0', emptyDir: { medium: 'Memory', sizeLimit: '64Mi' } }, { name: 'tmpfs-1', emptyDir: { medium: 'Memory' } }]);
    },
  },
  expose: { service: { expose: ['9000'] }, check: (m) => assert.deepEqual((m.service?.spec as Obj).ports, [{ name: '9000', port: 9000, targetPort: 9000, protocol: 'TCP' }]) },
  'extends.service': { service: { extends: 'base', environment: { OWN: '1' } }, check: (m) => assert.deepEqual(m.container.env, [{ name: 'FROM_BASE', value: 'yes' }, { name: 'OWN', value: '1' }]) },
  'extends.file': { service: { extends: { file: './base.yml', service: 'other' } }, check: (m) => assert.deepEqual(m.container.env, [{ name: 'FROM_FILE', value: 'yes' }]) },
  profiles: { service: { profiles: ['debug'] }, check: (m) => assert.deepEqual(m.objects, [], 'a service of a profile is not deployed, as `docker compose up` does not start it') },
  'ports.name': {
    service: { ports: [{ target: 80, name: 'web' }] },
    check: (m) => {
      assert.deepEqual(m.container.ports, [{ name: 'web', containerPort: 80, protocol: 'TCP' }]);
      assert.deepEqual((m.service?.spec as Obj).ports, [{ name: 'web', port: 80, targetPort: 80, protocol: 'TCP' }]);
    },
  },
  'ports.mode': { service: { ports: [{ target: 80, published: 8080, mode: 'ingress' }] }, check: (m) => assert.equal(((m.service?.spec as Obj).ports as Obj[])[0].port, 8080) },
  'ports.target': { service: { ports: [{ target: 8080 }] }, check: (m) => assert.deepEqual(m.container.ports, [{ containerPort: 8080, protocol: 'TCP' }]) },
  'ports.published': { service: { ports: [{ target: 8080, published: '80' }] }, check: (m) => assert.deepEqual((m.service?.spec as Obj).ports, [{ name: '80', port: 80, targetPort: 8080, protocol: 'TCP' }]) },
  'ports.protocol': { service: { ports: [{ target: 53, protocol: 'udp' }] }, check: (m) => assert.deepEqual((m.service?.spec as Obj).ports, [{ name: '53-udp', port: 53, targetPort: 53, protocol: 'UDP' }]) },
  'ports.app_protocol': {
    service: { ports: [{ target: 443, app_protocol: 'https' }] },
    check: (m) => assert.deepEqual((m.service?.spec as Obj).ports, [{ name: '443', port: 443, targetPort: 443, protocol: 'TCP', appProtocol: 'https' }]),
  },
  'volumes.type': {
    service: { volumes: [{ type: 'tmpfs', target: '/cache' }] },
    check: (m) => assert.deepEqual([mounts(m), m.pod.volumes], [[{ name: 'tmpfs-0', mountPath: '/cache' }], [{ name: 'tmpfs-0', emptyDir: { medium: 'Memory' } }]]),
  },
  'volumes.source': {
    service: { volumes: ['volumes-source:/data'] },
    top: vol('volumes-source'),
    check: (m) => {
      assert.deepEqual(mounts(m), [{ name: 'volumes-source', mountPath: '/data' }]);
      assert.deepEqual(podVolume(m, 'volumes-source'), { name: 'volumes-source', persistentVolumeClaim: { claimName: 'volumes-source' } });
      assert.deepEqual(m.claims.map((c) => (c.metadata as Obj).name), ['volumes-source']);
    },
  },
  'volumes.target': {
    service: { volumes: ['/var/lib/data'] },
    check: (m) => {
      assert.equal(m.kind, 'Deployment');
      assert.deepEqual(mounts(m), [{ name: 'volumes-target-var-lib-data', mountPath: '/var/lib/data' }]);
      assert.deepEqual(m.claims, [
        {
          apiVersion: 'v1',
          kind: 'PersistentVolumeClaim',
          metadata: { name: 'volumes-target-var-lib-data', labels: { 'app.kubernetes.io/part-of': 'keys', 'app.kubernetes.io/managed-by': 'container-outer-loop' } },
          spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '100Mi' } } },
        },
      ]);
    },
  },
  'volumes.read_only': {
    service: { volumes: [{ type: 'volume', source: 'volumes-read-only', target: '/data', read_only: true }] },
    top: vol('volumes-read-only'),
    check: (m) => assert.deepEqual(mounts(m), [{ name: 'volumes-read-only', mountPath: '/data', readOnly: true }]),
  },
  'volumes.volume.labels': {
    service: { volumes: [{ type: 'volume', target: '/data', volume: { labels: { 'com.example.backup': 'daily' } } }] },
    check: (m) => assert.deepEqual((m.claims[0].metadata as Obj).annotations, { 'com.example.backup': 'daily' }),
  },
  'volumes.volume.subpath': {
    service: { volumes: [{ type: 'volume', source: 'volumes-volume-subpath', target: '/data', volume: { subpath: 'app/data' } }] },
    top: vol('volumes-volume-subpath'),
    check: (m) => assert.deepEqual(mounts(m), [{ name: 'volumes-volume-subpath', mountPath: '/data', subPath: 'app/data' }]),
  },
  'volumes.tmpfs.size': {
    service: { volumes: [{ type: 'tmpfs', target: '/scratch', tmpfs: { size: '64m' } }] },
    check: (m) => assert.deepEqual(m.pod.volumes, [{ name: 'tmpfs-0', emptyDir: { medium: 'Memory', sizeLimit: '64Mi' } }]),
  },
  'configs.source': {
    service: { configs: ['cfg'] },
    top: cfgTop,
    check: (m) => assert.deepEqual(mounts(m), [{ name: 'config-cfg', mountPath: '/cfg', subPath: 'cfg', readOnly: true }]),
  },
  'configs.target': {
    service: { configs: [{ source: 'cfg', target: '/etc/app.conf' }] },
    top: cfgTop,
    check: (m) => assert.deepEqual(mounts(m), [{ name: 'config-cfg', mountPath: '/etc/app.conf', subPath: 'cfg', readOnly: true }]),
  },
  'configs.mode': {
    service: { configs: [{ source: 'cfg', mode: 0o440 }] },
    top: cfgTop,
    check: (m) => assert.deepEqual(podVolume(m, 'config-cfg'), { name: 'config-cfg', configMap: { name: 'cfg', items: [{ key: 'cfg', path: 'cfg', mode: 0o440 }] } }),
  },
  'secrets.source': {
    service: { secrets: ['sec'] },
    top: secTop,
    check: (m) => assert.deepEqual(mounts(m), [{ name: 'secret-sec', mountPath: '/run/secrets/sec', subPath: 'sec.txt', readOnly: true }]),
  },
  'secrets.target': {
    service: { secrets: [{ source: 'sec', target: 'token' }] },
    top: secTop,
    check: (m) => assert.deepEqual(mounts(m), [{ name: 'secret-sec', mountPath: '/run/secrets/token', subPath: 'sec.txt', readOnly: true }]),
  },
  'secrets.mode': {
    service: { secrets: [{ source: 'sec', mode: 0o400 }] },
    top: secTop,
    check: (m) => assert.deepEqual(podVolume(m, 'secret-sec'), { name: 'secret-sec', secret: { secretName: 'sec', items: [{ key: 'sec.txt', path: 'sec.txt', mode: 0o400 }] } }),
  },
  'healthcheck.test': { service: { healthcheck: { test: 'curl -f http://localhost/' } }, check: (m) => assert.deepEqual((m.container.livenessProbe as Obj).exec, { command: ['/bin/sh', '-c', 'curl -f http://localhost/'] }) },
  'healthcheck.interval': { service: { healthcheck: { test: ['CMD', 'true'], interval: '10s' } }, check: (m) => assert.equal((m.container.readinessProbe as Obj).periodSeconds, 10) },
  'healthcheck.timeout': { service: { healthcheck: { test: ['CMD', 'true'], timeout: '3s' } }, check: (m) => assert.equal((m.container.livenessProbe as Obj).timeoutSeconds, 3) },
  'healthcheck.retries': { service: { healthcheck: { test: ['CMD', 'true'], retries: 5 } }, check: (m) => assert.equal((m.container.livenessProbe as Obj).failureThreshold, 5) },
  'healthcheck.start_period': { service: { healthcheck: { test: ['CMD', 'true'], start_period: '20s' } }, check: (m) => assert.equal((m.container.livenessProbe as Obj).initialDelaySeconds, 20) },
  'healthcheck.disable': { service: { healthcheck: { disable: true } }, check: (m) => assert.deepEqual([m.container.livenessProbe, m.container.readinessProbe], [undefined, undefined]) },
  'deploy.mode': { service: { deploy: { mode: 'global' } }, check: (m) => assert.equal(m.kind, 'DaemonSet') },
  'deploy.replicas': { service: { deploy: { replicas: 4 } }, check: (m) => assert.equal((m.objects[0].spec as Obj).replicas, 4) },
  'deploy.labels': {
    service: { deploy: { labels: { 'com.example.tier': 'web', 'kompose.service.type': 'nodeport' } }, ports: ['80'] },
    check: (m) => {
      assert.equal((m.objects[0].metadata.annotations ?? {})['com.example.tier'], 'web');
      assert.equal((m.service?.spec as Obj).type, 'NodePort', 'kompose labels are read from deploy.labels too');
    },
  },
  'deploy.resources.limits.cpus': { service: { deploy: { resources: { limits: { cpus: '0.5' } } } }, check: (m) => assert.deepEqual(m.container.resources, { limits: { cpu: '500m' } }) },
  'deploy.resources.limits.memory': { service: { deploy: { resources: { limits: { memory: '512M' } } } }, check: (m) => assert.deepEqual(m.container.resources, { limits: { memory: '512Mi' } }) },
  'deploy.resources.reservations.cpus': { service: { deploy: { resources: { reservations: { cpus: '0.25' } } } }, check: (m) => assert.deepEqual(m.container.resources, { requests: { cpu: '250m' } }) },
  'deploy.resources.reservations.memory': { service: { deploy: { resources: { reservations: { memory: '128m' } } } }, check: (m) => assert.deepEqual(m.container.resources, { requests: { memory: '128Mi' } }) },
  'deploy.restart_policy.condition': { service: { deploy: { restart_policy: { condition: 'none' } } }, check: (m) => assert.deepEqual([m.kind, m.pod.restartPolicy], ['Job', 'Never']) },

  // ---- not converted: the key is named in a warning that says why and what to do
  build: { service: { build: { context: '.' } } },
  depends_on: { service: { depends_on: { base: { condition: 'service_started' } } } },
  links: { service: { links: ['base:db'] } },
  external_links: { service: { external_links: ['legacy_db:db'] } },
  network_mode: { service: { network_mode: 'host' } },
  networks: { service: { networks: { back: { aliases: ['x'] } } }, top: { networks: { back: {} } } },
  container_name: { service: { container_name: 'my-app' } },
  logging: { service: { logging: { driver: 'syslog', options: { tag: 'app' } } } },
  ulimits: { service: { ulimits: { nofile: { soft: 1024, hard: 2048 } } } },
  sysctls: { service: { sysctls: { 'net.core.somaxconn': 1024 } } },
  devices: { service: { devices: ['/dev/ttyUSB0:/dev/ttyUSB0'] } },
  device_cgroup_rules: { service: { device_cgroup_rules: ['c 1:3 mr'] } },
  gpus: { service: { gpus: [{ driver: 'nvidia', count: 1 }] } },
  dns: { service: { dns: ['8.8.8.8'] } },
  dns_search: { service: { dns_search: ['example.com'] } },
  dns_opt: { service: { dns_opt: ['use-vc'] } },
  domainname: { service: { domainname: 'example.com' } },
  pid: { service: { pid: 'host' } },
  ipc: { service: { ipc: 'host' } },
  uts: { service: { uts: 'host' } },
  userns_mode: { service: { userns_mode: 'host' } },
  cgroup: { service: { cgroup: 'private' } },
  cgroup_parent: { service: { cgroup_parent: 'm-executor' } },
  security_opt: { service: { security_opt: ['no-new-privileges:true'] } },
  init: { service: { init: true } },
  isolation: { service: { isolation: 'default' } },
  runtime: { service: { runtime: 'runc' } },
  platform: { service: { platform: 'linux/amd64' } },
  mac_address: { service: { mac_address: '02:42:ac:11:65:43' } },
  group_add: { service: { group_add: ['mail'] } },
  credential_spec: { service: { credential_spec: { registry: 'my-cred' } } },
  oom_score_adj: { service: { oom_score_adj: 500 } },
  oom_kill_disable: { service: { oom_kill_disable: true } },
  cpu_count: { service: { cpu_count: 2 } },
  cpu_percent: { service: { cpu_percent: 50 } },
  cpu_shares: { service: { cpu_shares: 512 } },
  cpu_quota: { service: { cpu_quota: 50000 } },
  cpu_period: { service: { cpu_period: 100000 } },
  cpu_rt_runtime: { service: { cpu_rt_runtime: 400000 } },
  cpu_rt_period: { service: { cpu_rt_period: 1000000 } },
  cpuset: { service: { cpuset: '0-1' } },
  mem_swappiness: { service: { mem_swappiness: 10 } },
  memswap_limit: { service: { memswap_limit: '1g' } },
  pids_limit: { service: { pids_limit: 100 } },
  blkio_config: { service: { blkio_config: { weight: 300 } } },
  storage_opt: { service: { storage_opt: { size: '1G' } } },
  stop_signal: { service: { stop_signal: 'SIGUSR1' } },
  volumes_from: { service: { volumes_from: ['base'] } },
  pull_refresh_after: {
    service: { pull_policy: 'refresh', pull_refresh_after: '1h' },
    warnings: [
      "'pull_refresh_after' is not converted (the kubelet pulls by imagePullPolicy only, and a digest-pinned image never changes; remove it).",
      "pull_policy 'refresh' is not converted (the kubelet has no such policy, and a digest-pinned image never changes; the default, IfNotPresent, applies).",
    ],
  },
  label_file: { service: { label_file: './labels.txt' } },
  attach: { service: { attach: false } },
  develop: { service: { develop: { watch: [{ path: './src', action: 'sync', target: '/app' }] } } },
  pre_start: { service: { pre_start: [{ image: 'busybox', command: ['true'] }] } },
  post_start: { service: { post_start: [{ command: ['echo', 'up'] }] } },
  pre_stop: { service: { pre_stop: [{ command: ['echo', 'down'] }] } },
  use_api_socket: { service: { use_api_socket: true } },
  models: { service: { models: ['llm'] }, top: { models: { llm: { model: 'ai/smollm2' } } } },
  provider: { service: { provider: { type: 'model', options: { model: 'ai/smollm2' } } } },
  'healthcheck.start_interval': { service: { healthcheck: { test: ['CMD', 'true'], start_period: '30s', start_interval: '2s' } } },
  'deploy.endpoint_mode': { service: { deploy: { endpoint_mode: 'dnsrr' } } },
  'deploy.placement': { service: { deploy: { placement: { constraints: ['node.role==worker'] } } } },
  'deploy.update_config': { service: { deploy: { update_config: { parallelism: 2, order: 'start-first' } } } },
  'deploy.rollback_config': { service: { deploy: { rollback_config: { parallelism: 1 } } } },
  'deploy.resources.limits.pids': { service: { deploy: { resources: { limits: { pids: 100 } } } } },
  'deploy.resources.reservations.generic_resources': { service: { deploy: { resources: { reservations: { generic_resources: [{ discrete_resource_spec: { kind: 'gpu', value: 2 } }] } } } } },
  'deploy.resources.reservations.devices': { service: { deploy: { resources: { reservations: { devices: [{ capabilities: ['gpu'] }] } } } } },
  'deploy.restart_policy.delay': { service: { deploy: { restart_policy: { condition: 'any', delay: '5s' } } } },
  'deploy.restart_policy.max_attempts': { service: { deploy: { restart_policy: { condition: 'any', max_attempts: 3 } } } },
  'deploy.restart_policy.window': { service: { deploy: { restart_policy: { condition: 'any', window: '2m' } } } },
  'ports.host_ip': { service: { ports: ['127.0.0.1:8080:80'] }, of: 'port 80' },
  'volumes.consistency': { service: { volumes: [{ type: 'volume', source: 'volumes-consistency', target: '/data', consistency: 'cached' }] }, top: vol('volumes-consistency'), of: 'the volume at /data' },
  'volumes.bind.selinux': { service: { volumes: ['volumes-bind-selinux:/data:z'] }, top: vol('volumes-bind-selinux'), of: 'the volume at /data' },
  'volumes.bind.propagation': { service: { volumes: ['volumes-bind-propagation:/data:rslave'] }, top: vol('volumes-bind-propagation'), of: 'the volume at /data' },
  'volumes.bind.create_host_path': {
    service: { volumes: [{ type: 'volume', source: 'volumes-bind-create-host-path', target: '/data', bind: { create_host_path: true } }] },
    top: vol('volumes-bind-create-host-path'),
    of: 'the volume at /data',
  },
  'volumes.bind.recursive': {
    service: { volumes: [{ type: 'volume', source: 'volumes-bind-recursive', target: '/data', bind: { recursive: 'disabled' } }] },
    top: vol('volumes-bind-recursive'),
    of: 'the volume at /data',
  },
  'volumes.volume.nocopy': { service: { volumes: ['volumes-volume-nocopy:/data:nocopy'] }, top: vol('volumes-volume-nocopy'), of: 'the volume at /data' },
  'volumes.tmpfs.mode': { service: { volumes: [{ type: 'tmpfs', target: '/scratch', tmpfs: { mode: 0o1777 } }] }, of: 'the volume at /scratch' },
  'volumes.image': {
    service: { volumes: [{ type: 'image', source: 'registry.example.com/models:1', target: '/models', image: { subpath: 'weights' } }] },
    warnings: ['the volume of type image at /models is not converted (image volumes need the ImageVolume feature of recent clusters; mount the image with an image volume in a manifest).'],
  },
  'configs.uid': { service: { configs: [{ source: 'cfg', uid: '1000' }] }, top: cfgTop, of: "config 'cfg'" },
  'configs.gid': { service: { configs: [{ source: 'cfg', gid: '1000' }] }, top: cfgTop, of: "config 'cfg'" },
  'secrets.uid': { service: { secrets: [{ source: 'sec', uid: '1000' }] }, top: secTop, of: "secret 'sec'" },
  'secrets.gid': { service: { secrets: [{ source: 'sec', gid: '1000' }] }, top: secTop, of: "secret 'sec'" },
};

/** The keys that need a sample: each key the table converts or warns about, unless a key above it is not converted as a whole. */
function keysNeedingSamples(): string[] {
  return fixture.keys.filter((k) => {
    const { rule } = ruleOf(k);
    return rule === 'converted' || (typeof rule === 'object' && 'why' in rule);
  });
}

const serviceName = (key: string) => key.replace(/[._]/g, '-');

function writeProject(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keys-'));
  const project: Obj = { name: 'keys', services: { base: { image: IMAGE, environment: { FROM_BASE: 'yes' } } } };
  for (const [key, sample] of Object.entries(SAMPLES)) {
    (project.services as Obj)[serviceName(key)] = { image: IMAGE, ...sample.service };
    for (const [section, entries] of Object.entries(sample.top ?? {})) project[section] = { ...(project[section] as Obj), ...(entries as Obj) };
  }
  fs.writeFileSync(path.join(dir, 'compose.yml'), JSON.stringify(project, null, 2));
  fs.writeFileSync(path.join(dir, 'base.yml'), JSON.stringify({ services: { other: { image: IMAGE, environment: { FROM_FILE: 'yes' } } } }));
  fs.writeFileSync(path.join(dir, 'app.env'), 'FROM_ENV_FILE=1\n');
  fs.writeFileSync(path.join(dir, 'raw.env'), 'RAW="kept as written"\n');
  fs.writeFileSync(path.join(dir, 'sec.txt'), 's3cret\n');
  fs.writeFileSync(path.join(dir, 'labels.txt'), 'com.example.from-file=1\n');
  return dir;
}

function made(conversion: Conversion, name: string): Made {
  const objects = conversion.objects.filter((o) => o.metadata.name === name || (o.kind === 'ConfigMap' && o.metadata.name === `${name}-env`));
  const workload = objects.find((o) => ['Deployment', 'StatefulSet', 'DaemonSet', 'Job', 'CronJob'].includes(o.kind));
  const spec = (workload?.spec ?? {}) as Obj;
  const template = ((workload?.kind === 'CronJob' ? ((spec.jobTemplate as Obj).spec as Obj).template : spec.template) ?? { spec: { containers: [{}] } }) as Obj;
  const pod = template.spec as Obj;
  const claimNames = ((pod.volumes ?? []) as Obj[]).map((v) => (v.persistentVolumeClaim as Obj | undefined)?.claimName).filter(Boolean);
  return {
    objects: objects.filter((o) => o.kind !== 'ConfigMap'),
    kind: workload?.kind ?? '',
    podMetadata: (template.metadata ?? {}) as Obj,
    pod,
    container: (pod.containers as Obj[])[0],
    service: objects.find((o) => o.kind === 'Service'),
    claims: [...conversion.objects.filter((o) => o.kind === 'PersistentVolumeClaim' && claimNames.includes(o.metadata.name)), ...((spec.volumeClaimTemplates ?? []) as KubeObject[])],
  };
}

describe('every key of a service is converted or named in a warning', () => {
  let dir = '';
  let conversion: Conversion;
  before(async () => {
    dir = writeProject();
    // Compose v2 accepts every sample: none is a shape it would refuse.
    execFileSync(await composeV2Binary(), ['-f', path.join(dir, 'compose.yml'), '--project-directory', dir, 'config', '--quiet'], { cwd: dir, env: {}, stdio: ['ignore', 'ignore', 'pipe'] });
    conversion = convertCompose(loadComposeProject([path.join(dir, 'compose.yml')], { env: {} }));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('a sample for every key, and no sample for a key the spec does not define', () => {
    assert.deepEqual(keysNeedingSamples().filter((k) => !SAMPLES[k]), []);
    assert.deepEqual(Object.keys(SAMPLES).filter((k) => !keysNeedingSamples().includes(k)), []);
  });

  test('every object made is valid Kubernetes', async () => {
    for (const obj of conversion.objects) await validateWithSchemas(obj);
    assert.ok(conversion.objects.length > 150, `${conversion.objects.length} objects`);
  });

  for (const [key, sample] of Object.entries(SAMPLES)) {
    test(key, () => {
      const name = serviceName(key);
      const { rule } = ruleOf(key);
      const prefix = `compose service '${name}': `;
      const warnings = conversion.warnings.filter((w) => w.startsWith(prefix)).map((w) => w.slice(prefix.length));
      const expected = sample.warnings ?? (rule === 'converted' ? [] : [notConvertedMessage(key, rule as NotConverted, sample.of)]);
      assert.deepEqual(warnings, expected);
      if (rule === 'converted') {
        assert.ok(sample.check, `${key} is converted: its sample checks what it becomes`);
        sample.check(made(conversion, name));
      }
    });
  }

  test('nothing else is warned about', () => {
    const names = new Set(Object.keys(SAMPLES).map(serviceName));
    assert.deepEqual(conversion.warnings.filter((w) => ![...names].some((n) => w.startsWith(`compose service '${n}': `))), []);
  });
});

// ---- the short volume syntax as Compose reads it -----------------------------------------------

test('short volume entries read as Compose v2 reads them', async () => {
  const specs = ['/anon', 'data:/d', 'data:/d:ro', 'data:/d:rw,nocopy', 'data:/d:ro,z', './h:/h:Z', '/abs:/h:rslave,ro', '~/h:/h', 'C:\\data:C:\\target', 'data:C:\\target', 'data:/d:cached'];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'volspec-'));
  try {
    const services = Object.fromEntries(specs.map((s, i) => [`s${i}`, { image: IMAGE, volumes: [s] }]));
    fs.writeFileSync(path.join(dir, 'compose.yml'), JSON.stringify({ services, volumes: { data: {} } }));
    const out = execFileSync(await composeV2Binary(), ['-f', path.join(dir, 'compose.yml'), '--project-directory', dir, 'config', '--format', 'json'], { cwd: dir, env: { HOME: '/home/u' }, encoding: 'utf8' });
    const theirs = JSON.parse(out) as { services: Record<string, { volumes: Obj[] }> };
    specs.forEach((spec, i) => {
      const { volume, ignoredModes } = parseVolumeSpec(spec, 'test');
      const compose = { ...theirs.services[`s${i}`].volumes[0] };
      // Compose makes a bind source absolute, adds create_host_path to short binds and an empty `volume: {}`; the conversion needs none of that.
      if (volume.type === 'bind' && volume.source) {
        const absolute = volume.source.startsWith('~') ? `/home/u${volume.source.slice(1)}` : volume.source.startsWith('.') ? path.join(dir, volume.source) : volume.source;
        assert.equal(compose.source, absolute, spec);
        compose.source = volume.source;
      }
      if (isObject(compose.bind)) {
        const { create_host_path: _created, ...bind } = compose.bind;
        if (Object.keys(bind).length) compose.bind = bind;
        else delete compose.bind;
      }
      if (isObject(compose.volume) && Object.keys(compose.volume).length === 0) delete compose.volume;
      assert.deepEqual(volume, compose, spec);
      assert.deepEqual(ignoredModes, spec.endsWith(':cached') ? ['cached'] : [], spec);
    });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('the produced manifests render as YAML without aliases', () => {
  const text = renderObjects(convertCompose(loadComposeProject([path.join(writeProject(), 'compose.yml')], { env: {} })).objects);
  assert.doesNotMatch(text, /[&*]a\d/);
});
