// The policy side of `weft controller`, run as a sandbox pod for the e2e tests: the real
// policy plugin (startPolicyController's list/watch, TokenReview, GET /v1/policy/watch over
// HTTPS) against the test API server (pkg/k8s/testserver.ts), which plays the cluster.
// No API server can run here, so the test feeds the "cluster" through a file in the pod's
// directory:
//   <dir>/tls.crt, <dir>/tls.key   serving certificate (waited for at start)
//   <dir>/feed.json                {pods, namespaces, policies, tokens}: the objects that
//                                  exist (each put as ADDED/MODIFIED, the rest DELETED) and
//                                  the tokens TokenReview accepts; re-read when it changes.
// Usage: node controller-pod.js <dir> <port>
import Fastify from 'fastify';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { kubeHttpFor } from '../../pkg/k8s/client.js';
import { TestApiServer, type TokenIdentity } from '../../pkg/k8s/testserver.js';
import { objectKey, type KubeObject } from '../../pkg/k8s/watch.js';
import { createLogger } from '../../pkg/log/index.js';
import { NAMESPACES_PATH, PODS_PATH, POLICIES_PATH } from '../../pkg/policy/controller.js';
import { policyPlugin } from '../../pkg/policy/server.js';

export interface Feed {
  pods: KubeObject[];
  namespaces: KubeObject[];
  policies: KubeObject[];
  tokens: Record<string, TokenIdentity>;
}

const [dir = '.', port = '9443'] = process.argv.slice(2);
const log = createLogger('controller', 'info');

async function main(): Promise<void> {
  while (!existsSync(join(dir, 'tls.key'))) await new Promise((r) => setTimeout(r, 50));
  const api = new TestApiServer([PODS_PATH, NAMESPACES_PATH, POLICIES_PATH]);
  await api.start();
  let last = '';
  const sync = () => {
    let text: string;
    try {
      text = readFileSync(join(dir, 'feed.json'), 'utf8');
    } catch {
      return;
    }
    if (text === last) return;
    last = text;
    const feed = JSON.parse(text) as Feed;
    api.tokens.clear();
    for (const [token, id] of Object.entries(feed.tokens)) api.tokens.set(token, id);
    for (const [path, items] of [[PODS_PATH, feed.pods], [NAMESPACES_PATH, feed.namespaces], [POLICIES_PATH, feed.policies]] as const) {
      const want = new Map(items.map((o) => [objectKey(o), o]));
      for (const [key, o] of want) if (changed(api.get(path, key), o)) api.put(path, o);
      for (const key of api.keys(path)) if (!want.has(key)) api.remove(path, key);
    }
    log.info({ pods: feed.pods.length, policies: feed.policies.length }, 'feed applied');
  };
  sync();
  setInterval(sync, 50);
  const app = Fastify({ https: { cert: readFileSync(join(dir, 'tls.crt')), key: readFileSync(join(dir, 'tls.key')) }, loggerInstance: log });
  await app.register(policyPlugin, { kube: kubeHttpFor(api.url), logger: log });
  await app.listen({ port: Number(port), host: '::' });
  log.info({ port }, 'policy controller serving');
}

/** What the feed can change: labels, annotations, spec, status. */
function changed(cur: KubeObject | undefined, next: KubeObject): boolean {
  if (!cur) return true;
  const view = (o: KubeObject) => {
    const x = o as KubeObject & { spec?: unknown; status?: unknown };
    return JSON.stringify([x.metadata.labels, x.metadata.annotations, x.spec, x.status]);
  };
  return view(cur) !== view(next);
}

main().catch((e: unknown) => {
  log.error({ err: (e as Error).message }, 'controller pod failed');
  process.exit(1);
});
