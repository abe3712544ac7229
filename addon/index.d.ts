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

/** What the connection pool reports, in batches (one onEvents call per worker wake-up), as
 * one flat array of records, each starting with its type:
 *  - `0, id, dir, src, sport, dst, dport` — accepted; answer with start() or reset(). dir 0
 *    inbound, 1 outbound; dst is the original destination (null when the listener's dstMode
 *    found none, dport then 0).
 *  - `1, id, downFd, upFd` — detection saw HTTP/1 and the upstream is connected: both fds are
 *    the caller's now (non-blocking, TCP_NODELAY; the client's bytes still unread in down).
 *  - `2, id, downFd, http` — a start() with handoff finished detecting (http 1 or 0): the
 *    client fd is the caller's now.
 *  - `3, id, reason, error, bytesUp, bytesDown` — ended, both fds closed (RST unless reason is
 *    "eof"); connect failures end with connect_refused | connect_timeout | connect_error;
 *    error is an errno name or null.
 *  - `4, listenerId` — unlisten() finished: the listening fd is closed.
 *  - `5, listenerId, error` — accept(2) failed (EMFILE…); that listener pauses ~100 ms. */
export type ConnEvents = ReadonlyArray<number | string | null>;

/** The proxy's native connection path (addon/src/pool.cc): accepts on worker threads,
 * detects HTTP/1 by peeking, connects upstream and relays with splice — JS only decides. */
export interface ConnPool {
  /** Accept on a listening fd (the pool owns it from now on). direction: 0 inbound, 1
   * outbound; dstMode: 0 getsockname, 1 SO_ORIGINAL_DST, 2 SO_ORIGINAL_DST else getsockname.
   * Returns the listener id. */
  listen(fd: number, direction: 0 | 1, dstMode: 0 | 1 | 2): number;
  /** Stop accepting and close the fd; a t: 4 event follows. */
  unlisten(listenerId: number): void;
  /** Go on with an accepted connection: connect to address:port (SO_MARK `mark` unless 0),
   * detect HTTP/1 for up to detectTimeoutMs (0: opaque at once; upstream bytes first also
   * mean opaque), then relay, closing after idleTimeoutMs without traffic (0: never). With
   * handoff, only detect, then hand the client fd back (t: 2) without connecting. */
  start(id: number, address: string, port: number, mark: number, connectTimeoutMs: number, detectTimeoutMs: number, idleTimeoutMs: number, handoff: boolean): void;
  /** RST the connection: before start a refusal (no event when silent), after it an abort
   * (t: 3 with reason "aborted"). Unknown or finished ids are ignored. */
  reset(id: number, silent?: boolean): void;
  /** Close every listener and reset every connection of this pool; no events after. */
  close(): void;
}

/** exports.bpf: the libbpf loader of the eBPF interception (src/bpf.cc, src/bpf_query.cc).
 * Errors carry .code = errno name and .syscall = the step (open, load, attach, pin, …);
 * a verifier refusal includes the tail of libbpf's log in the message. */
export interface NativeBpf {
  /** Open every object, share maps by name (the first object creating them), copy `rodata`
   * over each object's `weft_cfg`, load, fill `mapEntries`, then attach in the order of
   * `objects` (the caller's plan owns the order): cgroup programs
   * with BPF_F_ALLOW_MULTI to `cgroupPath`, sk_msg to the `local_socks` map (pinned at
   * `sockhashPinPath`: a sockhash drops its programs with its last user reference), sk_lookup
   * as a link to `netnsPath` pinned at `linkPinPath`. All or nothing: on failure everything this
   * call attached is detached and the pin removed. */
  load(spec: BpfLoadSpec): BpfLoadResult;
  /** Programs attached directly to the cgroup, for the attach types weft uses. */
  query(cgroupPath: string): BpfAttachedProg[];
  /** bpf_prog_detach2 of one program (by id) from the cgroup. */
  detach(cgroupPath: string, attachType: string, progId: number): void;
  /** A pinned link; null when nothing is pinned there. netnsIno is 0 once the netns died. */
  linkInfo(pinPath: string): { id: number; progId: number; type: string; netnsIno: number } | null;
  progInfo(id: number): BpfProgInfo | null;
  mapInfo(id: number): { id: number; name: string; type: string; keySize: number; valueSize: number; maxEntries: number } | null;
  /** Raw value, or null if absent; per-CPU maps: every CPU's value (padded to 8 bytes) in a row. */
  mapLookup(mapId: number, key: Buffer): Buffer | null;
  /** Whether the kernel supports each program and map type weft needs (libbpf probes), and
   * each helper its programs call ("helper <name> in <hook>", a tiny BPF_PROG_LOAD each). */
  probe(): Record<string, boolean>;
  /** Load one object without attaching, fill its maps (sockmap values: socket fds), run its
   * program once with BPF_PROG_TEST_RUN on `ctx`, close it. For unit tests (sk_lookup). */
  testRun(spec: {
    object: string;
    rodata: Buffer;
    mapEntries: { map: string; key: Buffer; value: Buffer }[];
    sockmapEntries: { map: string; key: Buffer; fd: number }[];
    ctx: Buffer;
  }): { retval: number; ctx: Buffer };
}

export interface BpfLoadSpec {
  objects: string[];
  cgroupPath: string;
  netnsPath: string | null;
  linkPinPath: string | null;
  sockhashPinPath: string | null;
  rodata: Buffer;
  maxEntries: Record<string, number>;
  mapEntries: { map: string; key: Buffer; value: Buffer }[];
}

export interface BpfProgInfo {
  id: number;
  name: string;
  tag: string;
  type: string;
  mapIds: number[];
}

export interface BpfAttachedProg extends BpfProgInfo {
  attachType: string;
}

export interface BpfLoadResult {
  programs: { name: string; id: number; attachType: string; target: 'cgroup' | 'netns' | 'map' }[];
  maps: { name: string; id: number }[];
  link: { id: number; pin: string } | null;
}

export interface Native {
  /** Addon version (semver) and the Node-API version it was built for. */
  readonly version: string;
  readonly napiVersion: number;
  /** Empty pipes each relay worker keeps for reuse (two fds each): a relay then costs no
   * pipe2/fcntl/close. Pipes still holding bytes are never pooled. */
  readonly pipePoolMax: number;

  /** socket + options + bind + listen; returns a non-blocking fd that Node can adopt with
   * net.Server.listen({ fd }). */
  listen(opts: ListenOptions): number;

  /** getsockname(fd). For TPROXY and sk_lookup this is the original destination. */
  localAddress(fd: number): SockAddr;
  /** getpeername(fd). */
  remoteAddress(fd: number): SockAddr;

  /** getsockopt(SO_ORIGINAL_DST) (IPv4) or (IP6T_SO_ORIGINAL_DST) (IPv6); null when the
   * socket has none (ENOENT/ENOPROTOOPT: not redirected; EOPNOTSUPP: the other family asked). */
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

  /** The native connection path; `httpMethods` are the request-line starts ("GET ", …)
   * that mean HTTP/1. */
  connPool(opts: { httpMethods: string[]; onEvents: (events: ConnEvents) => void }): ConnPool;

  /** Set SO_LINGER {on, 0} and close: the peer sees RST. For refusing a connection. */
  resetAndClose(fd: number): void;

  /** The eBPF loader (see NativeBpf). */
  readonly bpf: NativeBpf;
}

declare const native: Native;
export default native;
