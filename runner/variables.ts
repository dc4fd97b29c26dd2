// Pipeline variables as the agent keeps them: case-insensitive names, a scope over its parent's
// (run, stage, job), and `$(name)` macros.
import { expandMacros } from '../tasks/lib/pipeline/task-json';

export interface Variable {
  name: string;
  value: string;
  secret: boolean;
}

/** Case-insensitive variables, as in Azure Pipelines. */
export class Variables {
  private readonly values = new Map<string, Variable>();
  constructor(private readonly parent?: Variables) {}
  set(name: string, value: string, secret = false): void {
    this.values.set(name.toLowerCase(), { name, value, secret });
  }
  get(name: string): Variable | undefined {
    return this.values.get(name.toLowerCase()) ?? this.parent?.get(name);
  }
  all(): Variable[] {
    const merged = new Map<string, Variable>();
    for (const v of this.parent?.all() ?? []) merged.set(v.name.toLowerCase(), v);
    for (const [k, v] of this.values) merged.set(k, v);
    return [...merged.values()];
  }
  /** `$(name)` macros of these variables expanded. */
  expand(text: string): string {
    return expandMacros(text, (n) => this.get(n)?.value);
  }
  /** System.Debug is true: debug lines are shown. */
  get debug(): boolean {
    return /^true$/i.test(this.get('System.Debug')?.value ?? '');
  }
}
