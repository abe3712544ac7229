// The end-to-end interception suite, the same cases in both interception modes: real pods
// injected by pkg/inject, run by the pod sandbox, with real peers through both proxies.
// WEFT_MESH_MODES=tproxy (or ebpf) runs one mode; WEFT_MESH_1GIB=1 streams 1 GiB instead of 256 MiB.
import t, { type Test } from 'tap';
import { bpfGone, bpfObjects, noNetfilter, nothingLeft, rerunInLivePod, type BpfObjects } from './cases-cleanup.js';
import { iperf, nginx, postgres, redis, sha, type Numbers } from './cases-peers.js';
import { exclusions, halfCloseAndReset, interception, loopback, noLoop } from './cases-traffic.js';
import { PROXY, proxyTail, type Mode } from './helpers.js';
import { buildWorld, type World } from './world.js';

const MODES = (process.env.WEFT_MESH_MODES ?? 'tproxy,ebpf').split(',').filter((m): m is Mode => m === 'tproxy' || m === 'ebpf');

type Case = [name: string, fn: (t: Test, w: World) => Promise<void>];

async function suite(t: Test, mode: Mode): Promise<void> {
  const nums: Numbers = {};
  let world: World | undefined;
  let setupError: unknown;
  try {
    world = await buildWorld(t, mode);
  } catch (err) {
    setupError = err;
  }
  let bpf: BpfObjects | undefined;
  let bpfError: unknown;
  if (world && mode === 'ebpf') {
    try {
      bpf = await bpfObjects(world, [world.web, world.client, world.clientX]);
    } catch (err) {
      bpfError = err;
    }
  }
  const cases: Case[] = [
    ['1 inbound and outbound interception, pod and service addresses, IPv4 and IPv6', interception],
    ['2 excluded ports and CIDRs bypass the proxy', exclusions],
    ['3 loopback between containers of one pod is untouched', loopback],
    ['4 the proxy does not loop its own upstream connections', noLoop],
    ['6 half-close and RST through both proxies', halfCloseAndReset],
    ['5a curl → nginx: keep-alive, chunked, 50 MiB', (t, w) => nginx(t, w, nums)],
    ['5b redis-benchmark → redis-server', (t, w) => redis(t, w, nums)],
    ['5c pgbench → PostgreSQL', (t, w) => postgres(t, w, nums)],
    ['5d iperf3', (t, w) => iperf(t, w, nums)],
    ['5e SHA-256 of a bulk stream through both proxies', (t, w) => sha(t, w, nums)],
  ];
  if (mode === 'ebpf') {
    cases.push(['7a no netfilter rule in the pods', noNetfilter]);
    cases.push([
      '7b no bpf program, link, map or pin of the pods remains after deletion',
      async (t, w) => {
        if (!bpf) throw new Error(`could not list the pods' bpf objects: ${String(bpfError)}`);
        await bpfGone(t, w, bpf);
        await nothingLeft(t, w, true);
      },
    ]);
  } else {
    cases.push(['8a re-running weft init in a live pod breaks no connection and changes no rule; --cleanup restores the rules exactly', rerunInLivePod]);
    cases.push(['8 nothing of the pods remains after deletion', (t, w) => nothingLeft(t, w, false)]);
  }
  for (const [name, fn] of cases) {
    await t.test(name, async (t) => {
      if (!world) {
        t.fail(`${mode}: the pods did not start: ${setupError instanceof Error ? setupError.message : String(setupError)}`);
        return;
      }
      try {
        await fn(t, world);
      } catch (err) {
        t.fail(err instanceof Error ? err.message : String(err));
      }
      if (!t.passing()) {
        for (const p of [world.web, world.client, world.clientX]) {
          const st = p.status(PROXY);
          t.comment(`${p.name} weft-proxy ${st.running ? 'running' : `exited ${JSON.stringify(st.exit)}`}; log tail:\n${proxyTail(p)}`);
        }
      }
    });
  }
  t.comment(`${mode} numbers: ${JSON.stringify(nums)}`);
}

if (process.getuid?.() !== 0) {
  t.plan(0, 'the mesh suite needs root (network namespaces, netfilter, bpf)');
} else {
  for (const mode of MODES) await t.test(mode, (t) => suite(t, mode));
}
