#!/usr/bin/env node
// Checks every tasks/<task>/task.json and keeps tasks/inputs-record.json, the committed record of
// each task's inputs and output variables, so that none disappears silently between releases.
//   node scripts/validate.mjs [--root DIR] [--update-record]
// Exits non-zero listing every problem. `--update-record` adds new tasks, inputs and outputs to the
// record; it refuses to drop anything unless package.json's major version (which bundle.mjs stamps
// into every task) is higher than the one recorded, because a removed input breaks every pipeline
// that sets it.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { discoverTasks, isMain, packageVersion, pascalFromFolder, resolveRoot } from './tasks.mjs';

export const RECORD_PATH = path.join('tasks', 'inputs-record.json');
export const REQUIRED_HANDLERS = ['Node20_1', 'Node24'];
/** Handlers whose Node runtime is end-of-life on the agent. */
const DEPRECATED_HANDLERS = ['Node', 'Node10', 'Node16'];
/** Node20_1 needs agent 3.232.1 or later. */
const MIN_AGENT = [3, 232, 1];
const INPUT_TYPES = new Set(['boolean', 'filePath', 'int', 'multiLine', 'pickList', 'radio', 'secureFile', 'string', 'identities', 'querycontrol']);
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const CAMEL = /^[a-z][A-Za-z0-9]*$/;
const PASCAL = /^[A-Z][A-Za-z0-9]*$/;
const RULE_OPERATORS = ['NotContains', 'NotStartsWith', 'NotEndsWith', 'Contains', 'StartsWith', 'EndsWith', '!=', '<=', '>=', '=', '<', '>'];

/**
 * Parses a visibleRule (`a = b && c != d`, `x = 1 || y Contains z`) into clauses.
 * Returns { clauses: [{ name, operator, value }], errors: [text] }.
 */
export function parseVisibleRule(rule) {
  const clauses = [];
  const errors = [];
  if (typeof rule !== 'string' || !rule.trim()) return { clauses, errors: ['is empty'] };
  for (const raw of rule.split(/&&|\|\|/)) {
    const text = raw.trim();
    if (!text) {
      errors.push(`has an empty condition in '${rule}'`);
      continue;
    }
    let match;
    for (const op of RULE_OPERATORS) {
      const re = /^[A-Za-z]/.test(op)
        ? new RegExp(`^([A-Za-z][A-Za-z0-9_.]*)\\s+${op}\\s+(.*)$`)
        : new RegExp(`^([A-Za-z][A-Za-z0-9_.]*)\\s*${op.replace(/[<>=!]/g, (c) => `\\${c}`)}\\s*(.*)$`);
      const m = re.exec(text);
      if (m) {
        match = { name: m[1], operator: op, value: m[2].trim() };
        break;
      }
    }
    if (match) clauses.push(match);
    else errors.push(`condition '${text}' is not '<input> <operator> <value>'`);
  }
  return { clauses, errors };
}

/** Validates every task under `root`. Returns { problems, notes, record, recordWritten }. */
export function validate({ root, updateRecord = false } = {}) {
  const problems = [];
  const notes = [];
  let version;
  try {
    version = packageVersion(root);
  } catch (err) {
    problems.push(err.message);
  }
  const tasks = discoverTasks(root);
  if (tasks.length === 0) problems.push(`no tasks found under ${path.join(root, 'tasks')} (a task is a folder with task.json)`);

  const parsed = [];
  const ids = new Map();
  for (const task of tasks) {
    const where = `tasks/${task.folder}/task.json`;
    let json;
    try {
      json = JSON.parse(fs.readFileSync(task.taskJsonPath, 'utf8'));
    } catch (err) {
      problems.push(`${where}: not valid JSON (${err.message})`);
      continue;
    }
    if (!json || typeof json !== 'object' || Array.isArray(json)) {
      problems.push(`${where}: must be a JSON object`);
      continue;
    }
    const p = (msg) => problems.push(`${where}: ${msg}`);
    checkTask(task, json, p, version, root);
    if (typeof json.id === 'string' && UUID.test(json.id)) {
      const key = json.id.toLowerCase();
      if (ids.has(key)) p(`id ${json.id} is also the id of tasks/${ids.get(key)}; every task needs its own UUID (node -e "console.log(crypto.randomUUID())")`);
      else ids.set(key, task.folder);
    }
    parsed.push({ task, json });
  }

  const recordResult = checkRecord(root, parsed, version, updateRecord);
  problems.push(...recordResult.problems);
  notes.push(...recordResult.notes);
  return { problems, notes, record: recordResult.record, recordWritten: recordResult.written };
}

function checkTask(task, json, p, version, root) {
  // Identity.
  if (typeof json.id !== 'string' || !UUID.test(json.id)) p(`id '${json.id ?? ''}' is not a UUID`);
  const expectedName = pascalFromFolder(task.folder);
  if (typeof json.name !== 'string' || !PASCAL.test(json.name)) p(`name '${json.name ?? ''}' is not PascalCase (expected '${expectedName}')`);
  else if (json.name !== expectedName) p(`name '${json.name}' does not match its folder: tasks/${task.folder} implies '${expectedName}'`);
  if (typeof json.friendlyName !== 'string' || !json.friendlyName.trim()) p('friendlyName is missing');
  else if (json.friendlyName.length > 40) p(`friendlyName '${json.friendlyName}' is ${json.friendlyName.length} characters; at most 40 are allowed`);
  for (const field of ['description', 'instanceNameFormat', 'category', 'author']) {
    if (typeof json[field] !== 'string' || !json[field].trim()) p(`${field} is missing`);
  }
  const v = json.version;
  if (!v || typeof v !== 'object' || !['Major', 'Minor', 'Patch'].every((k) => Number.isInteger(Number(v[k])))) {
    p('version must be { "Major", "Minor", "Patch" } (numbers; bundle.mjs stamps them from package.json)');
  }

  // Agent and handlers.
  if (typeof json.minimumAgentVersion !== 'string' || !/^\d+\.\d+(\.\d+)?$/.test(json.minimumAgentVersion)) {
    p(`minimumAgentVersion '${json.minimumAgentVersion ?? ''}' is missing or not MAJOR.MINOR.PATCH`);
  } else if (compareVersions(json.minimumAgentVersion.split('.').map(Number), MIN_AGENT) < 0) {
    p(`minimumAgentVersion ${json.minimumAgentVersion} is older than ${MIN_AGENT.join('.')}, the first agent with the Node20_1 handler`);
  }
  const execution = json.execution && typeof json.execution === 'object' ? json.execution : undefined;
  if (!execution) p(`execution is missing; it needs ${REQUIRED_HANDLERS.join(' and ')} handlers targeting index.js`);
  else {
    for (const handler of REQUIRED_HANDLERS) {
      const target = execution[handler]?.target;
      if (!execution[handler]) p(`execution.${handler} is missing`);
      else if (target !== 'index.js') p(`execution.${handler}.target is '${target ?? ''}'; it must be 'index.js' (the bundle)`);
    }
    for (const handler of DEPRECATED_HANDLERS) {
      if (execution[handler]) p(`execution.${handler} runs on an end-of-life Node; remove it (${REQUIRED_HANDLERS.join(' and ')} are enough)`);
    }
  }

  // Groups.
  const groups = Array.isArray(json.groups) ? json.groups : [];
  if (json.groups !== undefined && !Array.isArray(json.groups)) p('groups must be an array');
  const groupNames = new Set();
  for (const [i, g] of groups.entries()) {
    if (!g || typeof g.name !== 'string' || !g.name) {
      p(`groups[${i}] has no name`);
      continue;
    }
    if (groupNames.has(g.name)) p(`group '${g.name}' is declared twice`);
    groupNames.add(g.name);
    if (typeof g.displayName !== 'string' || !g.displayName.trim()) p(`group '${g.name}' has no displayName`);
  }

  // Inputs.
  const inputs = Array.isArray(json.inputs) ? json.inputs : [];
  if (!Array.isArray(json.inputs)) p('inputs must be an array');
  const byName = new Map();
  for (const [i, input] of inputs.entries()) {
    const name = input?.name;
    if (typeof name !== 'string' || !CAMEL.test(name)) {
      p(`inputs[${i}] name '${name ?? ''}' is not camelCase ([a-z][A-Za-z0-9]*)`);
      continue;
    }
    for (const alias of [name, ...(Array.isArray(input.aliases) ? input.aliases : [])]) {
      if (byName.has(alias)) p(`input '${alias}' is declared twice`);
      byName.set(alias, input);
    }
  }
  const allUsedGroups = new Set();
  for (const input of inputs) {
    if (typeof input?.name !== 'string' || !CAMEL.test(input.name)) continue;
    const q = (msg) => p(`input '${input.name}': ${msg}`);
    if (typeof input.label !== 'string' || !input.label.trim()) q('label is missing');
    if (typeof input.helpMarkDown !== 'string' || !input.helpMarkDown.trim()) q('helpMarkDown is missing (the classic editor shows it beside the field)');
    const type = input.type;
    const validType = typeof type === 'string' && (INPUT_TYPES.has(type) || /^connectedService:[A-Za-z0-9_.-]+(,[A-Za-z0-9_.-]+)*$/.test(type));
    if (!validType) q(`type '${type ?? ''}' is not one of ${[...INPUT_TYPES].join(', ')} or connectedService:<kind>`);
    if (type === 'pickList' || type === 'radio') {
      const options = input.options && typeof input.options === 'object' ? Object.keys(input.options) : [];
      if (options.length === 0) q(`a ${type} needs options`);
      else if (typeof input.defaultValue === 'string' && input.defaultValue && !input.defaultValue.includes('$(') && !options.includes(input.defaultValue)) {
        q(`defaultValue '${input.defaultValue}' is not one of its options (${options.join(', ')})`);
      }
    }
    if (type === 'boolean' && input.defaultValue !== undefined && !/^(true|false)$/i.test(String(input.defaultValue))) {
      q(`defaultValue '${input.defaultValue}' of a boolean must be true or false`);
    }
    if (input.required !== undefined && typeof input.required !== 'boolean') q('required must be true or false (a JSON boolean)');
    if (input.groupName !== undefined) {
      allUsedGroups.add(input.groupName);
      if (!groupNames.has(input.groupName)) q(`groupName '${input.groupName}' is not one of the task's groups (${[...groupNames].join(', ') || 'none declared'})`);
    }
    if (input.visibleRule !== undefined) checkRule(input.visibleRule, byName, (msg) => q(`visibleRule ${msg}`), input.name);
  }
  for (const g of groups) {
    if (g?.visibleRule !== undefined) checkRule(g.visibleRule, byName, (msg) => p(`group '${g.name}': visibleRule ${msg}`));
    if (g?.name && !allUsedGroups.has(g.name)) p(`group '${g.name}' has no inputs; remove it`);
  }

  // Output variables.
  if (json.outputVariables !== undefined && json.OutputVariables !== undefined) p('declare output variables once, as outputVariables');
  const outputs = declaredOutputs(json);
  if (!Array.isArray(outputs)) p('outputVariables is missing: declare every output variable with name and description ([] when there are none)');
  else {
    const seen = new Set();
    for (const [i, out] of outputs.entries()) {
      if (typeof out?.name !== 'string' || !CAMEL.test(out.name)) {
        p(`outputVariables[${i}] name '${out?.name ?? ''}' is not camelCase`);
        continue;
      }
      if (seen.has(out.name)) p(`output variable '${out.name}' is declared twice`);
      seen.add(out.name);
      if (typeof out.description !== 'string' || !out.description.trim()) p(`output variable '${out.name}' has no description`);
    }
    // Every output the entry sets (ctx.output('x', …)) must be declared.
    if (fs.existsSync(task.entry)) {
      const source = fs.readFileSync(task.entry, 'utf8');
      for (const m of source.matchAll(/\.output\(\s*['"`]([A-Za-z0-9_]+)['"`]/g)) {
        if (!seen.has(m[1])) p(`index.ts sets output variable '${m[1]}', which outputVariables does not declare`);
      }
    }
  }

  // The bundle in dist/ must carry package.json's version and this task.json.
  const distTasks = path.join(root, 'dist', 'tasks');
  const distJson = path.join(distTasks, task.folder, 'task.json');
  if (version && fs.existsSync(distTasks)) {
    if (!fs.existsSync(distJson)) p(`dist/tasks/${task.folder}/task.json is missing; run npm run build`);
    else {
      let dist;
      try {
        dist = JSON.parse(fs.readFileSync(distJson, 'utf8'));
      } catch (err) {
        p(`dist/tasks/${task.folder}/task.json is not valid JSON (${err.message}); run npm run build`);
      }
      if (dist) {
        const dv = dist.version ?? {};
        if (dv.Major !== version.Major || dv.Minor !== version.Minor || dv.Patch !== version.Patch) {
          p(`dist/tasks/${task.folder}/task.json has version ${dv.Major}.${dv.Minor}.${dv.Patch}, package.json has ${version.text}; run npm run build`);
        } else if (JSON.stringify({ ...dist, version: undefined }) !== JSON.stringify({ ...json, version: undefined })) {
          p(`dist/tasks/${task.folder}/task.json differs from tasks/${task.folder}/task.json; run npm run build`);
        }
      }
    }
  }
}

function checkRule(rule, byName, p, self) {
  const { clauses, errors } = parseVisibleRule(rule);
  for (const e of errors) p(e);
  for (const c of clauses) {
    const target = byName.get(c.name);
    if (!target) {
      p(`refers to '${c.name}', which is not an input of this task`);
      continue;
    }
    if (c.name === self) p(`refers to the input itself ('${c.name}')`);
    if (target.type === 'boolean' && ['=', '!='].includes(c.operator) && !/^(true|false)$/i.test(c.value)) {
      p(`compares boolean '${c.name}' with '${c.value}'; use true or false`);
    }
    if ((target.type === 'pickList' || target.type === 'radio') && ['=', '!='].includes(c.operator) && target.options && typeof target.options === 'object') {
      const keys = Object.keys(target.options);
      if (!keys.includes(c.value)) p(`compares '${c.name}' with '${c.value}', which is not one of its options (${keys.join(', ')})`);
    }
  }
}

function compareVersions(a, b) {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

// ---- the inputs record ------------------------------------------------------------------------

/** task.json's output variables, under either spelling the agent accepts. */
function declaredOutputs(json) {
  return json.outputVariables ?? json.OutputVariables;
}

/** The names a pipeline may use for a task: inputs with their aliases, and output variables. */
function surfaceOf(json) {
  const inputs = [];
  for (const input of Array.isArray(json.inputs) ? json.inputs : []) {
    if (typeof input?.name === 'string') inputs.push(input.name);
    if (Array.isArray(input?.aliases)) inputs.push(...input.aliases.filter((a) => typeof a === 'string'));
  }
  const declared = declaredOutputs(json);
  const outputs = (Array.isArray(declared) ? declared : [])
    .map((o) => o?.name)
    .filter((n) => typeof n === 'string');
  return { inputs: [...new Set(inputs)].sort(), outputVariables: [...new Set(outputs)].sort() };
}

function checkRecord(root, parsed, version, updateRecord) {
  const problems = [];
  const notes = [];
  const file = path.join(root, RECORD_PATH);
  const rel = RECORD_PATH.split(path.sep).join('/');
  let record = { tasks: {} };
  if (fs.existsSync(file)) {
    try {
      record = JSON.parse(fs.readFileSync(file, 'utf8'));
      if (!record || typeof record.tasks !== 'object' || record.tasks === null) throw new Error('it has no "tasks" object');
    } catch (err) {
      problems.push(`${rel}: unreadable (${err.message}); restore it from version control`);
      return { problems, notes, record: undefined, written: false };
    }
  }
  const major = version?.Major;
  const how = 'to remove it deliberately, bump the major version in package.json (bundle.mjs stamps it into every task) and run `node scripts/validate.mjs --update-record`';

  const next = { tasks: {} };
  let outOfDate = false;
  let breaking = false;
  const current = new Map(parsed.filter(({ json }) => typeof json.name === 'string').map(({ task, json }) => [json.name, { task, json }]));

  for (const [name, old] of Object.entries(record.tasks)) {
    const now = current.get(name);
    const majorBumped = major !== undefined && Number.isInteger(old.major) && major > old.major;
    if (!now) {
      if (majorBumped) {
        outOfDate = true;
        notes.push(`task ${name} is gone from tasks/ (allowed: major version ${old.major} → ${major})`);
      } else {
        breaking = true;
        problems.push(`task ${name} (tasks/${old.folder ?? '?'}) has disappeared: this breaks existing pipelines that use ${name}@${old.major ?? '?'}; restore it, or ${how}`);
      }
      continue;
    }
    const surface = surfaceOf(now.json);
    for (const [kind, label] of [['inputs', 'input'], ['outputVariables', 'output variable']]) {
      for (const n of old[kind] ?? []) {
        if (surface[kind].includes(n)) continue;
        if (majorBumped) {
          outOfDate = true;
          notes.push(`${name}: ${label} '${n}' removed (allowed: major version ${old.major} → ${major})`);
        } else {
          breaking = true;
          problems.push(`tasks/${now.task.folder}/task.json: ${label} '${n}' of ${name} has disappeared (renamed or removed): this breaks existing pipelines that ${kind === 'inputs' ? 'set it' : 'read it'}; keep it (an alias keeps an old input name working), or ${how}`);
        }
      }
    }
    if (old.id && now.json.id && String(old.id).toLowerCase() !== String(now.json.id).toLowerCase()) {
      if (majorBumped) outOfDate = true;
      else {
        breaking = true;
        problems.push(`tasks/${now.task.folder}/task.json: id changed from ${old.id} to ${now.json.id}: existing classic pipelines refer to ${name} by id; restore it, or ${how}`);
      }
    }
  }

  for (const [name, { task, json }] of current) {
    const surface = surfaceOf(json);
    const old = record.tasks[name];
    const added = {
      inputs: surface.inputs.filter((n) => !(old?.inputs ?? []).includes(n)),
      outputVariables: surface.outputVariables.filter((n) => !(old?.outputVariables ?? []).includes(n)),
    };
    if (!old) outOfDate = true;
    else if (added.inputs.length || added.outputVariables.length || old.folder !== task.folder) outOfDate = true;
    if (old && (added.inputs.length || added.outputVariables.length) && !updateRecord) {
      const parts = [];
      if (added.inputs.length) parts.push(`input(s) ${added.inputs.join(', ')}`);
      if (added.outputVariables.length) parts.push(`output variable(s) ${added.outputVariables.join(', ')}`);
      problems.push(`${rel}: ${name} has new ${parts.join(' and ')} that the record does not list; run \`node scripts/validate.mjs --update-record\` and commit ${rel}`);
    } else if (!old && !updateRecord) {
      problems.push(`${rel}: task ${name} (tasks/${task.folder}) is not in the record; run \`node scripts/validate.mjs --update-record\` and commit ${rel}`);
    }
    next.tasks[name] = {
      folder: task.folder,
      id: json.id,
      major: old && !(major > old.major) ? old.major : major,
      inputs: surface.inputs,
      outputVariables: surface.outputVariables,
    };
  }
  if (!updateRecord && outOfDate && !breaking && problems.length === 0) {
    problems.push(`${rel} is out of date; run \`node scripts/validate.mjs --update-record\` and commit it`);
  }

  let written = false;
  if (updateRecord) {
    if (breaking) {
      problems.push(`${rel} was not updated: an input, output or task would disappear without a major version bump`);
    } else if (major === undefined) {
      problems.push(`${rel} was not updated: package.json has no usable version`);
    } else {
      const sorted = { tasks: Object.fromEntries(Object.entries(next.tasks).sort(([a], [b]) => a.localeCompare(b))) };
      const text = `${JSON.stringify({ $comment: 'Names each task exposes to pipelines. Written by `node scripts/validate.mjs --update-record`; validation fails when one disappears.', ...sorted }, null, 2)}\n`;
      const before = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
      if (before !== text) {
        fs.writeFileSync(file, text);
        written = true;
        notes.push(`updated ${rel}`);
      }
      record = sorted;
    }
  }
  return { problems, notes, record, written };
}

if (isMain(import.meta.url)) {
  const argv = process.argv.slice(2);
  try {
    const root = resolveRoot(argv);
    const { problems, notes } = validate({ root, updateRecord: argv.includes('--update-record') });
    for (const n of notes) console.log(n);
    if (problems.length) {
      console.error(`Task validation failed (${problems.length} problem${problems.length === 1 ? '' : 's'}):`);
      for (const p of problems) console.error(`- ${p}`);
      process.exit(1);
    }
    console.log(`Validated ${discoverTasks(root).length} task(s): OK`);
  } catch (err) {
    console.error(err instanceof Error ? err.message : String(err));
    process.exit(1);
  }
}
