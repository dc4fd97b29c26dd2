// BuildAndTag drops no compose `build:` key silently. The keys are those the compose-spec's schema
// defines for `build` (the `build.*` entries of the fixture kube-convert-keys.test.ts checks against
// compose-go's schema). For each, a service below uses it, and the whole project is one Compose v2
// accepts. A key that is honoured must show in the Engine API /build query BuildAndTag sends, or in
// the buildx command line for what /build cannot express (values asserted); a key that is refused
// must fail the plan with an error naming the service and the key.
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { BuildAndTagOptions, PlannedBuild, planBuilds } from '../../tasks/lib/build';
import { BUILD_KEYS } from '../../tasks/lib/compose/build';
import { buildQuery } from '../../tasks/lib/docker/build';
import { buildxInvocation, buildxReason } from '../../tasks/lib/docker/buildx';
import { FileError, InputError } from '../../tasks/lib/errors';
import { repositoryName } from '../../tasks/lib/reference';
import { createTestContext } from '../support/context';
import { buildOptions } from '../support/images';
import { composeV2Binary } from '../support/stack';

type Obj = Record<string, unknown>;

const fixture = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'fixtures', 'kube', 'compose-spec-service-keys.json'), 'utf8')) as { keys: string[] };
const specKeys = fixture.keys.filter((k) => k.startsWith('build.')).map((k) => k.slice('build.'.length));
const topKeys = specKeys.filter((k) => !k.includes('.'));

const work = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'col-build-keys-')));
after(() => fs.rmSync(work, { recursive: true, force: true }));

/** The /build query of a service's plan: what the Engine API receives. */
type Check = (query: Obj, plan: PlannedBuild) => void;

/** A sample `build:` for each key; honoured keys with what the query must hold. */
const HONOURED: Record<string, { build: Obj; check: Check }> = {
  context: { build: { context: 'app' }, check: (_q, p) => assert.equal(p.spec.context, path.join(work, 'app')) },
  dockerfile: { build: { context: 'app', dockerfile: 'other.Dockerfile' }, check: (q) => assert.equal(q.dockerfile, 'other.Dockerfile') },
  dockerfile_inline: { build: { context: 'app', dockerfile_inline: 'FROM scratch\nLABEL inline=1\n' }, check: (q, p) => (assert.equal(p.spec.dockerfileInline, 'FROM scratch\nLABEL inline=1\n'), assert.equal(q.dockerfile, '.outer-loop.Dockerfile')) },
  args: { build: { context: 'app', args: ['A=1', 'B'] }, check: (q) => assert.deepEqual(q.buildargs, { A: '1', B: 'from-env' }) },
  labels: { build: { context: 'app', labels: { 'com.example.team': 'shop' } }, check: (q) => assert.deepEqual(q.labels, { 'com.example.team': 'shop' }) },
  target: { build: { context: 'app', target: 'final' }, check: (q) => assert.equal(q.target, 'final') },
  cache_from: { build: { context: 'app', cache_from: ['registry.example.com/app:cache'] }, check: (q) => assert.deepEqual(JSON.parse(String(q.cachefrom)), ['registry.example.com/app:cache']) },
  cache_to: {
    build: { context: 'app', cache_to: ['type=registry,ref=registry.example.com/app:cache,mode=max'] },
    check: (_q, p) => {
      assert.equal(buildxReason(p.spec), 'cacheTo exports a build cache');
      const args = buildxInvocation({ ...p.spec, title: p.name, tags: [] }, { metadataFile: '/m.json', dir: '/d' }).args;
      assert.deepEqual(args.slice(args.indexOf('--cache-to'), args.indexOf('--cache-to') + 2), ['--cache-to', 'type=registry,ref=registry.example.com/app:cache,mode=max']);
    },
  },
  platforms: { build: { context: 'app', platforms: ['linux/arm64'] }, check: (q) => assert.equal(q.platform, 'linux/arm64') },
  network: { build: { context: 'app', network: 'host' }, check: (q) => assert.equal(q.networkmode, 'host') },
  extra_hosts: { build: { context: 'app', extra_hosts: ['db:10.0.0.5', 'v6=[::1]'] }, check: (q) => assert.deepEqual(q.extrahosts, ['db:10.0.0.5', 'v6:::1']) },
  shm_size: { build: { context: 'app', shm_size: '64m' }, check: (q) => assert.equal(q.shmsize, 64 * 1024 * 1024) },
  no_cache: { build: { context: 'app', no_cache: true }, check: (q) => assert.equal(q.nocache, true) },
  pull: { build: { context: 'app', pull: true }, check: (q) => assert.equal(q.pull, true) },
  tags: {
    build: { context: 'app', tags: ['registry.example.com/tags:extra', 'other.example.com/mirror/tags:1'] },
    check: (q, p) => {
      assert.deepEqual(q.t, ['registry.example.com/tags:extra', 'registry.example.com/tags:1', 'other.example.com/mirror/tags:1']);
      assert.deepEqual(p.tags, ['extra', '1'], "a tag of the service's repository is pushed with it (the compose file's tags first, as the image: tag is)");
      assert.deepEqual(p.otherReferences, ['other.example.com/mirror/tags:1']);
    },
  },
  ulimits: { build: { context: 'app', ulimits: { nproc: 512, nofile: { soft: 1024, hard: 2048 } } }, check: (q) => assert.deepEqual(JSON.parse(String(q.ulimits)), [{ Name: 'nproc', Soft: 512, Hard: 512 }, { Name: 'nofile', Soft: 1024, Hard: 2048 }]) },
  isolation: { build: { context: 'app', isolation: 'default' }, check: (q) => assert.equal(q.isolation, 'default') },
  secrets: {
    build: { context: 'app', secrets: ['npmrc', { source: 'npmrc', target: 'token' }] },
    check: (q, p) => {
      assert.deepEqual(p.spec.secrets.map((s) => [s.id, s.value.toString()]), [['npmrc', 'token-value'], ['token', 'token-value']]);
      assert.ok(!JSON.stringify(q).includes('token-value'), 'the value is served by the session, never in the query');
    },
  },
  ssh: { build: { context: 'app', ssh: ['deploy=./deploy_key'] }, check: (q, p) => (assert.deepEqual(p.spec.ssh.map((s) => s.id), ['deploy']), assert.ok(!JSON.stringify(q).includes('PRIVATE KEY'))) },
};

/** Refused keys: a sample the Engine API cannot honour, and (where there is one) a value that asks for nothing and is accepted. */
const REFUSED: Record<string, { value: unknown; harmless?: unknown; says: RegExp }> = {
  additional_contexts: { value: { extra: './extra' }, harmless: {}, says: /no named build contexts.*--build-context/ },
  no_cache_filter: { value: ['base'], harmless: [], says: /some stages only.*no_cache: true/ },
  privileged: { value: true, harmless: false, says: /security\.insecure/ },
  entitlements: { value: ['network.host'], harmless: [], says: /entitlements.*--allow/ },
  provenance: { value: true, harmless: false, says: /attestations.*--provenance/ },
  sbom: { value: true, harmless: false, says: /attestations.*--sbom/ },
};

/** Ownership of a build secret is the Dockerfile's (`RUN --mount=type=secret,uid=…`): asked for in compose, it is refused. */
const SECRET_OWNER = { context: 'app', secrets: [{ source: 'npmrc', target: 'npmrc', uid: '0', gid: '0', mode: 0o400 }] };

const serviceName = (key: string, suffix = '') => `${key.replace(/_/g, '-')}${suffix}`;

function options(o: Partial<BuildAndTagOptions> = {}): BuildAndTagOptions {
  const planOnly = async () => {
    throw new Error('the engine is not contacted to plan');
  };
  return buildOptions(planOnly, { composeFile: path.join(work, 'compose.yml'), tags: ['1'], buildRecordPath: path.join(work, 'record.json'), env: { B: 'from-env', NPM_TOKEN: 'token-value' }, ...o });
}

function query(plan: PlannedBuild): Obj {
  const repository = repositoryName(plan.repository);
  const spec = { ...plan.spec, title: plan.name, tags: [...plan.tags.map((t) => `${repository}:${t}`), ...plan.otherReferences] };
  return buildQuery(spec, spec.dockerfileInline === undefined ? path.relative(spec.context, spec.dockerfile) : '.outer-loop.Dockerfile', true);
}

describe('every compose build key is honoured or refused', () => {
  const services: Obj = {};
  for (const [key, { build }] of Object.entries(HONOURED)) services[serviceName(key)] = { image: `registry.example.com/${serviceName(key)}`, build };
  for (const [key, { value, harmless }] of Object.entries(REFUSED)) {
    services[serviceName(key)] = { image: `registry.example.com/${serviceName(key)}`, build: { context: 'app', [key]: value } };
    if (harmless !== undefined) services[serviceName(key, '-none')] = { image: `registry.example.com/${serviceName(key)}`, build: { context: 'app', [key]: harmless } };
  }
  services['secret-owner'] = { image: 'registry.example.com/secret-owner', build: SECRET_OWNER };

  before(() => {
    fs.mkdirSync(path.join(work, 'app'), { recursive: true });
    fs.mkdirSync(path.join(work, 'extra'), { recursive: true });
    fs.writeFileSync(path.join(work, 'app', 'Dockerfile'), 'FROM scratch\n');
    fs.writeFileSync(path.join(work, 'app', 'other.Dockerfile'), 'FROM scratch\n');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(work, 'deploy_key')]);
    fs.writeFileSync(path.join(work, 'compose.yml'), JSON.stringify({ services, secrets: { npmrc: { environment: 'NPM_TOKEN' } } }, null, 1));
  });

  test('the table names exactly the build keys of the compose-spec, and a sample uses each', () => {
    assert.deepEqual([...topKeys].sort(), Object.keys(BUILD_KEYS).sort());
    assert.deepEqual([...topKeys].sort(), [...Object.keys(HONOURED), ...Object.keys(REFUSED)].sort());
    for (const [key, rule] of Object.entries(BUILD_KEYS)) assert.equal(rule === 'honoured', key in HONOURED, `${key}: the table and the test agree`);
    const sample = JSON.stringify(services);
    for (const sub of specKeys.filter((k) => k.includes('.'))) {
      const leaf = sub.split('.').pop() as string;
      assert.ok(sample.includes(`"${leaf}"`), `build.${sub} is used by a sample`);
    }
  });

  test('Compose v2 accepts every sample', async () => {
    // YAML: Compose v5.6's JSON output fails on build.ssh ("error calling MarshalJSON for type types.SSHKey").
    const out = execFileSync(await composeV2Binary(), ['-f', path.join(work, 'compose.yml'), 'config', '--format', 'yaml'], { cwd: work, env: { NPM_TOKEN: 'x', B: 'from-env' }, encoding: 'utf8' });
    assert.deepEqual(Object.keys((parseYaml(out) as { services: Obj }).services).sort(), Object.keys(services).sort());
  });

  for (const [key, { check }] of Object.entries(HONOURED)) {
    test(`build.${key} is honoured in the /build query`, () => {
      const [plan] = planBuilds(options({ services: [serviceName(key)] }), createTestContext());
      check(query(plan), plan);
    });
  }

  test("build.secrets' uid, gid and mode are refused: the Dockerfile's --mount sets them", () => {
    assert.throws(() => planBuilds(options({ services: ['secret-owner'] }), createTestContext()), /service 'secret-owner': 'build\.secrets' entry 'npmrc' sets uid, gid, mode.*RUN --mount=type=secret,id=npmrc,uid=/);
  });

  for (const [key, { harmless, says }] of Object.entries(REFUSED)) {
    test(`build.${key} is refused, naming the service and the key${harmless === undefined ? '' : `; ${JSON.stringify(harmless)} is accepted`}`, () => {
      assert.throws(
        () => planBuilds(options({ services: [serviceName(key)] }), createTestContext()),
        (err: unknown) => {
          assert.ok(err instanceof FileError, String(err));
          assert.match(err.message, new RegExp(`compose\\.yml': service '${serviceName(key)}': 'build\\.${key}' cannot be honoured`));
          assert.match(err.message, says);
          return true;
        },
      );
      if (harmless !== undefined) assert.equal(planBuilds(options({ services: [serviceName(key, '-none')] }), createTestContext()).length, 1);
    });
  }
});

describe('platforms: one goes to /build, several make one image index through buildx, never cut', () => {
  const project = (service: Obj) => {
    const dir = fs.mkdtempSync(path.join(work, 'p-'));
    fs.writeFileSync(path.join(dir, 'Dockerfile'), 'FROM scratch\n');
    fs.writeFileSync(path.join(dir, 'compose.yml'), JSON.stringify({ services: { app: { image: 'registry.example.com/app', build: '.', ...service } } }));
    return path.join(dir, 'compose.yml');
  };

  test('build.platforms with two entries, and the platform input with two (commas or lines), plan one build of both through buildx', () => {
    const two = project({ build: { context: '.', platforms: ['linux/amd64', 'linux/arm64'] } });
    const [fromCompose] = planBuilds(options({ composeFile: two }), createTestContext());
    assert.deepEqual(fromCompose.spec.platforms, ['linux/amd64', 'linux/arm64']);
    assert.equal(buildxReason(fromCompose.spec), '2 platforms (linux/amd64, linux/arm64) make one image index');
    assert.throws(() => query(fromCompose), /builds one platform/, 'never cut to its first entry on /build');
    const single = (platform: string) => planBuilds(options({ composeFile: undefined, imageName: 'registry.example.com/app', buildContext: path.dirname(two), dockerfile: path.join(path.dirname(two), 'Dockerfile'), platform }), createTestContext())[0].spec.platforms;
    assert.deepEqual(single('linux/amd64, linux/arm64'), ['linux/amd64', 'linux/arm64']);
    assert.deepEqual(single('linux/amd64\nlinux/arm/v7\nlinux/amd64'), ['linux/amd64', 'linux/arm/v7']);
    assert.throws(() => single('linux/amd64,Linux/ARM64'), (err: unknown) => err instanceof InputError && /^Input 'platform': 'Linux\/ARM64' is not a platform/.test(err.message));
  });

  test("the service's platform is built when build.platforms is empty; the input wins; a platform build.platforms does not list is refused as Compose does", () => {
    const plan = (composeFile: string, platform?: string) => planBuilds(options({ composeFile, platform }), createTestContext())[0].spec.platforms.join(',');
    assert.equal(plan(project({ platform: 'linux/arm64' })), 'linux/arm64');
    assert.equal(plan(project({ platform: 'linux/arm64' }), 'linux/amd64'), 'linux/amd64');
    assert.equal(plan(project({ platform: 'linux/arm64', build: { context: '.', platforms: ['linux/arm64'] } })), 'linux/arm64');
    assert.equal(plan(project({})), '');
    assert.throws(() => plan(project({ platform: 'linux/s390x', build: { context: '.', platforms: ['linux/arm64'] } })), /'platform' is 'linux\/s390x', which 'build\.platforms' \(linux\/arm64\) does not list/);
  });

  test('dockerfile and dockerfile_inline together are refused, as Compose refuses them', async () => {
    const file = project({ build: { context: '.', dockerfile: 'Dockerfile', dockerfile_inline: 'FROM scratch\n' } });
    assert.throws(() => planBuilds(options({ composeFile: file }), createTestContext()), /service 'app': 'build\.dockerfile' and 'build\.dockerfile_inline' are given together/);
    const compose = await composeV2Binary();
    assert.throws(() => execFileSync(compose, ['-f', file, 'config', '--quiet'], { cwd: path.dirname(file), env: {}, stdio: 'pipe' }), /mutualy exclusive dockerfile and dockerfile_inline/);
  });
});
