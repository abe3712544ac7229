// Cases 1–4 and 6: interception in both directions and families, exclusions, loopback, no
// loop of the proxy's own upstream connections, half-close and RST — each proven by what the
// app answered and by the proxies' access log or /metrics counters.
import type { Test } from 'tap';
import type { SandboxPod } from '../sandbox/index.js';
import { counters, delta, hostPort, logDst, PEERS, PORTS, PYTHON, waitAccess } from './helpers.js';
import { run, type World } from './world.js';

interface Info {
  local: string;
  path: string;
  host: string;
}

async function askInfo(t: Test, pod: SandboxPod, ip: string, path: string): Promise<Info | undefined> {
  const r = await run(pod, ['curl', '-sS', '-m', '10', `http://${hostPort(ip, PORTS.info)}${path}`]);
  if (r.code !== 0) {
    t.fail(`curl ${hostPort(ip, PORTS.info)}${path} from ${pod.name}: exit ${r.code}: ${r.err}`);
    return undefined;
  }
  return JSON.parse(r.out) as Info;
}

export async function interception(t: Test, w: World): Promise<void> {
  const targets = [
    ['pod IPv4', w.web.ipv4],
    ['pod IPv6', w.web.ipv6],
    ['service IPv4', w.svc.ipv4],
    ['service IPv6', w.svc.ipv6],
  ] as const;
  for (const [what, ip] of targets) {
    const path = `/info/${w.mode}/${what.replace(' ', '-')}`;
    const app = await askInfo(t, w.client, ip, path);
    if (!app) continue;
    t.equal(app.local, logDst(ip, PORTS.info), `${what}: the app was reached on the address the client dialled`);
    t.equal(app.path, path, `${what}: the app saw the request path`);
    t.equal(app.host, hostPort(ip, PORTS.info), `${what}: the app saw the client's Host header`);
    const out = await waitAccess(w.client, (r) => r.dir === 'outbound' && r.path === path);
    t.equal(out?.dst, logDst(ip, PORTS.info), `${what}: the client's proxy logged the request outbound to the original destination`);
    const inb = await waitAccess(w.web, (r) => r.dir === 'inbound' && r.path === path);
    t.equal(inb?.dst, logDst(ip, PORTS.info), `${what}: the server's proxy logged the request inbound to the original destination`);
  }
}

export async function exclusions(t: Test, w: World): Promise<void> {
  // Inbound port 9100 is excluded on the server: its proxy does not see the connection.
  let cb = await counters(w.node, w.client);
  let wb = await counters(w.node, w.web);
  const echo = await run(w.client, [PYTHON, PEERS, 'echo', w.web.ipv4, String(PORTS.exclIn)]);
  t.equal(echo.out, 'echo ping', `excluded inbound port ${PORTS.exclIn}: the app answered (${echo.err})`);
  t.equal(delta(wb, await counters(w.node, w.web)).inbound, 0, `excluded inbound port ${PORTS.exclIn}: the server proxy's inbound counter did not move`);
  t.equal(delta(cb, await counters(w.node, w.client)).outbound, 1, `port ${PORTS.exclIn} is not excluded outbound: the client's proxy counted it once`);

  // client-x: outbound port 9101 and the web pod's addresses are excluded; the service address is not.
  const xb = await counters(w.node, w.clientX);
  wb = await counters(w.node, w.web);
  const viaPort = await run(w.clientX, [PYTHON, PEERS, 'echo', w.svc.ipv4, String(PORTS.exclOut)]);
  t.equal(viaPort.out, 'echo ping', `excluded outbound port ${PORTS.exclOut}: the app answered (${viaPort.err})`);
  for (const ip of [w.web.ipv4, w.web.ipv6]) {
    const app = await askInfo(t, w.clientX, ip, `/excluded-cidr/${w.mode}`);
    t.equal(app?.local, logDst(ip, PORTS.info), `excluded CIDR ${ip}: the app was reached on the dialled address`);
  }
  t.equal(delta(xb, await counters(w.node, w.clientX)).outbound, 0, 'excluded outbound port and CIDRs: client-x proxy counted no outbound connection');
  t.equal(delta(wb, await counters(w.node, w.web)).inbound, 3, 'the server proxy (no inbound exclusion for these) counted the 3 connections');

  cb = await counters(w.node, w.clientX);
  const ctl = await askInfo(t, w.clientX, w.svc.ipv4, `/not-excluded/${w.mode}`);
  t.equal(ctl?.local, logDst(w.svc.ipv4, PORTS.info), 'control: client-x to the (not excluded) service address reaches the app');
  t.equal(delta(cb, await counters(w.node, w.clientX)).outbound, 1, 'control: client-x proxy counted that connection outbound');
}

export async function loopback(t: Test, w: World): Promise<void> {
  const before = await counters(w.node, w.web);
  for (const ip of ['127.0.0.1', '::1']) {
    const r = await run(w.web, ['curl', '-sS', '-m', '10', `http://${hostPort(ip, PORTS.nginx)}/`], 15000, 'side');
    t.equal(r.out, `hello from ${w.web.name}`, `side container → nginx over ${ip}: answered (${r.err})`);
    const info = await run(w.web, ['curl', '-sS', '-m', '10', `http://${hostPort(ip, PORTS.info)}/loopback`], 15000, 'side');
    t.match(info.out, `"local": "${ip}:${PORTS.info}"`, `side container → peers over ${ip}: reached on loopback`);
  }
  const d = delta(before, await counters(w.node, w.web));
  t.same({ inbound: d.inbound, outbound: d.outbound }, { inbound: 0, outbound: 0 }, 'loopback traffic inside the pod: proxy counters did not move');
}

export async function noLoop(t: Test, w: World): Promise<void> {
  const cb = await counters(w.node, w.client);
  const wb = await counters(w.node, w.web);
  const n = 3;
  for (let i = 0; i < n; i++) {
    const r = await run(w.client, ['curl', '-sS', '-m', '10', `http://${hostPort(w.web.ipv4, PORTS.nginx)}/`]);
    t.equal(r.out, `hello from ${w.web.name}`, `request ${i + 1} completed (${r.err})`);
  }
  const c = delta(cb, await counters(w.node, w.client));
  const s = delta(wb, await counters(w.node, w.web));
  t.equal(c.outbound, n, `client proxy: outbound connections grew by exactly ${n}`);
  t.equal(c.inbound, 0, 'client proxy: its upstream connections did not come back inbound');
  t.equal(s.inbound, n, `server proxy: inbound connections grew by exactly ${n}`);
  t.equal(s.outbound, 0, 'server proxy: its connections to the app were not intercepted as outbound');
}

export async function halfCloseAndReset(t: Test, w: World): Promise<void> {
  for (const ip of [w.web.ipv4, w.web.ipv6]) {
    const hc = await run(w.client, [PYTHON, PEERS, 'halfclose', ip, String(PORTS.halfclose)]);
    t.equal(hc.out, 'got 5 bytes after your FIN', `half-close via ${ip}: the client still read the reply after shutting down its write side (${hc.err})`);
    const rst = await run(w.client, [PYTHON, PEERS, 'rst', ip, String(PORTS.rst)]);
    t.equal(rst.out, 'ECONNRESET', `server RST via ${ip}: the client saw ECONNRESET (${rst.err})`);
  }
}
