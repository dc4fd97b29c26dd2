// Types of scripts/tasks.mjs for the TypeScript that shares its rules (tests, benchmarks).

export declare const REPO_ROOT: string;

export declare function resolveRoot(argv?: string[], env?: NodeJS.ProcessEnv): string;

export interface TaskFolder {
  folder: string;
  dir: string;
  taskJsonPath: string;
  entry: string;
}

/** Task folders under `<root>/tasks` that have a task.json, sorted by folder name. */
export declare function discoverTasks(root: string): TaskFolder[];

export declare function pascalFromFolder(folder: string): string;

export declare function packageVersion(root: string): { text: string; Major: number; Minor: number; Patch: number };

export declare function isMain(url: string): boolean;

export declare function formatBytes(n: number): string;
