// One accepted connection's life: original destination → loop check → L4 policy → upstream
// connect (in parallel with detection) → HTTP/1 session or opaque relay → metrics and log.
//
//   client ──► listener (paused) ──► decide ──► detect ──┬─► Http1Session ──► upstream
//                                                      └─► relay (native splice | JS)
import type { Socket } from 'node:net';
import type { ConnMetrics, Direction } from '../metrics/proxy.js';
import { unmap } from './addr.js';
import { classifyFirstBytes } from './detect.js';
import { Http1Session } from './http1/session.js';
import { adaptiveRelay, jsRelay, reset, type RelayEnd } from './relay.js';
import { ConnectError, connectUpstream } from './upstream.js';
import type { ConnContext, Endpoint } from './types.js';
import type { ProxyEngine } from './engine.js';

/** A live connection, as the engine tracks it for drain. */
export interface Tracked {
  /** Ask it to finish: HTTP closes after the in-flight request; opaque keeps going. */
  drain(): void;
  /** Close now with RST. */
  abort(): void;
}

/** Opaque connections move to the native splice relay after this many bytes (adaptiveRelay). */
export const NATIVE_AFTER_BYTES = 64 * 1024;

type Detection = { proto: 'http'; head: Buffer } | { proto: 'opaque'; head: Buffer | null; tail: Buffer | null };

/** A connection that passed the accept-time checks: what the rest of its life needs. */
export interface Admitted {
  ctx: ConnContext;
  opaquePort: boolean;
  /** The L4 policy decision, counted; false after refusing (RST) the connection. */
  decideL4: () => boolean;
}

/**
 * The accept-time decision, the same on the Node and the native path: original destination,
 * no loop, L4 policy (unless the policy needs HTTP fields, then per request). Counts the
 * connection as opened; on refusal counts why and calls `resetDown` (RST, nothing relayed).
 */
export function admit(engine: ProxyEngine, direction: Direction, src: Endpoint, dst: Endpoint | null, resetDown: () => void): Admitted | null {
  const peer = engine.classifier.classify(direction === 'inbound' ? src.address : (dst?.address ?? src.address));
  const m = engine.metrics.bound(direction, peer);
  m.opened.inc();
  const refuse = (reason: Parameters<ConnMetrics['failure']>[0], detail?: string, policy?: string): null => {
    m.failure(reason);
    m.closed.inc();
    engine.log.debug({ dir: direction, src: `${src.address}:${src.port}`, dst: dst ? `${dst.address}:${dst.port}` : undefined, code: reason, detail }, 'connection refused');
    engine.accessLog?.({ dir: direction, src: `${src.address}:${src.port}`, dst: dst ? `${dst.address}:${dst.port}` : '', proto: 'tcp', bytes: { received: 0, sent: 0 }, status: reason, duration_ms: 0, ...(policy ? { policy } : {}) });
    resetDown();
    return null;
  };
  if (!dst) return refuse('no_original_dst');
  if (engine.classifier.isSelf(dst.address, dst.port, engine.ownPorts)) return refuse('loop');

  const authorizer = engine.authorizer;
  const opaquePort = engine.config.opaquePortSet.has(dst.port);
  const perRequestAuthz = !opaquePort && authorizer.needsHttp(direction, dst.port);
  const ctx: ConnContext = {
    id: engine.nextId(),
    direction,
    src,
    dst,
    metrics: m,
    authorizer,
    perRequestAuthz,
    countAuthz: (allow, policy) => engine.metrics.authz(direction, allow, policy),
    accessLog: engine.accessLog,
    idleMs: engine.config.idleTimeoutMs,
    started: performance.now(),
  };
  const decideL4 = (): boolean => {
    const d = authorizer.decide({ direction, source: src, destination: dst });
    ctx.countAuthz(d.allow, d.policy);
    ctx.policy = d.policy;
    if (!d.allow) refuse('policy_denied', d.reason, d.policy);
    return d.allow;
  };
  // Policy that looks at HTTP fields decides per request; otherwise before any byte moves.
  if (!perRequestAuthz && !decideL4()) return null;
  return { ctx, opaquePort, decideL4 };
}

/** The Node path: Node accepted `down` (paused); decide, then detect and relay in JS. */
export function handleConnection(engine: ProxyEngine, direction: Direction, down: Socket): void {
  const src: Endpoint = { address: unmap(down.remoteAddress ?? ''), port: down.remotePort ?? 0 };
  down.on('error', () => {}); // errors are handled where the socket is used; never crash
  const a = admit(engine, direction, src, engine.originalDst(direction, down, src), () => reset(down));
  if (a) new Connection(engine, a.ctx, down, a.opaquePort, a.decideL4).run();
}

export class Connection implements Tracked {
  private up: Socket | null = null;
  private session: Http1Session | null = null;
  private relayAbort: (() => void) | null = null;
  private finished = false;

  constructor(
    private readonly engine: ProxyEngine,
    private readonly ctx: ConnContext,
    private readonly down: Socket,
    private readonly opaquePort: boolean,
    private readonly decideL4: () => boolean,
  ) {
    engine.track(this);
  }

  run(): void {
    const upP = this.ctx.perRequestAuthz ? null : this.connect();
    const detected: Promise<Detection> = this.opaquePort ? Promise.resolve({ proto: 'opaque', head: null, tail: null }) : this.detect(upP);
    void detected.then((d) => this.proceed(d, upP));
  }

  /** The native path detected the protocol already (bytes still unread in `down`). */
  runDetected(http: boolean): void {
    void this.proceed(http ? { proto: 'http', head: Buffer.alloc(0) } : { proto: 'opaque', head: null, tail: null }, null);
  }

  /** The native path connected and detected HTTP/1: `up` is connected, nothing read yet. */
  runHttp(up: Socket): void {
    up.on('error', () => {});
    this.up = up;
    void this.proceed({ proto: 'http', head: Buffer.alloc(0) }, Promise.resolve(up));
  }

  private async proceed(d: Detection, upP: Promise<Socket | null> | null): Promise<void> {
    const { engine, ctx, down } = this;
    if (this.finished) return;
    if (down.destroyed) return this.gone();
    if (d.proto === 'opaque' && ctx.perRequestAuthz && !this.decideL4()) return this.untrack();
    const up = await (upP ?? this.connect());
    if (!up || this.finished) return;
    if (down.destroyed) return this.gone();
    if (d.proto === 'http') {
      this.session = new Http1Session(ctx, down, up, (a, b, h, t) => this.opaque(a, b, h, t), (end) => {
        if (end.reason !== 'upgraded') this.end(end.reason, down.bytesRead, down.bytesWritten, 'http');
      });
      this.session.start(d.head);
      if (engine.draining) this.session.drain();
    } else {
      this.opaque(down, up, d.head, d.tail);
    }
  }

  private connect(): Promise<Socket | null> {
    const { engine, ctx, down } = this;
    return connectUpstream(ctx.dst, { timeoutMs: engine.config.connectTimeoutMs, mark: engine.config.proxyMark, caps: engine.caps }).then(
      (up) => {
        if (this.finished) {
          up.destroy();
          return null;
        }
        up.on('error', () => {});
        this.up = up;
        return up;
      },
      (e: unknown) => {
        if (this.finished) return null;
        const reason = e instanceof ConnectError ? e.reason : 'connect_error';
        ctx.metrics.failure(reason);
        engine.log.debug({ dir: ctx.direction, dst: `${ctx.dst.address}:${ctx.dst.port}`, code: reason }, 'upstream connect failed');
        reset(down);
        this.end(reason, 0, 0, 'tcp');
        return null;
      },
    );
  }

  /** Wait for the client's first bytes, the upstream's first bytes (server speaks first),
   * or the detection timeout, whichever comes first. */
  private detect(upP: Promise<Socket | null> | null): Promise<Detection> {
    const { down } = this;
    return new Promise((resolve) => {
      let head: Buffer | null = null;
      let settled = false;
      let up: Socket | null = null;
      const settle = (d: Detection): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        down.off('data', onData).off('end', onEnd).off('close', onClose);
        down.pause();
        if (up) {
          up.off('data', onUpData);
          up.pause();
        }
        resolve(d);
      };
      const onData = (b: Buffer): void => {
        head = head ? Buffer.concat([head, b]) : b;
        const c = classifyFirstBytes(head);
        if (c === 'http') settle({ proto: 'http', head });
        else if (c === 'opaque') settle({ proto: 'opaque', head, tail: null });
      };
      const onUpData = (b: Buffer): void => settle({ proto: 'opaque', head, tail: b });
      const onEnd = (): void => settle({ proto: 'opaque', head, tail: null });
      const onClose = (): void => settle({ proto: 'opaque', head, tail: null });
      const timer = setTimeout(() => settle({ proto: 'opaque', head, tail: null }), this.engine.config.detectTimeoutMs);
      down.on('data', onData).on('end', onEnd).on('close', onClose);
      down.resume();
      void upP?.then((s) => {
        if (!s || settled) return;
        up = s;
        s.on('data', onUpData);
        s.resume();
      });
    });
  }

  private opaque(down: Socket, up: Socket, head: Buffer | null, tail: Buffer | null): void {
    const { engine, ctx } = this;
    const done = (r: RelayEnd): void => this.end(r.reason, r.received, r.sent, this.session ? 'http' : 'tcp');
    const native = engine.config.relay === 'native' && engine.caps.relay ? engine.caps.native : null;
    this.relayAbort = (native ? adaptiveRelay(native, down, up, head, tail, ctx.idleMs, NATIVE_AFTER_BYTES, done) : jsRelay(down, up, head, tail, ctx.idleMs, done)).abort;
  }

  /** The client went away before the connection was set up. */
  private gone(): void {
    this.up?.destroy();
    this.end('reset', this.down.bytesRead, this.down.bytesWritten, 'tcp');
  }

  drain(): void {
    this.session?.drain();
  }

  abort(): void {
    if (this.relayAbort) return this.relayAbort();
    reset(this.down);
    if (this.up) reset(this.up);
  }

  private untrack(): void {
    this.finished = true;
    this.engine.untrack(this);
  }

  private end(reason: string, received: number, sent: number, proto: 'tcp' | 'http'): void {
    if (this.finished) return;
    this.untrack();
    const { ctx } = this;
    const m = ctx.metrics;
    m.received.inc(received);
    m.sent.inc(sent);
    m.closed.inc();
    if (this.up && !this.up.destroyed && !this.relayAbort) this.up.destroy();
    const ms = performance.now() - ctx.started;
    this.engine.accessLog?.({ dir: ctx.direction, src: `${ctx.src.address}:${ctx.src.port}`, dst: `${ctx.dst.address}:${ctx.dst.port}`, proto, bytes: { received, sent }, status: reason, duration_ms: Math.round(ms * 1000) / 1000, ...(ctx.policy ? { policy: ctx.policy } : {}) });
  }
}
