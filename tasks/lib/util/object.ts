// The test every reader of parsed YAML or JSON makes before it looks inside a value: a mapping
// (a plain object), not null, not a list.
export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
