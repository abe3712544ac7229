// The proxy's shared state and lifecycle: listeners up → ready; drain → listeners closed,
// in-flight work finishes (up to the grace period), the rest is closed.
import type { Socket } from 'node:net';
import type { ProxyConfig } from '../api/proxy-config.js';
import type { Logger } from '../log/index.js';
import type { Direction, ProxyMetrics } from '../metrics/proxy.js';
import { allowAll, type Authorizer } from '../policy/types.js';
import { PeerClassifier, localAddresses, unmap } from './addr.js';
import { handleConnection, type Tracked } from './connection.js';
import { closeListeners, localEndpoint, openListeners, type AcceptSink, type OpenedListener } from './listeners.js';
import { socketFd, type NativeCaps } from './native-bridge.js';
import { NativePath } from './native-path.js';
import type { AccessLog, Endpoint } from './types.js';

/** Test and bench hook: the original destination of an accepted connection, given its peer
 * and the destination the proxy itself found (null when it found none). */
export type ResolveDst = (direction: Direction, src: Endpoint, found: Endpoint | null) => Endpoint | null;

export interface EngineOptions {
  config: Readonly<ProxyConfig>;
  log: Logger;
  metrics: ProxyMetrics;
  caps: NativeCaps;
  authorizer?: Authorizer;
  accessLog?: AccessLog | null;
  resolveDst?: ResolveDst;
  /** Listen addresses (tests bind loopback); IPv6 null = no IPv6 listener. */
  hosts?: { host4?: string; host6?: string | null };
}

export class ProxyEngine {
  readonly config: Readonly<ProxyConfig>;
  readonly log: Logger;
  readonly metrics: ProxyMetrics;
  readonly caps: NativeCaps;
  readonly accessLog: AccessLog | null;
  readonly classifier: PeerClassifier;
  readonly ownPorts: ReadonlySet<number>;
  authorizer: Authorizer;
  readonly resolveDst: ResolveDst | undefined;
  /** The native connection path, when the addon has one and --relay native (the default). */
  readonly nativePath: NativePath | null;
  listeners: OpenedListener[] = [];
  draining = false;
  private readonly live = new Set<Tracked>();
  private idSeq = 0;
  private onIdle: (() => void) | null = null;

  constructor(private readonly opts: EngineOptions) {
    this.config = opts.config;
    this.log = opts.log;
    this.metrics = opts.metrics;
    this.caps = opts.caps;
    this.accessLog = opts.accessLog ?? null;
    this.authorizer = opts.authorizer ?? allowAll;
    this.classifier = new PeerClassifier(localAddresses(opts.config.pod.ips));
    this.ownPorts = new Set([opts.config.inboundPort, opts.config.outboundPort, opts.config.adminPort]);
    this.resolveDst = opts.resolveDst;
    const native = opts.caps.native;
    this.nativePath = opts.config.relay === 'native' && opts.caps.pool && native ? new NativePath(this, native, opts.config.mode) : null;
  }

  get listening(): boolean {
    return this.listeners.length > 0 && !this.draining;
  }
  get activeConnections(): number {
    return this.live.size;
  }

  async start(): Promise<void> {
    const path = this.nativePath;
    const sink: AcceptSink = path
      ? { kind: 'native', adopt: (fd, direction) => path.adopt(fd, direction) }
      : { kind: 'node', onConnection: (direction, s) => this.accept(direction, s), onError: (direction, e) => this.log.warn({ dir: direction, err: e, code: 'accept_error' }, 'accept failed') };
    const { listeners, skipped } = await openListeners(this.config.mode, { inbound: this.config.inboundPort, outbound: this.config.outboundPort }, this.caps, sink, this.opts.hosts).catch((e: unknown) => {
      path?.close();
      throw e;
    });
    this.listeners = listeners;
    for (const s of skipped) this.log.info({ detail: s }, 'IPv6 listener skipped');
  }

  private accept(direction: Direction, s: Socket): void {
    if (this.draining) return void s.destroy();
    try {
      handleConnection(this, direction, s);
    } catch (e) {
      this.log.error({ err: e, dir: direction }, 'connection setup failed');
      s.destroy();
    }
  }

  /**
   * The original destination: getsockname under TPROXY and sk_lookup (and the inbound side of
   * ebpf mode), SO_ORIGINAL_DST for the eBPF connect redirect and iptables REDIRECT.
   */
  originalDst(direction: Direction, s: Socket, src: Endpoint): Endpoint | null {
    if (this.resolveDst) return this.resolveDst(direction, src, this.foundDst(direction, s));
    return this.foundDst(direction, s);
  }

  private foundDst(direction: Direction, s: Socket): Endpoint | null {
    const mode = this.config.mode;
    if (mode === 'tproxy' || (mode === 'ebpf' && direction === 'inbound')) return localEndpoint(s);
    if (this.caps.originalDst && this.caps.native) {
      const fd = socketFd(s as never);
      if (fd >= 0) {
        try {
          const a = this.caps.native.originalDst(fd, s.remoteFamily === 'IPv6' ? 6 : 4);
          if (a) return { address: unmap(a.address), port: a.port };
        } catch (e) {
          this.log.debug({ err: e }, 'SO_ORIGINAL_DST failed');
        }
      }
    }
    // ebpf outbound must have been redirected; without an answer there is nowhere to go.
    return mode === 'ebpf' ? null : localEndpoint(s);
  }

  nextId(): number {
    return ++this.idSeq;
  }
  track(c: Tracked): void {
    this.live.add(c);
  }
  untrack(c: Tracked): void {
    this.live.delete(c);
    if (this.live.size === 0) this.onIdle?.();
  }

  /** Stop accepting, ask live connections to finish, wait up to `graceMs`, abort the rest.
   * Resolves with the number of connections that had to be aborted. */
  async drain(graceMs: number): Promise<number> {
    this.draining = true;
    const closing = closeListeners(this.listeners);
    for (const c of this.live) c.drain();
    if (this.live.size > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, graceMs);
        this.onIdle = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    this.onIdle = null;
    const aborted = this.live.size;
    for (const c of [...this.live]) c.abort();
    await closing;
    this.nativePath?.close();
    return aborted;
  }

  /** Immediate stop (tests): abort everything. */
  async close(): Promise<void> {
    this.draining = true;
    for (const c of [...this.live]) c.abort();
    await closeListeners(this.listeners);
    this.nativePath?.close();
  }
}
