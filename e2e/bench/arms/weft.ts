// The weft arms. `weft-direct`: `weft proxy --mode none` in the client pod, reached through an
// iptables nat REDIRECT in that pod's own netns (the proxy reads SO_ORIGINAL_DST, see
// docs/proxy.md); its own traffic is exempt by gid 1337. `weft-tproxy` / `weft-ebpf`: client
// (and, for the two-hop HTTP path, server) pods injected by the real injector, so `weft init`
// and `weft proxy` run exactly as the webhook would start them.
import { spawnSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { ADDON_PATH } from '../../../pkg/native/load.js';
import type { SandboxPod } from '../../sandbox/index.js';
import { injected, pinAll, type Topology } from './topology.js';
import { ECHO_PORT, HTTP_PORT, PROXY_CPU, SINK_PORT, type ArmSpec, type ProxyProcess, type ReadyArm } from './types.js';

const PROXY_GID = 1337;
const OUTBOUND = 15001;

/**
 * The working tree is shared with people rebuilding the addon: wait (bounded) until the .node
 * file exists and has not changed for a few seconds, else say why the arm cannot run.
 */
async function addonSettled(timeoutMs = 180_000): Promise<string | undefined> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    let age = -1;
    try {
      age = Date.now() - statSync(ADDON_PATH).mtimeMs;
    } catch {
      /* missing: being rebuilt, or never built */
    }
    if (age > 5_000) return undefined;
    if (Date.now() > until) return `the native addon ${ADDON_PATH} is ${age < 0 ? 'missing' : 'still changing'} after ${timeoutMs / 1000} s (npm run build:addon)`;
    await new Promise((r) => setTimeout(r, 1000));
  }
}

function proxyPid(pod: SandboxPod, role: ProxyProcess['role']): ProxyProcess {
  const pid = pod.pid('weft-proxy');
  if (pid === undefined) throw new Error(`${pod.name}: weft-proxy is not running:\n${pod.logs('weft-proxy').slice(-2000)}`);
  pinAll(pid, PROXY_CPU);
  return { role, pid };
}

export function weftDirectArm(topo: Topology): ArmSpec {
  return {
    name: 'weft-direct',
    description: 'weft proxy --mode none in the client pod, reached by an iptables REDIRECT (SO_ORIGINAL_DST)',
    hops: 1,
    async setup() {
      const noAddon = await addonSettled();
      if (noAddon) return { skipped: `${noAddon}: --mode none needs it for SO_ORIGINAL_DST` };
      const client = await topo.pod('cli-wd', () =>
        topo.clientPodSpec('cli-wd', {}, [
          {
            name: 'weft-proxy',
            image: 'bench/weft',
            command: ['taskset', '-c', String(PROXY_CPU), 'weft', 'proxy', '--mode', 'none', '--log-level', 'warn'],
            securityContext: { runAsUser: PROXY_GID, runAsGroup: PROXY_GID },
            readinessProbe: { httpGet: { path: '/ready', port: 15020 }, periodSeconds: 1 },
          },
        ]),
      );
      const ip = topo.server.ipv4;
      const rule = ['-t', 'nat', '-A', 'OUTPUT', '-p', 'tcp', '-d', `${ip}/32`, '-m', 'owner', '!', '--gid-owner', String(PROXY_GID), '-m', 'comment', '--comment', 'wfbn/bench-redirect', '-j', 'REDIRECT', '--to-ports', String(OUTBOUND)];
      const check = spawnSync('nsenter', [`--net=${client.netnsPath}`, 'iptables', '-t', 'nat', '-C', ...rule.slice(3)], { encoding: 'utf8' });
      if (check.status !== 0) {
        const r = spawnSync('nsenter', [`--net=${client.netnsPath}`, 'iptables', ...rule], { encoding: 'utf8' });
        if (r.status !== 0) return { skipped: `iptables REDIRECT in the client pod failed: ${r.stderr.trim()}` };
      }
      const proxy = proxyPid(client, 'client-side');
      return {
        client,
        targets: { echo: { host: ip, port: ECHO_PORT }, sink: { host: ip, port: SINK_PORT }, http: { host: ip, port: HTTP_PORT } },
        proxies: [proxy],
        stop: async () => {},
      } satisfies ReadyArm;
    },
  };
}

export function weftMeshArm(topo: Topology, mode: 'tproxy' | 'ebpf', o: { skMsg?: boolean } = {}): ArmSpec {
  const tag = `${mode}${o.skMsg ? '-skmsg' : ''}`;
  return {
    name: `weft-${tag}`,
    description: `client pod injected with intercept: ${mode}${o.skMsg ? ' and weft-init --sk-msg on (app↔proxy bytes redirected by sk_msg)' : ''} (weft init + weft proxy --mode ${mode}); two-hop HTTP to a server pod injected the same way`,
    hops: 1,
    async setup() {
      const noAddon = await addonSettled();
      if (noAddon) return { skipped: noAddon };
      let client: SandboxPod;
      let server: SandboxPod;
      try {
        client = await topo.pod(`cli-${tag}`, () => injected(topo.clientPodSpec(`cli-${tag}`), mode, o), 60_000);
        server = await topo.pod(`srv-${tag}`, () => injected(topo.serverPodSpec(`srv-${tag}`), mode, o), 60_000);
      } catch (e) {
        return { skipped: `the injected ${mode} pods did not start: ${(e as Error).message.split('\n').slice(0, 6).join(' ').slice(0, 600)}` };
      }
      const cli = proxyPid(client, 'client-side');
      const srv = proxyPid(server, 'server-side');
      const ip = topo.server.ipv4;
      return {
        client,
        targets: {
          echo: { host: ip, port: ECHO_PORT },
          sink: { host: ip, port: SINK_PORT },
          http: { host: ip, port: HTTP_PORT },
          http2hop: { host: server.ipv4, port: HTTP_PORT },
        },
        proxies: [cli, srv],
        stop: async () => {},
      };
    },
  };
}
