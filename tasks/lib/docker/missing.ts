// Apart from engine.ts, which loads dockerode: the compose code that KubernetesDeploy's bundle also
// carries (the bake window's watchers) must not pull the Docker client in with it.

/** An Engine API inspect, or undefined when the engine has no such object (404); any other failure is thrown. */
export async function unlessMissing<T>(inspect: Promise<T>): Promise<T | undefined> {
  try {
    return await inspect;
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 404) return undefined;
    throw err;
  }
}
