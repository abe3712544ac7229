// Serving-certificate reload. A Kubernetes Secret volume is updated by swapping a `..data`
// symlink, so the directory is watched (not the files); on a change the pair is re-read,
// checked with createSecureContext (a half-written pair is skipped until the next event) and
// handed to server.setSecureContext: new handshakes get the new cert, open connections stay.
import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { createSecureContext } from 'node:tls';
import { ErrorCodes, WeftError } from '../errors/index.js';
import type { Logger } from '../log/index.js';

export interface KeyPair {
  cert: Buffer;
  key: Buffer;
}

export async function readKeyPair(certFile: string, keyFile: string): Promise<KeyPair> {
  let pair: KeyPair;
  try {
    pair = { cert: await readFile(certFile), key: await readFile(keyFile) };
  } catch (e) {
    throw new WeftError(ErrorCodes.BAD_CONFIG, `TLS: cannot read --tls-cert ${certFile} / --tls-key ${keyFile}: ${(e as Error).message}`, { field: '--tls-cert' });
  }
  try {
    createSecureContext(pair);
  } catch (e) {
    throw new WeftError(ErrorCodes.BAD_CONFIG, `TLS: --tls-cert ${certFile} and --tls-key ${keyFile} are not a valid PEM pair: ${(e as Error).message}`, { field: '--tls-cert' });
  }
  return pair;
}

export interface TlsWatchOptions {
  certFile: string;
  keyFile: string;
  /** Called with a validated new pair. */
  apply: (pair: KeyPair) => void;
  log: Logger;
  /** Also re-check this often, in case an event was missed (0: never). */
  pollMs?: number;
  debounceMs?: number;
}

export interface TlsWatcher {
  /** Re-read now; resolves true when a new pair was applied. */
  check(): Promise<boolean>;
  close(): void;
}

export function watchKeyPair(initial: KeyPair, o: TlsWatchOptions): TlsWatcher {
  let current = initial;
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  const check = async (): Promise<boolean> => {
    let next: KeyPair;
    try {
      next = await readKeyPair(o.certFile, o.keyFile);
    } catch (e) {
      o.log.warn({ code: (e as WeftError).code, err: (e as Error).message }, 'TLS files changed but are not usable yet; keeping the current certificate');
      return false;
    }
    if (closed || (next.cert.equals(current.cert) && next.key.equals(current.key))) return false;
    o.apply(next);
    current = next;
    o.log.info({ cert: o.certFile }, 'TLS certificate reloaded');
    return true;
  };
  const schedule = () => {
    if (closed) return;
    clearTimeout(timer);
    timer = setTimeout(() => void check(), o.debounceMs ?? 100);
  };
  const dirs = [...new Set([dirname(o.certFile), dirname(o.keyFile)])];
  const watchers: FSWatcher[] = [];
  for (const d of dirs) {
    try {
      const w = watch(d, { persistent: false }, schedule);
      w.on('error', (e) => o.log.warn({ err: e.message, dir: d }, 'TLS directory watch failed; relying on polling'));
      watchers.push(w);
    } catch (e) {
      o.log.warn({ err: (e as Error).message, dir: d }, 'cannot watch TLS directory; relying on polling');
    }
  }
  const poll = o.pollMs ? setInterval(schedule, o.pollMs).unref() : undefined;
  return {
    check,
    close() {
      closed = true;
      clearTimeout(timer);
      clearInterval(poll);
      for (const w of watchers) w.close();
    },
  };
}
