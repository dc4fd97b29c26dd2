// Artifact names as Azure Pipelines accepts them. The agent refuses \ / " : < > | * ? (a name
// becomes a folder wherever the artifact is downloaded, on any OS); a control character would break
// the logging command that carries the name; '.' and '..' name no folder of their own. The tasks and
// the local runner check names with this one rule.
import { InputError } from './errors';

const FORBIDDEN = /[\\/":<>|*?\u0000-\u001f\u007f]/;

/** Why `name` is not a valid artifact name, or undefined when it is one. */
export function artifactNameProblem(name: string): string | undefined {
  if (!name.trim()) return 'an artifact name cannot be empty';
  const bad = FORBIDDEN.exec(name);
  if (bad) {
    const shown = /[\u0000-\u001f\u007f]/.test(bad[0]) ? `the control character U+${bad[0].charCodeAt(0).toString(16).padStart(4, '0').toUpperCase()}` : `'${bad[0]}'`;
    // Escaped as in JSON, so a newline in the name cannot break the message.
    return `'${JSON.stringify(name).slice(1, -1)}' is not a valid artifact name: it contains ${shown}. Azure Pipelines refuses \\ / " : < > | * ? and control characters in artifact names`;
  }
  if (/^\.+$/.test(name)) return `'${name}' is not a valid artifact name: a name of dots only names no folder of its own`;
  return undefined;
}

/** `name` when it is a valid artifact name; otherwise an InputError naming `input`. */
export function checkArtifactName(name: string, input: string): string {
  const problem = artifactNameProblem(name);
  if (problem) throw new InputError(`Input '${input}': ${problem}.`);
  return name;
}
