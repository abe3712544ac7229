// `weft proxy` as a process: ready within a startup budget, SIGTERM drains and exits 0, a
// bad flag exits 2 naming the flag.
import { spawn } from 'node:child_process';
import { get } from 'node:http';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { freePort } from '../../pkg/proxy/test-support.js';

const WEFT = fileURLToPath(new URL('../../../bin/weft', import.meta.url));
// The child is a plain weft process: not tap's loader hooks (NODE_OPTIONS) nor its env.
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'NODE_OPTIONS' && !k.startsWith('TAP')));

const status = (port: number, path: string): Promise<number> =>
  new Promise((resolve) => {
    get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    }).on('error', () => resolve(0));
  });

t.test('starts, reports ready, drains on SIGTERM and exits 0', async (t) => {
  const [inbound, outbound, admin] = [await freePort(), await freePort(), await freePort()];
  const t0 = performance.now();
  const child = spawn(process.execPath, [WEFT, 'proxy', '--mode', 'none', '--inbound-port', `${inbound}`, '--outbound-port', `${outbound}`, '--admin-port', `${admin}`, '--log-level', 'warn', '--drain-grace-ms', '500'], { stdio: ['ignore', 'pipe', 'pipe'], env });
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  t.teardown(() => void child.kill('SIGKILL'));
  let ready = 0;
  while (ready !== 200 && performance.now() - t0 < 10_000) {
    ready = await status(admin, '/ready');
    if (ready !== 200) await new Promise((r) => setTimeout(r, 10));
  }
  const startupMs = performance.now() - t0;
  t.equal(ready, 200, `ready after ${startupMs.toFixed(0)} ms (process spawn included)`);
  t.comment(`startup to /ready: ${startupMs.toFixed(0)} ms`);
  child.kill('SIGTERM');
  t.equal(await exited, 0, 'exit 0 after SIGTERM');
  t.notMatch(stderr, /"level":(50|60)/, 'no error logged');
});

t.test('a bad flag exits 2 and names it', async (t) => {
  const child = spawn(process.execPath, [WEFT, 'proxy', '--relay', 'turbo'], { stdio: ['ignore', 'pipe', 'pipe'], env });
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  t.equal(code, 2);
  t.match(stderr, /WEFT_ERR_BAD_FLAG.*--relay \(WEFT_RELAY\): allowed: native, js/);
});
