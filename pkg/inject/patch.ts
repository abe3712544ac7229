// An RFC 6902 JSON Patch from the original object to the injected one. Objects are diffed
// key by key. Arrays are diffed by position when their length is unchanged, and, when items
// were added in front (weft-init and the proxy before the pod's own init containers) or at
// the end (weft's volumes), as adds plus a diff of the items that were there; anything else
// replaces the array whole. A smaller patch is cheaper to build, encode and send, and touches
// less of what other mutating webhooks may have set. Every patch is checked in the golden
// tests: applied to the original pod it must give the injected one.
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

/** The same list item, perhaps changed: the same object, the same `name` (containers, volumes), or equal. */
function sameItem(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (isObject(a) && isObject(b) && typeof a.name === 'string') return a.name === b.name;
  return deepEqual(a, b);
}

function diffArray(from: unknown[], to: unknown[], path: string, ops: JsonPatchOp[]): void {
  const added = to.length - from.length;
  const kept = (offset: number) => from.every((x, i) => sameItem(x, to[i + offset]));
  if (added >= 0 && from.length > 0 && kept(added) && (added === 0 || !kept(0))) {
    // Items added in front, in order: after them, item i of `from` is at i + added.
    for (let i = 0; i < added; i++) ops.push({ op: 'add', path: `${path}/${i}`, value: to[i] });
    from.forEach((x, i) => diffInto(x, to[i + added], `${path}/${i + added}`, ops));
  } else if (added > 0 && from.length > 0 && kept(0)) {
    from.forEach((x, i) => diffInto(x, to[i], `${path}/${i}`, ops));
    for (let i = from.length; i < to.length; i++) ops.push({ op: 'add', path: `${path}/-`, value: to[i] });
  } else {
    ops.push({ op: 'replace', path, value: to });
  }
}

function diffInto(from: unknown, to: unknown, path: string, ops: JsonPatchOp[]): void {
  if (deepEqual(from, to)) return;
  if (Array.isArray(from) && Array.isArray(to)) return diffArray(from, to, path, ops);
  if (!isObject(from) || !isObject(to)) {
    ops.push({ op: 'replace', path, value: to });
    return;
  }
  for (const k of Object.keys(from)) {
    if (!Object.hasOwn(to, k)) ops.push({ op: 'remove', path: `${path}/${escapePointer(k)}` });
  }
  for (const [k, v] of Object.entries(to)) {
    const p = `${path}/${escapePointer(k)}`;
    if (!Object.hasOwn(from, k)) ops.push({ op: 'add', path: p, value: v });
    else diffInto(from[k], v, p, ops);
  }
}

export function diff(from: unknown, to: unknown, path = ''): JsonPatchOp[] {
  const ops: JsonPatchOp[] = [];
  diffInto(from, to, path, ops);
  return ops;
}
