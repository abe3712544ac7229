// A content hash for the weft.dev/injected marker. The hashed objects are built by weft in a
// fixed key order, so plain JSON is stable: same injected pieces, same hash.
import { hash } from 'node:crypto';

export function contentHash(v: unknown): string {
  // One-shot hash(): no Hash object per admission.
  return hash('sha256', JSON.stringify(v), 'hex').slice(0, 16);
}

const valuesHashes = new WeakMap<object, string>();

/** Hash of a config object, computed once per object (values are frozen per process). */
export function objectHash(v: object): string {
  let h = valuesHashes.get(v);
  if (h === undefined) {
    h = contentHash(v);
    valuesHashes.set(v, h);
  }
  return h;
}
