// The surface of weft_native.node. Only pkg/native loads it; everything else imports the
// typed facade from pkg/native. Every function throws TypeError with a usage string on bad
// arguments and Error (with .code = errno name, .syscall) on system-call failure.

export interface SockAddr {
  /** Numeric IPv4 or IPv6 address, e.g. "10.0.0.2" or "fd00::2". IPv4-mapped IPv6 is unmapped. */
  address: string;
  port: number;
  family: 4 | 6;
}

export interface ListenOptions {
  /** Address to bind; "0.0.0.0" or "::" for any. */
  host: string;
  port: number;
  /** Set IP_TRANSPARENT (IPV6_TRANSPARENT) before bind: needed for TPROXY; requires CAP_NET_ADMIN. */
  transparent?: boolean;
  /** For "::": IPV6_V6ONLY (default true so v4 and v6 listeners can share a port). */
  ipv6Only?: boolean;
  /** SO_REUSEADDR (default true). */
  reuseAddr?: boolean;
  /** SO_MARK on the listener (needs CAP_NET_ADMIN); 0 = unset. */
  mark?: number;
  backlog?: number;
}

export interface ConnectOptions {
  address: string;
  port: number;
  /** SO_MARK on the upstream socket before connect (needs CAP_NET_ADMIN); 0 = unset. */
  mark?: number;
  /** Milliseconds before giving up with ETIMEDOUT. */
  timeoutMs: number;
  /** Bind to this local address first (optional). With transparent, any address. */
  bindAddress?: string;
  transparent?: boolean;
}

export interface RelayOptions {
  /** Close both sides after this long with no byte in either direction; 0 = never. */
  idleTimeoutMs: number;
  /** Pipe capacity per direction in bytes (bounds memory per connection); default 65536. */
  pipeSize?: number;
}

export interface RelayResult {
  /** Bytes written to the upstream (client → server), including the head. */
  bytesUp: number;
  /** Bytes written to the downstream (server → client). */
  bytesDown: number;
  /** How the relay ended. "eof": both sides half-closed cleanly; "reset": one side sent RST
   * (propagated as RST to the other); "idle": idle timeout; "error": other errno (in .error);
   * "aborted": abort() was called. */
  reason: 'eof' | 'reset' | 'idle' | 'error' | 'aborted';
  error?: string;
}

export interface RelayHandle {
  /** Stop relaying and close both sockets with RST. Idempotent. */
  abort(): void;
  /** Live counters (bytes so far). */
  stats(): { bytesUp: number; bytesDown: number };
}

export interface Native {
  /** Addon version (semver) and the Node-API version it was built for. */
  readonly version: string;
  readonly napiVersion: number;

  /** socket + options + bind + listen; returns a non-blocking fd that Node can adopt with
   * net.Server.listen({ fd }). */
  listen(opts: ListenOptions): number;

  /** getsockname(fd). For TPROXY and sk_lookup this is the original destination. */
  localAddress(fd: number): SockAddr;
  /** getpeername(fd). */
  remoteAddress(fd: number): SockAddr;

  /** getsockopt(SO_ORIGINAL_DST) (IPv4) or (IP6T_SO_ORIGINAL_DST) (IPv6); null when the
   * socket has none (ENOENT/ENOPROTOOPT: not redirected). */
  originalDst(fd: number, family: 4 | 6): SockAddr | null;

  /** SO_COOKIE of the socket, as a bigint. */
  socketCookie(fd: number): bigint;

  /** Non-blocking connect on a native thread; callback gets a connected non-blocking fd that
   * Node can adopt with new net.Socket({ fd }). err.code is the errno name (ECONNREFUSED,
   * ETIMEDOUT, EHOSTUNREACH, …). */
  connect(opts: ConnectOptions, cb: (err: (Error & { code?: string }) | null, fd: number) => void): void;

  /** Zero-copy relay between two connected TCP sockets on a native thread (splice through a
   * pipe per direction). The addon dup()s both fds, so the caller must then close its own
   * copies WITHOUT shutdown (e.g. stop reading and destroy the JS sockets). `head` is
   * written to `upFd` first (bytes already read for protocol detection); `tail` (may be
   * empty) is written to `downFd` first. Half-close is honoured both ways; RST is
   * propagated as RST. `done` is called once on the JS thread. */
  relay(downFd: number, upFd: number, head: Buffer | null, tail: Buffer | null, opts: RelayOptions, done: (r: RelayResult) => void): RelayHandle;

  /** Set SO_LINGER {on, 0} and close: the peer sees RST. For refusing a connection. */
  resetAndClose(fd: number): void;
}

declare const native: Native;
export default native;
