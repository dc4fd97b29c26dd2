// The run report: each step's result and duration, the images and digests of the run's image
// lock, test counts, and what ran in each environment. Markdown on disk, a short text on screen.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ImageLock } from '../tasks/lib/lock/types';
import { validateLock } from '../tasks/lib/lock/validate';
import type { RunRecord } from './run-record';

export interface Report {
  markdown: string;
  text: string;
  locks: ImageLock[];
}

/** Image locks among the run's artifacts (any JSON file that is a valid lock). */
export function findLocks(artifactsDir: string): ImageLock[] {
  const locks: ImageLock[] = [];
  const walk = (dir: string) => {
    if (!fs.existsSync(dir)) return;
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(p);
      else if (entry.name.endsWith('.json')) {
        try {
          locks.push(validateLock(JSON.parse(fs.readFileSync(p, 'utf8')), p));
        } catch {
          // not a lock
        }
      }
    }
  };
  walk(artifactsDir);
  return locks;
}

export function buildReport(record: RunRecord, title: string): Report {
  const locks = findLocks(record.artifactsDir);
  const md: string[] = [`# ${title}: ${record.result}`, '', '## Steps', '', '| stage | job | step | result | seconds |', '|---|---|---|---|---|'];
  for (const s of record.steps) md.push(`| ${s.stage} | ${s.job} | ${s.step.replace(/\|/g, '\\|')} | ${s.result}${s.message ? ` — ${s.message.replace(/\|/g, '\\|')}` : ''} | ${s.seconds.toFixed(1)} |`);
  const text: string[] = [`Run ${record.result}: ${record.steps.filter((s) => s.result === 'Succeeded').length}/${record.steps.length} steps succeeded.`];

  for (const lock of locks) {
    md.push('', '## Images (image lock)', '', '| image | digest | source |', '|---|---|---|');
    for (const i of lock.images) {
      md.push(`| ${i.name} | \`${i.ref}\` | ${i.source} |`);
      text.push(`  image ${i.name}: ${i.ref}`);
    }
  }
  if (record.tests.length) {
    md.push('', '## Tests', '', '| run | passed | failed | skipped |', '|---|---|---|---|');
    for (const t of record.tests) {
      md.push(`| ${t.title} | ${t.passed} | ${t.failed} | ${t.skipped} |`);
      text.push(`  tests '${t.title}': ${t.passed} passed, ${t.failed} failed, ${t.skipped} skipped`);
    }
  }
  if (record.deployments.length) {
    md.push('', '## Environments', '', '| environment | stage | result | deployed digests |', '|---|---|---|---|');
    for (const d of record.deployments) {
      const digests = deployedDigests(d.outputs);
      md.push(`| ${d.environment} | ${d.stage} | ${d.result} | ${Object.entries(digests).map(([k, v]) => `${k}: \`${v}\``).join('<br>') || '—'} |`);
      text.push(`  environment ${d.environment}: ${d.result}`);
      for (const [k, v] of Object.entries(digests)) text.push(`    ${k}: ${v}`);
    }
  }
  for (const s of record.summaries) md.push('', `## Summary from ${s.title}`, '', s.markdown);
  if (record.warnings.length) md.push('', '## Warnings', '', ...record.warnings.map((w) => `- ${w}`));
  return { markdown: `${md.join('\n')}\n`, text: text.join('\n'), locks };
}

/** `deployedDigests` output variables (JSON objects) of a deployment job's steps, merged. */
function deployedDigests(outputs: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(outputs)) {
    if (!/(^|\.)deployedDigests$/i.test(key)) continue;
    try {
      Object.assign(out, JSON.parse(value) as Record<string, string>);
    } catch {
      // not JSON: ignore
    }
  }
  return out;
}
