// Micro-benchmark of the opaque-TCP relay on loopback: 1 KB ping-pong latency (p50/p99) and
// bulk throughput, for a direct connection, the native splice relay, and a pure Node
// `pipe()` relay. The echo/sink servers run in a child process so the JS relay and the
// servers do not share one event loop; the client runs here. Where iperf3 is installed,
// its throughput through each path is measured too (no JS at either end: the relay alone).
// Bounded: fixed counts, sizes and durations.
//   node dist/e2e/bench/relay.js [--pings N] [--mib N]
import { execFileSync, fork, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { nativeAvailable } from '../../pkg/native/index.js';
import { dial, startRelayProxy, startServer, type Started } from '../../pkg/native/test-support.js';

export interface PathResult {
  path: 'direct' | 'native relay' | 'node pipe relay';
  pingP50Us: number;
  pingP99Us: number;
  bulkMiBps: number;
  /** iperf3 (3 s, one stream) through this path; absent without iperf3. */
  iperfGbps?: number;
  /** CPU of this process's JS (main) thread during the iperf3 run, % of one core: what the
   * relay costs the proxy's event loop (nothing else runs on it meanwhile). */
  iperfJsThreadCpuPct?: number;
}
export interface RelayBenchResult {
  skipped?: string;
  pings: number;
  bulkMiB: number;
  results: PathResult[];
}

const PING = 1024;

/** Child mode: an echo server (latency) and a sink (bulk: counts bytes, answers the count at EOF). */
async function serveChild(): Promise<void> {
  const echo = await startServer((s) => s.pipe(s));
  const sink = await startServer((s) => {
    let n = 0;
    s.on('data', (d: Buffer) => (n += d.length));
    s.on('end', () => s.end(String(n)));
  });
  process.send?.({ echo: echo.port, sink: sink.port });
  process.on('disconnect', () => process.exit(0));
}

async function pingPong(port: number, count: number): Promise<number[]> {
  const s = await dial(port);
  s.setNoDelay(true);
  const msg = Buffer.alloc(PING, 1);
  const times: number[] = [];
  let pending = 0;
  let resolveOne: (() => void) | undefined;
  s.on('data', (d: Buffer) => {
    pending -= d.length;
    if (pending <= 0 && resolveOne) resolveOne();
  });
  for (let i = 0; i < count; i++) {
    const t0 = process.hrtime.bigint();
    pending = PING;
    await new Promise<void>((r) => {
      resolveOne = r;
      s.write(msg);
    });
    times.push(Number(process.hrtime.bigint() - t0) / 1000);
  }
  s.destroy();
  return times;
}

async function bulk(port: number, mib: number): Promise<number> {
  const s = await dial(port);
  const chunk = Buffer.alloc(1 << 20, 2);
  const t0 = process.hrtime.bigint();
  const reply = new Promise<string>((resolve, reject) => {
    let out = '';
    s.on('data', (d: Buffer) => (out += d.toString()));
    s.on('end', () => resolve(out));
    s.on('error', reject);
  });
  for (let i = 0; i < mib; i++) {
    if (!s.write(chunk)) await new Promise((r) => s.once('drain', r));
  }
  s.end();
  const got = Number(await reply);
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  if (got !== mib << 20) throw new Error(`sink counted ${got} bytes, sent ${mib << 20}`);
  s.destroy();
  return mib / secs;
}

function haveIperf(): boolean {
  try {
    execFileSync('iperf3', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** utime+stime of the main thread, in clock ticks (/proc: the main thread's tid is the pid). */
function mainThreadTicks(): number {
  const f = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
  const fields = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

/** iperf3 client through `port` to a one-shot iperf3 server on `serverPort`. */
async function iperf(serverPort: number, port: number): Promise<{ gbps: number; jsCpuPct: number }> {
  const server = spawn('iperf3', ['-s', '-1', '-p', String(serverPort)], { stdio: 'ignore' });
  try {
    await new Promise((r) => setTimeout(r, 300));
    const ticks0 = mainThreadTicks();
    const t0 = process.hrtime.bigint();
    const out = await new Promise<string>((resolve, reject) => {
      const c = spawn('iperf3', ['-c', '127.0.0.1', '-p', String(port), '-t', '3', '-J'], { stdio: ['ignore', 'pipe', 'inherit'] });
      let buf = '';
      c.stdout.on('data', (d: Buffer) => (buf += d.toString()));
      c.on('close', (code) => (code === 0 ? resolve(buf) : reject(new Error(`iperf3 client exited ${code}`))));
    });
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    const jsCpuPct = Math.round(((mainThreadTicks() - ticks0) / 100 / secs) * 100); // USER_HZ = 100
    const j = JSON.parse(out) as { end: { sum_received: { bits_per_second: number } } };
    return { gbps: Math.round(j.end.sum_received.bits_per_second / 1e7) / 100, jsCpuPct };
  } finally {
    server.kill();
  }
}

/** A relay in plain Node: connect upstream, then pipe both ways. */
async function startPipeProxy(upstreamPort: number): Promise<Started> {
  return startServer((down) => {
    const up = net.connect({ port: upstreamPort, host: '127.0.0.1', allowHalfOpen: true });
    up.setNoDelay(true);
    down.setNoDelay(true);
    up.on('error', () => down.destroy());
    down.pipe(up);
    up.pipe(down);
  });
}

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return Math.round(s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!);
};

export async function benchRelay(opts: { pings?: number; mib?: number } = {}): Promise<RelayBenchResult> {
  const pings = opts.pings ?? 5000;
  const mib = opts.mib ?? 1024;
  if (!nativeAvailable()) return { skipped: 'native addon not built', pings, bulkMiB: mib, results: [] };
  const child = fork(fileURLToPath(import.meta.url), ['--serve'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  try {
    const ports = await new Promise<{ echo: number; sink: number }>((resolve, reject) => {
      child.once('message', (m) => resolve(m as { echo: number; sink: number }));
      child.once('exit', (c) => reject(new Error(`server child exited ${c}`)));
    });
    const results: PathResult[] = [];
    const withIperf = haveIperf();
    const iperfPort = 15290 + (process.pid % 10);
    const measure = async (path: PathResult['path'], echoPort: number, sinkPort: number, iperfVia: number): Promise<void> => {
      await pingPong(echoPort, Math.min(500, pings)); // warm-up
      const t = await pingPong(echoPort, pings);
      const r: PathResult = { path, pingP50Us: pct(t, 50), pingP99Us: pct(t, 99), bulkMiBps: Math.round(await bulk(sinkPort, mib)) };
      if (withIperf) {
        const ip = await iperf(iperfPort, iperfVia);
        r.iperfGbps = ip.gbps;
        r.iperfJsThreadCpuPct = ip.jsCpuPct;
      }
      results.push(r);
    };
    await measure('direct', ports.echo, ports.sink, iperfPort);
    {
      const e = await startRelayProxy(ports.echo);
      const s = await startRelayProxy(ports.sink);
      const i = await startRelayProxy(iperfPort);
      await measure('native relay', e.port, s.port, i.port);
      await Promise.all([e.close(), s.close(), i.close()]);
    }
    {
      const e = await startPipeProxy(ports.echo);
      const s = await startPipeProxy(ports.sink);
      const i = await startPipeProxy(iperfPort);
      await measure('node pipe relay', e.port, s.port, i.port);
      await Promise.all([e.close(), s.close(), i.close()]);
    }
    return { pings, bulkMiB: mib, results };
  } finally {
    child.disconnect();
  }
}

function arg(name: string): number | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : undefined;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  if (process.argv.includes('--serve')) {
    await serveChild();
  } else {
    const pings = arg('--pings');
    const mib = arg('--mib');
    const r = await benchRelay({ ...(pings === undefined ? {} : { pings }), ...(mib === undefined ? {} : { mib }) });
    if (r.skipped) {
      console.log(`skipped: ${r.skipped}`);
    } else {
      console.log(`relay bench: ${r.pings} x ${PING} B ping-pong, ${r.bulkMiB} MiB bulk, loopback, ${process.env.WEFT_RELAY_THREADS ?? 1} relay thread(s)`);
      console.log('path              p50 µs   p99 µs   bulk MiB/s   iperf3 Gbit/s   JS thread CPU');
      for (const x of r.results) {
        const ip = x.iperfGbps === undefined ? '-' : String(x.iperfGbps);
        const cpu = x.iperfJsThreadCpuPct === undefined ? '-' : `${x.iperfJsThreadCpuPct}%`;
        console.log(
          `${x.path.padEnd(16)} ${String(x.pingP50Us).padStart(7)} ${String(x.pingP99Us).padStart(8)} ${String(x.bulkMiBps).padStart(12)} ${ip.padStart(15)} ${cpu.padStart(15)}`,
        );
      }
    }
  }
}
