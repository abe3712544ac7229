// A transparent listener behind a real TPROXY rule, in two private namespaces joined by a
// veth: the client dials 198.51.100.7:80 (an address nobody owns); the proxy namespace
// TPROXYs it to the native listener, whose accepted socket's localAddress() is that
// original destination. The proxy then relays it natively to a local echo server.
import { spawn } from 'node:child_process';
import t from 'tap';
import { nativeAvailable } from '../../pkg/native/index.js';
import { FACADE_URL, IS_ROOT, SUPPORT_URL, makeNetns, runNodeScript } from './helpers.js';

const proxyScript = `
import { listenServer, localAddress, remoteAddress, fdOf, relaySockets, connectSocket } from '${FACADE_URL}';
import { startEcho } from '${SUPPORT_URL}';
const echo = await startEcho();
const server = await listenServer({ host: '0.0.0.0', port: 15001, transparent: true });
server.once('connection', async (down) => {
  down.pause();
  const seen = { local: localAddress(fdOf(down)), remote: remoteAddress(fdOf(down)) };
  const up = await connectSocket({ address: '127.0.0.1', port: echo.port, timeoutMs: 2000 });
  const { result } = relaySockets(down, up, { idleTimeoutMs: 5000 });
  const r = await result;
  console.log(JSON.stringify({ ...seen, result: r }));
  process.exit(0);
});
console.log('ready');
`;

const clientScript = `
import net from 'node:net';
const s = net.connect({ host: '198.51.100.7', port: 80, allowHalfOpen: true });
const parts = [];
s.on('data', (d) => parts.push(d));
s.on('connect', () => s.end('hello-tproxy'));
s.on('end', () => { console.log(JSON.stringify({ data: Buffer.concat(parts).toString(), local: s.localAddress })); process.exit(0); });
s.on('error', (e) => { console.log(JSON.stringify({ error: e.code })); process.exit(0); });
`;

const skip = !IS_ROOT ? 'needs root (network namespaces, netfilter)' : !nativeAvailable() ? 'native addon not built' : false;

t.test('TPROXY → transparent listener: localAddress is the original destination; relay works', { skip, timeout: 30000 }, async (t) => {
  const c = makeNetns('tpc');
  t.teardown(c.remove);
  const p = makeNetns('tpp');
  t.teardown(p.remove);
  c.exec('ip', ['link', 'add', 'wfnac', 'type', 'veth', 'peer', 'name', 'wfnap', 'netns', p.name]);
  c.exec('ip', ['addr', 'add', '192.0.2.1/24', 'dev', 'wfnac']);
  c.exec('ip', ['link', 'set', 'wfnac', 'up']);
  c.exec('ip', ['route', 'add', '198.51.100.0/24', 'via', '192.0.2.2']);
  p.exec('ip', ['addr', 'add', '192.0.2.2/24', 'dev', 'wfnap']);
  p.exec('ip', ['link', 'set', 'wfnap', 'up']);
  p.exec('iptables', ['-t', 'mangle', '-A', 'PREROUTING', '-p', 'tcp', '-d', '198.51.100.7', '--dport', '80', '-j', 'TPROXY', '--on-port', '15001', '--tproxy-mark', '0x1/0x1']);
  p.exec('ip', ['rule', 'add', 'fwmark', '0x1/0x1', 'lookup', '100']);
  p.exec('ip', ['route', 'add', 'local', '0.0.0.0/0', 'dev', 'lo', 'table', '100']);

  const proxy = spawn('ip', ['netns', 'exec', p.name, process.execPath, '--input-type=module', '-e', proxyScript], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => void proxy.kill('SIGKILL'));
  let out = '';
  const lines: string[] = [];
  let onLine: (() => void) | undefined;
  proxy.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    const parts = out.split('\n');
    out = parts.pop() ?? '';
    lines.push(...parts);
    onLine?.();
  });
  const nextLine = (): Promise<string> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        const l = lines.shift();
        if (l === undefined) return;
        onLine = undefined;
        resolve(l);
      };
      onLine = check;
      proxy.once('exit', () => reject(new Error('proxy child exited')));
      check();
    });
  t.equal(await nextLine(), 'ready');
  const client = (await runNodeScript(clientScript, ['ip', 'netns', 'exec', c.name])) as Record<string, unknown>;
  t.same(client, { data: 'hello-tproxy', local: '192.0.2.1' }, 'the client got its bytes echoed through the relay');
  const seen = JSON.parse(await nextLine()) as Record<string, unknown>;
  t.same(seen.local, { address: '198.51.100.7', port: 80, family: 4 }, 'getsockname on the accepted socket = original destination');
  t.match(seen.remote, { address: '192.0.2.1', family: 4 });
  t.same(seen.result, { bytesUp: 12, bytesDown: 12, reason: 'eof' });
});
