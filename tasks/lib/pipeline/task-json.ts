// A task's task.json as the agent reads it: the inputs and their defaults. task.json is the one
// source of the defaults: the agent fills them in (INPUT_<NAME> from defaultValue for every input
// a step does not give), and so do the local runner and the test agent (runner/agent-env.ts) and
// the reader (tasks/lib/pipeline) for an input left empty. No task-lib import, so the runner can use it.

export interface TaskInputDefinition {
  name: string;
  type: string;
  defaultValue?: string;
  aliases?: string[];
}

export interface TaskDefinition {
  name: string;
  version?: { Major: number };
  inputs?: TaskInputDefinition[];
}

/** `$(name)` macros; unknown names stay as written, as the agent leaves them. */
export function expandMacros(text: string, lookup: (name: string) => string | undefined): string {
  return text.replace(/\$\(([A-Za-z0-9_.\-]+)\)/g, (whole, name: string) => lookup(name) ?? whole);
}

/**
 * task.json's defaultValue of an input, its macros expanded; undefined when it has none. A default
 * whose variable is not set (a local run without Build.ArtifactStagingDirectory) counts as none:
 * the literal `$(…)` the agent would leave is no value a task can use.
 */
export function inputDefault(task: TaskDefinition, name: string, lookup: (variable: string) => string | undefined): string | undefined {
  const input = task.inputs?.find((i) => i.name.toLowerCase() === name.toLowerCase());
  let unresolved = false;
  const value = expandMacros(input?.defaultValue?.trim() ?? '', (variable) => {
    const found = lookup(variable);
    if (found === undefined) unresolved = true;
    return found;
  });
  return value && !unresolved ? value : undefined;
}
