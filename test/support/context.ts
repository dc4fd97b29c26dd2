// A TaskContext for tests: records everything the library says and does, with no agent.
import { setMaxListeners } from 'node:events';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { TaskContext, secretForms } from '../../tasks/lib/context';

export interface TestContext extends TaskContext {
  logs: string[];
  secrets: Set<string>;
  outputs: Record<string, string>;
  artifacts: { name: string; path: string }[];
  summaries: string[];
  testResults: { format: string; files: string[]; title?: string }[];
  variables: Record<string, string>;
  abort(reason?: string): void;
}

export function createTestContext(variables: Record<string, string> = {}): TestContext {
  const controller = new AbortController();
  setMaxListeners(0, controller.signal); // as runTask does
  const tempDir = fs.mkdtempSync(path.join(os.tmpdir(), 'col-ctx-'));
  const logs: string[] = [];
  const ctx: TestContext = {
    logs,
    secrets: new Set(),
    outputs: {},
    artifacts: [],
    summaries: [],
    testResults: [],
    variables,
    tempDir,
    signal: controller.signal,
    info: (m) => void logs.push(m),
    warn: (m) => void logs.push(`WARNING: ${m}`),
    debug: (m) => void logs.push(`DEBUG: ${m}`),
    async group(title, fn) {
      logs.push(`GROUP ${title}`);
      return fn();
    },
    setSecret(value) {
      for (const form of secretForms(value)) ctx.secrets.add(form);
    },
    output(name, value) {
      ctx.outputs[name] = value;
    },
    uploadArtifact(name, p) {
      ctx.artifacts.push({ name, path: p });
    },
    addSummary(_name, markdown) {
      ctx.summaries.push(markdown);
    },
    publishTestResults(options) {
      ctx.testResults.push(options);
    },
    variable: (name) => variables[name],
    abort: (reason) => controller.abort(new Error(reason ?? 'aborted')),
  };
  return ctx;
}
