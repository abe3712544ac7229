// The bench topology on one sandbox node: server pods (the C echo/sink server and nginx, both
// pinned to SERVER_CPU) and client pods (an idle app container the workloads exec into,
// pinned to CLIENT_CPU at exec time). Extra processes (HAProxy, nginx stream) are started by
// the harness inside a pod's network namespace with nsenter and stopped by it.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Pod } from '../../../pkg/api/k8s-types.js';
import { defaultValues } from '../../../pkg/api/values.js';
import { injectPod, isSkip } from '../../../pkg/inject/index.js';
import type { SandboxNode, SandboxPod } from '../../sandbox/index.js';
import { ECHO_PORT, HTTP_PORT, SERVER_CPU, SINK_PORT } from './types.js';

/** 1 KiB of body, so the HTTP workload moves 1 KB responses. */
const BODY = 'x'.repeat(1024);

export function nginxHttpConf(dir: string, name: string, listen: string): string {
  const conf = join(dir, `${name}.conf`);
  writeFileSync(
    conf,
    `daemon off;
worker_processes 1;
pid ${dir}/${name}.pid;
error_log stderr warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 10000000;
  keepalive_timeout 300s;
  client_body_temp_path ${dir}/${name}-body;
  proxy_temp_path ${dir}/${name}-proxy;
  fastcgi_temp_path ${dir}/${name}-fastcgi;
  uwsgi_temp_path ${dir}/${name}-uwsgi;
  scgi_temp_path ${dir}/${name}-scgi;
  server {
    listen ${listen};
    location / { default_type text/plain; return 200 "${BODY}"; }
  }
}
`,
  );
  return conf;
}

function serverPod(name: string, pingpong: string, confDir: string, annotations: Record<string, string>): Pod {
  const conf = nginxHttpConf(confDir, `nginx-${name}`, String(HTTP_PORT));
  const cpu = String(SERVER_CPU);
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'bench', annotations },
    spec: {
      terminationGracePeriodSeconds: 1,
      containers: [
        {
          name: 'echo',
          image: 'bench/pingpong',
          command: ['taskset', '-c', cpu, pingpong, 'serve', String(ECHO_PORT), String(SINK_PORT)],
          ports: [{ containerPort: ECHO_PORT }, { containerPort: SINK_PORT }],
          readinessProbe: { tcpSocket: { port: ECHO_PORT }, periodSeconds: 1 },
        },
        {
          name: 'web',
          image: 'bench/nginx-1k',
          command: ['taskset', '-c', cpu, 'nginx', '-p', confDir, '-e', 'stderr', '-c', conf],
          ports: [{ containerPort: HTTP_PORT }],
          readinessProbe: { tcpSocket: { port: HTTP_PORT }, periodSeconds: 1 },
        },
      ],
    },
  };
}

function clientPod(name: string, annotations: Record<string, string>, extra: Pod['spec']['containers'] = []): Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'bench', annotations },
    spec: {
      terminationGracePeriodSeconds: 1,
      containers: [{ name: 'app', image: 'bench/idle', command: ['sleep', 'infinity'] }, ...extra],
    },
  };
}

/** The pod as the webhook would admit it in a namespace labelled for injection. With
 * `skMsg`, weft-init also gets `--sk-msg on` (off by default, see docs/ebpf.md). */
export function injected(pod: Pod, mode: 'tproxy' | 'ebpf', o: { skMsg?: boolean } = {}): Pod {
  const annotated: Pod = { ...pod, metadata: { ...pod.metadata, annotations: { ...pod.metadata?.annotations, intercept: mode } } };
  const r = injectPod(annotated, { name: 'bench', labels: { 'weft.dev/inject': 'enabled' } }, { values: defaultValues(), version: '0.1.0' });
  if (isSkip(r)) throw new Error(`not injected: ${r.message}`);
  if (!o.skMsg) return r.injectedPod;
  const spec = r.injectedPod.spec!;
  const initContainers = (spec.initContainers ?? []).map((c) => (c.name === 'weft-init' ? { ...c, args: [...(c.args ?? []), '--sk-msg', 'on'] } : c));
  return { ...r.injectedPod, spec: { ...spec, initContainers } };
}

export interface Topology {
  node: SandboxNode;
  pingpong: string;
  /** The plain server: every arm's one-hop target. */
  server: SandboxPod;
  /** Lazily created pods, by name; removed with the node. */
  pod(name: string, make: () => Pod, timeoutMs?: number): Promise<SandboxPod>;
  serverPodSpec(name: string, annotations?: Record<string, string>): Pod;
  clientPodSpec(name: string, annotations?: Record<string, string>, extra?: Pod['spec']['containers']): Pod;
  /** A long-running helper inside a pod's netns, pinned with taskset; killed by stopAll. */
  spawnIn(pod: SandboxPod, cpu: number, argv: string[]): ChildProcess;
  stopAll(): void;
}

export async function buildTopology(node: SandboxNode, pingpong: string): Promise<Topology> {
  const pods = new Map<string, SandboxPod>();
  const children = new Set<ChildProcess>();
  const confDir = node.dir;
  const tune = async (p: SandboxPod): Promise<void> => {
    // Connection-rate runs leave TIME_WAIT sockets: widen the port range and reuse them, in the
    // pod's own network namespace only.
    spawnSync('nsenter', [`--net=${p.netnsPath}`, 'sysctl', '-q', '-w', 'net.ipv4.ip_local_port_range=1024 65000', 'net.ipv4.tcp_tw_reuse=1']);
  };
  const topo: Topology = {
    node,
    pingpong,
    server: undefined as unknown as SandboxPod,
    async pod(name, make, timeoutMs = 60_000) {
      const have = pods.get(name);
      if (have) return have;
      const p = await node.runPod(make(), { timeoutMs });
      await tune(p);
      pods.set(name, p);
      return p;
    },
    serverPodSpec: (name, annotations = {}) => serverPod(name, pingpong, confDir, annotations),
    clientPodSpec: (name, annotations = {}, extra = []) => clientPod(name, annotations, extra),
    spawnIn(pod, cpu, argv) {
      const child = spawn('nsenter', [`--net=${pod.netnsPath}`, '--', 'taskset', '-c', String(cpu), ...argv], { stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      child.stderr?.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
      child.on('exit', () => children.delete(child));
      Object.defineProperty(child, 'errText', { get: () => err });
      children.add(child);
      return child;
    },
    stopAll() {
      for (const c of children) c.kill('SIGKILL');
      children.clear();
    },
  };
  topo.server = await topo.pod('srv', () => topo.serverPodSpec('srv'));
  return topo;
}

/** Resolves once a TCP port accepts in the pod's netns (bounded). */
export async function waitPort(pod: SandboxPod, host: string, port: number, timeoutMs = 5000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const r = spawnSync('nsenter', [`--net=${pod.netnsPath}`, 'bash', '-c', `exec 3<>/dev/tcp/${host}/${port}`], { timeout: 1000 });
    if (r.status === 0) return;
    if (Date.now() > until) throw new Error(`nothing listens on ${host}:${port} in ${pod.name} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Pins every thread of a running process (proxies started by the sandbox). */
export function pinAll(pid: number, cpu: number): void {
  spawnSync('taskset', ['-apc', String(cpu), String(pid)], { stdio: 'ignore' });
}
