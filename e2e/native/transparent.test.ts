// IP_TRANSPARENT and SO_MARK need CAP_NET_ADMIN (the kernel also accepts CAP_NET_RAW for
// both): they work as root, and a process whose bounding set lacks net_admin and net_raw
// (setpriv) gets EPERM from listen() and from a marked connect().
import t from 'tap';
import { closeSync } from 'node:fs';
import { getNative, listen, localAddress, nativeAvailable } from '../../pkg/native/index.js';
import { FACADE_URL, IS_ROOT, runNodeScript, sh } from './helpers.js';

const childScript = `
import { listen, connect } from '${FACADE_URL}';
const tryListen = (o) => { try { listen(o); return 'ok'; } catch (e) { return e.code + ' ' + e.syscall; } };
const conn = await new Promise((r) => connect({ address: '127.0.0.1', port: 9, timeoutMs: 1000, mark: 7 }, (e) => r(e ? e.code + ' ' + e.syscall : 'ok')));
console.log(JSON.stringify({
  transparent4: tryListen({ host: '127.0.0.1', port: 0, transparent: true }),
  transparent6: tryListen({ host: '::1', port: 0, transparent: true }),
  mark: tryListen({ host: '127.0.0.1', port: 0, mark: 7 }),
  plain: tryListen({ host: '127.0.0.1', port: 0 }),
  connectMark: conn,
}));
`;

if (!IS_ROOT || !nativeAvailable()) {
  t.plan(0, IS_ROOT ? 'native addon not built' : 'needs root (CAP_NET_ADMIN)');
} else {
  t.test('as root: transparent and marked listeners (v4 and v6) are created', async (t) => {
    for (const host of ['127.0.0.1', '::1']) {
      const fd = listen({ host, port: 0, transparent: true, mark: 0x539 });
      t.teardown(() => closeSync(fd));
      t.equal(localAddress(fd).address, host);
    }
    t.equal(typeof getNative().version, 'string');
  });

  let setprivMissing: string | false = false;
  try {
    sh('setpriv', ['--version']);
  } catch {
    setprivMissing = 'setpriv not installed';
  }
  t.test('without CAP_NET_ADMIN/NET_RAW: transparent/mark listen and marked connect fail with EPERM', { skip: setprivMissing }, async (t) => {
    const out = await runNodeScript(childScript, ['setpriv', '--inh-caps=-all', '--bounding-set=-net_admin,-net_raw']);
    t.same(out, {
      transparent4: 'EPERM setsockopt',
      transparent6: 'EPERM setsockopt',
      mark: 'EPERM setsockopt',
      plain: 'ok',
      connectMark: 'EPERM setsockopt',
    });
  });
}
