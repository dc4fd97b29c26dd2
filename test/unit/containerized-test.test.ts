// ContainerizedTest without an engine: result counting for the four formats, command parsing,
// image choice from the build record, the compose plan and override, project names, Compose CLI
// discovery (with stand-in executables), output sanitising and the multiplexed-stream splitter.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import type { BuildRecord } from '../../tasks/lib/build/record';
import { InputError, TimeoutError } from '../../tasks/lib/errors';
import { newRunId, projectNameFor } from '../../tasks/lib/containerized-test';
import { composeArgs, findCompose } from '../../tasks/lib/compose/cli';
import { Demultiplexer } from '../../tasks/lib/compose/containers';
import { LineSink } from '../../tasks/lib/context';
import { bounded } from '../../tasks/lib/util/bounds';
import { chooseImage, parseCommand } from '../../tasks/lib/containerized-test/container';
import { resultFiles, summarizeResults } from '../../tasks/lib/containerized-test/results';
import { ADDED_RUNNER, overrideDocument, planStack } from '../../tasks/lib/containerized-test/stack';
import { countTests, MalformedXmlError } from '../../tasks/lib/containerized-test/xml-count';
import { createTestContext } from '../support/context';

const FIXTURE = path.join(__dirname, '..', 'fixtures', 'containerized');
const ID_A = `sha256:${'a'.repeat(64)}`;
const ID_B = `sha256:${'b'.repeat(64)}`;

function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'col-ct-unit-'));
}

describe('test result counting', () => {
  test('JUnit: testcase elements, failure/error fail, skipped skips, nested suites and attributes in any order', () => {
    const xml = `<?xml version="1.0" encoding="UTF-8"?>
<!-- generated -->
<!DOCTYPE testsuites>
<testsuites name="all">
  <testsuite name="a" tests="3">
    <properties><property name="x" value="1"/></properties>
    <testcase name="ok" classname="a"/>
    <testcase classname='a' name="fails"><failure message="boom"><![CDATA[ <not a tag> ]]></failure><system-out>out</system-out></testcase>
    <testcase name="errs"><error type="E"/></testcase>
    <testsuite name="nested">
      <testcase name="skipped"><skipped/></testcase>
      <testcase name="passes with output"><system-out>hello &amp; bye</system-out></testcase>
    </testsuite>
  </testsuite>
</testsuites>`;
    assert.deepEqual(countTests(xml, 'JUnit'), { passed: 2, failed: 2, skipped: 1 });
    assert.deepEqual(countTests('<testsuite/>', 'JUnit'), { passed: 0, failed: 0, skipped: 0 });
    assert.deepEqual(countTests('\ufeff<testsuite><testcase name="x"></testcase></testsuite>', 'JUnit'), { passed: 1, failed: 0, skipped: 0 }, 'a byte-order mark is fine');
  });

  test('NUnit 3 and NUnit 2', () => {
    const v3 = `<test-run><test-suite type="Assembly"><test-suite>
      <test-case id="1" result="Passed"/><test-case id="2" result="Failed"><failure><message>no</message></failure></test-case>
      <test-case id="3" result="Skipped" label="Ignored"/><test-case id="4" result="Inconclusive"/><test-case id="5" result="Warning"/>
    </test-suite></test-suite></test-run>`;
    assert.deepEqual(countTests(v3, 'NUnit'), { passed: 2, failed: 1, skipped: 2 });
    const v2 = `<test-results><test-suite><results>
      <test-case name="a" executed="True" result="Success" success="True"/>
      <test-case name="b" executed="True" result="Failure" success="False"/>
      <test-case name="c" executed="True" result="Error" success="False"/>
      <test-case name="d" executed="False" result="Ignored"/>
    </results></test-suite></test-results>`;
    assert.deepEqual(countTests(v2, 'NUnit'), { passed: 1, failed: 2, skipped: 1 });
  });

  test('VSTest .trx with its default namespace', () => {
    const trx = `<?xml version="1.0" encoding="utf-8"?>
<TestRun id="1" xmlns="http://microsoft.com/schemas/VisualStudio/TeamTest/2010">
  <Results>
    <UnitTestResult testName="A" outcome="Passed" />
    <UnitTestResult testName="B" outcome="Failed"><Output><ErrorInfo><Message>x</Message></ErrorInfo></Output></UnitTestResult>
    <UnitTestResult testName="C" outcome="NotExecuted" />
    <UnitTestResult testName="D" outcome="Timeout" />
  </Results>
  <ResultSummary outcome="Failed"><Counters total="4" passed="1" failed="2" /></ResultSummary>
</TestRun>`;
    assert.deepEqual(countTests(trx, 'VSTest'), { passed: 1, failed: 2, skipped: 1 });
  });

  test('xUnit v2', () => {
    const xml = `<assemblies><assembly name="t.dll"><collection>
      <test name="a" result="Pass"/><test name="b" result="Fail"><failure><message>m</message></failure></test><test name="c" result="Skip"><reason>later</reason></test>
    </collection></assembly></assemblies>`;
    assert.deepEqual(countTests(xml, 'XUnit'), { passed: 1, failed: 1, skipped: 1 });
  });

  test('malformed XML is refused with a line number', () => {
    const cases = [
      '<testsuites><testsuite name="cut"><testcase name="a">', // truncated
      '<testsuite><testcase></testsuite>', // crossed tags
      '<testsuite name=unquoted/>',
      '<testsuite/><testsuite/>', // two roots
      'not xml at all',
      '',
      '<testsuite><!-- never closed </testsuite>',
      '<testsuite a="1"b="2"/>',
    ];
    for (const xml of cases) assert.throws(() => countTests(xml, 'JUnit'), MalformedXmlError, JSON.stringify(xml));
    assert.throws(() => countTests('<a>\n<b>\n</a>', 'JUnit'), /line 3/);
  });

  test('summarizeResults: malformed and empty files warn; counts add up; resultFiles picks the format extension', () => {
    const dir = tempDir();
    fs.mkdirSync(path.join(dir, 'sub'));
    fs.writeFileSync(path.join(dir, 'a.xml'), '<testsuite><testcase name="x"/><testcase name="y"><failure/></testcase></testsuite>');
    fs.writeFileSync(path.join(dir, 'sub', 'b.xml'), '<testsuite><testcase name="z"><skipped/></testcase></testsuite>');
    fs.writeFileSync(path.join(dir, 'broken.xml'), '<testsuite><testcase>');
    fs.writeFileSync(path.join(dir, 'other.xml'), '<coverage line-rate="1"/>');
    fs.writeFileSync(path.join(dir, 'run.trx'), '<TestRun><Results><UnitTestResult outcome="Passed"/></Results></TestRun>');
    fs.writeFileSync(path.join(dir, 'notes.txt'), 'x');
    const ctx = createTestContext();
    const files = resultFiles(dir, 'JUnit');
    assert.deepEqual(files.map((f) => path.relative(dir, f)), ['a.xml', 'broken.xml', 'other.xml', 'sub/b.xml']);
    const summary = summarizeResults(files, 'JUnit', ctx);
    assert.deepEqual({ passed: summary.passed, failed: summary.failed, skipped: summary.skipped }, { passed: 1, failed: 1, skipped: 1 });
    assert.deepEqual(summary.malformed.map((f) => path.basename(f)), ['broken.xml']);
    assert.ok(!summary.files.some((f) => f.endsWith('broken.xml')), 'a malformed file is not published');
    assert.ok(ctx.logs.some((l) => l.startsWith('WARNING:') && l.includes('broken.xml') && l.includes('not well-formed')));
    assert.ok(ctx.logs.some((l) => l.startsWith('WARNING:') && l.includes('other.xml') && l.includes('testResultsFormat')));
    assert.deepEqual(resultFiles(dir, 'VSTest').map((f) => path.basename(f)), ['run.trx']);
    assert.deepEqual(resultFiles(path.join(dir, 'missing'), 'JUnit'), []);
    const copied = ['a.xml', 'run.trx', 'notes.txt'].map((f) => path.join(dir, f));
    assert.deepEqual(resultFiles(copied, 'JUnit'), [path.join(dir, 'a.xml')], 'only the files copied in this run');
  });
});

describe('inputs', () => {
  test('command: JSON array as is, text as /bin/sh -c, bad JSON names the input', () => {
    assert.deepEqual(parseCommand('["npm", "test", "--", "--ci"]', 'command'), ['npm', 'test', '--', '--ci']);
    assert.deepEqual(parseCommand('npm test && echo "$HOME"', 'command'), ['/bin/sh', '-c', 'npm test && echo "$HOME"']);
    assert.equal(parseCommand('  ', 'command'), undefined);
    assert.throws(() => parseCommand('["npm", ', 'testCommand'), (e: Error) => e instanceof InputError && /Input 'testCommand'/.test(e.message));
    assert.throws(() => parseCommand('[1, 2]', 'command'), /Input 'command' must be a non-empty JSON array of strings/);
    assert.throws(() => parseCommand('[]', 'command'), /non-empty/);
  });

  const record: BuildRecord = {
    schemaVersion: 1,
    images: [
      { name: 'web', imageId: ID_A, repository: 'docker.io/shop/web', tags: ['1.0', 'latest'] },
      { name: 'api', imageId: ID_B, repository: 'myregistry.example.com/shop/api', tags: ['1.0'] },
    ],
  };

  test('image choice: the record by service, by repository (the built id, not the tag), ids and third-party references as given', () => {
    assert.equal(chooseImage({ service: 'api', record, recordPath: 'r.json' }).ref, ID_B);
    assert.equal(chooseImage({ image: 'shop/web:latest', record, recordPath: 'r.json' }).ref, ID_A, 'a tag the job built resolves to the built id');
    assert.equal(chooseImage({ image: 'myregistry.example.com/shop/api', record, recordPath: 'r.json' }).ref, ID_B);
    assert.equal(chooseImage({ image: 'shop/web:2.0', record, recordPath: 'r.json' }).ref, 'shop/web:2.0', 'a tag the job did not build is used as given');
    assert.equal(chooseImage({ image: 'a'.repeat(64), record, recordPath: 'r.json' }).ref, ID_A);
    assert.equal(chooseImage({ image: 'node:20', recordPath: 'r.json' }).ref, 'node:20');
    assert.equal(chooseImage({ record: { schemaVersion: 1, images: [record.images[0]] }, recordPath: 'r.json' }).ref, ID_A, 'the only image');
  });

  test('image choice: clear errors naming the input', () => {
    assert.throws(() => chooseImage({ recordPath: '/x/record.json' }), (e: Error) => e instanceof InputError && /Input 'image' is required/.test(e.message) && e.message.includes('/x/record.json'));
    assert.throws(() => chooseImage({ service: 'db', record, recordPath: 'r.json' }), /Input 'service': 'db' is not in the build record 'r.json' \(it has: web, api\)/);
    assert.throws(() => chooseImage({ record, recordPath: 'r.json' }), /Input 'service' is required: the build record 'r.json' has 2 images \(web, api\)/);
    assert.throws(() => chooseImage({ image: 'Not A Reference', record, recordPath: 'r.json' }), (e: Error) => e instanceof InputError && /Input 'image'/.test(e.message));
  });

  test('project names are valid for Compose v1 and v2 and unique per run', () => {
    const a = newRunId('4242');
    const b = newRunId(undefined);
    assert.match(a, /^4242-[a-f0-9]{8}$/);
    assert.match(newRunId('20261122.1 (main branch)'), /^202611221mai-[a-f0-9]{8}$/, 'cleaned and cut to 12 characters');
    assert.match(b, /^local-[a-f0-9]{8}$/);
    assert.notEqual(newRunId('1'), newRunId('1'));
    for (const id of [a, b, 'X.Y/Z']) assert.match(projectNameFor(id), /^[a-z0-9][a-z0-9_-]*$/);
  });

  test('bounded: deadline and cancellation', async () => {
    await assert.rejects(bounded(new Promise(() => undefined), { deadline: Date.now() + 20, onTimeout: () => new TimeoutError('late') }), /late/);
    const c = new AbortController();
    const p = bounded(new Promise(() => undefined), { signal: c.signal, onTimeout: () => new TimeoutError('x') });
    c.abort(new Error('job cancelled'));
    await assert.rejects(p, /job cancelled/);
    assert.equal(await bounded(Promise.resolve(7), { deadline: Date.now() + 1000, onTimeout: () => new TimeoutError('x') }), 7);
  });
});

describe('compose plan and per-run override', () => {
  const env = { ...process.env };
  const write = (dir: string, name: string, text: string) => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, text);
    return file;
  };

  test('built services pinned to their ids; labels on every service, network and volume; external ones left alone; $ escaped', () => {
    const dir = tempDir();
    const base = write(
      dir,
      'docker-compose.yml',
      `services:
  web:
    image: shop/web:dev
    build: ./web
    networks: [front, back]
  db:
    image: postgres:16
    networks: [back]
    volumes: [data:/var/lib/postgresql/data]
  migrate:
    image: shop/web:dev
    command: migrate
    networks: [back]
  tests:
    image: shop/tests
    build: ./tests
    depends_on:
      migrate:
        condition: service_completed_successfully
networks:
  front: {}
  back: {}
  shared:
    external: true
volumes:
  data: {}
  keep:
    external: true
`,
    );
    const record: BuildRecord = { schemaVersion: 1, images: [{ name: 'web', imageId: ID_A, repository: 'docker.io/shop/web', tags: ['dev'] }] };
    const input = { composeFiles: [base], testService: 'tests', envVars: { TOKEN: 'a$b', EMPTY: '' }, testCommand: ['/bin/sh', '-c', 'echo $HOME'], workingDirectory: '/w', user: '1000', record, env };
    const plan = planStack(input);
    assert.equal(plan.runner, 'tests');
    assert.deepEqual([...plan.pinned.keys()].sort(), ['migrate', 'web'], 'web by name, migrate by its image repository');
    assert.deepEqual(plan.unpinnedBuilds, [], 'the runner is not reported');
    assert.deepEqual([...plan.oneShot], ['migrate']);
    assert.deepEqual(plan.networks.sort(), ['back', 'default', 'front']);
    assert.deepEqual(plan.volumes, ['data']);
    const labels = { 'com.container-outer-loop.run': 'r1', 'com.container-outer-loop.expires': '1' };
    const doc = overrideDocument(plan, { ...input, labels }) as { services: Record<string, Record<string, unknown>>; networks: Record<string, unknown>; volumes: Record<string, unknown> };
    assert.equal(doc.services.web.image, ID_A);
    assert.equal(doc.services.migrate.image, ID_A);
    assert.equal(doc.services.db.image, undefined, 'third-party images are left as they are');
    for (const s of Object.values(doc.services)) assert.deepEqual(s.labels, labels);
    assert.deepEqual(Object.keys(doc.networks).sort(), ['back', 'default', 'front']);
    assert.deepEqual(Object.keys(doc.volumes), ['data']);
    assert.deepEqual(doc.services.tests.command, ['/bin/sh', '-c', 'echo $$HOME'], '$ is escaped for compose interpolation');
    assert.deepEqual(doc.services.tests.environment, { TOKEN: 'a$$b', EMPTY: '' });
    assert.equal(doc.services.tests.working_dir, '/w');
    assert.equal(doc.services.tests.user, '1000');
    assert.equal(doc.services.web.command, undefined, 'runner settings only go to the runner');
  });

  test('testImage adds a runner on every network the app uses', () => {
    const dir = tempDir();
    const base = write(dir, 'c.yml', 'services:\n  api:\n    image: shop/api\n    networks: [back]\n  web:\n    image: shop/web\nnetworks:\n  back: {}\n');
    const input = { composeFiles: [base], testImage: 'shop/e2e:1', envVars: {}, env };
    const plan = planStack(input);
    assert.equal(plan.runner, ADDED_RUNNER);
    assert.deepEqual(plan.runnerNetworks, ['back', 'default']);
    const doc = overrideDocument(plan, { ...input, labels: { l: 'v' }, testImageRef: 'shop/e2e:1' }) as { services: Record<string, Record<string, unknown>> };
    assert.deepEqual(doc.services[ADDED_RUNNER], { image: 'shop/e2e:1', labels: { l: 'v' }, networks: ['back', 'default'], restart: 'no' });
  });

  test('bad compose input: each error names the input', () => {
    const dir = tempDir();
    const base = write(dir, 'c.yml', 'services:\n  web:\n    image: shop/web\n');
    const check = (input: Partial<Parameters<typeof planStack>[0]>, pattern: RegExp) =>
      assert.throws(() => planStack({ composeFiles: [base], envVars: {}, env, ...input }), (e: Error) => e instanceof InputError && pattern.test(e.message), String(pattern));
    check({ composeFiles: [] }, /Input 'composeFiles' is required/);
    check({ composeFiles: [path.join(dir, 'missing.yml')], testService: 'web' }, /Input 'composeFiles': '.*missing\.yml' does not exist/);
    check({}, /Input 'testService' is required in compose mode/);
    check({ testService: 'tests' }, /Input 'testService': service 'tests' is not in .*c\.yml \(services: web\)/);
    check({ testService: 'web', testImage: 'x' }, /Inputs 'testService' and 'testImage' are both set/);
  });

  test('the fixture plans as the tests expect', () => {
    const plan = planStack({ composeFiles: [path.join(FIXTURE, 'docker-compose.yml')], testService: 'tests', envVars: {}, env });
    assert.deepEqual(plan.app.services.map((s) => s.name), ['web', 'tests']);
    assert.deepEqual(plan.unpinnedBuilds, ['web'], 'without a build record, web would run by tag: reported');
    assert.deepEqual(plan.volumes, ['cache']);
  });
});

describe('Compose CLI discovery', () => {
  const script = (dir: string, name: string, body: string) => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
    return file;
  };

  test('docker compose (v2) is preferred, then docker-compose; dockerComposePath overrides', async () => {
    const v2 = tempDir();
    script(v2, 'docker', 'if [ "$1" = compose ] && [ "$2" = version ]; then echo "v2.29.7"; exit 0; fi\nexit 1');
    script(v2, 'docker-compose', 'echo 1.29.2');
    const found = await findCompose({ env: { PATH: `${v2}:/usr/bin:/bin` } });
    assert.deepEqual({ command: found.command, prefix: found.prefix, version: found.version, major: found.major, display: found.display }, { command: 'docker', prefix: ['compose'], version: '2.29.7', major: 2, display: 'docker compose' });

    const v1 = tempDir();
    script(v1, 'docker', 'echo "docker: unknown command: docker compose" >&2; exit 1');
    script(v1, 'docker-compose', 'echo 1.29.2');
    const old = await findCompose({ env: { PATH: `${v1}:/usr/bin:/bin` } });
    assert.deepEqual([old.command, old.prefix, old.display], [path.join(v1, 'docker-compose'), [], 'docker-compose'], 'found on PATH, not run');

    const custom = script(tempDir(), 'my-compose', 'exit 1');
    const chosen = await findCompose({ path: custom, env: { PATH: `${v2}:/usr/bin:/bin` } });
    assert.deepEqual([chosen.command, chosen.prefix], [custom, []]);
    const dockerCli = await findCompose({ path: path.join(v2, 'docker'), env: { PATH: '/usr/bin:/bin' } });
    assert.deepEqual(dockerCli.prefix, ['compose'], 'a docker CLI path means the compose plugin');
  });

  test('no compose, or a dockerComposePath that does not answer: an error naming dockerComposePath', async () => {
    const empty = tempDir();
    await assert.rejects(findCompose({ env: { PATH: empty } }), (e: Error) => e instanceof InputError && /Input 'dockerComposePath': neither 'docker compose' \(v2\) nor 'docker-compose' \(v1\)/.test(e.message));
    await assert.rejects(findCompose({ path: path.join(empty, 'nope'), env: { PATH: empty } }), /Input 'dockerComposePath': '.*nope' is not an executable file/);
    const text = path.join(empty, 'docker-compose.yml');
    fs.writeFileSync(text, 'services: {}\n');
    await assert.rejects(findCompose({ path: text, env: { PATH: empty } }), /is not an executable file/);
    const noPlugin = path.join(tempDir(), 'docker');
    fs.writeFileSync(noPlugin, '#!/bin/sh\nexit 1\n', { mode: 0o755 });
    await assert.rejects(findCompose({ path: noPlugin, env: { PATH: empty } }), /Input 'dockerComposePath': '.*docker' did not answer 'compose version --short'/);
  });

  test('arguments: project, project directory, every file in order, then the sub-command', () => {
    const args = composeArgs({ cli: { command: 'docker', prefix: ['compose'], version: '2', major: 2, display: 'docker compose' }, name: 'coltest-1-ab', projectDir: '/app', files: ['/app/a.yml', '/app/b.yml', '/tmp/o.yml'] }, ['down', '-v']);
    assert.deepEqual(args, ['compose', '-p', 'coltest-1-ab', '--project-directory', '/app', '-f', '/app/a.yml', '-f', '/app/b.yml', '-f', '/tmp/o.yml', 'down', '-v']);
  });
});

describe('container output', () => {
  test('lines are sanitised, cut when very long, and the tail is bounded', () => {
    const lines: string[] = [];
    const sink = new LineSink((l) => lines.push(l), '', 3);
    sink.write('##vso[task.setvariable variable=X]1\r\npartial ');
    sink.write(Buffer.from('line\n##[error]no\n##VSO[task.complete result=Succeeded]\nlast'));
    sink.end();
    assert.equal(lines.length, 5);
    assert.ok(lines.every((l) => !/##(vso)?\[/i.test(l)), lines.join('\n'));
    assert.equal(lines[1], 'partial line');
    assert.deepEqual(sink.tail.length, 3);
    const long: string[] = [];
    const s2 = new LineSink((l) => long.push(l));
    s2.write('x'.repeat(40_000));
    s2.end();
    assert.ok(long.length >= 2 && long.every((l) => l.length <= 16 * 1024));
  });

  test('the Engine API multiplexed stream is split into stdout and stderr, across chunk boundaries', () => {
    const frame = (type: number, text: string) => {
      const body = Buffer.from(text);
      const header = Buffer.alloc(8);
      header[0] = type;
      header.writeUInt32BE(body.length, 4);
      return Buffer.concat([header, body]);
    };
    const all = Buffer.concat([frame(1, 'out 1\n'), frame(2, 'err 1\n'), frame(1, 'out 2\n')]);
    const got: string[] = [];
    const demux = new Demultiplexer((c, s) => got.push(`${s}:${c.toString()}`));
    for (let i = 0; i < all.length; i += 5) demux.push(all.subarray(i, i + 5));
    assert.equal(got.join(''), 'stdout:out 1\nstderr:err 1\nstdout:out 2\n');
  });
});
