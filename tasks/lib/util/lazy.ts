// A module loaded on first use. esbuild keeps a `require` inside a function lazy, so a task that
// fails on its inputs never pays for loading dockerode or yaml (start-up time is a feature).
export function lazyRequire<T>(load: () => unknown): () => T {
  let module: T | undefined;
  return () => (module ??= load() as T);
}
