// Benchmark of the admission webhook: AdmissionReviews/s and latency percentiles for a
// typical Deployment pod, over HTTPS against a real `weft controller` process, with one
// keep-alive connection (sequential) and with 16 concurrent keep-alive connections.
// Target: ≥ 5,000 reviews/s and p99 ≤ 5 ms. Bounded: a fixed request count per scenario.
//   node dist/e2e/bench/inject.js [--requests N]
import { spawn } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { deploymentPod, haveOpenssl, makeCert, podReview, tempDir } from '../../pkg/webhook/test-helpers.js';

export interface ScenarioResult {
  connections: number;
  requests: number;
  reviewsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** CPU time the controller process spent per review (user+system): independent of how loaded the machine is. */
  serverCpuUsPerReview?: number;
}

export interface InjectBenchResult {
  skipped?: string;
  sequential?: ScenarioResult;
  concurrent16?: ScenarioResult;
  target: { reviewsPerSecond: number; p99Ms: number };
  meetsTarget?: boolean;
}

const weft = fileURLToPath(new URL('../../../bin/weft', import.meta.url));

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

function once(agent: Agent, port: number, body: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/inject', method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': body.length } }, (res) => {
      res.on('data', () => {});
      res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`HTTP ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** utime+stime of a process in microseconds (Linux /proc; undefined elsewhere). */
function cpuOf(pid: number | undefined): number | undefined {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    return ((Number(fields[11]) + Number(fields[12])) * 1e6) / 100;
  } catch {
    return undefined;
  }
}

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? 0;

async function scenario(port: number, connections: number, requests: number, body: Buffer, serverPid?: number): Promise<ScenarioResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: connections, rejectUnauthorized: false });
  // Warm up: open every connection and let the JIT settle.
  await Promise.all(Array.from({ length: connections * 50 }, () => once(agent, port, body)));
  const lat: number[] = [];
  let next = 0;
  const cpu0 = cpuOf(serverPid);
  const started = process.hrtime.bigint();
  const worker = async () => {
    while (next < requests) {
      next++;
      const t0 = process.hrtime.bigint();
      await once(agent, port, body);
      lat.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
  };
  await Promise.all(Array.from({ length: connections }, worker));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const cpu1 = cpuOf(serverPid);
  agent.destroy();
  lat.sort((a, b) => a - b);
  const round = (x: number) => Math.round(x * 1000) / 1000;
  return { connections, requests: lat.length, reviewsPerSecond: Math.round(lat.length / seconds), p50Ms: round(pct(lat, 50)), p99Ms: round(pct(lat, 99)), maxMs: round(lat.at(-1) ?? 0), ...(cpu0 !== undefined && cpu1 !== undefined ? { serverCpuUsPerReview: Math.round((cpu1 - cpu0) / lat.length) } : {}) };
}

export async function benchInject(opts: { requests?: number } = {}): Promise<InjectBenchResult> {
  const target = { reviewsPerSecond: 5000, p99Ms: 5 };
  if (!haveOpenssl()) return { skipped: 'openssl CLI not found', target };
  const requests = opts.requests ?? 20_000;
  const dir = tempDir('bench');
  const pair = makeCert(dir, 'bench');
  writeFileSync(join(dir, 'tls.crt'), pair.cert);
  writeFileSync(join(dir, 'tls.key'), pair.key);
  const [port, adminPort] = [await freePort(), await freePort()];
  const child = spawn(process.execPath, [weft, 'controller', '--tls-cert', join(dir, 'tls.crt'), '--tls-key', join(dir, 'tls.key'), '--port', String(port), '--admin-port', String(adminPort), '--address', '127.0.0.1', '--log-level', 'warn'], { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, NODE_OPTIONS: '' } });
  try {
    const deadline = Date.now() + 15_000;
    for (;;) {
      const ok = await fetch(`http://127.0.0.1:${adminPort}/readyz`).then((r) => r.ok, () => false);
      if (ok) break;
      if (Date.now() > deadline) throw new Error('weft controller did not become ready in 15 s');
      await new Promise((r) => setTimeout(r, 100));
    }
    const body = Buffer.from(JSON.stringify(podReview('bench', deploymentPod())));
    const sequential = await scenario(port, 1, requests, body, child.pid);
    const concurrent16 = await scenario(port, 16, requests, body, child.pid);
    const meets = (s: ScenarioResult) => s.reviewsPerSecond >= target.reviewsPerSecond && s.p99Ms <= target.p99Ms;
    return { sequential, concurrent16, target, meetsTarget: meets(sequential) && meets(concurrent16) };
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const i = process.argv.indexOf('--requests');
  const requests = i > 0 ? Number(process.argv[i + 1]) : undefined;
  benchInject(requests ? { requests } : {}).then(
    (r) => console.log(JSON.stringify(r, null, 2)),
    (e: unknown) => {
      console.error(e);
      process.exitCode = 1;
    },
  );
}
