// The services the agent gives a step through logging commands: variables and secrets, issues,
// the step's result, PATH, summaries, artifacts (upload, and download for deployment jobs and
// download steps) and test results.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { artifactNameProblem } from '../tasks/lib/artifact-name';
import { countTests, MalformedXmlError, ResultsFormat, RESULTS_FORMATS } from '../tasks/lib/containerized-test/xml-count';
import { LoggingCommand, RunLog } from './logging';
import type { Step } from './pipeline';
import { JobOutcome, Result, RunRecord, TestRun } from './run-record';
import type { Variables } from './variables';

/** A logging command the runner refuses, as the agent refuses it: the step fails. */
export class CommandError extends Error {}

export class AgentServices {
  constructor(
    private readonly record: RunRecord,
    private readonly artifactsDir: string,
    private readonly log: RunLog,
    /** The run's variables (build.updatebuildnumber sets Build.BuildNumber there). */
    private readonly root: Variables,
  ) {}

  /** One logging command; returns the step's result when it is task.complete. */
  handle(cmd: LoggingCommand, step: Step, variables: Variables, job: JobOutcome, pathPrefix: string[]): { result: Result; message?: string } | undefined {
    const p = cmd.properties;
    switch (cmd.command) {
      case 'task.setsecret':
        this.log.addSecret(cmd.message);
        return undefined;
      case 'task.setvariable': {
        const name = p.variable;
        if (!name) return void this.log.print('    ##[warning] task.setvariable without variable= ignored');
        const secret = /^true$/i.test(p.issecret ?? '');
        if (secret) this.log.addSecret(cmd.message);
        variables.set(name, cmd.message, secret);
        if (step.name) variables.set(`${step.name}.${name}`, cmd.message, secret);
        if (/^true$/i.test(p.isoutput ?? '') && step.name) job.outputs[`${step.name}.${name}`] = cmd.message;
        return undefined;
      }
      case 'task.debug':
        if (variables.debug) this.log.print(`    [debug] ${cmd.message}`);
        return undefined;
      case 'task.logissue':
      case 'task.issue': // task-lib 5 writes this form
        this.log.print(`    [${p.type === 'error' ? 'error' : 'warning'}] ${cmd.message}`);
        return undefined;
      case 'task.complete': {
        const result = (['Succeeded', 'SucceededWithIssues', 'Failed', 'Skipped', 'Canceled'] as Result[]).find((r) => r.toLowerCase() === (p.result ?? '').toLowerCase());
        return { result: result ?? 'Failed', message: cmd.message || undefined };
      }
      case 'task.prependpath':
        pathPrefix.unshift(cmd.message);
        return undefined;
      case 'task.uploadsummary':
        if (fs.existsSync(cmd.message)) this.record.summaries.push({ title: step.displayName, markdown: fs.readFileSync(cmd.message, 'utf8') });
        return undefined;
      case 'artifact.upload': {
        const name = p.artifactname ?? 'drop';
        const problem = artifactNameProblem(name);
        if (problem) throw new CommandError(`artifact.upload: ${problem}; nothing was uploaded.`);
        if (fs.existsSync(cmd.message)) this.uploadArtifact(name, cmd.message, p.containerfolder);
        else this.log.print(`    ##[warning] artifact.upload: '${cmd.message}' does not exist`);
        return undefined;
      }
      case 'results.publish':
        this.publishResults(p);
        return undefined;
      case 'build.updatebuildnumber':
        this.root.set('Build.BuildNumber', cmd.message);
        return undefined;
      default:
        this.log.print(`    ##[warning] the local runner ignores ##vso[${cmd.command}]`);
        return undefined;
    }
  }

  uploadArtifact(name: string, from: string, containerFolder?: string): void {
    const artifact = path.join(this.artifactsDir, name);
    const dest = path.join(artifact, containerFolder && containerFolder !== name ? containerFolder : '');
    if (dest !== artifact && !dest.startsWith(artifact + path.sep)) throw new CommandError(`artifact.upload: containerfolder '${containerFolder}' leads outside the artifact '${name}'; nothing was uploaded.`);
    fs.mkdirSync(dest, { recursive: true });
    fs.cpSync(from, fs.statSync(from).isDirectory() ? dest : path.join(dest, path.basename(from)), { recursive: true });
    this.log.print(`    ⇪ artifact '${name}': ${path.basename(from)}`);
  }

  downloadArtifacts(name: string | undefined, into: string): void {
    if (!fs.existsSync(this.artifactsDir)) return;
    for (const artifact of fs.readdirSync(this.artifactsDir)) {
      if (name && artifact !== name) continue;
      fs.cpSync(path.join(this.artifactsDir, artifact), path.join(into, artifact), { recursive: true });
    }
  }

  private publishResults(p: Record<string, string>): void {
    const format = RESULTS_FORMATS.find((f) => f.toLowerCase() === (p.type ?? '').toLowerCase()) as ResultsFormat | undefined;
    const files = (p.resultfiles ?? '').split(',').map((f) => f.trim()).filter(Boolean);
    const run: TestRun = { title: p.runtitle || 'Test results', format: p.type ?? '?', passed: 0, failed: 0, skipped: 0 };
    for (const file of files) {
      if (!format || !fs.existsSync(file)) {
        this.log.print(`    ##[warning] results.publish: cannot read ${file} as ${p.type}`);
        continue;
      }
      try {
        const counts = countTests(fs.readFileSync(file, 'utf8'), format);
        run.passed += counts.passed;
        run.failed += counts.failed;
        run.skipped += counts.skipped;
      } catch (err) {
        if (!(err instanceof MalformedXmlError)) throw err;
        this.log.print(`    ##[warning] results.publish: ${file} is not valid ${format} XML`);
      }
    }
    this.record.tests.push(run);
    this.log.print(`    ☑ test results '${run.title}': ${run.passed} passed, ${run.failed} failed, ${run.skipped} skipped`);
  }
}
