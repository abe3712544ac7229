// Webhook certificates survive `helm upgrade`: the real helm renders against a small fake
// API server (discovery plus the one Secret) with --dry-run=server, which runs the chart's
// `lookup` as an upgrade would. The existing Secret must be reused byte for byte and its CA
// must stay the caBundle; a missing or incomplete Secret gets fresh certificates.
import t from 'tap';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { chartDir, helmPath, renderChart } from './helm.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any;
const NS = 'weft-system';
const SECRET = 'weft-webhook-tls';

const resource = (name: string, kind: string, namespaced: boolean) => ({ name, singularName: kind.toLowerCase(), namespaced, kind, verbs: ['get', 'list', 'create', 'update'] });
const GROUPS: Record<string, ReturnType<typeof resource>[]> = {
  'apps/v1': [resource('deployments', 'Deployment', true)],
  'policy/v1': [resource('poddisruptionbudgets', 'PodDisruptionBudget', true)],
  'rbac.authorization.k8s.io/v1': [resource('clusterroles', 'ClusterRole', false), resource('clusterrolebindings', 'ClusterRoleBinding', false)],
  'admissionregistration.k8s.io/v1': [resource('mutatingwebhookconfigurations', 'MutatingWebhookConfiguration', false), resource('validatingwebhookconfigurations', 'ValidatingWebhookConfiguration', false)],
};

/** Just enough of kube-apiserver for helm: version, discovery, and GET of one Secret. */
function fakeApiServer(secret: object | undefined): Promise<{ server: Server; url: string }> {
  const routes: Record<string, unknown> = {
    '/version': { major: '1', minor: '30', gitVersion: 'v1.30.0', platform: 'linux/amd64' },
    '/api': { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [] },
    '/apis': {
      kind: 'APIGroupList',
      apiVersion: 'v1',
      groups: Object.keys(GROUPS).map((gv) => {
        const [name, version] = gv.split('/') as [string, string];
        return { name, versions: [{ groupVersion: gv, version }], preferredVersion: { groupVersion: gv, version } };
      }),
    },
    '/api/v1': { kind: 'APIResourceList', groupVersion: 'v1', resources: [resource('secrets', 'Secret', true), resource('serviceaccounts', 'ServiceAccount', true), resource('configmaps', 'ConfigMap', true), resource('services', 'Service', true)] },
  };
  for (const [gv, resources] of Object.entries(GROUPS)) routes[`/apis/${gv}`] = { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: gv, resources };
  if (secret) routes[`/api/v1/namespaces/${NS}/secrets/${SECRET}`] = secret;
  const server = createServer((req, res) => {
    const body = routes[(req.url ?? '').split('?')[0] ?? ''];
    res.writeHead(body ? 200 : 404, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body ?? { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'NotFound', code: 404 }));
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, url: `http://127.0.0.1:${(server.address() as { port: number }).port}` })));
}

/** helm template --dry-run=server against the fake cluster (async: the server shares our loop). */
async function renderAgainst(secret: object | undefined, dir: string): Promise<Any[]> {
  const { server, url } = await fakeApiServer(secret);
  try {
    const kubeconfig = join(dir, 'kubeconfig');
    writeFileSync(kubeconfig, JSON.stringify({ apiVersion: 'v1', kind: 'Config', clusters: [{ name: 'fake', cluster: { server: url } }], users: [{ name: 'u', user: { token: 'x' } }], contexts: [{ name: 'c', context: { cluster: 'fake', user: 'u', namespace: NS } }], 'current-context': 'c' }));
    const child = spawn(helmPath(), ['template', 'weft', chartDir, '-n', NS, '--dry-run=server', '--disable-openapi-validation'], {
      env: { ...process.env, KUBECONFIG: kubeconfig, HELM_CONFIG_HOME: join(dir, 'helm'), HELM_CACHE_HOME: join(dir, 'helm'), HELM_DATA_HOME: join(dir, 'helm') },
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((r) => child.on('close', r));
    if (code !== 0) throw new Error(`helm failed: ${err}`);
    return parseAllDocuments(out).map((d) => d.toJS() as Any).filter(Boolean);
  } finally {
    server.close();
  }
}

const caBundles = (objs: Any[]): string[] =>
  objs.filter((o) => o.kind.endsWith('WebhookConfiguration')).flatMap((o) => o.webhooks.map((w: Any) => w.clientConfig.caBundle as string));

let skip: string | false = false;
try {
  helmPath();
} catch (e) {
  skip = `helm unavailable: ${(e as Error).message}`;
}

t.test('helm upgrade keeps the webhook certificates; a missing or broken Secret is regenerated', { skip }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'weft-upgrade-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));

  // "helm install": the Secret as the first release created it, now in the cluster.
  const installed = parseAllDocuments(renderChart({ namespace: NS })).map((d) => d.toJS() as Any).find((o) => o?.kind === 'Secret');
  const inCluster = {
    ...installed,
    metadata: { ...installed.metadata, labels: { ...installed.metadata.labels, 'app.kubernetes.io/managed-by': 'Helm' }, annotations: { 'meta.helm.sh/release-name': 'weft', 'meta.helm.sh/release-namespace': NS } },
  };

  const upgraded = await renderAgainst(inCluster, dir);
  const secret = upgraded.find((o) => o.kind === 'Secret');
  t.same(secret.data, installed.data, 'ca.crt, tls.crt and tls.key are reused unchanged');
  t.same(new Set(caBundles(upgraded)), new Set([installed.data['ca.crt']]), 'every webhook keeps trusting the same CA');

  const fresh = await renderAgainst(undefined, dir);
  const freshSecret = fresh.find((o) => o.kind === 'Secret');
  t.not(freshSecret.data['ca.crt'], installed.data['ca.crt'], 'no Secret in the cluster: a new CA is made');
  t.same(new Set(caBundles(fresh)), new Set([freshSecret.data['ca.crt']]));

  const broken = { ...inCluster, data: { 'ca.crt': installed.data['ca.crt'] } };
  const repaired = (await renderAgainst(broken, dir)).find((o) => o.kind === 'Secret');
  t.ok(repaired.data['tls.key'] && repaired.data['ca.crt'] !== installed.data['ca.crt'], 'a Secret without its key pair is replaced, not half-reused');
});
