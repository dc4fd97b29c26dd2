// How the agent hands a task its variables, inputs and service connections: environment variables.
// Shared by the local runner and the tests that run a bundled task as the agent would.

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
