// One HTTP/1.x connection, proxied request by request: bytes pass through unchanged, the
// framing parser tells where each request and response ends (for metrics, per-request policy,
// drain), and a protocol switch (101, CONNECT 2xx) turns the rest of the stream opaque.
import type { Socket } from 'node:net';
import { Http1Parser, HttpParseError, isInterim, type HeadInfo } from './parser.js';
import { reset } from '../relay.js';
import type { ConnContext, StartOpaque } from '../types.js';

interface Pending {
  method: string;
  path: string;
  t0: number;
  /** A locally generated response (policy deny) sent in order instead of forwarding. */
  local: Buffer | null;
  close: boolean;
  bytes: number;
  /** The deciding policy, for the access log only (never in a response). */
  policy: string | undefined;
}

const DENY_BODY = 'RBAC: access denied';
function denyResponse(method: string, close: boolean): Buffer {
  return Buffer.from(
    `HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\ncontent-length: ${DENY_BODY.length}\r\n${close ? 'connection: close\r\n' : ''}\r\n${method === 'HEAD' ? '' : DENY_BODY}`,
    'latin1',
  );
}
const BAD_REQUEST = Buffer.from('HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n', 'latin1');

export interface SessionEnd {
  reason: 'eof' | 'reset' | 'idle' | 'error' | 'upgraded';
  requests: number;
}

export class Http1Session {
  private readonly queue: Pending[] = [];
  private readonly req: Http1Parser;
  private readonly res: Http1Parser;
  /** Forward the current request's bytes (false while dropping a denied request's body). */
  private forwarding = true;
  private reqLeftover: Buffer | null = null;
  private draining = false;
  private closing = false;
  private switched = false;
  private open = 2;
  private reason: SessionEnd['reason'] = 'eof';
  private requests = 0;
  private downPaused = false;
  private upPaused = false;

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
      },
    });
    this.res = new Http1Parser('response', {
      onHead: (h, raw) => this.onResponseHead(h, raw),
      onBody: (raw) => {
        const p = this.queue[0];
        if (p) p.bytes += raw.length;
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

  /** Stop taking new requests: close as soon as no request is in flight. */
  drain(): void {
    this.draining = true;
    if (this.queue.length === 0 && this.req.idle) this.closeGracefully();
  }

  private onDownData = (buf: Buffer): void => {
    if (this.closing || this.switched) return;
    if (this.reqLeftover) {
      this.reqLeftover = Buffer.concat([this.reqLeftover, buf]);
      return;
    }
    try {
      const used = this.req.execute(buf);
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
    if (this.switched) return;
    try {
      const used = this.res.execute(buf);
      if (this.res.upgraded) this.switchToOpaque(used < buf.length ? buf.subarray(used) : null);
    } catch (e) {
      this.badResponse(e);
    }
  };

  private onRequestHead(h: HeadInfo, raw: Buffer): void {
    const ctx = this.ctx;
    let local: Buffer | null = null;
    let policy = ctx.policy;
    if (ctx.perRequestAuthz) {
      const d = ctx.authorizer.decide({ direction: ctx.direction, source: ctx.src, destination: ctx.dst, http: { method: h.method, path: h.path } });
      ctx.countAuthz(d.allow, d.policy);
      policy = d.policy;
      if (!d.allow) local = denyResponse(h.method, h.close);
    }
    this.queue.push({ method: h.method, path: h.path, t0: performance.now(), local, close: h.close, bytes: 0, policy });
    this.forwarding = local === null;
    if (local === null) this.writeUp(raw);
    else this.flushLocal();
  }

  private onResponseHead(h: HeadInfo, raw: Buffer): void {
    const p = this.queue[0];
    if (!p) throw new HttpParseError('response_without_request');
    if (h.status === 101 || (p.method === 'CONNECT' && h.status >= 200 && h.status < 300)) {
      this.finishRequest(p, h.status);
      this.switchTail = raw;
      return;
    }
    p.bytes += raw.length;
    this.writeDown(raw);
    if (!isInterim(h.status)) {
      this.pendingStatus = h.status;
      if (h.close) p.close = true;
    }
  }
  private pendingStatus = 0;
  private switchTail: Buffer | null = null;

  private onResponseEnd(): void {
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
    if (this.draining && this.queue.length === 0 && this.req.idle) this.closeGracefully();
  }

  private finishRequest(p: Pending, status: number): void {
    this.queue.shift();
    this.requests++;
    const ms = performance.now() - p.t0;
    const m = this.ctx.metrics;
    m.request(p.method, status);
    m.duration.observe(ms / 1000);
    this.ctx.accessLog?.({ dir: this.ctx.direction, src: `${this.ctx.src.address}:${this.ctx.src.port}`, dst: `${this.ctx.dst.address}:${this.ctx.dst.port}`, proto: 'http', method: p.method, path: p.path, status, bytes: p.bytes, duration_ms: Math.round(ms * 1000) / 1000, ...(p.policy ? { policy: p.policy } : {}) });
  }

  /** Send denied-request responses that are now first in line. */
  private flushLocal(): void {
    while (this.queue[0]?.local) {
      const p = this.queue[0];
      this.writeDown(p.local!);
      p.bytes = p.local!.length;
      this.finishRequest(p, 403);
      if (p.close) return this.closeGracefully();
    }
    if (this.draining && this.queue.length === 0 && this.req.idle) this.closeGracefully();
  }

  private switchToOpaque(upRest: Buffer | null): void {
    this.switched = true;
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
    this.done({ reason: 'upgraded', requests: this.requests });
    this.toOpaque(down, up, head, tail);
  }

  private writeUp(b: Buffer): void {
    if (!this.up.write(b) && !this.downPaused) {
      this.pauseDown();
      this.up.once('drain', () => this.resumeDown());
    }
  }

  private writeDown(b: Buffer): void {
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

  private onDownEnd = (): void => {
    try {
      this.req.finish();
    } catch {
      // A request cut short by the client: the upstream sees the same FIN.
    }
    this.up.end();
  };

  private onUpEnd = (): void => {
    try {
      this.res.finish();
      this.down.end();
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
    if (--this.open === 0 && !this.switched) this.done({ reason: this.reason, requests: this.requests });
  };

  private closeGracefully(): void {
    if (this.closing) return;
    this.closing = true;
    this.down.end();
    this.up.end();
  }

  private badRequest(e: unknown): void {
    this.reason = 'error';
    this.closing = true;
    if (!(e instanceof HttpParseError)) throw e;
    if (this.queue.length === 0) this.down.end(BAD_REQUEST);
    else reset(this.down);
    this.up.destroy();
  }

  private badResponse(e: unknown): void {
    if (!(e instanceof HttpParseError)) throw e;
    this.reason = 'error';
    reset(this.down);
    this.up.destroy();
  }
}
