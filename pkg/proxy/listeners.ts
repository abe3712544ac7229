// The inbound and outbound listeners, IPv4 and IPv6. In tproxy mode the addon creates them
// with IP_TRANSPARENT and Node adopts the fd; otherwise Node listens itself. Accepted sockets
// start paused: nothing is read before the connection has been decided.
import { Server, createServer, type Socket } from 'node:net';
import { ErrorCodes, WeftError } from '../errors/index.js';
import type { Direction } from '../metrics/proxy.js';
import type { NativeCaps } from './native-bridge.js';
import { unmap } from './addr.js';
import type { Endpoint } from './types.js';

export type Mode = 'tproxy' | 'ebpf' | 'none';

export interface OpenedListener {
  server: Server;
  direction: Direction;
  family: 4 | 6;
  port: number;
}

const V6_ABSENT = new Set(['EAFNOSUPPORT', 'EADDRNOTAVAIL', 'EPROTONOSUPPORT']);

function listenServer(server: Server, opts: { fd: number } | { host: string; port: number; ipv6Only: boolean }): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ ...opts, backlog: 1024 }, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/**
 * Open one listener per (direction, family). IPv6 is skipped when the host has none; the
 * returned list says what is listening. `host4`/`host6` default to the any-addresses.
 */
export async function openListeners(
  mode: Mode,
  ports: Record<Direction, number>,
  caps: NativeCaps,
  onConnection: (direction: Direction, s: Socket) => void,
  hosts: { host4?: string; host6?: string | null } = {},
): Promise<{ listeners: OpenedListener[]; skipped: string[] }> {
  if (mode === 'tproxy' && !(caps.listen && caps.native)) {
    throw new WeftError(ErrorCodes.NATIVE, `--mode tproxy needs the native addon for IP_TRANSPARENT listeners (${caps.missing ?? 'unavailable'}); use --mode ebpf or none, or build it with 'npm run build:addon'`, { field: '--mode' });
  }
  const listeners: OpenedListener[] = [];
  const skipped: string[] = [];
  try {
    for (const direction of ['inbound', 'outbound'] as const) {
      for (const family of [4, 6] as const) {
        const host = family === 4 ? (hosts.host4 ?? '0.0.0.0') : hosts.host6 === undefined ? '::' : hosts.host6;
        if (host === null) continue;
        const port = ports[direction];
        const server = createServer({ allowHalfOpen: true, pauseOnConnect: true, noDelay: true }, (s) => onConnection(direction, s));
        try {
          if (mode === 'tproxy') {
            const fd = caps.native!.listen({ host, port, transparent: true, ipv6Only: true, backlog: 1024 });
            await listenServer(server, { fd });
          } else {
            await listenServer(server, { host, port, ipv6Only: true });
          }
        } catch (e) {
          const code = (e as NodeJS.ErrnoException).code ?? '';
          if (family === 6 && V6_ABSENT.has(code)) {
            skipped.push(`${direction} [${host}]:${port}: ${code}`);
            continue;
          }
          throw new WeftError(ErrorCodes.NATIVE, `cannot listen on ${direction} ${family === 6 ? `[${host}]` : host}:${port}: ${code || (e as Error).message}`, { field: `--${direction}-port`, cause: e });
        }
        listeners.push({ server, direction, family, port });
      }
    }
  } catch (e) {
    await closeListeners(listeners);
    throw e;
  }
  return { listeners, skipped };
}

export function closeListeners(listeners: OpenedListener[]): Promise<void> {
  return Promise.all(listeners.map((l) => new Promise<void>((r) => (l.server.listening ? l.server.close(() => r()) : r())))).then(() => undefined);
}

/** The accepted socket's own address (getsockname): the original destination under TPROXY and sk_lookup. */
export function localEndpoint(s: Socket): Endpoint | null {
  return s.localAddress && s.localPort ? { address: unmap(s.localAddress), port: s.localPort } : null;
}
