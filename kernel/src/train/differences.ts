// Where two configs (plain JSON values) differ, field by field: what a run directory refuses to
// resume with says which field changed.

function shown(value: unknown): string {
  return value === undefined ? 'absent' : JSON.stringify(value);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * "trainer.lr: 0.003 in the run, 0.001 now" for each leaf that differs (objects are compared
 * key by key, anything else as JSON), in key order; `ignore` names dotted paths to skip.
 */
export function differences(run: unknown, now: unknown, ignore: readonly string[] = [], path = ''): string[] {
  if (ignore.includes(path)) return [];
  if (isRecord(run) && isRecord(now)) {
    const keys = [...new Set([...Object.keys(run), ...Object.keys(now)])].sort();
    return keys.flatMap((key) => differences(run[key], now[key], ignore, path ? `${path}.${key}` : key));
  }
  if (JSON.stringify(run) === JSON.stringify(now)) return [];
  return [`${path || 'the config'}: ${shown(run)} in the run, ${shown(now)} now`];
}
