// An RFC 6902 JSON Patch from the original object to the injected one. Objects are diffed
// key by key; a changed array is replaced whole (simple, and always correct for the object
// the API server sent us).
export type JsonPatchOp =
  | { op: 'add'; path: string; value: unknown }
  | { op: 'replace'; path: string; value: unknown }
  | { op: 'remove'; path: string };

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export const escapePointer = (key: string): string => (/[~/]/.test(key) ? key.replaceAll('~', '~0').replaceAll('/', '~1') : key);

export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((x, i) => deepEqual(x, b[i]));
  if (isObject(a) && isObject(b)) {
    const ka = Object.keys(a);
    if (ka.length !== Object.keys(b).length) return false;
    return ka.every((k) => Object.hasOwn(b, k) && deepEqual(a[k], b[k]));
  }
  return false;
}

export function diff(from: unknown, to: unknown, path = ''): JsonPatchOp[] {
  if (deepEqual(from, to)) return [];
  if (!isObject(from) || !isObject(to)) return [{ op: 'replace', path, value: to }];
  const ops: JsonPatchOp[] = [];
  for (const k of Object.keys(from)) {
    if (!Object.hasOwn(to, k)) ops.push({ op: 'remove', path: `${path}/${escapePointer(k)}` });
  }
  for (const [k, v] of Object.entries(to)) {
    const p = `${path}/${escapePointer(k)}`;
    if (!Object.hasOwn(from, k)) ops.push({ op: 'add', path: p, value: v });
    else ops.push(...diff(from[k], v, p));
  }
  return ops;
}
