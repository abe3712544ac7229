// A small Kubernetes API server for tests (no API server can run here). It speaks the real
// list/watch protocol: paginated lists with a resourceVersion, chunked JSON watch streams
// from a resourceVersion, BOOKMARK events, 410 Gone for compacted versions (as an ERROR
// event, like kube-apiserver, or as an HTTP status), watch timeouts, dropped connections;
// plus the status subresource (PUT with resourceVersion conflicts, or merge PATCH),
// TokenReview and Events.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { objectKey, type KubeObject, type WatchEventType } from './watch.js';

interface Watcher {
  res: http.ServerResponse;
  bookmarks: boolean;
}

interface Collection {
  items: Map<string, KubeObject>;
  history: { rv: number; type: WatchEventType; obj: KubeObject }[];
  watchers: Set<Watcher>;
}

export interface TokenIdentity {
  username: string;
  extra?: Record<string, string[]>;
  audiences?: string[];
}

export class TestApiServer {
  #server = http.createServer((req, res) => this.#handle(req, res));
  #rv = 100;
  /** Watches asking for a version older than this get 410 Gone. */
  #oldest = 0;
  #collections = new Map<string, Collection>();
  url = '';
  readonly requests: string[] = [];
  readonly tokens = new Map<string, TokenIdentity>();
  readonly events: Record<string, unknown>[] = [];
  /** Every accepted status write (PUT or PATCH). */
  readonly statusPatches: { path: string; body: unknown }[] = [];
  /** Send 410 as an HTTP status instead of a 200 stream with an ERROR event. */
  goneAsHttpStatus = false;
  /** End every watch right after its backlog, as a misbehaving proxy or API server might. */
  endWatchesAtOnce = false;

  constructor(collections: string[]) {
    for (const c of collections) this.#collections.set(c, { items: new Map(), history: [], watchers: new Set() });
  }

  async start(): Promise<string> {
    await new Promise<void>((r) => this.#server.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
    return this.url;
  }

  async close(): Promise<void> {
    this.dropWatches();
    this.#server.closeAllConnections();
    await new Promise<void>((r) => this.#server.close(() => r()));
  }

  #col(path: string): Collection {
    const c = this.#collections.get(path);
    if (!c) throw new Error(`test server: unknown collection ${path}`);
    return c;
  }

  #emit(path: string, type: WatchEventType, obj: KubeObject): void {
    const c = this.#col(path);
    c.history.push({ rv: this.#rv, type, obj });
    for (const w of c.watchers) w.res.write(JSON.stringify({ type, object: obj }) + '\n');
  }

  /** Create or replace; bumps resourceVersion (and generation when the spec changed). */
  put<T extends KubeObject>(path: string, obj: T): T {
    const c = this.#col(path);
    const key = objectKey(obj);
    const old = c.items.get(key) as (KubeObject & { spec?: unknown; status?: unknown }) | undefined;
    const o = structuredClone(obj) as T & { spec?: unknown; status?: unknown };
    const specChanged = JSON.stringify(old?.spec) !== JSON.stringify(o.spec);
    o.metadata.resourceVersion = String(++this.#rv);
    o.metadata.generation = (old?.metadata.generation ?? 0) + (specChanged || !old ? 1 : 0);
    o.metadata.uid ??= old?.metadata.uid ?? `uid-${key}`;
    if (old?.status !== undefined && o.status === undefined) o.status = old.status;
    c.items.set(key, o);
    this.#emit(path, old ? 'MODIFIED' : 'ADDED', o);
    return o;
  }

  keys(path: string): string[] {
    return [...this.#col(path).items.keys()];
  }

  get(path: string, key: string): KubeObject | undefined {
    return this.#col(path).items.get(key);
  }

  remove(path: string, key: string): void {
    const c = this.#col(path);
    const o = c.items.get(key);
    if (!o) return;
    c.items.delete(key);
    const gone = structuredClone(o);
    gone.metadata.resourceVersion = String(++this.#rv);
    this.#emit(path, 'DELETED', gone);
  }

  /** Forget the history: a watch from any version older than the current one gets 410 Gone. */
  compact(): void {
    this.#oldest = this.#rv;
    for (const c of this.#collections.values()) c.history = [];
  }

  bookmark(path: string): void {
    for (const w of this.#col(path).watchers) {
      if (w.bookmarks) w.res.write(JSON.stringify({ type: 'BOOKMARK', object: { kind: 'Bookmark', metadata: { resourceVersion: String(this.#rv) } } }) + '\n');
    }
  }

  /** Cut every open watch connection (as a load balancer or a restarting API server does). */
  dropWatches(path?: string): void {
    for (const [p, c] of this.#collections) {
      if (path && p !== path) continue;
      for (const w of c.watchers) w.res.socket?.destroy();
      c.watchers.clear();
    }
  }

  watchCount(path: string): number {
    return this.#col(path).watchers.size;
  }

  #handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://x');
    this.requests.push(`${req.method} ${url.pathname}${url.search}`);
    const send = (code: number, body: unknown) => {
      res.writeHead(code, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    let raw = '';
    req.on('data', (c: Buffer) => (raw += c.toString()));
    req.on('end', () => {
      const body = raw ? (JSON.parse(raw) as Record<string, unknown>) : undefined;
      const p = url.pathname;
      if (req.method === 'POST' && p === '/apis/authentication.k8s.io/v1/tokenreviews') {
        const spec = (body?.spec ?? {}) as { token?: string; audiences?: string[] };
        const id = this.tokens.get(spec.token ?? '');
        const audiences = (spec.audiences ?? []).filter((a) => !id?.audiences || id.audiences.includes(a));
        const ok = id !== undefined && (spec.audiences === undefined || audiences.length > 0);
        return send(201, { kind: 'TokenReview', status: ok ? { authenticated: true, user: { username: id.username, extra: id.extra ?? {} }, audiences } : { authenticated: false, error: 'invalid bearer token' } });
      }
      const ev = /^\/api\/v1\/namespaces\/([^/]+)\/events$/.exec(p);
      if (req.method === 'POST' && ev) {
        this.events.push(body ?? {});
        return send(201, body);
      }
      const st = /^(\/apis?\/.+?)\/namespaces\/([^/]+)\/([^/]+)\/([^/]+)\/status$/.exec(p);
      if ((req.method === 'PATCH' || req.method === 'PUT') && st) {
        const [, prefix = '', ns = '', plural = '', name = ''] = st;
        const col = `${prefix}/${plural}`;
        const cur = this.#collections.get(col)?.items.get(`${ns}/${name}`) as (KubeObject & { status?: Record<string, unknown> }) | undefined;
        if (!cur) return send(404, { kind: 'Status', code: 404, message: `${plural} "${name}" not found` });
        const sentRv = (body?.metadata as { resourceVersion?: string } | undefined)?.resourceVersion;
        if (req.method === 'PUT' && sentRv !== cur.metadata.resourceVersion) {
          return send(409, { kind: 'Status', code: 409, reason: 'Conflict', message: `the object has been modified (resourceVersion ${sentRv ?? 'missing'} != ${cur.metadata.resourceVersion})` });
        }
        this.statusPatches.push({ path: p, body });
        const next = structuredClone(cur);
        next.status = { ...(cur.status ?? {}), ...((body?.status as Record<string, unknown>) ?? {}) };
        next.metadata.resourceVersion = String(++this.#rv);
        this.#col(col).items.set(`${ns}/${name}`, next);
        this.#emit(col, 'MODIFIED', next);
        return send(200, next);
      }
      const c = this.#collections.get(p);
      if (req.method !== 'GET' || !c) return send(404, { kind: 'Status', code: 404, message: `no route ${req.method} ${p}` });
      if (url.searchParams.get('watch') === 'true') return this.#watch(c, url, res);
      const items = [...c.items.values()].sort((a, b) => objectKey(a).localeCompare(objectKey(b)));
      const limit = Number(url.searchParams.get('limit') ?? 0) || items.length;
      const from = Number(url.searchParams.get('continue') ?? 0);
      const page = items.slice(from, from + limit);
      const next = from + limit < items.length ? String(from + limit) : undefined;
      send(200, { kind: 'List', metadata: { resourceVersion: String(this.#rv), ...(next ? { continue: next } : {}) }, items: page });
    });
  }

  #watch(c: Collection, url: URL, res: http.ServerResponse): void {
    const rv = url.searchParams.get('resourceVersion') ?? '';
    const gone = { kind: 'Status', apiVersion: 'v1', status: 'Failure', code: 410, reason: 'Expired', message: `too old resource version: ${rv} (${this.#oldest})` };
    if (rv !== '' && rv !== '0' && Number(rv) < this.#oldest) {
      if (this.goneAsHttpStatus) {
        res.writeHead(410, { 'content-type': 'application/json' });
        return void res.end(JSON.stringify(gone));
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      return void res.end(JSON.stringify({ type: 'ERROR', object: gone }) + '\n');
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    if (rv === '' || rv === '0') for (const o of c.items.values()) res.write(JSON.stringify({ type: 'ADDED', object: o }) + '\n');
    else for (const e of c.history) if (e.rv > Number(rv)) res.write(JSON.stringify({ type: e.type, object: e.obj }) + '\n');
    if (this.endWatchesAtOnce) return void res.end();
    const w: Watcher = { res, bookmarks: url.searchParams.get('allowWatchBookmarks') === 'true' };
    c.watchers.add(w);
    const timeout = Number(url.searchParams.get('timeoutSeconds') ?? 0);
    const timer = timeout > 0 ? setTimeout(() => res.end(), timeout * 1000) : undefined;
    res.on('close', () => {
      if (timer) clearTimeout(timer);
      c.watchers.delete(w);
    });
  }
}
