// The typed facade over weft_native.node: everything outside pkg/native imports from here.
// Functions mirror addon/index.d.ts (same names, same errors: TypeError with a usage string on
// bad arguments, Error with .code = errno name and .syscall on system-call failures), plus
// helpers for moving sockets between Node and the addon.
//
// Handing a Node socket to the addon (fdOf, relaySockets): the fd of a net.Socket is
// `socket._handle.fd` (libuv TCP handle, Linux). relay() dup()s the fds, so the JS sockets
// can be destroyed afterwards: net.Socket#destroy() only close()s its fd (uv_close, no
// shutdown), and closing one of two fds of a socket sends nothing. Never use end(),
// resetAndDestroy() or setKeepAlive/setNoDelay toggles on a socket after the handover: they
// act on the shared kernel socket (end() sends FIN, resetAndDestroy() sets SO_LINGER 0).
import net from 'node:net';
import type { ConnectOptions, ListenOptions, Native, RelayHandle, RelayOptions, RelayResult, SockAddr } from '../../addon/index.js';
import { ErrorCodes, WeftError } from '../errors/index.js';
import { loadAddon } from './load.js';

export type { ConnEvents, ConnPool, ConnectOptions, ListenOptions, Native, RelayHandle, RelayOptions, RelayResult, SockAddr } from '../../addon/index.js';

/** An Error from a failed system call, as the addon throws or passes to callbacks. */
export type SystemError = Error & { code?: string; errno?: number; syscall?: string; address?: string; port?: number };

let availability: boolean | undefined;

/** True when the addon is built and loads on this host (cached). Never throws. */
export function nativeAvailable(): boolean {
  if (availability === undefined) {
    try {
      loadAddon();
      availability = true;
    } catch {
      availability = false;
    }
  }
  return availability;
}

/** The raw addon object; throws WeftError(WEFT_ERR_NATIVE) when it is not built. */
export function getNative(): Native {
  return loadAddon();
}

/** Addon version (semver); throws when the addon is missing. */
export function addonVersion(): string {
  return loadAddon().version;
}

/** How many empty pipes each relay worker keeps for reuse (two fds each). */
export function pipePoolMax(): number {
  return loadAddon().pipePoolMax;
}

/** socket + options + bind + listen; returns a non-blocking listening fd. */
export function listen(opts: ListenOptions): number {
  return loadAddon().listen(opts);
}

/** listen() and adopt the fd in a net.Server (which then owns and closes it). The default
 * server is allowHalfOpen, as relaySockets needs (see there). */
export async function listenServer(opts: ListenOptions, server: net.Server = net.createServer({ allowHalfOpen: true })): Promise<net.Server> {
  const fd = listen(opts);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ fd }, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (e) {
    resetAndClose(fd);
    throw e;
  }
  return server;
}

/** getsockname: for TPROXY and sk_lookup this is the original destination. */
export function localAddress(fd: number): SockAddr {
  return loadAddon().localAddress(fd);
}

/** getpeername, with IPv4-mapped IPv6 unmapped. */
export function remoteAddress(fd: number): SockAddr {
  return loadAddon().remoteAddress(fd);
}

/** SO_ORIGINAL_DST / IP6T_SO_ORIGINAL_DST; null when the connection was not redirected. */
export function originalDst(fd: number, family: 4 | 6): SockAddr | null {
  return loadAddon().originalDst(fd, family);
}

/** SO_COOKIE: a kernel-unique id of the socket (the key of weft's eBPF maps). */
export function socketCookie(fd: number): bigint {
  return loadAddon().socketCookie(fd);
}

/** SO_LINGER {1, 0} and close: the peer sees RST. The fd must not belong to a live Node
 * socket (for one, use socket.resetAndDestroy()). */
export function resetAndClose(fd: number): void {
  loadAddon().resetAndClose(fd);
}

/** Non-blocking connect finished on a native thread; cb(err, fd) with err.code the errno name
 * (ECONNREFUSED, ETIMEDOUT, EHOSTUNREACH, EPERM for mark/transparent without CAP_NET_ADMIN…). */
export function connect(opts: ConnectOptions, cb: (err: SystemError | null, fd: number) => void): void {
  loadAddon().connect(opts, cb);
}

/** connect() as a promise of the connected non-blocking fd. */
export function connectFd(opts: ConnectOptions): Promise<number> {
  return new Promise((resolve, reject) => {
    connect(opts, (err, fd) => (err ? reject(err) : resolve(fd)));
  });
}

/** A net.Socket owning `fd` (a connected TCP socket). allowHalfOpen, so an EOF read by Node
 * before a handover to relay() does not make Node send FIN on its own. */
export function adoptSocket(fd: number): net.Socket {
  return new net.Socket({ fd, readable: true, writable: true, allowHalfOpen: true });
}

/** connect() and adopt the fd in a net.Socket. */
export async function connectSocket(opts: ConnectOptions): Promise<net.Socket> {
  return adoptSocket(await connectFd(opts));
}

/** The fd under a Node TCP socket or server (`_handle.fd`, libuv on Linux). Throws if it has
 * none (not connected yet, destroyed, or not an fd-backed handle). */
export function fdOf(s: net.Socket | net.Server): number {
  const fd = (s as unknown as { _handle?: { fd?: number } | null })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) {
    throw new WeftError(ErrorCodes.NATIVE, 'socket has no file descriptor (not connected, or already destroyed)');
  }
  return fd;
}

/** The zero-copy relay on raw fds (see addon/index.d.ts). */
export function relay(
  downFd: number,
  upFd: number,
  head: Buffer | null,
  tail: Buffer | null,
  opts: RelayOptions,
  done: (r: RelayResult) => void,
): RelayHandle {
  return loadAddon().relay(downFd, upFd, head, tail, opts, done);
}

export interface SocketRelay {
  handle: RelayHandle;
  /** Resolves once, when the relay ends. */
  result: Promise<RelayResult>;
}

/** Moves two connected Node sockets into the native relay, synchronously: bytes Node has
 * already read but not consumed are appended to head (from `down`) and tail (from `up`), the
 * addon takes its own fds, then both JS sockets are destroyed (close only, no FIN/RST).
 * Throws if a socket still has unflushed writes (wait for 'drain' or the write callback), was
 * already ended by Node (create servers and sockets with allowHalfOpen: true, or Node answers
 * a peer's FIN with its own before the handover), or has no fd. */
export function relaySockets(
  down: net.Socket,
  up: net.Socket,
  opts: RelayOptions & { head?: Buffer | null; tail?: Buffer | null },
): SocketRelay {
  for (const [name, s] of [['down', down], ['up', up]] as const) {
    if (s.writableEnded) {
      throw new WeftError(ErrorCodes.NATIVE, `relaySockets: the ${name} socket was already ended (FIN sent); use allowHalfOpen: true`);
    }
    if (s.writableLength > 0) {
      throw new WeftError(ErrorCodes.NATIVE, `relaySockets: the ${name} socket has ${s.writableLength} unflushed bytes; wait for 'drain' first`);
    }
  }
  const downFd = fdOf(down);
  const upFd = fdOf(up);
  const head = concat(opts.head ?? null, drainReadable(down));
  const tail = concat(opts.tail ?? null, drainReadable(up));
  let resolve!: (r: RelayResult) => void;
  const result = new Promise<RelayResult>((r) => (resolve = r));
  const relayOpts: RelayOptions = opts.pipeSize === undefined ? { idleTimeoutMs: opts.idleTimeoutMs } : { idleTimeoutMs: opts.idleTimeoutMs, pipeSize: opts.pipeSize };
  const handle = relay(downFd, upFd, head, tail, relayOpts, resolve);
  // Same tick as the dup: libuv cannot read another byte into JS before the close.
  down.destroy();
  up.destroy();
  return { handle, result };
}

function drainReadable(s: net.Socket): Buffer | null {
  s.pause();
  const parts: Buffer[] = [];
  for (;;) {
    const chunk = s.read() as Buffer | string | null;
    if (chunk === null) break;
    parts.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  }
  return parts.length === 0 ? null : Buffer.concat(parts);
}

function concat(a: Buffer | null, b: Buffer | null): Buffer | null {
  if (a === null || a.length === 0) return b;
  if (b === null) return a;
  return Buffer.concat([a, b]);
}
