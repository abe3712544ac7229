// Opaque TCP relays. Both give the same semantics: `head` goes upstream first and `tail`
// downstream first, a FIN is passed on as a FIN (half-close both ways), an RST as an RST,
// memory per connection is bounded (socket highWaterMark in JS, one pipe per direction in
// the native splice relay), and the connection is closed after `idleMs` with no traffic.
import type { Socket } from 'node:net';
import { socketFd, type Native } from './native-bridge.js';

export type RelayReason = 'eof' | 'reset' | 'idle' | 'error' | 'aborted';
export interface RelayEnd {
  reason: RelayReason;
  error?: string;
  /** Bytes received from the downstream over the connection's whole life. */
  received: number;
  /** Bytes sent to the downstream over the connection's whole life. */
  sent: number;
}
export interface Relay {
  readonly kind: 'js' | 'native';
  /** Stop now and close both sides with RST. */
  abort(): void;
}

const RESET_CODES = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED']);

export function reset(s: Socket): void {
  if (s.destroyed) return;
  // resetAndDestroy needs a connected handle with no shutdown under way: libuv refuses
  // close-with-reset while a FIN (end()) is pending and the handle is then never closed.
  // In those cases the peer gets a FIN instead.
  if (s.pending || s.connecting || s.writableEnded) s.destroy();
  else s.resetAndDestroy();
}

export function jsRelay(down: Socket, up: Socket, head: Buffer | null, tail: Buffer | null, idleMs: number, done: (r: RelayEnd) => void): Relay {
  return startJs(down, up, head, tail, idleMs, done);
}

interface JsRelay extends Relay {
  /** Still a plain two-way stream: no FIN seen or sent, no error, nothing destroyed. */
  handoverable(): boolean;
  /** Stop moving bytes (both sockets unpiped and paused); error and close handling stay. */
  hold(): void;
  /** Move bytes again after hold(). */
  resume(): void;
  /** Before another relay takes the sockets: drop the idle timers (nativeRelay drops the rest). */
  release(): void;
}

function startJs(down: Socket, up: Socket, head: Buffer | null, tail: Buffer | null, idleMs: number, done: (r: RelayEnd) => void): JsRelay {
  let reason: RelayReason = 'eof';
  let error: string | undefined;
  let open = 2;
  const onError = (other: Socket) => (e: NodeJS.ErrnoException) => {
    if (RESET_CODES.has(e.code ?? '')) {
      if (reason === 'eof') reason = 'reset';
      reset(other);
    } else {
      if (reason === 'eof') {
        reason = 'error';
        error = e.code ?? e.message;
      }
      reset(other);
    }
  };
  const onClose = () => {
    if (--open > 0) return;
    done({ reason, ...(error ? { error } : {}), received: down.bytesRead, sent: down.bytesWritten });
  };
  down.on('error', onError(up)).on('close', onClose);
  up.on('error', onError(down)).on('close', onClose);
  const onIdle = () => {
    if (reason === 'eof') reason = 'idle';
    down.destroy();
    up.destroy();
  };
  if (idleMs > 0) {
    // Socket timeouts are reset by reads and writes, so one per side covers both directions.
    down.setTimeout(idleMs, onIdle);
    up.setTimeout(idleMs, onIdle);
  }
  if (head && head.length > 0) up.write(head);
  if (tail && tail.length > 0) down.write(tail);
  // pipe() applies backpressure (pause/resume at highWaterMark) and ends the writable side
  // when the readable side ends: a FIN becomes a FIN, the other direction keeps flowing.
  // A FIN seen during detection was consumed already: pass it on by hand.
  const flow = (): void => {
    if (down.readableEnded) up.end();
    else down.pipe(up);
    if (up.readableEnded) down.end();
    else up.pipe(down);
    down.resume();
    up.resume();
  };
  flow();
  const live = (s: Socket): boolean => !s.destroyed && !s.readableEnded && !s.writableEnded;
  return {
    kind: 'js',
    handoverable: () => open === 2 && reason === 'eof' && live(down) && live(up),
    hold() {
      down.unpipe(up);
      up.unpipe(down);
      down.pause();
      up.pause();
    },
    resume: () => {
      if (open < 2 || down.destroyed || up.destroyed) return;
      if (idleMs > 0) {
        down.setTimeout(idleMs, onIdle);
        up.setTimeout(idleMs, onIdle);
      }
      flow();
    },
    release() {
      down.setTimeout(0, onIdle);
      up.setTimeout(0, onIdle);
    },
    abort() {
      if (reason === 'eof') reason = 'aborted';
      reset(down);
      reset(up);
    },
  };
}

/**
 * The JS relay first, handed to the native splice relay once `threshold` bytes have moved.
 * Short connections (a request and a reply) end before that: they skip the addon's dup,
 * pipes and worker thread, which cost more than relaying a few KiB in JS and were most of
 * the per-connection work (docs/performance.md). Long or bulky ones get splice.
 */
export function adaptiveRelay(native: Native, down: Socket, up: Socket, head: Buffer | null, tail: Buffer | null, idleMs: number, threshold: number, done: (r: RelayEnd) => void): Relay {
  const js = startJs(down, up, head, tail, idleMs, done);
  let current: Relay = js;
  let moved = (head?.length ?? 0) + (tail?.length ?? 0);
  let pending = false;
  const stopCounting = (): void => {
    down.off('data', count);
    up.off('data', count);
  };
  const handover = (): void => {
    pending = false;
    if (!js.handoverable()) return stopCounting();
    // The fds can change hands only with nothing queued in Node. Waiting for a flush here
    // could deadlock two peers that each wait for the other to read; try at the next chunk.
    if (down.writableLength > 0 || up.writableLength > 0) return;
    stopCounting();
    js.hold();
    js.release();
    const n = nativeRelay(native, down, up, null, null, idleMs, done);
    if (n) current = n;
    else js.resume();
  };
  function count(b: Buffer): void {
    moved += b.length;
    if (moved < threshold || pending) return;
    pending = true;
    // Not inside the 'data' emit: the pipe is still writing this chunk.
    setImmediate(handover);
  }
  down.on('data', count);
  up.on('data', count);
  return {
    get kind() {
      return current.kind;
    },
    abort: () => current.abort(),
  };
}

/** Take back bytes Node has already read into a paused socket's buffer, and stop reading. */
function takeBuffered(s: Socket): Buffer | null {
  (s as unknown as { _handle?: { readStop?: () => void } | null })._handle?.readStop?.();
  const parts: Buffer[] = [];
  for (let b = s.read() as Buffer | null; b !== null; b = s.read() as Buffer | null) parts.push(b);
  return parts.length === 0 ? null : parts.length === 1 ? parts[0]! : Buffer.concat(parts);
}

const join = (a: Buffer | null, b: Buffer | null): Buffer | null => (!a ? b : !b ? a : Buffer.concat([a, b]));

/** Hand both sockets to the addon's splice relay. Call only when neither socket has writes
 * queued in Node (`writableLength` 0); returns null when a socket has no fd (the caller keeps
 * relaying in JS). */
export function nativeRelay(native: Native, down: Socket, up: Socket, head: Buffer | null, tail: Buffer | null, idleMs: number, done: (r: RelayEnd) => void): Relay | null {
  const downFd = socketFd(down as never);
  const upFd = socketFd(up as never);
  if (downFd < 0 || upFd < 0 || down.destroyed || up.destroyed) return null;
  const h = join(head, takeBuffered(down));
  const t = join(tail, takeBuffered(up));
  const headLen = h?.length ?? 0;
  const read0 = down.bytesRead;
  const written0 = down.bytesWritten;
  const handle = native.relay(downFd, upFd, h, t, { idleTimeoutMs: idleMs }, (r) => {
    done({ reason: r.reason, ...(r.error ? { error: r.error } : {}), received: read0 + r.bytesUp - headLen, sent: written0 + r.bytesDown });
  });
  // The addon holds dup()s; closing our copies (no shutdown) leaves the connections open.
  for (const s of [down, up]) {
    s.removeAllListeners('data');
    s.removeAllListeners('end');
    s.removeAllListeners('close');
    s.removeAllListeners('error');
    s.on('error', () => {});
    s.destroy();
  }
  return { kind: 'native', abort: () => handle.abort() };
}
