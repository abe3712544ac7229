// The inbound and outbound listeners, IPv4 and IPv6. On the native path the addon creates
// them (IP_TRANSPARENT in tproxy mode) and accepts on its own threads (native-path.ts); on
// the Node path Node accepts: it adopts the addon's transparent fd in tproxy mode, else it
// listens itself. Node-accepted sockets start paused: nothing is read before the connection
// has been decided.
import { Server, createServer, type Socket } from 'node:net';
import { ErrorCodes, WeftError } from '../errors/index.js';
import type { Direction } from '../metrics/proxy.js';
import type { NativeCaps } from './native-bridge.js';
import { unmap } from './addr.js';
import type { Endpoint } from './types.js';

export type Mode = 'tproxy' | 'ebpf' | 'none';

export interface OpenedListener {
  direction: Direction;
  family: 4 | 6;
  port: number;
  /** Stop accepting; resolves once the listening socket is closed. */
  close(): Promise<void>;
}

/** Who accepts: Node (a callback per accepted socket), or the addon's connection pool (the
 * listening fd is handed over; `adopt` returns how to close it). */
export type AcceptSink =
  | { kind: 'node'; onConnection: (direction: Direction, s: Socket) => void; onError: (direction: Direction, e: Error) => void }
  | { kind: 'native'; adopt: (fd: number, direction: Direction) => () => Promise<void> };

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
  sink: AcceptSink,
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
        let close: () => Promise<void>;
        try {
          if (sink.kind === 'native') {
            const fd = caps.native!.listen({ host, port, transparent: mode === 'tproxy', ipv6Only: true, backlog: 1024 });
            close = sink.adopt(fd, direction);
          } else {
            const server = createServer({ allowHalfOpen: true, pauseOnConnect: true, noDelay: true }, (s) => sink.onConnection(direction, s));
            // accept(2) failing (EMFILE, ENFILE) is reported on the server: log-and-continue
            // territory, never an uncaught exception.
            server.on('error', (e) => sink.onError(direction, e));
            if (mode === 'tproxy') {
              const fd = caps.native!.listen({ host, port, transparent: true, ipv6Only: true, backlog: 1024 });
              await listenServer(server, { fd }).catch((e: unknown) => {
                caps.native!.resetAndClose(fd);
                throw e;
              });
            } else {
              await listenServer(server, { host, port, ipv6Only: true });
            }
            close = () => closeServer(server);
          }
        } catch (e) {
          const code = (e as NodeJS.ErrnoException).code ?? '';
          if (family === 6 && V6_ABSENT.has(code)) {
            skipped.push(`${direction} [${host}]:${port}: ${code}`);
            continue;
          }
          throw new WeftError(ErrorCodes.NATIVE, `--${direction}-port: cannot listen on ${direction} ${family === 6 ? `[${host}]` : host}:${port}: ${code || (e as Error).message}`, { field: `--${direction}-port`, cause: e });
        }
        listeners.push({ direction, family, port, close });
      }
    }
  } catch (e) {
    await closeListeners(listeners);
    throw e;
  }
  return { listeners, skipped };
}

const closeServer = (server: Server): Promise<void> => new Promise<void>((r) => (server.listening ? server.close(() => r()) : r()));

export function closeListeners(listeners: OpenedListener[]): Promise<void> {
  return Promise.all(listeners.map((l) => l.close())).then(() => undefined);
}

/** The accepted socket's own address (getsockname): the original destination under TPROXY and sk_lookup. */
export function localEndpoint(s: Socket): Endpoint | null {
  return s.localAddress && s.localPort ? { address: unmap(s.localAddress), port: s.localPort } : null;
}
