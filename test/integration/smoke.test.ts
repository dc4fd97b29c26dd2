// Runs every bundled task (dist/tasks/<task>/index.js) the way the agent does: a copy of the task
// folder far from the repository (so nothing can come from node_modules), `node index.js` in a
// child process, inputs and service connections as INPUT_* / ENDPOINT_* variables, the agent's
// AGENT_* / SYSTEM_* / BUILD_* variables. With a required input missing, each task must report a
// clear failure through the logging commands, and nothing may crash. `npm run build` must run first.
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { endpointEnvironment, inputEnvName } from '../../runner/agent-env';
import { discoverTasks, REPO_ROOT } from '../../scripts/tasks.mjs';
import { DIST_TASKS } from '../support/agent';

const SECRET = 'Sm0ke-Pa55word-9f3c1e';

interface TaskJson {
  name: string;
  inputs: { name: string; type: string; required?: boolean; defaultValue?: string }[];
}

/** Task folders with a task.json under tasks/. */
function sourceTasks(): string[] {
  return discoverTasks(REPO_ROOT).map((t) => t.folder);
}

let work: string;
before(() => {
  work = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'col-smoke-')));
  const rel = path.relative(REPO_ROOT, work);
  assert.ok(rel.startsWith('..') || path.isAbsolute(rel), `the temp folder ${work} must be outside the repository`);
});
after(() => {
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

/** The variables the agent gives every task, pointing into a private folder. */
function agentEnv(base: string): Record<string, string> {
  const dirs = {
    temp: path.join(base, '_temp'),
    sources: path.join(base, 's'),
    staging: path.join(base, 'a'),
    home: path.join(base, 'home'),
  };
  for (const d of Object.values(dirs)) fs.mkdirSync(d, { recursive: true });
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: dirs.home,
    AGENT_TEMPDIRECTORY: dirs.temp,
    AGENT_WORKFOLDER: base,
    AGENT_BUILDDIRECTORY: base,
    AGENT_OS: os.platform() === 'win32' ? 'Windows_NT' : os.platform() === 'darwin' ? 'Darwin' : 'Linux',
    AGENT_VERSION: '4.260.0',
    AGENT_NAME: 'smoke-agent',
    AGENT_JOBNAME: 'Job',
    SYSTEM_DEFAULTWORKINGDIRECTORY: dirs.sources,
    BUILD_SOURCESDIRECTORY: dirs.sources,
    BUILD_ARTIFACTSTAGINGDIRECTORY: dirs.staging,
    SYSTEM_TEAMFOUNDATIONCOLLECTIONURI: 'https://dev.azure.com/smoke-org/',
    SYSTEM_TEAMFOUNDATIONSERVERURI: 'https://dev.azure.com/smoke-org/',
    SYSTEM_TEAMPROJECT: 'SmokeProject',
    SYSTEM_TEAMPROJECTID: '0b5d7bd8-1f61-4a4d-a2f6-3f8b6d1e0c11',
    SYSTEM_COLLECTIONID: '8f2c4e58-67a4-4e0f-9f0e-0bde0b5cbf6a',
    SYSTEM_HOSTTYPE: 'build',
    SYSTEM_JOBID: 'a6c1cb0e-6f43-5b8e-7e4d-1b9c2f0e3d44',
    SYSTEM_PLANID: '2b6d5c8e-1a1f-4a4b-8c1d-5e9f0a7b3c22',
    SYSTEM_DEBUG: 'true',
    BUILD_BUILDNUMBER: '20260101.7',
    BUILD_BUILDID: '4242',
    BUILD_DEFINITIONNAME: 'smoke-pipeline',
    BUILD_SOURCEBRANCH: 'refs/heads/main',
    BUILD_SOURCEBRANCHNAME: 'main',
    BUILD_SOURCEVERSION: '0123456789abcdef0123456789abcdef01234567',
    BUILD_REPOSITORY_URI: 'https://dev.azure.com/smoke-org/SmokeProject/_git/shop',
    // Nothing the task might reach: a Docker socket that does not exist.
    DOCKER_HOST: `unix://${path.join(base, 'no-docker.sock')}`,
    DOCKER_CONFIG: path.join(dirs.home, '.docker'),
  };
}

/** A dockerregistry service connection as the agent passes it. */
function dockerRegistryEndpoint(id: string): Record<string, string> {
  return {
    ...endpointEnvironment(id, {
      url: 'https://registry.smoke.invalid/',
      scheme: 'UsernamePassword',
      parameters: { username: 'smoke-user', password: SECRET, email: '', registry: 'https://registry.smoke.invalid/' },
      data: { registrytype: 'Others' },
    }),
    [`SECRET_ENDPOINT_AUTH_PARAMETER_${id.toUpperCase()}_PASSWORD`]: SECRET,
  };
}

interface Run {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  output: string;
}

/** Copies dist/tasks/<folder> somewhere fresh and runs it like the agent. */
function runBundled(folder: string, extraEnv: Record<string, string>): Run {
  const base = fs.mkdtempSync(path.join(work, `${folder}-`));
  const taskDir = path.join(base, '_tasks', folder);
  fs.cpSync(path.join(DIST_TASKS, folder), taskDir, { recursive: true });
  const env = { ...agentEnv(base), ...extraEnv };
  const result = spawnSync(process.execPath, [path.join(taskDir, 'index.js')], {
    cwd: env.SYSTEM_DEFAULTWORKINGDIRECTORY,
    env,
    encoding: 'utf8',
    timeout: 60_000,
  });
  return {
    status: result.status,
    signal: result.signal,
    stdout: result.stdout ?? '',
    stderr: result.stderr ?? '',
    output: `${result.stdout ?? ''}\n${result.stderr ?? ''}`,
  };
}

/** What every run must satisfy: it ended by itself, loaded, failed through task.complete, no crash. */
function assertCleanFailure(run: Run, task: TaskJson): string {
  const show = `\n--- output ---\n${run.output}`;
  assert.equal(run.signal, null, `the task was killed (${run.signal}); it must finish by itself${show}`);
  assert.doesNotMatch(run.output, /Cannot find module|MODULE_NOT_FOUND|ERR_REQUIRE_ESM/, `the bundle could not load a module${show}`);
  assert.doesNotMatch(run.output, /(^|\n|%0A)\s*at .+:\d+:\d+\)?/, `a stack trace was printed${show}`);
  assert.doesNotMatch(run.output, /Unhandled|UnhandledPromiseRejection|TypeError|ReferenceError:|SyntaxError/, `an unexpected error escaped${show}`);
  // task-lib's resource file (lib.json) must be beside the bundle, or it prints loc-key warnings.
  assert.doesNotMatch(run.output, /Resource file haven't been set|can't find loc string|not found in the resources/i, `task-lib could not load its resources${show}`);
  const complete = run.stdout.split(/\r?\n/).filter((l) => l.startsWith('##vso[task.complete'));
  assert.equal(complete.length, 1, `expected exactly one ##vso[task.complete] line${show}`);
  assert.ok(complete[0].startsWith('##vso[task.complete result=Failed;]'), `expected result=Failed${show}`);
  const message = complete[0].slice('##vso[task.complete result=Failed;]'.length);
  assert.ok(message.trim().length > 0, `the failure has no message${show}`);
  assert.ok(message.startsWith(`${task.name}:`), `the failure message names the task (${task.name})${show}`);
  assert.ok(run.stdout.includes(`##vso[task.issue type=error;`), `the failure is reported as an error issue${show}`);
  return message;
}

function inputNamesIn(text: string, task: TaskJson): string[] {
  return task.inputs.map((i) => i.name).filter((name) => new RegExp(`\\b${name}\\b`).test(text));
}

describe('bundled tasks run as the agent runs them', () => {
  test('dist/ has a bundle for every task (run `npm run build` first)', () => {
    assert.ok(fs.existsSync(DIST_TASKS), `${DIST_TASKS} does not exist: run \`npm run build\` before the smoke test`);
    for (const folder of sourceTasks()) {
      for (const file of ['index.js', 'task.json', 'icon.png', 'lib.json']) {
        assert.ok(fs.existsSync(path.join(DIST_TASKS, folder, file)), `dist/tasks/${folder}/${file} is missing: run \`npm run build\``);
      }
    }
  });

  test('the temp folder has no node_modules above it', () => {
    for (let dir = work; ; dir = path.dirname(dir)) {
      assert.ok(!fs.existsSync(path.join(dir, 'node_modules')), `${dir}/node_modules exists, so the smoke test cannot prove the bundle is self-contained`);
      if (path.dirname(dir) === dir) break;
    }
  });

  for (const folder of sourceTasks()) {
    const task = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'tasks', folder, 'task.json'), 'utf8')) as TaskJson;

    test(`${task.name}: no inputs → a clear failure naming an input`, () => {
      assert.ok(fs.existsSync(path.join(DIST_TASKS, folder, 'index.js')), `dist/tasks/${folder}/index.js is missing: run \`npm run build\``);
      const run = runBundled(folder, {});
      const message = assertCleanFailure(run, task);
      assert.match(run.stdout, /Input '[A-Za-z0-9]+'/, `a line names the missing input ("Input '...'")\n${run.output}`);
      const named = [...run.stdout.matchAll(/Input '([A-Za-z0-9]+)'/g)].map((m) => m[1]);
      assert.ok(
        named.some((n) => task.inputs.some((i) => i.name === n)),
        `the input named (${named.join(', ')}) is one of task.json's inputs (${task.inputs.map((i) => i.name).join(', ')})`,
      );
      if (task.name === 'BuildAndTag') {
        assert.deepEqual(
          inputNamesIn(message, task).filter((n) => n === 'imageName' || n === 'composeFile').sort(),
          ['composeFile', 'imageName'],
          `BuildAndTag with neither imageName nor composeFile must say that one of them is needed: ${message}`,
        );
      }
      // SYSTEM_DEBUG=true: task-lib's debug output is on, so secrets and stacks would show here.
      assert.match(run.stdout, /##vso\[task\.debug\]/, 'debug output is on');
    });

    const registryInputs = task.inputs.filter((i) => i.type === 'connectedService:dockerregistry');
    if (registryInputs.length > 0) {
      test(`${task.name}: a dockerregistry service connection is read without crashing or leaking`, () => {
        assert.ok(fs.existsSync(path.join(DIST_TASKS, folder, 'index.js')), `dist/tasks/${folder}/index.js is missing: run \`npm run build\``);
        const env: Record<string, string> = {};
        for (const input of registryInputs) {
          const id = `smoke-${input.name.toLowerCase()}-0001`;
          env[inputEnvName(input.name)] = id;
          Object.assign(env, dockerRegistryEndpoint(id));
        }
        const typeInput = task.inputs.find((i) => i.name === 'containerRegistryType');
        if (typeInput) env[inputEnvName(typeInput.name)] = 'dockerRegistry';
        const run = runBundled(folder, env);
        assertCleanFailure(run, task);
        // `##vso[task.setsecret]` lines register values for masking; the agent consumes them and
        // never shows them. Anything else the agent would print.
        const shown = run.output
          .split(/\r?\n/)
          .filter((l) => !l.startsWith('##vso[task.setsecret]'))
          .join('\n');
        assert.ok(!shown.includes(SECRET), `the password appears in the output\n${shown}`);
        assert.ok(!shown.includes(Buffer.from(`smoke-user:${SECRET}`).toString('base64')), `the basic-auth form of the password appears in the output\n${shown}`);
        assert.ok(!shown.includes(Buffer.from(SECRET).toString('base64')), `the base64 form of the password appears in the output\n${shown}`);
      });
    }
  }
});
