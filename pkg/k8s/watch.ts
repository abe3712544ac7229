// List + watch with a local cache, the way client-go's reflector does it:
// - list (paginated) → the cache and a resourceVersion; differences from the previous cache
//   are delivered as ADDED/MODIFIED/DELETED so a relist looks like ordinary events;
// - watch from that resourceVersion with bookmarks; BOOKMARK only advances the version;
// - the server closing the watch (timeoutSeconds) or the connection dropping → watch again
//   from the last version seen (after a backoff for errors, and for watches that end within
//   a second, so a server that closes every watch at once is not hammered);
// - 410 Gone (as an HTTP status or as an ERROR event) → the version is too old: relist.
import type { Logger } from '../log/index.js';
import { statusMessage, type KubeHttp } from './client.js';

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; namespace?: string; resourceVersion?: string; generation?: number; uid?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface WatchHandler<T extends KubeObject> {
  event(type: WatchEventType, obj: T): void;
  /** After each complete list (first sync and every relist). */
  synced?(): void;
}

export interface ListWatchOptions {
  log: Logger;
  /** Server-side watch timeout; the watch is then resumed from the last version. */
  timeoutSeconds?: number;
  backoffMs?: { initial: number; max: number };
  pageSize?: number;
  onRestart?(reason: 'gone' | 'closed' | 'error'): void;
}

export const objectKey = (o: KubeObject): string => (o.metadata.namespace ? `${o.metadata.namespace}/${o.metadata.name}` : o.metadata.name);

class Gone extends Error {}

/** A watch that ends sooner than this counts as failing, for the backoff. */
const QUICK_WATCH_MS = 1000;

export class ListWatch<T extends KubeObject> {
  readonly #cache = new Map<string, T>();
  #rv = '';
  #stopped = false;
  #abort = new AbortController();
  #loop: Promise<void> | undefined;

  constructor(
    private readonly http: KubeHttp,
    /** Collection path, e.g. `/api/v1/pods`. */
    private readonly path: string,
    private readonly handler: WatchHandler<T>,
    private readonly opts: ListWatchOptions,
  ) {}

  get resourceVersion(): string {
    return this.#rv;
  }

  list(): T[] {
    return [...this.#cache.values()];
  }

  get(key: string): T | undefined {
    return this.#cache.get(key);
  }

  /** Resolves after the first successful list; keeps watching until stop(). */
  start(): Promise<void> {
    let first!: () => void;
    const synced = new Promise<void>((r) => (first = r));
    this.#loop = this.#run(first);
    return synced;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#abort.abort();
    await this.#loop;
  }

  async #run(onFirstSync: () => void): Promise<void> {
    const { initial, max } = this.opts.backoffMs ?? { initial: 200, max: 10_000 };
    let delay = initial;
    let needList = true;
    while (!this.#stopped) {
      try {
        if (needList) {
          await this.#relist();
          needList = false;
          onFirstSync();
        }
        const started = Date.now();
        await this.#watch();
        this.opts.onRestart?.('closed');
        // A watch the server ends at once (a proxy in the way, an overloaded API server) must
        // not become a hot loop of requests: back off as for errors until one lasts.
        if (Date.now() - started < QUICK_WATCH_MS) {
          await this.#sleep(delay);
          delay = Math.min(max, delay * 2);
        } else delay = initial;
      } catch (e) {
        if (this.#stopped) break;
        if (e instanceof Gone) {
          this.opts.log.info({ path: this.path, rv: this.#rv }, 'watch resourceVersion too old (410 Gone); relisting');
          this.opts.onRestart?.('gone');
          needList = true;
          continue;
        }
        this.opts.onRestart?.('error');
        this.opts.log.warn({ path: this.path, err: (e as Error).message }, `list/watch failed; retrying in ${delay} ms`);
        await this.#sleep(delay);
        delay = Math.min(max, delay * 2);
      }
    }
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      this.#abort.signal.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
    });
  }

  async #relist(): Promise<void> {
    const items: T[] = [];
    let cont = '';
    let rv = '';
    do {
      const q = new URLSearchParams({ limit: String(this.opts.pageSize ?? 500) });
      if (cont) q.set('continue', cont);
      const r = await this.http.request<{ metadata?: { resourceVersion?: string; continue?: string }; items?: T[] }>('GET', `${this.path}?${q}`, { signal: this.#abort.signal });
      if (r.status === 410 && cont) {
        // The continue token expired mid-list: start the list over.
        items.length = 0;
        cont = '';
        continue;
      }
      if (r.status !== 200) throw new Error(`list ${this.path}: ${statusMessage(r)}`);
      items.push(...(r.body.items ?? []));
      rv = r.body.metadata?.resourceVersion ?? '';
      cont = r.body.metadata?.continue ?? '';
    } while (cont);
    const seen = new Set<string>();
    for (const o of items) {
      const key = objectKey(o);
      seen.add(key);
      const old = this.#cache.get(key);
      this.#cache.set(key, o);
      if (!old) this.handler.event('ADDED', o);
      else if (old.metadata.resourceVersion !== o.metadata.resourceVersion) this.handler.event('MODIFIED', o);
    }
    for (const [key, o] of this.#cache) {
      if (!seen.has(key)) {
        this.#cache.delete(key);
        this.handler.event('DELETED', o);
      }
    }
    this.#rv = rv;
    this.handler.synced?.();
  }

  async #watch(): Promise<void> {
    const q = new URLSearchParams({ watch: 'true', allowWatchBookmarks: 'true', resourceVersion: this.#rv, timeoutSeconds: String(this.opts.timeoutSeconds ?? 300) });
    const { status, stream } = await this.http.stream(`${this.path}?${q}`, this.#abort.signal);
    if (status === 410) {
      stream.resume();
      throw new Gone();
    }
    if (status !== 200) {
      let text = '';
      for await (const c of stream) text += String(c);
      throw new Error(`watch ${this.path}: HTTP ${status} ${text.slice(0, 200)}`);
    }
    let buf = '';
    try {
      for await (const chunk of stream) {
        buf += String(chunk);
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          if (line) this.#apply(JSON.parse(line) as { type: string; object: T & { code?: number; message?: string } });
        }
      }
    } finally {
      stream.destroy();
    }
  }

  #apply(ev: { type: string; object: T & { code?: number; message?: string } }): void {
    const o = ev.object;
    switch (ev.type) {
      case 'BOOKMARK':
        if (o.metadata?.resourceVersion) this.#rv = o.metadata.resourceVersion;
        return;
      case 'ERROR':
        if (o.code === 410) throw new Gone();
        throw new Error(`watch ${this.path}: ERROR event ${o.code ?? ''} ${o.message ?? ''}`);
      case 'ADDED':
      case 'MODIFIED': {
        const key = objectKey(o);
        const known = this.#cache.has(key);
        this.#cache.set(key, o);
        this.handler.event(known ? 'MODIFIED' : 'ADDED', o);
        break;
      }
      case 'DELETED':
        this.#cache.delete(objectKey(o));
        this.handler.event('DELETED', o);
        break;
      default:
        this.opts.log.debug({ path: this.path, type: ev.type }, 'unknown watch event type ignored');
        return;
    }
    if (o.metadata?.resourceVersion) this.#rv = o.metadata.resourceVersion;
  }
}
