// Arms without weft: the client straight to the server, and a general-purpose proxy (HAProxy,
// nginx stream) in the client pod as a middle hop on loopback, the way a sidecar sits. For the
// two-hop HTTP path a second instance runs in the server pod in front of nginx.
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SandboxPod } from '../../sandbox/index.js';
import { waitPort, type Topology } from './topology.js';
import { ECHO_PORT, HTTP_PORT, PROXY_CPU, SINK_PORT, type ArmSpec, type ProxyProcess } from './types.js';

const LOCAL = '127.0.0.1';
/**
 * Ports a middle-hop arm listens on. Each arm has its own block: the arms' proxies run side by
 * side in one client pod, and HAProxy's SO_REUSEPORT would otherwise share a port between two
 * instances silently (the config also sets `noreuseport`, so a clash fails instead).
 */
function portsOf(base: number) {
  return { echo: base, sink: base + 1, http: base + 2, http2hop: base + 3, serverSide: base + 4 };
}

export function directArm(topo: Topology): ArmSpec {
  return {
    name: 'direct',
    description: 'client pod → server pod, no proxy',
    hops: 0,
    async setup() {
      const client = await topo.pod('cli', () => topo.clientPodSpec('cli'));
      const ip = topo.server.ipv4;
      return {
        client,
        targets: { echo: { host: ip, port: ECHO_PORT }, sink: { host: ip, port: SINK_PORT }, http: { host: ip, port: HTTP_PORT } },
        proxies: [],
        stop: async () => {},
      };
    },
  };
}

export function haproxyVersion(): string | undefined {
  const r = spawnSync('haproxy', ['-v'], { encoding: 'utf8' });
  return r.status === 0 ? (r.stdout.split('\n')[0] ?? '').trim() : undefined;
}

function haproxyConf(dir: string, name: string, splice: boolean, bind: string, routes: [number, string, number][]): string {
  const file = join(dir, `${name}.cfg`);
  const listens = routes.map(([port, host, to], i) => `listen r${i}\n  bind ${bind}:${port}\n  server s ${host}:${to}\n`);
  writeFileSync(
    file,
    `global
  nbthread 1
  noreuseport
  maxconn 4000
defaults
  mode tcp
  timeout connect 5s
  timeout client 300s
  timeout server 300s
${splice ? '  option splice-auto\n' : ''}${listens.join('')}`,
  );
  return file;
}

async function startHaproxy(topo: Topology, pod: SandboxPod, name: string, splice: boolean, routes: [number, string, number][], role: ProxyProcess['role']): Promise<ProxyProcess> {
  // The client-side instance sits on loopback like a sidecar; the server-side one takes traffic
  // from the network.
  const bind = role === 'client-side' ? LOCAL : pod.ipv4;
  const conf = haproxyConf(topo.node.dir, name, splice, bind, routes);
  const child = topo.spawnIn(pod, PROXY_CPU, ['haproxy', '-db', '-f', conf]);
  const [first] = routes;
  try {
    if (first) await waitPort(pod, bind, first[0]);
  } catch (e) {
    child.kill('SIGKILL');
    throw new Error(`${(e as Error).message}; haproxy said: ${(child as unknown as { errText: string }).errText.trim().slice(-600)}`);
  }
  if (child.pid === undefined || child.exitCode !== null) throw new Error(`haproxy ${name} did not start`);
  return { role, pid: child.pid };
}

export function haproxyArm(topo: Topology, splice: boolean): ArmSpec {
  const name = splice ? 'haproxy-splice' : 'haproxy';
  return {
    name,
    description: `HAProxy ${splice ? 'mode tcp + option splice-auto' : 'mode tcp'}, nbthread 1, in the client pod on loopback`,
    hops: 1,
    async setup() {
      if (!haproxyVersion()) return { skipped: 'haproxy is not installed (apt package haproxy)' };
      const client = await topo.pod('cli', () => topo.clientPodSpec('cli'));
      const ip = topo.server.ipv4;
      const P = portsOf(splice ? 18100 : 18000);
      const routes: [number, string, number][] = [
        [P.echo, ip, ECHO_PORT],
        [P.sink, ip, SINK_PORT],
        [P.http, ip, HTTP_PORT],
        [P.http2hop, ip, P.serverSide],
      ];
      const cli = await startHaproxy(topo, client, `${name}-cli`, splice, routes, 'client-side');
      const srv = await startHaproxy(topo, topo.server, `${name}-srv`, splice, [[P.serverSide, LOCAL, HTTP_PORT]], 'server-side');
      return {
        client,
        targets: {
          echo: { host: LOCAL, port: P.echo },
          sink: { host: LOCAL, port: P.sink },
          http: { host: LOCAL, port: P.http },
          http2hop: { host: LOCAL, port: P.http2hop },
        },
        proxies: [cli, srv],
        stop: async () => {
          for (const p of [cli, srv]) {
            try {
              process.kill(p.pid, 'SIGKILL');
            } catch {
              /* already gone */
            }
          }
        },
      };
    },
  };
}

/** The nginx stream module: built in, or a dynamic module Debian ships separately. */
export function nginxStreamModule(): string | undefined {
  const r = spawnSync('nginx', ['-V'], { encoding: 'utf8' });
  const flags = `${r.stdout}${r.stderr}`;
  if (/--with-stream(?!=dynamic)(\s|$)/.test(flags)) return '';
  for (const p of ['/usr/lib/nginx/modules/ngx_stream_module.so', '/usr/share/nginx/modules/ngx_stream_module.so']) if (existsSync(p)) return p;
  return undefined;
}

export function nginxStreamArm(topo: Topology): ArmSpec {
  return {
    name: 'nginx-stream',
    description: 'nginx stream proxy, one worker, in the client pod on loopback',
    hops: 1,
    async setup() {
      const mod = nginxStreamModule();
      if (mod === undefined) return { skipped: 'nginx has no stream module here (nginx -V: --with-stream=dynamic, no ngx_stream_module.so): add apt package libnginx-mod-stream' };
      const client = await topo.pod('cli', () => topo.clientPodSpec('cli'));
      const ip = topo.server.ipv4;
      const dir = topo.node.dir;
      const P = portsOf(18200);
      const conf = join(dir, 'nginx-stream.conf');
      const server = (port: number, to: number) => `  server { listen ${LOCAL}:${port}; proxy_pass ${ip}:${to}; proxy_timeout 300s; }\n`;
      writeFileSync(
        conf,
        `${mod ? `load_module ${mod};\n` : ''}daemon off;\nworker_processes 1;\npid ${dir}/nginx-stream.pid;\nerror_log stderr warn;\nevents { worker_connections 20000; }\nstream {\n${server(P.echo, ECHO_PORT)}${server(P.sink, SINK_PORT)}${server(P.http, HTTP_PORT)}}\n`,
      );
      const child = topo.spawnIn(client, PROXY_CPU, ['nginx', '-p', dir, '-e', 'stderr', '-c', conf]);
      await waitPort(client, LOCAL, P.echo);
      // The master forks one worker; the worker moves the bytes, so it is the one measured.
      const worker = spawnSync('pgrep', ['-P', String(child.pid)], { encoding: 'utf8' }).stdout.trim().split('\n')[0];
      const pid = Number(worker || child.pid);
      return {
        client,
        targets: { echo: { host: LOCAL, port: P.echo }, sink: { host: LOCAL, port: P.sink }, http: { host: LOCAL, port: P.http } },
        proxies: [{ role: 'client-side', pid }],
        stop: async () => {
          child.kill('SIGKILL');
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            /* gone with the master */
          }
        },
      };
    },
  };
}
