// The native connection path: the addon accepts on the listeners (worker threads), this file
// decides each connection — original destination, loop, L4 policy: the same admit() as the
// Node path — and starts it; protocol detection, the upstream connect and the splice relay
// then stay native, with no Node socket at all for opaque TCP. HTTP/1 connections come back
// as two fds (client and connected upstream) and get the TypeScript HTTP layer.
//
//   addon accept ──'accept'──► admit() ──start()──► detect + connect + relay (native)
//                                 │ refuse: reset()        ├─'http'──► Connection.runHttp
//                                 ▼                        └─'closed'─► metrics, access log
import type { Socket } from 'node:net';
import type { ConnEvents, ConnPool, Native } from '../native/index.js';
import { adoptSocket } from '../native/index.js';
import { FAILURE_REASONS, type Direction, type FailureReason } from '../metrics/proxy.js';
import { admit, Connection, type Tracked } from './connection.js';
import { HTTP_METHOD_TOKENS } from './detect.js';
import type { ProxyEngine } from './engine.js';
import type { Mode } from './listeners.js';
import type { ConnContext } from './types.js';

/** How the addon reads each listener's original destination (DstMode in addon/src/loop.h). */
const DST_LOCAL = 0 as const;
const DST_SOCKOPT = 1 as const;
const DST_SOCKOPT_OR_LOCAL = 2 as const;

export function dstModeFor(mode: Mode, direction: Direction): 0 | 1 | 2 {
  // TPROXY and sk_lookup deliver to the original address; the eBPF connect rewrite and
  // iptables REDIRECT leave it to SO_ORIGINAL_DST.
  if (mode === 'tproxy' || (mode === 'ebpf' && direction === 'inbound')) return DST_LOCAL;
  return mode === 'ebpf' ? DST_SOCKOPT : DST_SOCKOPT_OR_LOCAL;
}

const FAILURES: ReadonlySet<string> = new Set(FAILURE_REASONS);

/** A connection while the addon holds it (detecting, connecting, relaying). */
class NativeConn implements Tracked {
  /** Set once the connection came back to JS (HTTP/1, or detection handed over). */
  js: Connection | null = null;

  constructor(
    private readonly path: NativePath,
    readonly id: number,
    readonly ctx: ConnContext,
  ) {}

  drain(): void {
    // Opaque TCP keeps going until the grace period ends (then abort()).
  }

  abort(): void {
    this.path.pool.reset(this.id, false);
  }
}

export class NativePath {
  readonly pool: ConnPool;
  private readonly conns = new Map<number, NativeConn>();
  private readonly closing = new Map<number, () => void>();
  private readonly admitted = new Map<number, { decideL4: () => boolean; opaquePort: boolean }>();
  private lastAcceptError = 0;

  constructor(
    private readonly engine: ProxyEngine,
    native: Native,
    private readonly mode: Mode,
  ) {
    this.pool = native.connPool({ httpMethods: [...HTTP_METHOD_TOKENS], onEvents: (evs) => this.onEvents(evs) });
  }

  /** Hands a listening fd to the pool; the returned function closes it. */
  adopt(fd: number, direction: Direction): () => Promise<void> {
    const id = this.pool.listen(fd, direction === 'inbound' ? 0 : 1, dstModeFor(this.mode, direction));
    let closed: Promise<void> | null = null;
    return () =>
      (closed ??= new Promise<void>((resolve) => {
        this.closing.set(id, resolve);
        this.pool.unlisten(id);
      }));
  }

  /** After the listeners are closed and connections have finished or been aborted. */
  close(): void {
    this.pool.close();
  }

  /** The addon's flat event records (addon/index.d.ts, ConnEvents). */
  private onEvents(ev: ConnEvents): void {
    const num = (i: number): number => ev[i] as number;
    const str = (i: number): string => ev[i] as string;
    for (let i = 0; i < ev.length; ) {
      const t = num(i);
      try {
        switch (t) {
          case 0:
            this.onAccept(num(i + 1), num(i + 2) === 0 ? 'inbound' : 'outbound', str(i + 3), num(i + 4), ev[i + 5] as string | null, num(i + 6));
            i += 7;
            break;
          case 1:
            // Adopt both fds first: whatever happens next, Node owns (and closes) them.
            this.onHttp(num(i + 1), adoptSocket(num(i + 2)), adoptSocket(num(i + 3)));
            i += 4;
            break;
          case 2:
            this.onDetected(num(i + 1), adoptSocket(num(i + 2)), num(i + 3) === 1);
            i += 4;
            break;
          case 3:
            this.onClosed(num(i + 1), str(i + 2), ev[i + 3] as string | null, num(i + 4), num(i + 5));
            i += 6;
            break;
          case 4: {
            const done = this.closing.get(num(i + 1));
            this.closing.delete(num(i + 1));
            done?.();
            i += 2;
            break;
          }
          case 5:
            this.onAcceptError(str(i + 2));
            i += 3;
            break;
          default:
            throw new Error(`unknown native event type ${t} at ${i}`);
        }
      } catch (err) {
        // One bad event must not strand the rest of the batch (their fds, their metrics).
        this.engine.log.error({ err, code: 'native_event' }, 'native connection event failed');
        if (t < 0 || t > 5) return;
        i += [7, 4, 4, 6, 2, 3][t]!;
      }
    }
  }

  private onAcceptError(error: string): void {
    // Out of fds (or memory): the addon pauses that listener for a moment. Log at most once a
    // second, not once per refused accept.
    const now = Date.now();
    if (now - this.lastAcceptError > 1000) this.engine.log.warn({ code: 'accept_error', detail: error }, 'accept failed; retrying shortly');
    this.lastAcceptError = now;
  }

  private onAccept(id: number, direction: Direction, srcAddr: string, sport: number, dstAddr: string | null, dport: number): void {
    const { engine } = this;
    if (engine.draining) return this.pool.reset(id, true);
    const src = { address: srcAddr, port: sport };
    const found = dstAddr ? { address: dstAddr, port: dport } : null;
    const dst = engine.resolveDst ? engine.resolveDst(direction, src, found) : found;
    const a = admit(engine, direction, src, dst, () => this.pool.reset(id, true));
    if (!a) return;
    const c = new NativeConn(this, id, a.ctx);
    this.conns.set(id, c);
    engine.track(c);
    const cfg = engine.config;
    const detectMs = a.opaquePort ? 0 : cfg.detectTimeoutMs;
    if (a.ctx.perRequestAuthz) {
      // The policy looks at HTTP fields: detect first, connect only for what it allows (JS).
      this.admitted.set(id, { decideL4: a.decideL4, opaquePort: a.opaquePort });
      this.pool.start(id, '', 0, 0, cfg.connectTimeoutMs, Math.max(detectMs, 1), cfg.idleTimeoutMs, true);
    } else {
      this.pool.start(id, a.ctx.dst.address, a.ctx.dst.port, cfg.proxyMark, cfg.connectTimeoutMs, detectMs, cfg.idleTimeoutMs, false);
    }
  }

  /** Back to JS: the rest of the connection is a Node-path Connection. */
  private handBack(id: number, down: Socket): { c: NativeConn; js: Connection } | null {
    const c = this.conns.get(id);
    if (!c) {
      down.destroy();
      return null;
    }
    this.conns.delete(id);
    this.engine.untrack(c);
    const a = this.admitted.get(id);
    this.admitted.delete(id);
    down.on('error', () => {});
    const js = new Connection(this.engine, c.ctx, down, a?.opaquePort ?? false, a?.decideL4 ?? (() => true));
    c.js = js;
    return { c, js };
  }

  private onHttp(id: number, down: Socket, up: Socket): void {
    const h = this.handBack(id, down);
    if (!h) return void up.destroy();
    h.js.runHttp(up);
  }

  private onDetected(id: number, down: Socket, http: boolean): void {
    this.handBack(id, down)?.js.runDetected(http);
  }

  private onClosed(id: number, reason: string, error: string | null, bytesUp: number, bytesDown: number): void {
    const c = this.conns.get(id);
    if (!c) return;
    this.conns.delete(id);
    this.admitted.delete(id);
    this.engine.untrack(c);
    const { ctx } = c;
    const m = ctx.metrics;
    if (FAILURES.has(reason)) m.failure(reason as FailureReason);
    m.received.inc(bytesUp);
    m.sent.inc(bytesDown);
    m.closed.inc();
    if (reason.startsWith('connect_')) this.engine.log.debug({ dir: ctx.direction, dst: `${ctx.dst.address}:${ctx.dst.port}`, code: reason, detail: error }, 'upstream connect failed');
    const ms = performance.now() - ctx.started;
    this.engine.accessLog?.({ dir: ctx.direction, src: `${ctx.src.address}:${ctx.src.port}`, dst: `${ctx.dst.address}:${ctx.dst.port}`, proto: 'tcp', bytes: { received: bytesUp, sent: bytesDown }, status: reason, duration_ms: Math.round(ms * 1000) / 1000, ...(ctx.policy ? { policy: ctx.policy } : {}) });
  }
}
