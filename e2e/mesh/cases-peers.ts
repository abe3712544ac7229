// Case 5: real peers through both proxies — curl → nginx (keep-alive, chunked, 50 MiB),
// redis-benchmark → redis, pgbench → PostgreSQL, iperf3, and a SHA-256 checked bulk stream.
import { createHash } from 'node:crypto';
import type { Test } from 'tap';
import { bigBody, chunkedBody, counters, delta, hostPort, PEERS, PORTS, PYTHON } from './helpers.js';
import { run, type World } from './world.js';

/** Observed numbers, printed by the suite as a summary (the report needs them). */
export type Numbers = Record<string, string>;

export async function nginx(t: Test, w: World, nums: Numbers): Promise<void> {
  const base = `http://${hostPort(w.web.ipv4, PORTS.nginx)}`;
  const cb = await counters(w.node, w.client);
  const wb = await counters(w.node, w.web);
  // curl reuses one connection for several URLs of one host; `-o` applies to one URL each.
  const urls = Array.from({ length: 5 }, () => ['-o', '/dev/null', `${base}/`]).flat();
  const ka = await run(w.client, ['curl', '-sS', '-m', '20', '-w', '%{http_code} %{num_connects}\\n', ...urls]);
  const lines = ka.out.split('\n');
  t.same(lines.map((l) => l.split(' ')[0]), ['200', '200', '200', '200', '200'], `keep-alive: 5 requests answered 200 (${ka.err})`);
  t.equal(lines.reduce((a, l) => a + Number(l.split(' ')[1] ?? 0), 0), 1, 'keep-alive: curl opened one connection for the 5 requests');
  const c = delta(cb, await counters(w.node, w.client));
  const s = delta(wb, await counters(w.node, w.web));
  t.same([c.outbound, c.requestsOut], [1, 5], 'keep-alive: client proxy counted 1 connection and 5 requests');
  t.same([s.inbound, s.requestsIn], [1, 5], 'keep-alive: server proxy counted 1 connection and 5 requests');

  const ch = await run(w.client, ['curl', '-sS', '-m', '20', '--compressed', '-w', '\n--%{http_code} %header{transfer-encoding}', `${base}/chunked/text.txt`]);
  const cut = ch.out.lastIndexOf('\n--');
  t.equal(ch.out.slice(cut + 3), '200 chunked', `chunked: nginx answered 200 with Transfer-Encoding: chunked (${ch.err})`);
  t.ok(ch.out.slice(0, cut) === chunkedBody(), 'chunked: the decompressed body is the file nginx served');

  const want = createHash('sha256').update(bigBody()).digest('hex');
  const started = Date.now();
  const big = await run(w.client, ['sh', '-c', `curl -sS -m 90 ${base}/big | sha256sum`], 100000);
  const secs = (Date.now() - started) / 1000;
  t.equal(big.out.split(' ')[0], want, `50 MiB body: SHA-256 of what curl received matches the file (${big.err})`);
  nums['nginx 50 MiB'] = `${secs.toFixed(1)} s (${(50 / secs).toFixed(0)} MiB/s)`;
}

export async function redis(t: Test, w: World, nums: Numbers): Promise<void> {
  const cb = await counters(w.node, w.client);
  const r = await run(w.client, ['redis-benchmark', '-h', w.web.ipv4, '-p', String(PORTS.redis), '-n', '2000', '-q', '-t', 'set,get'], 45000);
  const rps = [...r.out.matchAll(/^(SET|GET): ([\d.]+) requests per second/gm)].map((m) => `${m[1]} ${m[2]}`);
  t.equal(rps.length, 2, `redis-benchmark finished SET and GET (exit ${r.code}; ${r.out.slice(-300)} ${r.err.slice(-300)})`);
  nums['redis-benchmark rps'] = rps.join(', ');
  t.ok(delta(cb, await counters(w.node, w.client)).outbound >= 2, 'redis-benchmark went through the client proxy');
}

export async function postgres(t: Test, w: World, nums: Numbers): Promise<void> {
  const conn = ['-h', w.web.ipv4, '-p', String(PORTS.pg), '-U', 'postgres'];
  const init = await run(w.client, ['pgbench', '-i', '-q', ...conn, 'postgres'], 60000);
  t.equal(init.code, 0, `pgbench -i through the mesh (${init.err.slice(-400)})`);
  const cb = await counters(w.node, w.client);
  const r = await run(w.client, ['pgbench', '-t', '200', '-c', '2', ...conn, 'postgres'], 60000);
  t.match(r.out, /number of transactions actually processed: 400\/400/, `pgbench -t 200 -c 2: all 400 transactions (${r.err.slice(-400)})`);
  const tps = /tps = ([\d.]+) \(without initial connection time\)/.exec(r.out)?.[1];
  nums['pgbench tps'] = tps ?? 'n/a';
  t.ok(delta(cb, await counters(w.node, w.client)).outbound >= 2, 'pgbench went through the client proxy');
}

export async function iperf(t: Test, w: World, nums: Numbers): Promise<void> {
  const r = await run(w.client, ['iperf3', '-c', w.web.ipv4, '-p', String(PORTS.iperf), '-t', '3', '-J'], 30000);
  let bps = 0;
  let err = r.err;
  try {
    const j = JSON.parse(r.out) as { error?: string; end?: { sum_received?: { bits_per_second?: number } } };
    bps = j.end?.sum_received?.bits_per_second ?? 0;
    err = j.error ?? err;
  } catch {
    err = `${r.out.slice(0, 300)} ${r.err}`;
  }
  t.ok(bps > 0, `iperf3 -t 3 through the mesh received data (${err})`);
  nums['iperf3'] = `${(bps / 1e9).toFixed(2)} Gbit/s`;
}

export async function sha(t: Test, w: World, nums: Numbers): Promise<void> {
  const bytes = process.env.WEFT_MESH_1GIB === '1' ? 1 << 30 : 256 << 20;
  const started = Date.now();
  const r = await run(w.client, [PYTHON, PEERS, 'send', w.web.ipv4, String(PORTS.sink), String(bytes)], bytes > 256 << 20 ? 300000 : 120000);
  const secs = (Date.now() - started) / 1000;
  const m = /^sent=([0-9a-f]{64}) got=([0-9a-f]{64}) (\d+)$/.exec(r.out);
  t.ok(m, `bulk stream finished (${r.out} ${r.err})`);
  if (m) {
    t.equal(m[2], m[1], `SHA-256 of the ${bytes >> 20} MiB the sink received equals what the client sent`);
    t.equal(Number(m[3]), bytes, 'the sink received every byte');
  }
  nums[`SHA-256 ${bytes >> 20} MiB`] = m ? `${m[1] === m[2] ? 'match' : 'MISMATCH'} in ${secs.toFixed(1)} s` : `did not finish (${secs.toFixed(1)} s)`;
}
