// The names of the files ComposeDeploy gives `compose up`: Compose records them in each container's
// com.docker.compose.project.config_files label, which is how the drift report knows its containers.

export function renderedFileName(project: string): string {
  return `${project}.compose.yml`;
}

/** The stored last good release, written out to redeploy it. */
export function rollbackFileName(project: string): string {
  return `${project}.rollback.compose.yml`;
}

export function renderedFileNames(project: string): string[] {
  return [renderedFileName(project), rollbackFileName(project)];
}
