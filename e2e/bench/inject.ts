// Benchmark of the admission webhook: AdmissionReviews/s and latency percentiles for a
// typical Deployment pod, over HTTPS against a real `weft controller` process, with one
// keep-alive connection (sequential) and with 16 concurrent keep-alive connections.
// Target: ≥ 5,000 reviews/s and p99 ≤ 5 ms on ONE core: the controller is pinned to one CPU
// and this load generator (a lean TLS client, lean-https.ts) to another, with taskset.
// Bounded: a fixed request count per scenario.
//   node dist/e2e/bench/inject.js [--requests N] [--cpu-prof DIR] [--no-pin]
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { deploymentPod, haveOpenssl, makeCert, podReview, tempDir } from '../../pkg/webhook/test-helpers.js';
import { leanConnect, prepareRequest, type LeanConnection } from './lean-https.js';

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
  /** Controller on CPU `server`, this client on CPU `client` (taskset); absent when not pinned. */
  pinned?: { server: number; client: number };
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

async function scenario(port: number, connections: number, requests: number, request: Buffer, serverPid?: number): Promise<ScenarioResult> {
  const conns: LeanConnection[] = await Promise.all(Array.from({ length: connections }, () => leanConnect(port, request)));
  try {
    const send = async (c: LeanConnection) => {
      const status = await c.send();
      if (status !== 200) throw new Error(`HTTP ${status}`);
    };
    // Warm up every connection and let the JIT settle.
    await Promise.all(conns.map(async (c) => {
      for (let i = 0; i < 300; i++) await send(c);
    }));
    const lat = new Float64Array(requests);
    let next = 0;
    const cpu0 = cpuOf(serverPid);
    const started = process.hrtime.bigint();
    const worker = async (c: LeanConnection) => {
      while (next < requests) {
        const i = next++;
        const t0 = process.hrtime.bigint();
        await send(c);
        lat[i] = Number(process.hrtime.bigint() - t0) / 1e6;
      }
    };
    await Promise.all(conns.map(worker));
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const cpu1 = cpuOf(serverPid);
    const sorted = [...lat].sort((a, b) => a - b);
    const round = (x: number) => Math.round(x * 1000) / 1000;
    return {
      connections,
      requests,
      reviewsPerSecond: Math.round(requests / seconds),
      p50Ms: round(pct(sorted, 50)),
      p99Ms: round(pct(sorted, 99)),
      maxMs: round(sorted.at(-1) ?? 0),
      ...(cpu0 !== undefined && cpu1 !== undefined ? { serverCpuUsPerReview: Math.round((cpu1 - cpu0) / requests) } : {}),
    };
  } finally {
    for (const c of conns) c.close();
  }
}

/** Pin this process (all its threads) to `cpu`; the controller is started on another. */
function pinSelf(cpu: number): boolean {
  return spawnSync('taskset', ['-a', '-p', '-c', String(cpu), String(process.pid)], { stdio: 'ignore' }).status === 0;
}

export async function benchInject(opts: { requests?: number; cpuProfDir?: string; pin?: boolean } = {}): Promise<InjectBenchResult> {
  const target = { reviewsPerSecond: 5000, p99Ms: 5 };
  if (!haveOpenssl()) return { skipped: 'openssl CLI not found', target };
  const requests = opts.requests ?? 20_000;
  const dir = tempDir('bench');
  const pair = makeCert(dir, 'bench');
  writeFileSync(join(dir, 'tls.crt'), pair.cert);
  writeFileSync(join(dir, 'tls.key'), pair.key);
  const [port, adminPort] = [await freePort(), await freePort()];
  const controller = [...(opts.cpuProfDir ? [`--cpu-prof`, `--cpu-prof-dir=${opts.cpuProfDir}`] : []), weft, 'controller', '--tls-cert', join(dir, 'tls.crt'), '--tls-key', join(dir, 'tls.key'), '--port', String(port), '--admin-port', String(adminPort), '--address', '127.0.0.1', '--log-level', 'warn', '--shutdown-delay-ms', '0'];
  // One core for the controller, another for this client (a 1-CPU machine cannot pin apart).
  const canPin = opts.pin !== false && availableParallelism() >= 2 && spawnSync('taskset', ['--version'], { stdio: 'ignore' }).status === 0;
  const pinned = canPin && pinSelf(1) ? { server: 0, client: 1 } : undefined;
  const child = pinned
    ? spawn('taskset', ['-c', String(pinned.server), process.execPath, ...controller], { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, NODE_OPTIONS: '' } })
    : spawn(process.execPath, controller, { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, NODE_OPTIONS: '' } });
  try {
    const deadline = Date.now() + 15_000;
    for (;;) {
      const ok = await fetch(`http://127.0.0.1:${adminPort}/readyz`).then((r) => r.ok, () => false);
      if (ok) break;
      if (Date.now() > deadline) throw new Error('weft controller did not become ready in 15 s');
      await new Promise((r) => setTimeout(r, 100));
    }
    const request = prepareRequest('/inject', Buffer.from(JSON.stringify(podReview('bench', deploymentPod()))));
    const sequential = await scenario(port, 1, requests, request, child.pid);
    const concurrent16 = await scenario(port, 16, requests, request, child.pid);
    const meets = (s: ScenarioResult) => s.reviewsPerSecond >= target.reviewsPerSecond && s.p99Ms <= target.p99Ms;
    return { ...(pinned ? { pinned } : {}), sequential, concurrent16, target, meetsTarget: meets(sequential) && meets(concurrent16) };
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const arg = (name: string) => {
    const i = process.argv.indexOf(name);
    return i > 0 ? process.argv[i + 1] : undefined;
  };
  const requests = arg('--requests');
  const cpuProfDir = arg('--cpu-prof');
  const pin = !process.argv.includes('--no-pin');
  benchInject({ ...(requests ? { requests: Number(requests) } : {}), ...(cpuProfDir ? { cpuProfDir } : {}), pin }).then(
    (r) => console.log(JSON.stringify(r, null, 2)),
    (e: unknown) => {
      console.error(e);
      process.exitCode = 1;
    },
  );
}
