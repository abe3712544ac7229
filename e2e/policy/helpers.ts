// Shared by the policy e2e files: the app images (nginx that records what it saw, a raw TCP
// recorder), pods injected by the real injector, curl and raw-TCP clients run inside pods,
// metrics and a bounded poll that reports how long a change took.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { defaultValues, type Values } from '../../pkg/api/values.js';
import type { Pod as ApiPod } from '../../pkg/api/k8s-types.js';
import { injectPod, isSkip } from '../../pkg/inject/index.js';
import { weftVersion } from '../../pkg/version/index.js';
import type { ImageMapping, Pod, SandboxNode, SandboxPod } from '../sandbox/index.js';

export type Mode = 'tproxy' | 'ebpf';
export const NS = 'pol';
export const PORT = 8080;
export const TCP_PORT = 9000;

/** nginx answering "hello" on every path, logging each request it sees to a file in the pod dir. */
export const nginxImage: ImageMapping = (ctx) => {
  const dir = ctx.podDir;
  const conf = join(dir, 'nginx.conf');
  writeFileSync(
    conf,
    `daemon off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log stderr warn;
events { worker_connections 64; }
http {
  log_format seen '$remote_addr $request $status';
  access_log ${dir}/access.log seen;
  keepalive_requests 100;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  server {
    listen ${PORT};
    listen [::]:${PORT};
    location / { default_type text/plain; return 200 "hello from ${ctx.pod.name}\\n"; }
  }
}
`,
  );
  return { argv: ['nginx', '-p', dir, '-e', 'stderr', '-c', conf] };
};

/** A raw TCP app on TCP_PORT: logs every connection and every byte it receives to tcp.log, answers "ok". */
export const tcpRecorderImage: ImageMapping = (ctx) => {
  const log = join(ctx.podDir, 'tcp.log');
  writeFileSync(log, '');
  const script = `const fs = require('fs'); const rec = (l) => fs.appendFileSync(${JSON.stringify(log)}, l + '\\n');
require('net').createServer((s) => { rec('conn ' + s.remoteAddress); s.on('data', (d) => { rec('data ' + d.length); s.write('ok\\n'); }); s.on('error', () => {}); }).listen(${TCP_PORT}, '::');`;
  return { argv: [ctx.node.nodeBinary, '-e', script] };
};

export function inject(pod: Pod, values: Values = defaultValues()): Pod {
  const r = injectPod(pod as unknown as ApiPod, { name: NS, labels: { 'weft.dev/inject': 'enabled' } }, { values, version: weftVersion() });
  if (isSkip(r)) throw new Error(`injector skipped ${pod.metadata?.name}: ${JSON.stringify(r)}`);
  return r.injectedPod as unknown as Pod;
}

export const proxyOf = (pod: Pod) => {
  const c = [...(pod.spec.initContainers ?? []), ...pod.spec.containers].find((x) => x.name === 'weft-proxy');
  if (!c) throw new Error(`${pod.metadata?.name}: no weft-proxy container`);
  return c;
};

export function serverPod(name: string, mode: Mode, opts: { annotations?: Record<string, string>; tcp?: boolean; serviceAccount?: string } = {}): Pod {
  const containers: Pod['spec']['containers'] = [
    { name: 'nginx', image: 'wfpe/nginx:1', ports: [{ name: 'http', containerPort: PORT }], readinessProbe: { httpGet: { path: '/', port: 'http' }, periodSeconds: 1, failureThreshold: 30 } },
  ];
  if (opts.tcp) containers.push({ name: 'tcprec', image: 'wfpe/tcprec:1', ports: [{ name: 'raw', containerPort: TCP_PORT }] });
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: NS, labels: { app: name === 'web' ? 'web' : name, tier: 'front' }, annotations: { intercept: mode, ...opts.annotations } },
    spec: { ...(opts.serviceAccount ? { serviceAccountName: opts.serviceAccount } : {}), containers },
  } as Pod;
}

export function clientPod(name: string, mode: Mode, serviceAccount?: string): Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: NS, labels: { app: name }, annotations: { intercept: mode } },
    spec: { ...(serviceAccount ? { serviceAccountName: serviceAccount } : {}), containers: [{ name: 'client', image: 'wfpe/client:1', command: ['sleep', 'infinity'] }] },
  } as Pod;
}

export const cidrs = (ips: readonly string[]) => ips.map((ip) => `"${ip}/${ip.includes(':') ? 128 : 32}"`).join(', ');

export interface Got {
  code: number | null;
  status: string;
  err: string;
}

export async function get(from: SandboxPod, url: string): Promise<Got> {
  const r = await from.exec(['curl', '-sS', '-m', '3', '-o', '/dev/null', '-w', '%{http_code}', url], { container: 'client', timeoutMs: 6000 });
  return { code: r.timedOut ? -1 : r.code, status: r.stdout.trim(), err: r.stderr.trim() };
}

/** Connect to host:port from inside the pod, send "hello", report what happened: "reply" (got "ok"), "reset" (ECONNRESET), "closed" (a FIN), or another error code. */
export async function rawTcp(node: SandboxNode, from: SandboxPod, host: string, port: number): Promise<string> {
  const script = `const s = require('net').connect({ host: ${JSON.stringify(host)}, port: ${port} }); let got = '', done = false;
const out = (w) => { if (!done) { done = true; console.log(w); process.exit(0); } };
s.on('connect', () => s.write('hello'));
s.on('data', (d) => { got += d; if (got.includes('ok')) out('reply'); });
s.on('error', (e) => out(e.code === 'ECONNRESET' ? 'reset' : 'error ' + e.code));
s.on('close', () => out('closed'));
setTimeout(() => out('timeout'), 3000);`;
  const r = await from.exec([node.nodeBinary, '-e', script], { container: 'client', timeoutMs: 8000 });
  return r.stdout.trim() || `exit ${r.code}: ${r.stderr.trim()}`;
}

export const seenByNginx = (pod: SandboxPod): string[] => linesOf(join(pod.dir, 'access.log'));
export const seenByTcpApp = (pod: SandboxPod): string[] => linesOf(join(pod.dir, 'tcp.log'));

function linesOf(file: string): string[] {
  try {
    return readFileSync(file, 'utf8').split('\n').filter(Boolean);
  } catch {
    return [];
  }
}

export async function metric(node: SandboxNode, pod: SandboxPod, name: string, filter: RegExp): Promise<number> {
  const r = await node.exec(['curl', '-sS', '-m', '3', `http://${pod.ipv4}:15020/metrics`], { timeoutMs: 6000 });
  return r.stdout
    .split('\n')
    .filter((l) => l.startsWith(`${name}{`) && filter.test(l))
    .reduce((acc, l) => acc + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
}

/** Polls `check` from the moment of the change; returns ms from the change to the end of the
 * first check that held (an upper bound on the propagation time), or undefined past `ms`. */
export async function within(ms: number, since: number, check: () => Promise<boolean>): Promise<number | undefined> {
  for (;;) {
    if (await check()) {
      const took = Date.now() - since;
      return took <= ms ? took : undefined;
    }
    if (Date.now() - since > ms) return undefined;
    await new Promise((r) => setTimeout(r, 100));
  }
}
