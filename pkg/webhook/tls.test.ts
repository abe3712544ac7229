// Certificate rotation the way a Secret volume does it (a `..data` symlink swap): new
// handshakes see the new certificate; a keep-alive connection opened before keeps working.
import { mkdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { Agent } from 'node:https';
import { join } from 'node:path';
import { connect, type PeerCertificate } from 'node:tls';
import t from 'tap';
import { defaultValues } from '../api/values.js';
import { createLogger } from '../log/index.js';
import { createInjectorMetrics } from '../metrics/injector.js';
import { buildControllerApp } from './app.js';
import { deploymentPod, haveOpenssl, makeCert, podReview, post, tempDir } from './test-helpers.js';
import { readKeyPair, watchKeyPair, type KeyPair } from './tls.js';

function writeSecretVersion(dir: string, version: string, pair: { cert: string; key: string }): void {
  const ts = join(dir, `..${version}`);
  mkdirSync(ts);
  writeFileSync(join(ts, 'tls.crt'), pair.cert);
  writeFileSync(join(ts, 'tls.key'), pair.key);
  symlinkSync(`..${version}`, join(dir, '..data_tmp'));
  renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
}

function handshakeCn(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      const cert: PeerCertificate = s.getPeerCertificate();
      s.end();
      resolve(String(cert.subject.CN));
    });
    s.on('error', reject);
  });
}

if (!haveOpenssl()) {
  t.test('webhook TLS tests', { skip: 'openssl CLI not found: cannot make test certificates' }, async () => {});
} else {
  t.test('rotation: new handshakes get the new cert, an old keep-alive connection keeps working', async (t) => {
    const dir = tempDir('tls');
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const certs = tempDir('tls-src');
    t.teardown(() => rmSync(certs, { recursive: true, force: true }));
    const a = makeCert(certs, 'cert-a');
    const b = makeCert(certs, 'cert-b');
    writeSecretVersion(dir, '2026_11_26_01', a);
    symlinkSync('..data/tls.crt', join(dir, 'tls.crt'));
    symlinkSync('..data/tls.key', join(dir, 'tls.key'));

    const certFile = join(dir, 'tls.crt');
    const keyFile = join(dir, 'tls.key');
    const initial = await readKeyPair(certFile, keyFile);
    const log = createLogger('test', 'silent');
    const app = await buildControllerApp({ tls: initial, config: { values: defaultValues(), version: '0.1.0' }, metrics: createInjectorMetrics(), logger: log });
    await app.listen({ port: 0, host: '127.0.0.1' });
    t.teardown(() => app.close());
    const port = (app.server.address() as { port: number }).port;

    let applied: (p: KeyPair) => void = () => {};
    const reloaded = new Promise<KeyPair>((r) => (applied = r));
    const watcher = watchKeyPair(initial, {
      certFile,
      keyFile,
      log,
      debounceMs: 20,
      apply: (p) => {
        app.server.setSecureContext(p);
        applied(p);
      },
    });
    t.teardown(() => watcher.close());

    const agent = new Agent({ keepAlive: true, maxSockets: 1, rejectUnauthorized: false });
    t.teardown(() => agent.destroy());
    const body = JSON.stringify(podReview('before', deploymentPod()));
    const first = await post(port, '/inject', body, { agent });
    t.equal(first.status, 200);
    t.equal(first.socket.getPeerCertificate().subject.CN, 'cert-a');
    t.equal(await handshakeCn(port), 'cert-a');

    writeSecretVersion(dir, '2026_11_26_02', b);
    const got = await Promise.race([reloaded, new Promise<null>((r) => setTimeout(() => r(null), 10_000).unref())]);
    t.ok(got, 'the watcher noticed the symlink swap');
    t.equal(await handshakeCn(port), 'cert-b', 'a new handshake sees the new certificate');

    const second = await post(port, '/inject', JSON.stringify(podReview('after', deploymentPod())), { agent });
    t.equal(second.status, 200, 'the old keep-alive connection still answers');
    t.equal(second.socket, first.socket, 'on the very same socket');
    t.equal(second.socket.getPeerCertificate().subject.CN, 'cert-a', 'which keeps its original certificate');
    t.match(JSON.parse(second.body), { response: { uid: 'after', allowed: true } });
  });

  t.test('a half-written or mismatched pair is not applied', async (t) => {
    const dir = tempDir('tls-bad');
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const a = makeCert(dir, 'a');
    const b = makeCert(dir, 'b');
    writeFileSync(join(dir, 'tls.crt'), a.cert);
    writeFileSync(join(dir, 'tls.key'), a.key);
    const initial = await readKeyPair(join(dir, 'tls.crt'), join(dir, 'tls.key'));
    let applied = 0;
    const w = watchKeyPair(initial, { certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key'), log: createLogger('test', 'silent'), apply: () => applied++ });
    t.teardown(() => w.close());
    writeFileSync(join(dir, 'tls.crt'), b.cert); // key not yet replaced
    t.equal(await w.check(), false, 'cert B with key A is refused');
    writeFileSync(join(dir, 'tls.key'), b.key);
    t.equal(await w.check(), true, 'the complete pair is applied');
    t.equal(applied, 1);
    await t.rejects(readKeyPair(join(dir, 'nope.crt'), join(dir, 'tls.key')), { code: 'WEFT_ERR_BAD_CONFIG', message: /--tls-cert/ });
  });
}
