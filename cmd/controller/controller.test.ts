// `weft controller` as a process: serves the webhook over HTTPS and the admin port, and on
// SIGTERM stops being ready, finishes and exits 0.
import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import { SKIP_SENTENCES } from '../../pkg/inject/index.js';
import { TestApiServer } from '../../pkg/k8s/testserver.js';
import { deploymentPod, haveOpenssl, makeCert, podReview, post, tempDir } from '../../pkg/webhook/test-helpers.js';

const weft = fileURLToPath(new URL('../main.js', import.meta.url));
// dist/cmd/main.js is what bin/weft imports: the test runner's loader hooks, which it adds to
// child processes, cannot load the extension-less bin/weft. NODE_OPTIONS is dropped too.
const env: NodeJS.ProcessEnv = { ...process.env, NODE_OPTIONS: '' };
// The first test runs without a cluster, whatever the machine's environment says.
delete env.KUBERNETES_SERVICE_HOST;
delete env.KUBECONFIG;

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

async function until<T>(f: () => Promise<T | undefined>, ms: number): Promise<T | undefined> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const v = await f().catch(() => undefined);
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
  return undefined;
}

/** A temporary directory with tls.crt and tls.key for one test, removed after it. */
function certDir(t: Test, name: string): { dir: string; pair: { cert: string; key: string } } {
  const dir = tempDir(name);
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const pair = makeCert(dir, 'ctl');
  writeFileSync(join(dir, 'tls.crt'), pair.cert);
  writeFileSync(join(dir, 'tls.key'), pair.key);
  return { dir, pair };
}

interface Running {
  port: number;
  adminPort: number;
  child: ChildProcess;
  exited: Promise<number | null>;
  stderr: () => string;
}

/** `weft controller` with the test cert and `extra` flags, once /readyz answers 200. */
async function startController(t: Test, dir: string, extra: string[]): Promise<Running> {
  const [port, adminPort] = [await freePort(), await freePort()];
  const args = [weft, 'controller', '--tls-cert', join(dir, 'tls.crt'), '--tls-key', join(dir, 'tls.key'), '--port', String(port), '--admin-port', String(adminPort), '--address', '127.0.0.1', ...extra];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'], env });
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  t.teardown(() => child.kill('SIGKILL'));
  t.ok(await until(async () => ((await fetch(`http://127.0.0.1:${adminPort}/readyz`)).status === 200 ? true : undefined), 15_000), `ready (stderr: ${stderr.slice(0, 500)})`);
  return { port, adminPort, child, exited, stderr: () => stderr };
}

if (!haveOpenssl()) {
  t.test('weft controller', { skip: 'openssl CLI not found: cannot make a test certificate' }, async () => {});
} else {
  t.test('serves, then shuts down gracefully on SIGTERM', async (t) => {
    const { dir, pair } = certDir(t, 'ctl');
    writeFileSync(join(dir, 'values.yaml'), 'proxy: {logLevel: debug}\n');
    const [port, adminPort] = [await freePort(), await freePort()];
    const child = spawn(process.execPath, [weft, 'controller', '--tls-cert', join(dir, 'tls.crt'), '--tls-key', join(dir, 'tls.key'), '--port', String(port), '--admin-port', String(adminPort), '--address', '127.0.0.1', '--values', join(dir, 'values.yaml'), '--namespace', 'weft-system'], { stdio: ['ignore', 'ignore', 'pipe'], env });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    t.teardown(() => child.kill('SIGKILL'));

    const ready = await until(async () => ((await fetch(`http://127.0.0.1:${adminPort}/readyz`)).status === 200 ? true : undefined), 15_000);
    t.ok(ready, `admin /readyz answers 200 (stderr: ${stderr.slice(0, 500)})`);
    const res = await post(port, '/inject', JSON.stringify(podReview('p1', deploymentPod())), { ca: pair.cert });
    t.equal(res.status, 200);
    const patch = JSON.parse(Buffer.from((JSON.parse(res.body) as { response: { patch: string } }).response.patch, 'base64').toString()) as unknown[];
    t.match(JSON.stringify(patch), /--log-level","debug"/, 'the values file is used');
    const own = await post(port, '/inject', JSON.stringify(podReview('p2', deploymentPod('weft-system'), 'weft-system')), { ca: pair.cert });
    t.same(JSON.parse(own.body).response, { uid: 'p2', allowed: true }, 'its own namespace is skipped');
    t.match(await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text(), /weft_injector_admission_reviews_total\{result="skipped",reason="controller-namespace"\} 1/);

    child.kill('SIGTERM');
    t.equal(await exited, 0, 'exit code 0 after SIGTERM');
    t.match(stderr, /shutting down/);
  });

  t.test('SIGTERM: readyz 503 and still serving during --shutdown-delay-ms; an in-flight review finishes', async (t) => {
    const { dir, pair } = certDir(t, 'ctl-drain');
    const { port, adminPort, child, exited, stderr } = await startController(t, dir, ['--shutdown-delay-ms', '3000']);

    // A review whose body is half sent when SIGTERM arrives.
    const body = JSON.stringify(podReview('in-flight', deploymentPod()));
    const inFlight = new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = httpsRequest({ host: '127.0.0.1', port, path: '/inject', method: 'POST', ca: pair.cert, servername: 'ctl', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
        let b = '';
        res.on('data', (c: Buffer) => (b += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: b }));
      });
      req.on('error', reject);
      req.write(body.slice(0, 100));
      req.on('socket', (s) => s.once('secureConnect', () => {
        child.kill('SIGTERM');
        // The rest arrives once the server has stopped accepting and is closing.
        void until(async () => (/finishing in-flight reviews/.test(stderr()) ? true : undefined), 10_000).then(() => req.end(body.slice(100)));
      }));
    });

    t.ok(await until(async () => ((await fetch(`http://127.0.0.1:${adminPort}/readyz`)).status === 503 ? true : undefined), 5000), 'readyz turns 503 at once');
    const during = await post(port, '/inject', JSON.stringify(podReview('during', deploymentPod())), { ca: pair.cert });
    t.equal(during.status, 200, 'a new review during the delay is still answered');
    t.equal(JSON.parse(during.body).response.uid, 'during');
    t.equal(during.headers.connection, 'close', 'and its connection is closed, so the client reconnects to another replica');
    const r = await inFlight;
    t.equal(r.status, 200, 'the in-flight review finishes');
    t.match(JSON.parse(r.body), { response: { uid: 'in-flight', allowed: true, patchType: 'JSONPatch' } });
    t.equal(await exited, 0, 'exit 0 after the delay');
  });

  t.test('with --kubeconfig, a skipped pod gets one Kubernetes Event through the API server', async (t) => {
    const api = new TestApiServer(['/apis/policy.weft.dev/v1alpha1/authorizationpolicies', '/api/v1/pods', '/api/v1/namespaces']);
    await api.start();
    t.teardown(() => api.close());
    const { dir, pair } = certDir(t, 'ctl-ev');
    const kubeconfig = ['apiVersion: v1', 'kind: Config', 'clusters: [{name: c, cluster: {server: "' + api.url + '", insecure-skip-tls-verify: true}}]', 'users: [{name: u, user: {token: t0}}]', 'contexts: [{name: x, context: {cluster: c, user: u}}]', 'current-context: x', ''].join('\n');
    writeFileSync(join(dir, 'kubeconfig'), kubeconfig);
    const { port, child, exited } = await startController(t, dir, ['--namespace', 'weft-system', '--kubeconfig', join(dir, 'kubeconfig')]);

    const pod = deploymentPod() as { spec: Record<string, unknown> };
    pod.spec.hostNetwork = true;
    const res = await post(port, '/inject', JSON.stringify(podReview('h1', pod)), { ca: pair.cert });
    t.same(JSON.parse(res.body).response, { uid: 'h1', allowed: true }, 'admitted unchanged');
    t.ok(await until(async () => (api.events.length > 0 ? true : undefined), 5000), 'an Event was POSTed');
    await new Promise((r) => setTimeout(r, 300));
    t.equal(api.events.length, 1, 'exactly one Event');
    t.equal(api.requests.filter((r) => r.startsWith('POST /api/v1/namespaces/shop/events')).length, 1, 'in the pod namespace');
    t.match(api.events[0], { kind: 'Event', type: 'Warning', reason: 'WeftInjectionSkipped', involvedObject: { kind: 'ReplicaSet', name: 'web-7d4b9c8f6d', namespace: 'shop' }, message: /\(host-network\)/ });
    t.ok(String(api.events[0]?.message).includes(SKIP_SENTENCES['host-network']), 'the message carries the skip sentence');

    child.kill('SIGTERM');
    t.equal(await exited, 0);
  });

  t.test('bad flags are named', async (t) => {
    const child = spawn(process.execPath, [weft, 'controller', '--tls-cert', '/nonexistent/tls.crt', '--tls-key', '/nonexistent/tls.key'], { stdio: ['ignore', 'ignore', 'pipe'], env });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    t.not(code, 0);
    t.match(stderr, /WEFT_ERR_BAD_CONFIG: TLS: cannot read --tls-cert \/nonexistent\/tls.crt/);
  });
}
