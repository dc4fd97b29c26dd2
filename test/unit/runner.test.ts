import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { loadConnections, parseArgs } from '../../runner/cli';
import { parseStatusArgs } from '../../runner/status';
import { envName } from '../../runner/agent-env';
import { PipelineRun } from '../../runner/execute';
import { expandMacros } from '../../tasks/lib/pipeline/task-json';
import { evaluate, ExpressionContext } from '../../runner/expressions';
import { mask, parseLine } from '../../runner/logging';
import { parsePipeline, PipelineError } from '../../runner/pipeline';

test('logging commands: properties, escapes, formats, and malformed commands', () => {
  assert.deepEqual(parseLine('##vso[task.setvariable variable=a%3Bb;isOutput=true]x%AZP25y%0Az'), {
    kind: 'command',
    command: { command: 'task.setvariable', properties: { variable: 'a;b', isoutput: 'true' }, message: 'x%y\nz' },
  });
  assert.deepEqual(parseLine('prefix ##vso[task.complete result=Failed;]done'), { kind: 'command', command: { command: 'task.complete', properties: { result: 'Failed' }, message: 'done' } });
  assert.deepEqual(parseLine('##[group]Build api'), { kind: 'format', format: 'group', message: 'Build api' });
  assert.equal(parseLine('##vso[task.setvariable variable=x').kind, 'malformed');
  assert.equal(parseLine('##vso[nodot]x').kind, 'malformed');
  assert.equal(parseLine('##vso[task.setvariable novalue]x').kind, 'malformed');
  assert.deepEqual(parseLine('plain text'), { kind: 'text', text: 'plain text' });
  assert.equal(mask('pw=hunter22 and hunter2', ['hunter2', 'hunter22']), 'pw=*** and ***');
});

test('macros: $(var) expands case-insensitively; unknown ones stay as written', () => {
  const vars: Record<string, string> = { 'build.buildnumber': '20261122.3', tag: 'v1' };
  const lookup = (n: string) => vars[n.toLowerCase()];
  assert.equal(expandMacros('img:$(Build.BuildNumber)-$(TAG) $(missing) $[x] ${{y}}', lookup), 'img:20261122.3-v1 $(missing) $[x] ${{y}}');
  assert.equal(envName('Build.ArtifactStagingDirectory'), 'BUILD_ARTIFACTSTAGINGDIRECTORY');
});

test('conditions: status functions, comparisons, variables and dependencies', () => {
  const ctx = (failed: boolean): ExpressionContext => ({
    status: { failed, canceled: false },
    variable: (n) => ({ env: 'QA', flag: 'true' } as Record<string, string>)[n.toLowerCase()],
    dependency: (p) => (p.join('.') === 'dependencies.Build.outputs.push.digest' ? 'sha256:abc' : p.join('.') === 'dependencies.Build.result' ? 'Succeeded' : undefined),
  });
  const cases: [string, boolean, unknown][] = [
    ['succeeded()', false, true],
    ['succeeded()', true, false],
    ['failed()', true, true],
    ['always()', true, true],
    ["and(succeeded(), eq(variables['env'], 'qa'))", false, true],
    ["or(eq(variables.env, 'prod'), ne(variables['flag'], false))", false, true],
    ["not(in(variables.env, 'prod', 'staging'))", false, true],
    ["startsWith('refs/heads/main', 'refs/heads/')", false, true],
    ["dependencies.Build.outputs['push.digest']", false, 'sha256:abc'],
    ["eq(dependencies.Build.result, 'succeeded')", false, true],
    ["eq('it''s', 'IT''S')", false, true],
  ];
  for (const [expr, failed, expected] of cases) assert.equal(evaluate(expr, ctx(failed)), expected, expr);
  assert.throws(() => evaluate('succeeded(', ctx(false)), /ends too early|expected/);
  assert.throws(() => evaluate('coalesce(1, 2)', ctx(false)), /not supported by the local runner/);
  assert.throws(() => evaluate("eq('a' 'b')", ctx(false)), /expected|unexpected/);
});

test('pipelines: three shapes, deployment jobs, stage order, and refusals by name', () => {
  const steps = parsePipeline({ steps: [{ script: 'echo hi' }] }, 'p');
  assert.equal(steps.stages[0].jobs[0].steps[0].kind, 'script');
  const staged = parsePipeline(
    {
      variables: [{ name: 'a', value: 1 }],
      stages: [
        { stage: 'Build', jobs: [{ job: 'B', steps: [{ task: 'BuildAndTag@1', inputs: { imageName: 'x' } }] }] },
        { stage: 'QA', jobs: [{ deployment: 'D', environment: { name: 'qa' }, strategy: { runOnce: { deploy: { steps: [{ download: 'current', artifact: 'image-lock' }] } } } }] },
        { stage: 'Other', dependsOn: [], jobs: [{ job: 'O', steps: [{ bash: 'true' }] }] },
      ],
    },
    'p',
  );
  assert.deepEqual(staged.variables, { a: '1' });
  assert.deepEqual(staged.stages.map((s) => s.dependsOn), [[], ['Build'], []]);
  assert.equal(staged.stages[1].jobs[0].environment, 'qa');
  assert.deepEqual(staged.stages[0].jobs[0].steps[0].task, { name: 'BuildAndTag', major: 1 });
  const refusals: [object, RegExp][] = [
    [{ extends: { template: 'x.yml' } }, /templates are not available locally/],
    [{ variables: [{ group: 'secrets' }], steps: [] }, /variable group 'secrets' is not available locally; pass its variables with --var/],
    [{ steps: [{ powershell: 'Write-Host hi' }] }, /PowerShell steps do not run/],
    [{ steps: [{ task: 'Docker' }] }, /must be Name@major/],
    [{ stages: [{ stage: 'A', dependsOn: 'Z', jobs: [] }] }, /depends on 'Z', which does not exist/],
    [{ jobs: [{ job: 'A', steps: [] }, { job: 'a', steps: [] }] }, /defined twice/],
    [{ jobs: [{ deployment: 'D', environment: 'qa', strategy: { rolling: {} } }] }, /only 'strategy: runOnce'/],
    [{ trigger: 'none' }, /no stages:, jobs: or steps:/],
    [{ steps: [{ checkout: 'other-repo' }] }, /only 'checkout: self'/],
  ];
  for (const [doc, message] of refusals) assert.throws(() => parsePipeline(doc as Record<string, unknown>, 'p'), (e: Error) => e instanceof PipelineError && message.test(e.message), JSON.stringify(doc));
});

test('command line and connections', () => {
  const o = parseArgs(['run', 'azure-pipelines.yml', '--stage', 'QA', '--var', 'a=b=c', '--connection', 'reg.password=x']);
  assert.deepEqual([o.stages, o.variables, o.connectionFlags], [['QA'], { a: 'b=c' }, ['reg.password=x']]);
  assert.throws(() => parseArgs(['build']), /usage/);
  assert.throws(() => parseArgs(['run', 'p.yml', '--var', 'novalue']), /name=value/);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'col-conn-'));
  const file = path.join(dir, 'connections.yml');
  fs.writeFileSync(file, 'reg:\n  type: dockerregistry\n  url: http://localhost:5000\n  username: u\n  password: p\n');
  const c = loadConnections(file, ['reg.password=override', 'raw.url=https://x', 'raw.scheme=Token']);
  assert.equal(c.reg.scheme, 'UsernamePassword');
  assert.equal(c.reg.parameters.password, 'override');
  assert.deepEqual(c.raw, { url: 'https://x', scheme: 'Token', parameters: {}, data: {} });
  assert.throws(() => loadConnections(undefined, ['bad']), /name\.key=value/);
});

test('a run: output variables across stages, secrets masked, conditions, failure handling', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'col-run-'));
  const lines: string[] = [];
  const pipeline = parsePipeline(
    {
      stages: [
        {
          stage: 'Build',
          jobs: [
            {
              job: 'A',
              steps: [
                { script: 'echo "##vso[task.setvariable variable=color;isOutput=true]blue"', name: 'set' },
                { bash: 'echo "##vso[task.setvariable variable=pw;issecret=true]hunter22"; echo "the password is hunter22"' },
                { bash: 'echo "##vso[task.setvariable variable=bad"; exit 3', continueOnError: true, displayName: 'flaky' },
              ],
            },
          ],
        },
        { stage: 'Deploy', variables: { color: "$[ stageDependencies.Build.A.outputs['set.color'] ]" }, jobs: [{ job: 'D', steps: [{ script: 'echo "color=$(color) build=$(Build.BuildNumber)"' }, { script: 'exit 1' }, { script: 'echo after', condition: 'failed()' }] }] },
        { stage: 'Skipped', jobs: [{ job: 'S', steps: [{ script: 'echo never' }] }] },
      ],
    },
    'p',
  );
  const record = await new PipelineRun({ pipelineFile: path.join(dir, 'p.yml'), pipeline, variables: {}, connections: {}, tasksDir: path.join(dir, 'none'), runDir: dir, buildNumber: '20261122.7', out: (l) => lines.push(l) }).run();
  const log = lines.join('\n');
  assert.match(log, /color=blue build=20261122\.7/);
  assert.match(log, /the password is \*\*\*/);
  assert.ok(!log.includes('hunter22'));
  assert.match(log, /ignored a malformed logging command/);
  assert.match(log, /after/);
  assert.doesNotMatch(log, /never/);
  assert.deepEqual(record.steps.map((s) => s.result), ['Succeeded', 'Succeeded', 'SucceededWithIssues', 'Succeeded', 'Failed', 'Succeeded'], 'the skipped stage runs no step');
  assert.equal(record.result, 'Failed');
});

test('artifact names Azure Pipelines refuses are refused, in publish: steps and in artifact.upload; nothing lands outside the run folder', async () => {
  for (const artifact of ['../../../tmp/x', 'a/b', 'a\\b', 'x:y', 'w*', '..']) {
    assert.throws(
      () => parsePipeline({ steps: [{ publish: 'out', artifact }] }, 'p'),
      (e: Error) => e instanceof PipelineError && /not a valid artifact name/.test(e.message),
      artifact,
    );
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'col-run-artifact-'));
  const runDir = path.join(dir, 'runs', '1');
  fs.mkdirSync(runDir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'f.txt'), 'hi');
  const lines: string[] = [];
  const pipeline = parsePipeline(
    {
      steps: [
        { bash: `echo "##vso[artifact.upload artifactname=../../escaped]${path.join(dir, 'f.txt')}"`, continueOnError: true },
        { bash: `echo "##vso[artifact.upload artifactname=ok;containerfolder=../../../escaped]${path.join(dir, 'f.txt')}"` },
      ],
    },
    'p',
  );
  const record = await new PipelineRun({ pipelineFile: path.join(dir, 'p.yml'), pipeline, variables: {}, connections: {}, tasksDir: path.join(dir, 'none'), runDir, buildNumber: '1', out: (l) => lines.push(l) }).run();
  assert.ok(!fs.existsSync(path.join(dir, 'runs', 'escaped')), 'nothing written outside the run folder');
  assert.deepEqual(record.steps.map((s) => s.result), ['SucceededWithIssues', 'Failed']);
  assert.match(lines.join('\n'), /artifact\.upload: '\.\.\/\.\.\/escaped' is not a valid artifact name/);
  assert.match(lines.join('\n'), /artifact\.upload: containerfolder '\.\.\/\.\.\/\.\.\/escaped' leads outside the artifact 'ok'/);
});

test('secret variables reach a script only through env:; secrets of any length are masked', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'col-run-secret-'));
  const lines: string[] = [];
  const pipeline = parsePipeline(
    {
      steps: [
        {
          bash: 'echo "SECRET_ variables: $(env | grep -c ^SECRET_ || true)"; [ "$MAPPED" = "tok-123" ] && echo "mapped through env: yes"; echo "pin=Q7"; echo "##vso[task.setsecret]Z9"; echo "code=Z9"',
          env: { MAPPED: '$(token)' },
        },
      ],
    },
    'p',
  );
  await new PipelineRun({ pipelineFile: path.join(dir, 'p.yml'), pipeline, variables: {}, secretVariables: { token: 'tok-123', pin: 'Q7' }, connections: {}, tasksDir: path.join(dir, 'none'), runDir: dir, buildNumber: '1', out: (l) => lines.push(l) }).run();
  const log = lines.join('\n');
  assert.match(log, /SECRET_ variables: 0/);
  assert.match(log, /mapped through env: yes/);
  assert.match(log, /pin=\*\*\*/);
  assert.match(log, /code=\*\*\*/);
  assert.doesNotMatch(log, /Q7|Z9/);
});

test('status: the command line of the drift report', () => {
  assert.deepEqual(parseStatusArgs(['status', '--lock', 'l.json', '--host', 'unix:///run/docker.sock', '--project', 'shop-prod', '--not-deployed', 'tests', '--max-restarts', '2']), {
    lockFile: 'l.json',
    host: 'unix:///run/docker.sock',
    project: 'shop-prod',
    namespace: 'default',
    fieldManager: 'container-outer-loop',
    maxRestarts: 2,
    notDeployed: ['tests'],
  });
  const kube = parseStatusArgs(['status', '--lock', 'l.json', '--kubeconfig', 'k', '--namespace', 'shop', '--context', 'prod']);
  assert.deepEqual([kube.kubeconfig, kube.namespace, kube.context, kube.project], ['k', 'shop', 'prod', undefined]);
  assert.throws(() => parseStatusArgs(['status', '--project', 'p']), /--lock is required/);
  assert.throws(() => parseStatusArgs(['status', '--lock', 'l.json']), /--project is required for a Docker host/);
  assert.throws(() => parseStatusArgs(['status', '--lock', 'l.json', '--kubeconfig', 'k', '--project', 'p']), /give one of the two/);
  assert.throws(() => parseStatusArgs(['status', '--lock', 'l.json', '--project', 'p', '--max-restarts', '-1']), /--max-restarts -1: give a whole number from 0 to 1000/);
  assert.throws(() => parseStatusArgs(['status', '--lock', 'l.json', '--project', 'p', '--color', 'x']), /unknown option --color/);
});
