// The example pipeline, end to end with the local runner: build → test → push → QA → staging.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import { test } from 'node:test';
import { runDemo } from '../../scripts/demo';

test('npm run demo: the digests in the lock are the digests running in qa and staging', async () => {
  const lines: string[] = [];
  const result = await runDemo({ keep: false, out: (l) => lines.push(l) });
  const log = lines.join('\n');
  assert.equal(result.ok, true, log);
  for (const service of ['web', 'api', 'cache']) {
    assert.match(result.lockDigests[service] ?? '', /^sha256:[a-f0-9]{64}$/, service);
    assert.equal(result.running.qa[service], result.lockDigests[service], `qa ${service}`);
    assert.equal(result.running.staging[service], result.lockDigests[service], `staging ${service}`);
  }
  const report = fs.readFileSync(result.reportFile, 'utf8');
  assert.match(report, /\| Shop integration tests \| 3 \| 0 \| 0 \|/);
  assert.match(report, /\| qa \| QA \| Succeeded \|/);
  assert.match(report, /\| staging \| Staging \| Succeeded \|/);
});
