// The library options that stand for task inputs with a task.json default, at that default: a
// test that calls the library starts from what the task does with those inputs unset
// (tasks/<task>/task.json is the one source of defaults).
import composeDeployTask from '../../tasks/compose-deploy/task.json';
import kubernetesDeployTask from '../../tasks/kubernetes-deploy/task.json';
import pushWithDigestTask from '../../tasks/push-with-digest/task.json';
import { inputDefault, TaskDefinition } from '../../tasks/lib/pipeline/task-json';

function defaultOf(task: TaskDefinition, name: string): string {
  const value = inputDefault(task, name, () => undefined);
  if (value === undefined) throw new Error(`${task.name}'s task.json gives '${name}' no default.`);
  return value;
}
const int = (task: TaskDefinition, name: string) => Number(defaultOf(task, name));
const bool = (task: TaskDefinition, name: string) => defaultOf(task, name) === 'true';
const choice = <T extends string>(task: TaskDefinition, name: string) => defaultOf(task, name) as T;

export function composeDeployDefaults() {
  const t = composeDeployTask;
  return {
    engineStallSeconds: int(t, 'engineStallSeconds'),
    registryTimeoutSeconds: int(t, 'registryTimeoutSeconds'),
    keepReleases: int(t, 'keepReleases'),
    bakeSeconds: int(t, 'bakeSeconds'),
    diffOnly: bool(t, 'diffOnly'),
    deployIfUnchanged: bool(t, 'deployIfUnchanged'),
    rollbackOnFailure: bool(t, 'rollbackOnFailure'),
    allowUnpinned: bool(t, 'allowUnpinned'),
    removeOrphans: bool(t, 'removeOrphans'),
  };
}

export function kubernetesDeployDefaults() {
  const t = kubernetesDeployTask;
  return {
    logTailLines: int(t, 'logTailLines'),
    bakeSeconds: int(t, 'bakeSeconds'),
    diffOnly: bool(t, 'diffOnly'),
    deployIfUnchanged: bool(t, 'deployIfUnchanged'),
    allowUnpinned: bool(t, 'allowUnpinned'),
    createNamespace: bool(t, 'createNamespace'),
    strategy: choice<'rolling' | 'canary'>(t, 'strategy'),
    canaryPercentage: int(t, 'canaryPercentage'),
    action: choice<'deploy' | 'promote' | 'reject'>(t, 'action'),
    rolloutTimeoutSeconds: int(t, 'rolloutTimeoutSeconds'),
    rollbackOnFailure: bool(t, 'rollbackOnFailure'),
    fieldManager: defaultOf(t, 'fieldManager'),
    forceConflicts: bool(t, 'forceConflicts'),
    publishArtifact: bool(t, 'publishManifests'),
    artifactName: defaultOf(t, 'manifestsArtifactName'),
  };
}

export function pushWithDigestDefaults() {
  return { registryTimeoutSeconds: int(pushWithDigestTask, 'registryTimeoutSeconds') };
}
