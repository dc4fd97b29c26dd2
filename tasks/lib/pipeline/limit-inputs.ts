// The time limits several tasks share, read with their ranges in one place.
import type { TaskInputs } from './index';

/** engineStallSeconds: how long a build, push or pull stream may go without progress (1 s to a day). */
export function readEngineStallSeconds(inputs: TaskInputs): number {
  return inputs.int('engineStallSeconds', { min: 1, max: 86_400 });
}

/** registryTimeoutSeconds: the time one registry operation may take in all (1 s to an hour). */
export function readRegistryTimeoutSeconds(inputs: TaskInputs): number {
  return inputs.int('registryTimeoutSeconds', { min: 1, max: 3600 });
}
