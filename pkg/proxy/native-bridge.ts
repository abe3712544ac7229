// The proxy's view of the native addon (through the pkg/native facade): which capabilities
// this build and host offer. Each is checked on its own, so a missing or partial addon leaves
// the pure-JS paths (Node listeners, net.connect, the JS relay) doing that part of the work,
// and the reason is logged once at startup.
import { getNative, nativeAvailable, type Native } from '../native/index.js';

export type { Native, RelayHandle, RelayResult, SockAddr } from '../native/index.js';

export interface NativeCaps {
  native: Native | null;
  /** Why a capability is missing (for the startup log), or undefined when all are there. */
  missing: string | undefined;
  listen: boolean;
  connect: boolean;
  relay: boolean;
  /** The native connection path (accept, detect, connect and relay in the addon). */
  pool: boolean;
  originalDst: boolean;
  reset: boolean;
}

const NONE: NativeCaps = { native: null, missing: 'native addon not loaded', listen: false, connect: false, relay: false, pool: false, originalDst: false, reset: false };

export function loadNativeCaps(): NativeCaps {
  let n: Native;
  try {
    if (!nativeAvailable()) return { ...NONE, missing: 'native addon not built or not loadable' };
    n = getNative();
  } catch (e) {
    return { ...NONE, missing: (e as Error).message };
  }
  const has = (k: keyof Native): boolean => typeof n[k] === 'function';
  const caps: NativeCaps = {
    native: n,
    missing: undefined,
    listen: has('listen') && has('localAddress'),
    connect: has('connect'),
    relay: has('relay'),
    pool: has('connPool') && has('listen'),
    originalDst: has('originalDst') && has('localAddress'),
    reset: has('resetAndClose'),
  };
  const absent = (['listen', 'connect', 'relay', 'pool', 'originalDst', 'reset'] as const).filter((k) => !caps[k]);
  if (absent.length > 0) caps.missing = `addon lacks: ${absent.join(', ')}`;
  return caps;
}

export const noNative = (): NativeCaps => NONE;

/** The fd under a Node socket (Linux, libuv TCP handle); -1 if there is none. */
export function socketFd(s: { _handle?: { fd?: number } | null }): number {
  const fd = s._handle?.fd;
  return typeof fd === 'number' ? fd : -1;
}
