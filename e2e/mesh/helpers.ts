// Helpers of the mesh suite: pods injected by the real injector (`injectPod`), the peers'
// image mappings, and readers of what a user would look at (the proxies' /metrics and access log).
import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultValues } from '../../pkg/api/values.js';
import { injectPod, isSkip } from '../../pkg/inject/index.js';
import type { Pod as ApiPod } from '../../pkg/api/k8s-types.js';
import { weftVersion } from '../../pkg/version/index.js';
import type { Container, ImageMapping, Pod, SandboxNode, SandboxPod } from '../sandbox/index.js';

export type Mode = 'tproxy' | 'ebpf';
export const NS = 'mesh';
export const PROXY = 'weft-proxy';

/** dist/e2e/mesh → the repository's e2e/mesh, where peers.py lives (tsc does not copy it). */
export const PEERS = fileURLToPath(new URL('../../../e2e/mesh/peers.py', import.meta.url));
export const PYTHON = '/usr/bin/python3';

export const BIG_BYTES = 50 * 1024 * 1024;
export const PORTS = { nginx: 8080, info: 8081, sink: 9000, halfclose: 9001, rst: 9002, exclIn: 9100, exclOut: 9101, redis: 6379, pg: 5432, iperf: 5201 } as const;

/** Run a pod spec through the injector as the webhook would, with the proxy's access log on. */
export function inject(pod: Pod): Pod {
  const r = injectPod(pod as unknown as ApiPod, { name: NS, labels: { 'weft.dev/inject': 'enabled' } }, { values: defaultValues(), version: weftVersion() });
  if (isSkip(r)) throw new Error(`injector skipped ${pod.metadata?.name}: ${JSON.stringify(r)}`);
  const out = r.injectedPod as unknown as Pod;
  const proxy = [...(out.spec.initContainers ?? []), ...out.spec.containers].find((c) => c.name === PROXY);
  if (!proxy) throw new Error(`injected pod ${pod.metadata?.name} has no ${PROXY} container`);
  proxy.env = [...(proxy.env ?? []), { name: 'WEFT_ACCESS_LOG', value: 'true' }];
  return out;
}

const execProbe = (argv: string[]) => ({ exec: { command: argv }, periodSeconds: 1, failureThreshold: 60 });

function meta(name: string, mode: Mode, annotations: Record<string, string> = {}) {
  return { name, namespace: NS, labels: { app: name }, annotations: { intercept: mode, ...annotations } };
}

/** The long-lived server pod: nginx, the python peers, redis, PostgreSQL, iperf3 and a side container. */
export function serverPod(mode: Mode): Pod {
  const containers: Container[] = [
    { name: 'nginx', image: 'mesh/nginx:1', ports: [{ containerPort: PORTS.nginx }], readinessProbe: execProbe(['curl', '-sf', '-o', '/dev/null', `http://127.0.0.1:${PORTS.nginx}/`]) },
    { name: 'peers', image: 'mesh/peers:1', command: [PYTHON, PEERS, 'serve'], readinessProbe: execProbe(['curl', '-sf', '-o', '/dev/null', `http://127.0.0.1:${PORTS.info}/ready`]) },
    { name: 'redis', image: 'redis:7', ports: [{ containerPort: PORTS.redis }], readinessProbe: execProbe(['redis-cli', '-p', String(PORTS.redis), 'ping']) },
    {
      name: 'postgres',
      image: 'mesh/postgres:15',
      securityContext: { runAsUser: 101, runAsGroup: 104 },
      volumeMounts: [{ name: 'pgdata', mountPath: '/wfms-pg' }],
      readinessProbe: execProbe(['pg_isready', '-q', '-h', '127.0.0.1', '-p', String(PORTS.pg)]),
    },
    { name: 'iperf', image: 'mesh/iperf3:1', command: ['iperf3', '-s', '-p', String(PORTS.iperf)] },
    { name: 'side', image: 'mesh/client:1', command: ['sleep', 'infinity'] },
  ];
  return { apiVersion: 'v1', kind: 'Pod', metadata: meta('web', mode, { 'weft.dev/exclude-inbound-ports': String(PORTS.exclIn) }), spec: { containers, volumes: [{ name: 'pgdata', emptyDir: {} }] } };
}

export function clientPod(name: string, mode: Mode, annotations: Record<string, string> = {}): Pod {
  return { apiVersion: 'v1', kind: 'Pod', metadata: meta(name, mode, annotations), spec: { containers: [{ name: 'client', image: 'mesh/client:1', command: ['sleep', 'infinity'] }] } };
}

/** nginx serving `/` (keep-alive), `/big` (a generated 50 MiB file) and `/chunked/` (gzip on the fly → chunked). */
export const nginxImage: ImageMapping = (ctx) => {
  const dir = join(ctx.podDir, 'nginx');
  mkdirSync(join(dir, 'www', 'chunked'), { recursive: true });
  // A fixed pattern, so the test can compute the expected hash without reading the file back.
  writeFileSync(join(dir, 'www', 'big'), bigBody());
  writeFileSync(join(dir, 'www', 'chunked', 'text.txt'), chunkedBody());
  const conf = join(dir, 'nginx.conf');
  writeFileSync(
    conf,
    `daemon off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log stderr warn;
events { worker_connections 256; }
http {
  access_log off;
  keepalive_requests 1000;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  server {
    listen ${PORTS.nginx};
    listen [::]:${PORTS.nginx};
    root ${dir}/www;
    location = / { default_type text/plain; return 200 "hello from ${ctx.pod.name}\\n"; }
    location /chunked/ { default_type text/plain; gzip on; gzip_min_length 1; gzip_types text/plain; }
  }
}
`,
  );
  return { argv: ['nginx', '-p', dir, '-e', 'stderr', '-c', conf] };
};

export function bigBody(): Buffer {
  const unit = Buffer.alloc(1024 * 1024);
  for (let i = 0; i < unit.length; i++) unit[i] = (i * 31 + (i >> 10)) & 0xff;
  return Buffer.concat(Array.from({ length: BIG_BYTES / unit.length }, (_, k) => Buffer.concat([Buffer.from(`block ${k} `), unit.subarray(0, unit.length - `block ${k} `.length)])));
}

export function chunkedBody(): string {
  return Array.from({ length: 4000 }, (_, i) => `line ${i} of a response nginx compresses on the fly`).join('\n') + '\n';
}

/** initdb as the postgres user into the pod's emptyDir, then postgres on all addresses with trust auth. */
export const postgresImage: ImageMapping = () => {
  const bin = '/usr/lib/postgresql/15/bin';
  const data = '/wfms-pg/data';
  const script = [
    `${bin}/initdb -D ${data} -U postgres --auth=trust >/dev/null`,
    `printf 'host all all 0.0.0.0/0 trust\\nhost all all ::/0 trust\\n' >> ${data}/pg_hba.conf`,
    `exec ${bin}/postgres -D ${data} -c listen_addresses='*' -p ${PORTS.pg} -k /wfms-pg -c fsync=off`,
  ].join(' && ');
  return { argv: ['/bin/sh', '-c', script] };
};

export const images: Record<string, ImageMapping> = { 'mesh/nginx': nginxImage, 'mesh/postgres': postgresImage };

export interface Counters {
  inbound: number;
  outbound: number;
  requestsIn: number;
  requestsOut: number;
  raw: string;
}

/** The proxy's counters as its /metrics shows them, scraped from the node like Prometheus would. */
export async function counters(node: SandboxNode, pod: SandboxPod): Promise<Counters> {
  const r = await node.exec(['curl', '-sS', '-m', '5', `http://${pod.ipv4}:15020/metrics`], { timeoutMs: 8000 });
  if (r.code !== 0) throw new Error(`metrics of ${pod.name}: curl exit ${r.code}: ${r.stderr}`);
  const sum = (name: string, dir: string): number =>
    r.stdout
      .split('\n')
      .filter((l) => l.startsWith(`${name}{`) && l.includes(`direction="${dir}"`))
      .reduce((acc, l) => acc + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
  return {
    inbound: sum('weft_tcp_connections_opened_total', 'inbound'),
    outbound: sum('weft_tcp_connections_opened_total', 'outbound'),
    requestsIn: sum('weft_requests_total', 'inbound'),
    requestsOut: sum('weft_requests_total', 'outbound'),
    raw: r.stdout,
  };
}

export function delta(before: Counters, after: Counters): { inbound: number; outbound: number; requestsIn: number; requestsOut: number } {
  return { inbound: after.inbound - before.inbound, outbound: after.outbound - before.outbound, requestsIn: after.requestsIn - before.requestsIn, requestsOut: after.requestsOut - before.requestsOut };
}

export interface AccessRecord {
  dir?: string;
  dst?: string;
  path?: string;
  proto?: string;
  status?: unknown;
  [k: string]: unknown;
}

/** The proxy's access-log lines (JSON with a `dir` field) so far. */
export function accessLog(pod: SandboxPod): AccessRecord[] {
  const out: AccessRecord[] = [];
  for (const line of pod.logs(PROXY).split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const rec = JSON.parse(line) as AccessRecord;
      if (typeof rec.dir === 'string' && 'dst' in rec) out.push(rec);
    } catch {
      // a partial line at the tail of the log
    }
  }
  return out;
}

/** Waits (bounded) for an access-log record; returns it or undefined. */
export async function waitAccess(pod: SandboxPod, pred: (r: AccessRecord) => boolean, timeoutMs = 5000): Promise<AccessRecord | undefined> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const hit = accessLog(pod).find(pred);
    if (hit || Date.now() > end) return hit;
    await sleep(100);
  }
}

/** The proxy's own log lines (not access-log records), last few: shown when a case fails. */
export function proxyTail(pod: SandboxPod, lines = 12): string {
  const own = pod.logs(PROXY).split('\n').filter((l) => l.trim() !== '' && !/"dir":"(inbound|outbound)".*"dst":/.test(l));
  return own.slice(-lines).map((l) => l.slice(0, 400)).join('\n');
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `[v6]` in URLs and host:port strings. */
export const hostPort = (ip: string, port: number) => (ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`);
/** The proxy's access log writes `address:port` without brackets. */
export const logDst = (ip: string, port: number) => `${ip}:${port}`;

/** A host tool (bpftool, ip) run directly, bounded; NODE_OPTIONS that tap injects is dropped. */
export function host(argv: string[], timeoutMs = 15000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const env = { ...process.env };
    delete env.NODE_OPTIONS;
    execFile(argv[0]!, argv.slice(1), { timeout: timeoutMs, env, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}
