// The Kubernetes API over plain node http/https, authenticated by @kubernetes/client-node's
// KubeConfig (in-cluster service account, kubeconfig files, exec plugins, client certs).
// We speak the REST protocol ourselves so list/watch can handle resourceVersion, bookmarks,
// 410 Gone and reconnects exactly, and so tests can point it at a plain-http test server.
import { KubeConfig } from '@kubernetes/client-node';
import http from 'node:http';
import https from 'node:https';
import { ErrorCodes, WeftError } from '../errors/index.js';

export interface KubeResponse<T = unknown> {
  status: number;
  body: T;
}

export interface KubeStream {
  status: number;
  /** Present when status is 200: the chunked body, utf8. */
  stream: http.IncomingMessage;
}

export interface RequestOptions {
  body?: unknown;
  contentType?: string;
  signal?: AbortSignal;
}

export class KubeHttp {
  readonly #kc: KubeConfig;
  readonly server: URL;

  constructor(kc: KubeConfig) {
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new WeftError(ErrorCodes.BAD_CONFIG, 'kubeconfig has no current cluster', { field: 'kubeconfig' });
    this.#kc = kc;
    this.server = new URL(cluster.server);
  }

  async #open(method: string, path: string, opts: RequestOptions): Promise<http.IncomingMessage> {
    const url = new URL(path, this.server);
    const o: https.RequestOptions = { method, headers: { accept: 'application/json' } };
    await this.#kc.applyToHTTPSOptions(o);
    const plain = url.protocol === 'http:';
    if (plain) delete o.agent;
    const payload = opts.body === undefined ? undefined : Buffer.from(JSON.stringify(opts.body));
    if (payload) o.headers = { ...o.headers, 'content-type': opts.contentType ?? 'application/json', 'content-length': payload.length };
    if (opts.signal) o.signal = opts.signal;
    return new Promise((resolve, reject) => {
      const req = (plain ? http : https).request(url, o, resolve);
      req.on('error', reject);
      req.end(payload);
    });
  }

  /** One request with a JSON body in and out. Non-2xx statuses are returned, not thrown. */
  async request<T = unknown>(method: string, path: string, opts: RequestOptions = {}): Promise<KubeResponse<T>> {
    const res = await this.#open(method, path, opts);
    const chunks: Buffer[] = [];
    for await (const c of res) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    let body: unknown = text;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      // Not JSON (a proxy's error page): keep the text for the error message.
    }
    return { status: res.statusCode ?? 0, body: body as T };
  }

  /** A streaming GET (watch). The caller consumes or destroys the stream. */
  async stream(path: string, signal?: AbortSignal): Promise<KubeStream> {
    const res = await this.#open('GET', path, signal ? { signal } : {});
    res.setEncoding('utf8');
    return { status: res.statusCode ?? 0, stream: res };
  }
}

/** `file` (a kubeconfig); else in a pod: the service account; elsewhere: $KUBECONFIG or ~/.kube/config. */
export function loadKubeHttp(file?: string): KubeHttp {
  const kc = new KubeConfig();
  if (file === undefined) kc.loadFromDefault();
  else {
    try {
      kc.loadFromFile(file);
    } catch (e) {
      throw new WeftError(ErrorCodes.BAD_CONFIG, `--kubeconfig ${file}: ${(e as Error).message}`, { field: '--kubeconfig', cause: e });
    }
  }
  return new KubeHttp(kc);
}

/** True when there is a cluster to talk to (in a pod, or a kubeconfig is named). */
export function clusterAvailable(env: NodeJS.ProcessEnv = process.env): boolean {
  return Boolean(env.KUBERNETES_SERVICE_HOST || env.KUBECONFIG);
}

/**
 * The default client when there is a cluster, else null. Credentials that fail to load are
 * reported through `onError` and also give null: running without a cluster is a supported
 * mode (Events logged, no policy watch), a crash loop is not.
 */
export function defaultKubeHttp(onError: (message: string) => void): KubeHttp | null {
  if (!clusterAvailable()) return null;
  try {
    return loadKubeHttp();
  } catch (e) {
    onError((e as Error).message);
    return null;
  }
}

/** A client for one server URL and bearer token (tests, and tools given a URL). */
export function kubeHttpFor(server: string, token = 'test-token'): KubeHttp {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server, skipTLSVerify: true }],
    users: [{ name: 'u', token }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  return new KubeHttp(kc);
}

/** `Status` failure text from an API response body. */
export function statusMessage(r: KubeResponse): string {
  const b = r.body as { message?: unknown } | string | undefined;
  if (typeof b === 'string') return `HTTP ${r.status}: ${b.slice(0, 200)}`;
  return `HTTP ${r.status}${typeof b?.message === 'string' ? `: ${b.message}` : ''}`;
}
