// Quick loopback numbers for the proxy: bulk throughput and HTTP/1.1 request latency,
// direct vs through the proxy (mode none, destination hook), native vs JS relay.
//   node dist/e2e/proxy/bench.js [--mb 512] [--requests 2000]
import { createServer as createHttpServer, request, Agent } from 'node:http';
import { connect, createServer } from 'node:net';
import { parseArgs } from 'node:util';
import { loadNativeCaps } from '../../pkg/proxy/native-bridge.js';
import { startTestProxy, type TestProxy } from '../../pkg/proxy/test-support.js';

const { values } = parseArgs({ options: { mb: { type: 'string', default: '512' }, requests: { type: 'string', default: '2000' } } });
const MB = Number(values.mb);
const REQUESTS = Number(values.requests);

/** A sink that counts bytes; the client pushes MB megabytes and waits for the sink's ack. */
async function bulk(port: number, sinkPort: () => Promise<void>): Promise<number> {
  const chunk = Buffer.alloc(1 << 20, 1);
  const t0 = performance.now();
  await new Promise<void>((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port });
    s.on('error', reject);
    s.on('data', () => {});
    s.on('close', () => resolve());
    let sent = 0;
    const pump = (): void => {
      while (sent < MB) {
        sent++;
        if (!s.write(chunk)) return void s.once('drain', pump);
      }
      s.end();
    };
    s.once('connect', pump);
  });
  await sinkPort();
  return (MB * 8) / 1024 / ((performance.now() - t0) / 1000);
}

async function latency(port: number): Promise<{ rps: number; p50: number; p99: number }> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const times: number[] = [];
  const t0 = performance.now();
  for (let i = 0; i < REQUESTS; i++) {
    const a = performance.now();
    await new Promise<void>((resolve, reject) => {
      request({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
        res.resume();
        res.on('end', () => resolve());
      })
        .on('error', reject)
        .end();
    });
    times.push(performance.now() - a);
  }
  agent.destroy();
  times.sort((x, y) => x - y);
  return { rps: REQUESTS / ((performance.now() - t0) / 1000), p50: times[Math.floor(times.length / 2)]!, p99: times[Math.floor(times.length * 0.99)]! };
}

async function main(): Promise<void> {
  const sink = createServer((s) => {
    s.resume();
    s.on('end', () => s.end());
  });
  await new Promise<void>((r) => sink.listen(0, '127.0.0.1', () => r()));
  const sinkPort = (sink.address() as { port: number }).port;
  const http = createHttpServer((_req, res) => res.end('ok'));
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', () => r()));
  const httpPort = (http.address() as { port: number }).port;

  const rows: string[] = [];
  const direct = await bulk(sinkPort, async () => {});
  const dl = await latency(httpPort);
  rows.push(`direct        bulk ${direct.toFixed(2)} Gbit/s   http ${dl.rps.toFixed(0)} req/s p50 ${dl.p50.toFixed(3)} ms p99 ${dl.p99.toFixed(3)} ms`);
  const caps = loadNativeCaps();
  for (const relay of ['native', 'js'] as const) {
    if (relay === 'native' && !caps.relay) {
      rows.push(`proxy native  (skipped: ${caps.missing})`);
      continue;
    }
    const tp: TestProxy = await startTestProxy({ relay, opaquePorts: `${sinkPort}` }, { native: relay === 'native' });
    tp.dst = { address: '127.0.0.1', port: sinkPort };
    const b = await bulk(tp.outbound, async () => {});
    tp.dst = { address: '127.0.0.1', port: httpPort };
    const l = await latency(tp.outbound);
    rows.push(`proxy ${relay.padEnd(7)} bulk ${b.toFixed(2)} Gbit/s   http ${l.rps.toFixed(0)} req/s p50 ${l.p50.toFixed(3)} ms p99 ${l.p99.toFixed(3)} ms`);
    await tp.close();
  }
  sink.close();
  http.close();
  process.stdout.write(`${MB} MiB bulk, ${REQUESTS} sequential keep-alive requests, loopback\n${rows.join('\n')}\n`);
}

await main();
