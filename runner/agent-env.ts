// How the agent hands a task its variables, inputs and service connections: environment variables.
// Shared by the local runner and the tests that run a bundled task as the agent would.
import { expandMacros, TaskDefinition } from '../tasks/lib/pipeline/task-json';

/** A service connection as the agent hands it to a task. */
export interface Connection {
  url: string;
  scheme: string;
  parameters: Record<string, string>;
  data?: Record<string, string>;
}

/** Agent environment name of a variable: `Build.BuildNumber` → `BUILD_BUILDNUMBER` (dots and spaces only, as task-lib looks it up). */
export function envName(name: string): string {
  return name.replace(/[. ]/g, '_').toUpperCase();
}

/** Environment name of a task input: `lockFile` → `INPUT_LOCKFILE`. */
export function inputEnvName(name: string): string {
  return `INPUT_${name.replace(/ /g, '_').toUpperCase()}`;
}

/**
 * INPUT_<NAME> for every input of the task, as the agent sets them: the step's value (by name or
 * alias, any case), else the task.json default, `$(variable)` macros expanded through `lookup`.
 * `unknown`: the step's inputs that the task does not have (the agent ignores them).
 */
export function agentInputEnvironment(task: TaskDefinition, given: Record<string, string>, lookup: (variable: string) => string | undefined): { env: Record<string, string>; unknown: string[] } {
  const remaining = new Map(Object.entries(given).map(([k, v]) => [k.toLowerCase(), { name: k, value: v }]));
  const env: Record<string, string> = {};
  for (const input of task.inputs ?? []) {
    const names = [input.name, ...(input.aliases ?? [])].map((n) => n.toLowerCase());
    const key = names.find((n) => remaining.has(n));
    const raw = key !== undefined ? remaining.get(key)!.value : (input.defaultValue ?? '');
    for (const n of names) remaining.delete(n);
    env[inputEnvName(input.name)] = expandMacros(String(raw), lookup);
  }
  return { env, unknown: [...remaining.values()].map((r) => r.name) };
}

/** `ENDPOINT_URL_<ID>`, `ENDPOINT_AUTH_<ID>`, `ENDPOINT_AUTH_SCHEME_<ID>`, `ENDPOINT_AUTH_PARAMETER_<ID>_<KEY>`, `ENDPOINT_DATA_<ID>_<KEY>`. */
export function endpointEnvironment(id: string, connection: Connection): Record<string, string> {
  const key = id.toUpperCase();
  const env: Record<string, string> = {
    [`ENDPOINT_URL_${key}`]: connection.url,
    [`ENDPOINT_AUTH_${key}`]: JSON.stringify({ scheme: connection.scheme, parameters: connection.parameters }),
    [`ENDPOINT_AUTH_SCHEME_${key}`]: connection.scheme,
  };
  for (const [k, v] of Object.entries(connection.parameters)) env[`ENDPOINT_AUTH_PARAMETER_${key}_${k.toUpperCase()}`] = v;
  for (const [k, v] of Object.entries(connection.data ?? {})) env[`ENDPOINT_DATA_${key}_${k.toUpperCase()}`] = v;
  return env;
}
