// `weft proxy --controller URL`: the pod's policy from the controller's NDJSON stream
// (GET /v1/policy/watch). The token is re-read from tokenPath at every connect (kubelet
// rotates projected tokens), and so is the CA (`ca`), so a rotated bundle is picked up. The
// last good snapshot stays in force while disconnected; reconnects back off from 250 ms to
// 10 s with jitter. The controller sends a keepalive line every 15 s: a stream silent for
// `idleTimeoutMs` (3 keepalives) is presumed half-open (a node or NAT dropped it without a
// FIN) and is torn down and reconnected. Until the first snapshot arrives, the pod's
// default-inbound policy applies; the returned promise resolves at the first snapshot or
// after `initialWaitMs`, whichever is first, so a controller outage does not keep the proxy
// from starting.
import { readFile } from 'node:fs/promises';
import type { Logger } from '../log/index.js';
import { policySourceMetrics } from '../metrics/policy.js';
import type { Registry } from '../metrics/registry.js';
import { mapResolver } from './eval.js';
import { LiveAuthorizer, normalizeSelf, type PolicySource, type SourceSelf } from './live.js';
import { openStream, tlsHint, type CaLoader } from './stream-client.js';
import type { Snapshot } from './store.js';

/** The controller's keepalive period (server.ts) times three. */
export const DEFAULT_IDLE_TIMEOUT_MS = 45_000;

export interface ControllerSourceOptions {
  registry?: Registry;
  initialWaitMs?: number;
  backoffMs?: { initial: number; max: number };
  /** The CA bundle (PEM) that must have signed the controller's certificate, or a loader
   * called at each connect; absent: the system CAs. Only used for https:// URLs. */
  ca?: string | CaLoader;
  /** No byte (snapshot or keepalive) for this long: reconnect. Default 45 s. */
  idleTimeoutMs?: number;
}

type Outcome = 'ok' | 'auth' | 'error';

export async function subscribePolicy(url: string, tokenPath: string, pod: SourceSelf, log: Logger, opts: ControllerSourceOptions = {}): Promise<PolicySource> {
  const self = normalizeSelf(pod);
  const metrics = policySourceMetrics(opts.registry);
  // Visible from the first scrape: a proxy that never reached the controller is stale since start.
  metrics.started('controller');
  const live = new LiveAuthorizer(self.defaultInbound);
  const abort = new AbortController();
  const { initial, max } = opts.backoffMs ?? { initial: 250, max: 10_000 };
  const idleMs = opts.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
  const loadCa: CaLoader = typeof opts.ca === 'function' ? opts.ca : async () => opts.ca as string | undefined;
  let first!: () => void;
  const gotFirst = new Promise<void>((r) => (first = r));
  let lastVersion = -1;

  const apply = (line: string) => {
    let snap: Snapshot;
    try {
      snap = JSON.parse(line) as Snapshot;
      if (!Array.isArray(snap.policies) || typeof snap.peers !== 'object') throw new Error('not a policy snapshot');
      live.set(snap.policies, snap.defaultInbound ?? self.defaultInbound, mapResolver(snap.peers ?? {}));
    } catch (e) {
      metrics.update('controller', false);
      log.error({ err: (e as Error).message, code: 'WEFT_ERR_BAD_POLICY' }, 'bad policy snapshot from the controller; keeping the last good policy');
      return;
    }
    lastVersion = snap.version;
    metrics.update('controller', true, snap.policies.length);
    log.info({ version: snap.version, policies: snap.policies.map((p) => p.ref) }, 'policy snapshot applied');
    first();
  };

  const connect = async (): Promise<Outcome> => {
    const token = (await readFile(tokenPath, 'utf8')).trim();
    // Only what the pod knows for sure: the controller takes its identity from the token.
    const q = new URLSearchParams({ ...(pod.namespace ? { namespace: pod.namespace } : {}), ...(pod.name ? { pod: pod.name } : {}) });
    const target = new URL(`/v1/policy/watch?${q}`, url);
    const ca = target.protocol === 'https:' ? await loadCa() : undefined;
    const res = await openStream(target, { authorization: `Bearer ${token}`, accept: 'application/x-ndjson' }, abort.signal, ca);
    const status = res.statusCode ?? 0;
    if (status !== 200) {
      let body = '';
      for await (const c of res) if (body.length < 300) body += String(c);
      if (status === 401 || status === 403) {
        log.error({ status, body: body.slice(0, 300) }, "the controller refused this pod's policy watch");
        return 'auth';
      }
      log.warn({ status, body: body.slice(0, 300) }, 'policy watch failed');
      return 'error';
    }
    metrics.connected('controller', true);
    res.setEncoding('utf8');
    let buf = '';
    let gotData = false;
    // A read deadline: every byte re-arms it; silence past it destroys the stream.
    let idle: NodeJS.Timeout | undefined;
    const arm = () => {
      clearTimeout(idle);
      idle = setTimeout(() => res.destroy(new Error(`no data from the controller for ${idleMs} ms (it sends a keepalive every 15 s): connection presumed dead`)), idleMs);
    };
    arm();
    try {
      for await (const chunk of res) {
        arm();
        buf += chunk as string;
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          gotData = true;
          metrics.fresh('controller');
          if (line) apply(line);
        }
      }
    } finally {
      clearTimeout(idle);
    }
    return gotData ? 'ok' : 'error';
  };

  const loop = (async () => {
    let delay = initial;
    while (!abort.signal.aborted) {
      let result: Outcome;
      try {
        result = await connect();
      } catch (e) {
        if (abort.signal.aborted) break;
        const err = e as NodeJS.ErrnoException;
        const hint = tlsHint(err, target(url), opts.ca !== undefined);
        if (hint) log.error({ err: err.message, tls: err.code, url }, hint);
        else log.warn({ err: err.message, url }, 'policy watch connection failed');
        result = 'error';
      }
      metrics.connected('controller', false);
      if (abort.signal.aborted) break;
      delay = result === 'ok' ? initial : Math.min(max, delay * 2);
      const wait = Math.round(delay * (0.5 + Math.random() / 2));
      log.info({ retryMs: wait, lastVersion }, 'policy watch disconnected; keeping the last good policy and reconnecting');
      await new Promise<void>((r) => {
        const t = setTimeout(r, wait);
        abort.signal.addEventListener('abort', () => (clearTimeout(t), r()), { once: true });
      });
    }
  })();

  await Promise.race([gotFirst, new Promise<void>((r) => setTimeout(r, opts.initialWaitMs ?? 5000).unref())]);
  return {
    authorizer: live,
    async close() {
      abort.abort();
      await loop;
    },
  };
}

const target = (url: string): string => {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
};
