// Test helpers shared by the injector's tests and the bench: the fixture directory and a
// small RFC 6902 JSON Patch applier (independent of the code that builds patches).
import { fileURLToPath } from 'node:url';

/** pkg/inject/testdata in the source tree, also when running from dist/. */
export const TESTDATA = fileURLToPath(new URL(import.meta.url.includes('/dist/') ? '../../../pkg/inject/testdata/' : './testdata/', import.meta.url));

type Json = unknown;
const unescape = (s: string) => s.replaceAll('~1', '/').replaceAll('~0', '~');

/** Apply an RFC 6902 patch (add, remove, replace, test) to a deep copy of `doc`. */
export function applyJsonPatch(doc: Json, ops: readonly { op: string; path: string; value?: unknown }[]): Json {
  let root: Json = structuredClone(doc);
  for (const op of ops) {
    if (op.path === '') {
      if (op.op === 'add' || op.op === 'replace') root = structuredClone(op.value);
      else throw new Error(`unsupported op ${op.op} at root`);
      continue;
    }
    const parts = op.path.split('/').slice(1).map(unescape);
    const last = parts.pop() as string;
    let parent = root as Record<string, unknown> | unknown[];
    for (const p of parts) {
      const next = Array.isArray(parent) ? parent[Number(p)] : parent[p];
      if (typeof next !== 'object' || next === null) throw new Error(`path ${op.path}: ${p} does not exist`);
      parent = next as Record<string, unknown> | unknown[];
    }
    if (Array.isArray(parent)) {
      const i = last === '-' ? parent.length : Number(last);
      if (!(i >= 0 && i <= parent.length)) throw new Error(`path ${op.path}: index out of range`);
      if (op.op === 'add') parent.splice(i, 0, structuredClone(op.value));
      else if (op.op === 'replace') parent[i] = structuredClone(op.value);
      else if (op.op === 'remove') parent.splice(i, 1);
      else throw new Error(`unsupported op ${op.op}`);
    } else {
      const exists = Object.hasOwn(parent, last);
      if (op.op === 'add') parent[last] = structuredClone(op.value);
      else if (op.op === 'replace') {
        if (!exists) throw new Error(`replace ${op.path}: no such member`);
        parent[last] = structuredClone(op.value);
      } else if (op.op === 'remove') {
        if (!exists) throw new Error(`remove ${op.path}: no such member`);
        delete parent[last];
      } else throw new Error(`unsupported op ${op.op}`);
    }
  }
  return root;
}
