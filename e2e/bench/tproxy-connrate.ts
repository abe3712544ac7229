// The connection-setup cost of the TPROXY rules: new connections/s (connect, 1 byte each way,
// close) through one `weft proxy --mode tproxy` engine in a pod whose rules `weft init`
// programmed, (a) intercepted — the app dials the server, the rules divert it — versus
// (b) the same proxy dialled directly at 127.0.0.1:15001 (loopback: no rule diverts it).
// The same proxy process serves both, alternating rounds, so the difference is the rules'
// (mark, policy route via lo, TPROXY, socket match) and nothing else. The proxy is
// startProxy() of pkg/proxy with one hook: a direct dial's destination is the server (a
// direct dial has no original destination of its own). Bounded: about 15 s.
//   node dist/e2e/bench/tproxy-connrate.js [--rounds N] [--ms MS]
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const POD_IP = '10.79.0.1';
const SERVER_IP = '10.79.0.2';
const SERVER_PORT = 7070;
const OUTBOUND = 15001;

export interface ConnRateResult {
  rounds: number;
  msPerRound: number;
  concurrency: number;
  /** connections/s per round, intercepted by the rules. */
  intercepted: number[];
  /** connections/s per round, the same proxy dialled directly. */
  direct: number[];
  interceptedMedian: number;
  directMedian: number;
  /** (direct - intercepted) / direct, from the medians: the share of setup rate the rules cost. */
  addedCostPercent: number;
  /** 1/intercepted - 1/direct, from the medians: what the rules add to one connection. */
  addedMicrosPerConnection: number;
  /** Connections the proxy counted (weft_tcp_connections_opened_total, outbound) vs the client's. */
  proxyCounted: number;
  clientOpened: number;
  errors: number;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

// In the peer: an echo of one chunk, then close.
const SERVER = `
const net = await import('node:net');
net.createServer((s) => { s.on('error', () => {}); s.once('data', (d) => s.end(d)); }).listen(${SERVER_PORT}, '${SERVER_IP}', () => console.log('ready'));
`;

// In the pod, as uid 0 gid 1337 (the TPROXY-mode proxy identity).
const PROXY = `
const root = process.argv[1];
const { parseProxyConfig } = await import(root + 'dist/pkg/api/proxy-config.js');
const { startProxy } = await import(root + 'dist/pkg/proxy/index.js');
const config = parseProxyConfig(['--mode', 'tproxy', '--log-level', 'warn', '--opaque-ports', '${SERVER_PORT}'], {});
const direct = (found) => found?.address === '127.0.0.1' && found.port === ${OUTBOUND};
const resolveDst = (dir, src, found) => (direct(found) ? { address: '${SERVER_IP}', port: ${SERVER_PORT} } : found);
await startProxy(config, { resolveDst });
console.log('ready');
`;

// In the pod, as root (an app: intercepted): alternate rounds of each path, then the proxy's count.
const CLIENT = `
const net = await import('node:net');
const [rounds, ms, conc] = process.argv.slice(1).map(Number);
const paths = { intercepted: ['${SERVER_IP}', ${SERVER_PORT}], direct: ['127.0.0.1', ${OUTBOUND}] };
let opened = 0, errors = 0;
const one = (host, port) => new Promise((resolve) => {
  opened++;
  const s = net.connect({ host, port });
  const done = (ok) => { if (!ok) errors++; s.destroy(); resolve(ok); };
  s.setTimeout(3000, () => done(false));
  s.on('error', () => done(false));
  s.on('connect', () => s.write('x'));
  s.on('data', () => done(true));
});
async function round(host, port, forMs) {
  let n = 0;
  const end = performance.now() + forMs;
  await Promise.all(Array.from({ length: conc }, async () => { while (performance.now() < end) if (await one(host, port)) n++; }));
  return n / (forMs / 1000);
}
const out = { intercepted: [], direct: [] };
for (const [name, [h, p]] of Object.entries(paths)) await round(h, p, 200); // warm both
for (let i = 0; i < rounds; i++) for (const name of i % 2 ? ['direct', 'intercepted'] : ['intercepted', 'direct']) out[name].push(await round(...paths[name], ms));
const metrics = await (await fetch('http://127.0.0.1:15020/metrics')).text();
const counted = metrics.split('\\n').filter((l) => l.startsWith('weft_tcp_connections_opened_total{') && l.includes('direction="outbound"')).reduce((a, l) => a + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
console.log(JSON.stringify({ ...out, opened, errors, counted }));
`;

function sh(argv: string[], timeout = 30_000): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout, env: bareEnv() });
  return { code: r.status ?? 1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}
function bareEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  return env;
}
const must = (argv: string[], timeout?: number): string => {
  const r = sh(argv, timeout);
  if (r.code !== 0) throw new Error(`${argv.join(' ')}: exit ${r.code}: ${r.stderr.trim().slice(0, 500)}`);
  return r.stdout;
};

function start(argv: string[], what: string, timeoutMs = 15_000): Promise<ChildProcess> {
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: bareEnv() });
  let out = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} not ready after ${timeoutMs} ms: ${out.slice(-500)}`)), timeoutMs);
    const onData = (d: Buffer) => {
      out += d.toString();
      if (/^ready$/m.test(out)) {
        clearTimeout(timer);
        resolve(child);
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited (${code}): ${out.slice(-500)}`));
    });
  });
}

export async function benchTproxyConnRate(opts: { rounds?: number; ms?: number; concurrency?: number } = {}): Promise<ConnRateResult> {
  const rounds = opts.rounds ?? 4;
  const ms = opts.ms ?? 1500;
  const concurrency = opts.concurrency ?? 8;
  const [pod, peer] = [`wftp-crpod-${process.pid}`, `wftp-crpeer-${process.pid}`];
  const [vp, vq] = [`wftpcr${process.pid % 100000}p`, `wftpcr${process.pid % 100000}q`];
  const children: ChildProcess[] = [];
  const inNs = (ns: string, argv: string[]) => ['ip', 'netns', 'exec', ns, ...argv];
  const node = process.execPath;
  must(['ip', 'netns', 'add', pod]);
  try {
    must(['ip', 'netns', 'add', peer]);
    must(['ip', 'link', 'add', vp, 'netns', pod, 'type', 'veth', 'peer', 'name', vq, 'netns', peer]);
    for (const [ns, dev, ip] of [[pod, vp, POD_IP], [peer, vq, SERVER_IP]] as const) {
      must(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
      must(['ip', '-n', ns, 'addr', 'add', `${ip}/24`, 'dev', dev]);
      must(['ip', '-n', ns, 'link', 'set', dev, 'up']);
    }
    children.push(await start(inNs(peer, [node, '--input-type=module', '-e', SERVER]), 'server'));
    must(inNs(pod, [node, `${root}bin/weft`, 'init', '--mode', 'tproxy', '--ipv6', 'off']));
    children.push(await start(inNs(pod, ['setpriv', '--regid', '1337', '--clear-groups', node, '--input-type=module', '-e', PROXY, root]), 'proxy'));
    const budget = 10_000 + rounds * 2 * ms * 2;
    const r = JSON.parse(must(inNs(pod, [node, '--input-type=module', '-e', CLIENT, String(rounds), String(ms), String(concurrency)]), budget).trim().split('\n').pop() ?? '{}') as {
      intercepted: number[];
      direct: number[];
      opened: number;
      errors: number;
      counted: number;
    };
    const [im, dm] = [median(r.intercepted), median(r.direct)];
    return {
      rounds,
      msPerRound: ms,
      concurrency,
      intercepted: r.intercepted.map(Math.round),
      direct: r.direct.map(Math.round),
      interceptedMedian: Math.round(im),
      directMedian: Math.round(dm),
      addedCostPercent: Number((((dm - im) / dm) * 100).toFixed(1)),
      addedMicrosPerConnection: Number(((1 / im - 1 / dm) * 1e6).toFixed(1)),
      proxyCounted: r.counted,
      clientOpened: r.opened,
      errors: r.errors,
    };
  } finally {
    for (const c of children) c.kill('SIGKILL');
    for (const ns of [pod, peer]) {
      for (const pid of sh(['ip', 'netns', 'pids', ns]).stdout.split('\n').filter(Boolean)) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          /* gone */
        }
      }
      sh(['ip', 'netns', 'del', ns]);
    }
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const arg = (name: string): number | undefined => {
    const i = process.argv.indexOf(name);
    return i > 0 ? Number(process.argv[i + 1]) : undefined;
  };
  const r = await benchTproxyConnRate({ ...(arg('--rounds') ? { rounds: arg('--rounds')! } : {}), ...(arg('--ms') ? { ms: arg('--ms')! } : {}) });
  process.stdout.write(JSON.stringify(r, null, 2) + '\n');
  process.stdout.write(
    `new connections/s through weft proxy: intercepted by the TPROXY rules ${r.interceptedMedian}/s, the same proxy dialled directly ${r.directMedian}/s: ` +
      `the rules cost ${r.addedCostPercent}% of the setup rate (~${r.addedMicrosPerConnection} µs per connection); proxy counted ${r.proxyCounted} of ${r.clientOpened} client connections, ${r.errors} errors\n`,
  );
}
