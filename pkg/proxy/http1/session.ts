// One HTTP/1.x connection, proxied request by request: bytes pass through unchanged, the
// framing parser tells where each request and response ends (for metrics, per-request policy,
// drain), and a protocol switch (101, CONNECT 2xx) turns the rest of the stream opaque.
//
// Closing follows RFC 9112 §9.6: the proxy says `connection: close` on the response after
// which it closes (when draining, or after a request that asked to close), sends its FIN
// only after that response, and never forwards what a client sends behind it. Every request
// ends up in weft_requests_total once: with the status the client saw, or "0" when it never
// got a response (upstream gone, client gone, connection reset).
import type { Socket } from 'node:net';
import { Http1Parser, HttpParseError, isInterim, type HeadInfo } from './parser.js';
import { localResponse, withConnectionClose, type LocalStatus } from './local.js';
import { reset } from '../relay.js';
import type { ConnContext, StartOpaque } from '../types.js';

interface Pending {
  method: string;
  path: string;
  t0: number;
  /** Answered by the proxy itself, in order, instead of by the upstream (0: forwarded). */
  local: LocalStatus | 0;
  /** Close the connection after this request's response. */
  close: boolean;
  /** The request asked to switch protocols (Upgrade + Connection: upgrade, or CONNECT). */
  upgrade: boolean;
  /** Response bytes sent to the client for it (interim responses included). */
  bytes: number;
  /** The deciding policy, for the access log only (never in a response). */
  policy: string | undefined;
}

/** A drained connection with no request in flight waits this long for one that may already
 * be on the wire (answered with `connection: close`) before it is closed. */
export const DRAIN_IDLE_LINGER_MS = 1000;

/** After the proxy's FIN, how long a peer may take to close its side (nginx's
 * lingering_timeout): then the connection is closed whatever it still sends. */
export const CLOSE_LINGER_MS = 5000;

export interface SessionEnd {
  reason: 'eof' | 'reset' | 'idle' | 'error' | 'upgraded';
  requests: number;
}

export class Http1Session {
  private readonly queue: Pending[] = [];
  private readonly req: Http1Parser;
  private readonly res: Http1Parser;
  /** The request being read from the client. */
  private current: Pending | null = null;
  /** Forward the current request's bytes (false while dropping a denied request's body). */
  private forwarding = true;
  private reqLeftover: Buffer | null = null;
  private draining = false;
  /** No more client bytes are read: after a request that closes the connection, a request
   * the proxy refused, or an unsolicited response. */
  private inputDone = false;
  /** FIN sent both ways. */
  private closing = false;
  private switched = false;
  private open = 2;
  private reason: SessionEnd['reason'] = 'eof';
  private requests = 0;
  private downPaused = false;
  private upPaused = false;
  /** Status of the final response being forwarded for queue[0]; 0 while none has started. */
  private pendingStatus = 0;
  /** A response that answers no request (a server's 408 on an idle connection) is passing. */
  private unsolicited = false;
  private switchTail: Buffer | null = null;
  private linger: NodeJS.Timeout | null = null;

  constructor(
    private readonly ctx: ConnContext,
    private readonly down: Socket,
    private readonly up: Socket,
    private readonly toOpaque: StartOpaque,
    private readonly done: (end: SessionEnd) => void,
  ) {
    this.req = new Http1Parser('request', {
      onHead: (h, raw) => this.onRequestHead(h, raw),
      onBody: (raw) => {
        if (this.forwarding) this.writeUp(raw);
      },
      onMessageEnd: () => {
        this.forwarding = true;
        // Nothing a client sends after `connection: close` is a request (llhttp strict).
        if (this.current?.close) this.stopInput();
      },
    });
    this.res = new Http1Parser('response', {
      onHead: (h, raw) => this.onResponseHead(h, raw),
      onBody: (raw) => {
        const p = this.queue[0];
        if (p && !this.unsolicited) p.bytes += raw.length;
        this.writeDown(raw);
      },
      onMessageEnd: () => this.onResponseEnd(),
    });
    this.res.requestMethod = () => this.queue[0]?.method ?? 'GET';
  }

  start(head: Buffer): void {
    const { down, up } = this;
    down.on('data', this.onDownData).on('end', this.onDownEnd).on('error', this.onError(up)).on('close', this.onClose);
    up.on('data', this.onUpData).on('end', this.onUpEnd).on('error', this.onError(down)).on('close', this.onClose);
    if (this.ctx.idleMs > 0) {
      down.setTimeout(this.ctx.idleMs, () => {
        this.reason = 'idle';
        down.destroy();
        up.destroy();
      });
    }
    this.onDownData(head);
    if (!this.switched) {
      down.resume();
      up.resume();
    }
  }

  /** Stop taking new requests: the next response says `connection: close` and the connection
   * closes after it; an idle connection closes after DRAIN_IDLE_LINGER_MS without a request. */
  drain(): void {
    this.draining = true;
    this.lingerIfIdle();
  }

  private onDownData = (buf: Buffer): void => {
    if (this.inputDone || this.closing || this.switched) return;
    if (this.reqLeftover) {
      this.reqLeftover = Buffer.concat([this.reqLeftover, buf]);
      return;
    }
    try {
      const used = this.req.execute(buf);
      if (this.req.halted) return;
      if (used < buf.length) this.reqLeftover = buf.subarray(used);
      if (this.req.awaitingUpgrade) {
        this.reqLeftover ??= Buffer.alloc(0);
        this.pauseDown();
      }
    } catch (e) {
      this.badRequest(e);
    }
  };

  private onUpData = (buf: Buffer): void => {
    if (this.switched || this.res.halted) return;
    try {
      const used = this.res.execute(buf);
      if (this.res.upgraded) this.switchToOpaque(used < buf.length ? buf.subarray(used) : null);
    } catch (e) {
      this.badResponse(e);
    }
  };

  private onRequestHead(h: HeadInfo, raw: Buffer): void {
    const ctx = this.ctx;
    let local: LocalStatus | 0 = 0;
    let policy = ctx.policy;
    if (ctx.perRequestAuthz) {
      const d = ctx.authorizer.decide({ direction: ctx.direction, source: ctx.src, destination: ctx.dst, http: { method: h.method, path: h.path } });
      ctx.countAuthz(d.allow, d.policy);
      policy = d.policy;
      if (!d.allow) local = 403;
    }
    const p: Pending = { method: h.method, path: h.path, t0: performance.now(), local, close: h.close, upgrade: h.upgrade, bytes: 0, policy };
    this.current = p;
    this.queue.push(p);
    this.forwarding = local === 0;
    if (local === 0) this.writeUp(raw);
    else this.flushLocal();
  }

  private onResponseHead(h: HeadInfo, raw: Buffer): void {
    const p = this.queue[0];
    if (!p) {
      // Nothing was asked: pass it on (the server is telling the client why it closes) and
      // close after it, as Envoy does; what the client sends now would race the close.
      if (isInterim(h.status) || h.status === 101) throw new HttpParseError('unsolicited_response', true);
      this.unsolicited = true;
      this.stopInput();
      this.writeDown(h.close ? raw : withConnectionClose(raw));
      return;
    }
    if (h.status === 101 || (p.method === 'CONNECT' && h.status >= 200 && h.status < 300)) {
      // A switch the client did not ask for would turn its next requests opaque, unchecked.
      if (!p.upgrade) throw new HttpParseError('unexpected_switch', true);
      this.finishRequest(p, h.status);
      this.switchTail = raw;
      return;
    }
    if (isInterim(h.status)) {
      p.bytes += raw.length;
      this.writeDown(raw);
      return;
    }
    const addClose = this.draining && !h.close && !p.close;
    const out = addClose ? withConnectionClose(raw) : raw;
    p.close ||= h.close || this.draining;
    p.bytes += out.length;
    this.pendingStatus = h.status;
    this.writeDown(out);
  }

  private onResponseEnd(): void {
    if (this.unsolicited) {
      this.unsolicited = false;
      return this.closeGracefully();
    }
    const p = this.queue[0];
    // An interim (1xx) response ended: the request still waits for its final one.
    if (!p || this.pendingStatus === 0) return;
    const status = this.pendingStatus;
    this.pendingStatus = 0;
    this.finishRequest(p, status);
    if (p.close) return this.closeGracefully();
    // A refused protocol switch: the client's bytes after it are HTTP again.
    if (this.req.awaitingUpgrade) {
      this.req.resumeHttp();
      const rest = this.reqLeftover;
      this.reqLeftover = null;
      this.resumeDown();
      if (rest && rest.length > 0) this.onDownData(rest);
    }
    this.flushLocal();
  }

  private finishRequest(p: Pending, status: number): void {
    const i = this.queue.indexOf(p);
    if (i >= 0) this.queue.splice(i, 1);
    this.requests++;
    const ms = performance.now() - p.t0;
    const m = this.ctx.metrics;
    m.request(p.method, status);
    m.duration.observe(ms / 1000);
    this.ctx.accessLog?.({ dir: this.ctx.direction, src: `${this.ctx.src.address}:${this.ctx.src.port}`, dst: `${this.ctx.dst.address}:${this.ctx.dst.port}`, proto: 'http', method: p.method, path: p.path, status, bytes: p.bytes, duration_ms: Math.round(ms * 1000) / 1000, ...(p.policy ? { policy: p.policy } : {}) });
  }

  /** Send the proxy's own responses that are now first in line. */
  private flushLocal(): void {
    while (this.queue[0]?.local) {
      const p = this.queue[0];
      const close = p.close || this.draining;
      const b = localResponse(p.local as LocalStatus, p.method, close);
      p.bytes += b.length;
      this.writeDown(b);
      this.finishRequest(p, p.local as LocalStatus);
      if (close) return this.closeGracefully();
    }
    this.lingerIfIdle();
  }

  private lingerIfIdle(): void {
    if (!this.draining || this.closing || this.switched || this.linger || this.queue.length > 0 || !this.req.idle) return;
    const ms = this.ctx.idleMs > 0 ? Math.min(DRAIN_IDLE_LINGER_MS, this.ctx.idleMs) : DRAIN_IDLE_LINGER_MS;
    this.linger = setTimeout(() => {
      this.linger = null;
      // A request that arrived meanwhile closes the connection with its response.
      if (this.queue.length === 0 && this.req.idle) this.closeGracefully();
    }, ms);
  }

  private switchToOpaque(upRest: Buffer | null): void {
    this.switched = true;
    this.clearLinger();
    const tail = this.switchTail && upRest ? Buffer.concat([this.switchTail, upRest]) : (this.switchTail ?? upRest);
    const head = this.reqLeftover && this.reqLeftover.length > 0 ? this.reqLeftover : null;
    this.reason = 'upgraded';
    const { down, up } = this;
    for (const s of [down, up]) {
      s.off('data', s === down ? this.onDownData : this.onUpData);
      s.off('end', s === down ? this.onDownEnd : this.onUpEnd);
      s.removeAllListeners('error');
      s.off('close', this.onClose);
      s.setTimeout(0);
      s.pause();
    }
    this.unanswered();
    this.done({ reason: 'upgraded', requests: this.requests });
    this.toOpaque(down, up, head, tail);
  }

  private writeUp(b: Buffer): void {
    if (this.up.destroyed || this.up.writableEnded) return;
    if (!this.up.write(b) && !this.downPaused) {
      this.pauseDown();
      this.up.once('drain', () => this.resumeDown());
    }
  }

  private writeDown(b: Buffer): void {
    if (this.down.destroyed || this.down.writableEnded) return;
    if (!this.down.write(b) && !this.upPaused) {
      this.upPaused = true;
      this.up.pause();
      this.down.once('drain', () => {
        this.upPaused = false;
        if (!this.switched) this.up.resume();
      });
    }
  }

  private pauseDown(): void {
    this.downPaused = true;
    this.down.pause();
  }
  private resumeDown(): void {
    this.downPaused = false;
    if (!this.switched && !this.req.awaitingUpgrade) this.down.resume();
  }

  private stopInput(): void {
    this.inputDone = true;
    this.req.halt();
  }

  private onDownEnd = (): void => {
    try {
      this.req.finish();
    } catch {
      // A request cut short by the client: the upstream sees the same FIN.
    }
    if (!this.up.destroyed && !this.up.writableEnded) this.up.end();
  };

  private onUpEnd = (): void => {
    try {
      this.res.finish();
      if (!this.down.destroyed && !this.down.writableEnded) this.down.end();
    } catch {
      // The upstream closed in the middle of a response: the client must not take the
      // truncated body for a complete one.
      this.reason = 'error';
      reset(this.down);
    }
  };

  private onError =
    (other: Socket) =>
    (e: NodeJS.ErrnoException): void => {
      this.reason = e.code === 'ECONNRESET' || e.code === 'EPIPE' ? 'reset' : 'error';
      reset(other);
    };

  private onClose = (): void => {
    if (--this.open > 0 || this.switched) return;
    this.clearLinger();
    this.unanswered();
    this.done({ reason: this.reason, requests: this.requests });
  };

  /** Requests that will never get a response are counted with response_code 0. */
  private unanswered(): void {
    while (this.queue.length > 0) this.finishRequest(this.queue[0]!, 0);
  }

  private clearLinger(): void {
    if (this.linger) clearTimeout(this.linger);
    this.linger = null;
  }

  private closeGracefully(): void {
    if (this.closing) return;
    this.closing = true;
    this.clearLinger();
    this.stopInput();
    // Whatever the upstream sends now answers a request the client was told is not served.
    this.res.halt();
    if (!this.down.destroyed && !this.down.writableEnded) this.down.end();
    if (!this.up.destroyed && !this.up.writableEnded) this.up.end();
    // Keep reading (and dropping) so both peers' FINs are seen, even if one was paused.
    this.down.resume();
    this.up.resume();
    this.linger = setTimeout(() => {
      this.down.destroy();
      this.up.destroy();
    }, CLOSE_LINGER_MS);
  }

  /** The client's bytes cannot be framed: answer 400 in order and close; nothing more of
   * them reaches the upstream. */
  private badRequest(e: unknown): void {
    if (!(e instanceof HttpParseError)) throw e;
    this.reason = 'error';
    this.stopInput();
    const p = this.current;
    if (e.inHead || !p) {
      // This request never went upstream: the 400 takes its place in line.
      this.queue.push({ method: e.method, path: '', t0: performance.now(), local: 400, close: true, upgrade: false, bytes: 0, policy: undefined });
      return this.flushLocal();
    }
    if (!this.queue.includes(p)) return this.closeGracefully(); // denied, its 403 already sent
    p.close = true;
    if (p.local !== 0) return this.flushLocal(); // denied: its 403 in line, then close
    // The upstream holds part of this request: nothing more can go through that connection.
    reset(this.up);
    if (this.queue[0] === p && p.bytes === 0) {
      p.local = 400;
      return this.flushLocal();
    }
    reset(this.down);
  }

  /** The upstream's bytes cannot be framed: a 502 if the client has seen nothing of the
   * response yet, else an RST (it must not take a broken response for a whole one). */
  private badResponse(e: unknown): void {
    if (!(e instanceof HttpParseError)) throw e;
    this.reason = 'error';
    const p = this.queue[0];
    reset(this.up);
    if (e.inHead && p && !this.unsolicited && this.pendingStatus === 0 && !this.down.writableEnded) {
      const b = localResponse(502, p.method, true);
      p.bytes += b.length;
      this.writeDown(b);
      this.finishRequest(p, 502);
      return this.closeGracefully();
    }
    reset(this.down);
  }
}
