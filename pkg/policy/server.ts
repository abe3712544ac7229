// The controller's policy routes, as one self-contained fastify plugin:
//   GET  /v1/policy/watch   NDJSON stream of Snapshot lines for the calling pod; the pod
//                           proves who it is with its projected service-account token
//                           (audience "weft"), checked by TokenReview.
//   POST /validate          validating admission webhook for AuthorizationPolicy.
// Defaults: with a cluster (in a pod, or $KUBECONFIG) the plugin starts its own watches
// into a PolicyStore, reviews tokens with the API server and writes policy status; without
// one it serves an empty store and answers every watch with 401 (no way to check tokens),
// while /validate works the same. Tests pass `store` and `tokenReviewer`.
import type { FastifyPluginAsync } from 'fastify';
import { parsePolicy } from '../api/policy.js';
import { isWeftError } from '../errors/index.js';
import { defaultKubeHttp, type KubeHttp } from '../k8s/client.js';
import { POD_NAME_EXTRA, reviewToken, tokenExpiry, type TokenReviewResult } from '../k8s/token-review.js';
import type { Logger } from '../log/index.js';
import { policyControllerMetrics } from '../metrics/policy.js';
import type { Registry } from '../metrics/registry.js';
import { startPolicyController } from './controller.js';
import { PolicyStore } from './store.js';

export const POLICY_AUDIENCE = 'weft';
/** setTimeout's limit (~24.8 days); a longer-lived token is re-reviewed then. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export interface TokenReviewer {
  review(token: string, audiences: string[]): Promise<TokenReviewResult>;
}

export interface PolicyPluginOptions {
  store?: PolicyStore;
  tokenReviewer?: TokenReviewer;
  /** The API client; `null`: no cluster even if one is detected. Default: detected. */
  kube?: KubeHttp | null;
  registry?: Registry;
  logger?: Logger;
  audience?: string;
  /** An empty line this often keeps idle streams (and proxies' staleness) alive. */
  keepaliveMs?: number;
}

const noCluster: TokenReviewer = {
  review: async () => ({ authenticated: false, error: 'this controller has no Kubernetes API to review tokens with' }),
};

function defaultKube(log: Logger): KubeHttp | null {
  return defaultKubeHttp((err) => log.warn({ err }, 'cannot load Kubernetes credentials; policy server runs without a cluster'));
}

export const policyPlugin: FastifyPluginAsync<PolicyPluginOptions> = async (app, opts) => {
  const log = (opts.logger ?? app.log) as Logger;
  const metrics = policyControllerMetrics(opts.registry);
  const audience = opts.audience ?? POLICY_AUDIENCE;
  const kube = opts.kube === undefined ? (opts.store ? null : defaultKube(log)) : opts.kube;
  const store = opts.store ?? new PolicyStore();
  const reviewer: TokenReviewer = opts.tokenReviewer ?? (kube ? { review: (token, aud) => reviewToken(kube, token, aud) } : noCluster);
  const streams = new Set<() => void>();

  if (kube && !opts.store) {
    const controller = startPolicyController({ http: kube, store, log, metrics });
    app.addHook('onClose', () => controller.stop());
  }
  app.addHook('preClose', async () => {
    for (const end of [...streams]) end();
  });

  app.get('/v1/policy/watch', async (req, reply) => {
    const fail = (code: 401 | 403 | 503, message: string) => {
      req.log.warn({ status: code, ip: req.ip }, `policy watch refused: ${message}`);
      return reply.code(code).send({ error: code === 401 ? 'Unauthorized' : code === 403 ? 'Forbidden' : 'Service Unavailable', message });
    };
    const m = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
    if (!m?.[1]) return fail(401, `a bearer token is required: the pod's projected service-account token with audience "${audience}"`);
    let who: TokenReviewResult;
    try {
      who = await reviewer.review(m[1], [audience]);
    } catch (e) {
      return fail(503, `cannot review the token: ${(e as Error).message}`);
    }
    if (!who.authenticated) return fail(401, `invalid token${who.error ? `: ${who.error}` : ''}`);
    if (who.audiences && !who.audiences.includes(audience)) return fail(401, `token audience must include "${audience}"`);
    const sa = /^system:serviceaccount:([^:]+):([^:]+)$/.exec(who.username ?? '');
    const podName = who.extra?.[POD_NAME_EXTRA]?.[0];
    if (!sa || !podName) return fail(403, 'the token must be a service-account token bound to a pod (projected token)');
    const [, namespace = '', serviceAccount = ''] = sa;
    const q = req.query as { namespace?: string; pod?: string };
    if ((q.namespace && q.namespace !== namespace) || (q.pod && q.pod !== podName)) {
      return fail(403, `a pod can only subscribe as itself: the token is for ${namespace}/${podName}, not ${q.namespace ?? namespace}/${q.pod ?? podName}`);
    }
    const known = store.pod(namespace, podName);
    if (known && known.serviceAccount !== serviceAccount) return fail(403, `pod ${namespace}/${podName} runs as service account ${known.serviceAccount}, not ${serviceAccount}`);

    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' });
    let last = '';
    const send = () => {
      const pod = store.pod(namespace, podName);
      if (pod && pod.serviceAccount !== serviceAccount) return end();
      const snap = store.snapshotFor(namespace, podName);
      if (!snap) return;
      const same = JSON.stringify({ ...snap, version: 0 });
      if (same === last) return;
      last = same;
      res.write(JSON.stringify(snap) + '\n');
    };
    const keepalive = setInterval(() => res.write('\n'), opts.keepaliveMs ?? 15_000);
    // The TokenReview answer holds while the token does: end the stream when it expires, so
    // the proxy reconnects with the kubelet's fresh token and is reviewed again.
    const exp = tokenExpiry(m[1]);
    const expiry = exp === undefined ? undefined : setTimeout(() => {
      req.log.info({ ns: namespace, pod: podName }, 'policy watch token expired; ending the stream (the proxy reconnects with a fresh token)');
      end();
    }, Math.min(MAX_TIMER_MS, Math.max(1000, exp - Date.now())));
    const unsubscribe = store.subscribe(send);
    let ended = false;
    function end() {
      if (ended) return;
      ended = true;
      clearInterval(keepalive);
      clearTimeout(expiry);
      unsubscribe();
      streams.delete(end);
      metrics.streams.dec();
      res.end();
    }
    streams.add(end);
    metrics.streams.inc();
    res.on('close', end);
    req.log.info({ ns: namespace, pod: podName }, 'policy watch opened');
    send();
  });

  app.post('/validate', async (req, reply) => {
    const review = req.body as { apiVersion?: string; kind?: string; request?: { uid?: string; operation?: string; namespace?: string; object?: unknown } } | undefined;
    const r = review?.request;
    if (review?.kind !== 'AdmissionReview' || typeof r?.uid !== 'string') {
      return reply.code(400).send({ error: 'Bad Request', message: 'expected an admission.k8s.io/v1 AdmissionReview with request.uid' });
    }
    const response: { uid: string; allowed: boolean; status?: { code: number; reason: string; message: string } } = { uid: r.uid, allowed: true };
    if (r.operation !== 'DELETE' && r.operation !== 'CONNECT') {
      try {
        // The request's namespace is the object's (the API server may not have filled
        // metadata.namespace yet); a bare service account name resolves against it.
        parsePolicy(r.object, typeof r.namespace === 'string' && r.namespace ? r.namespace : 'default');
      } catch (e) {
        if (!isWeftError(e)) throw e;
        response.allowed = false;
        response.status = { code: 422, reason: 'Invalid', message: e.message };
      }
    }
    metrics.validation(response.allowed);
    return { apiVersion: review.apiVersion ?? 'admission.k8s.io/v1', kind: 'AdmissionReview', response };
  });
};
