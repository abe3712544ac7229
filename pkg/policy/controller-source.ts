// `weft proxy --controller URL`: the pod's policy from the controller's NDJSON stream
// (GET /v1/policy/watch). The token is re-read from tokenPath at every connect (kubelet
// rotates projected tokens). The last good snapshot stays in force while disconnected;
// reconnects back off from 250 ms to 10 s with jitter. Until the first snapshot arrives,
// the pod's default-inbound policy applies; the returned promise resolves at the first
// snapshot or after `initialWaitMs`, whichever is first, so a controller outage does not
// keep the proxy from starting.
import { readFile } from 'node:fs/promises';
import type { Logger } from '../log/index.js';
import { policySourceMetrics } from '../metrics/policy.js';
import type { Registry } from '../metrics/registry.js';
import { mapResolver } from './eval.js';
import { LiveAuthorizer, normalizeSelf, type PolicySource, type SourceSelf } from './live.js';
import type { Snapshot } from './store.js';

export interface ControllerSourceOptions {
  registry?: Registry;
  initialWaitMs?: number;
  backoffMs?: { initial: number; max: number };
}

export async function subscribePolicy(url: string, tokenPath: string, pod: SourceSelf, log: Logger, opts: ControllerSourceOptions = {}): Promise<PolicySource> {
  const self = normalizeSelf(pod);
  const metrics = policySourceMetrics(opts.registry);
  const live = new LiveAuthorizer(self.defaultInbound);
  const abort = new AbortController();
  const { initial, max } = opts.backoffMs ?? { initial: 250, max: 10_000 };
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

  const connect = async (): Promise<'ok' | 'auth' | 'error'> => {
    const token = (await readFile(tokenPath, 'utf8')).trim();
    // Only what the pod knows for sure: the controller takes its identity from the token.
    const q = new URLSearchParams({ ...(pod.namespace ? { namespace: pod.namespace } : {}), ...(pod.name ? { pod: pod.name } : {}) });
    const res = await fetch(new URL(`/v1/policy/watch?${q}`, url), { headers: { authorization: `Bearer ${token}`, accept: 'application/x-ndjson' }, signal: abort.signal });
    if (res.status === 401 || res.status === 403) {
      log.error({ status: res.status, body: (await res.text()).slice(0, 300) }, 'the controller refused this pod\'s policy watch');
      return 'auth';
    }
    if (res.status !== 200 || !res.body) {
      log.warn({ status: res.status }, 'policy watch failed');
      await res.body?.cancel();
      return 'error';
    }
    metrics.connected('controller', true);
    const decoder = new TextDecoder();
    let buf = '';
    let gotData = false;
    for await (const chunk of res.body) {
      buf += decoder.decode(chunk as Uint8Array, { stream: true });
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        gotData = true;
        metrics.fresh('controller');
        if (line) apply(line);
      }
    }
    return gotData ? 'ok' : 'error';
  };

  const loop = (async () => {
    let delay = initial;
    while (!abort.signal.aborted) {
      let result: 'ok' | 'auth' | 'error';
      try {
        result = await connect();
      } catch (e) {
        if (abort.signal.aborted) break;
        log.warn({ err: (e as Error).message, url }, 'policy watch connection failed');
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
