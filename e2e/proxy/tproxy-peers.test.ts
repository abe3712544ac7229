// `weft proxy --mode tproxy` in a network namespace behind a minimal TPROXY rule set, with
// real peers from another namespace: curl → nginx (keep-alive, chunked both ways, large
// bodies), redis-benchmark → redis, pgbench → PostgreSQL, iperf3. Each load is bounded.
// Ports 5202 and 6380 are excluded from interception, for a direct comparison.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { appendFileSync, mkdirSync, readFileSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { nativeAvailable } from '../../pkg/native/index.js';
import { bedUnavailable, createBed, waitFor, type Bed } from './netns.js';

const WEFT = fileURLToPath(new URL('../../../bin/weft', import.meta.url));
const has = (tool: string): boolean => spawnSync('which', [tool]).status === 0;
const PG_BIN = (() => {
  try {
    const v = readdirSync('/usr/lib/postgresql').sort().pop();
    return v ? `/usr/lib/postgresql/${v}/bin` : null;
  } catch {
    return null;
  }
})();

const skip = bedUnavailable() ?? (nativeAvailable() ? false : 'native addon not built (tproxy listeners need IP_TRANSPARENT)');

function deterministic(n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  let x = 12345;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}
const sha = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

async function startProxy(bed: Bed, relay: 'native' | 'js'): Promise<{ stop: () => Promise<number | null>; startupMs: number }> {
  const t0 = Date.now();
  const p = bed.start(bed.pod, [process.execPath, WEFT, 'proxy', '--mode', 'tproxy', '--relay', relay, '--log-level', 'info', '--drain-grace-ms', '2000']);
  await waitFor('proxy /ready', () => bed.run(bed.client, ['curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', `http://${bed.podIp}:15020/ready`]) === '200', 15_000);
  const m = /"startupMs":(\d+)/.exec(p.output());
  return {
    startupMs: m ? Number(m[1]) : Date.now() - t0,
    stop: () =>
      new Promise((resolve) => {
        p.once('exit', (code) => resolve(code));
        p.kill('SIGTERM');
      }),
  };
}

t.test('tproxy mode with real peers', { skip, timeout: 240_000 }, async (t) => {
  const bed = await createBed('p');
  const dir = mkdtempSync(join(tmpdir(), 'wfpx-peers-'));
  t.teardown(async () => {
    await bed.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const proxy = await startProxy(bed, 'native');
  t.comment(`proxy startup to ready (in-process clock): ${proxy.startupMs} ms`);
  // Kept for a second round through the JS relay at the end.
  let iperf = null as ((port: string) => number) | null;
  let redis = null as ((port: string) => number) | null;
  const curl = (...args: string[]): string => bed.run(bed.client, ['curl', '-sS', '--max-time', '30', ...args], { timeoutMs: 40_000 });

  await t.test('curl → nginx: keep-alive, large and chunked bodies both ways', { skip: has('nginx') ? false : 'nginx not installed' }, async (t) => {
    const www = join(dir, 'www');
    mkdirSync(www);
    const big = deterministic(30 * 2 ** 20);
    writeFileSync(join(www, 'big.bin'), big);
    const text = Array.from({ length: 200_000 }, (_, i) => `line ${i} of a compressible text\n`).join('');
    writeFileSync(join(www, 'text.txt'), text);
    writeFileSync(join(www, 'small.txt'), 'small\n');
    writeFileSync(join(dir, 'upload.bin'), deterministic(5 * 2 ** 20));
    const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((k) => `${k}_temp_path ${dir}/${k};`).join(' ');
    writeFileSync(
      join(dir, 'nginx.conf'),
      `daemon off; master_process off; worker_processes 1; pid ${dir}/nginx.pid; error_log ${dir}/error.log;
events { worker_connections 256; }
http { log_format plain '$request_uri $status'; access_log ${dir}/access.log plain; ${temp} gzip on; gzip_types *; gzip_min_length 1; client_max_body_size 64m;
  server { listen ${bed.podIp}:80; root ${www}; location = /upload { client_body_buffer_size 64k; return 200 "uploaded\\n"; } } }
`,
    );
    bed.start(bed.pod, ['nginx', '-c', join(dir, 'nginx.conf'), '-e', join(dir, 'error.log')]);
    await waitFor('nginx via proxy', () => curl('-o', '/dev/null', '-w', '%{http_code}', `http://${bed.podIp}/small.txt`) === '200');
    const small = `http://${bed.podIp}/small.txt`;
    const ka = curl('-w', '%{http_code} %{num_connects}\n', '-o', '/dev/null', small, '-o', '/dev/null', small, '-o', '/dev/null', small);
    t.equal(ka, '200 1\n200 0\n200 0\n', 'three requests over one kept-alive connection');
    const out = join(dir, 'big.out');
    curl('-o', out, `http://${bed.podIp}/big.bin`);
    t.equal(sha(readFileSync(out)), sha(big), '30 MiB download is byte-exact');
    const hdrs = join(dir, 'text.hdrs');
    curl('--compressed', '-D', hdrs, '-o', join(dir, 'text.out'), `http://${bed.podIp}/text.txt`);
    t.equal(sha(readFileSync(join(dir, 'text.out'))), sha(text), 'gzip (chunked) response decodes to the original');
    t.match(readFileSync(hdrs, 'utf8'), /transfer-encoding: chunked/i, 'the response was chunked');
    const up = curl('-o', '/dev/null', '-w', '%{http_code} %{num_connects}\n', '-H', 'Transfer-Encoding: chunked', '--data-binary', `@${dir}/upload.bin`, `http://${bed.podIp}/upload`, '--next', '-sS', '-o', '/dev/null', '-w', '%{http_code} %{num_connects}\n', `http://${bed.podIp}/small.txt`);
    t.equal(up, '200 1\n200 0\n', 'a 5 MiB chunked upload, then the next request on the same connection');
  });

  await t.test('redis-benchmark → redis-server (opaque port, bounded -n)', { skip: has('redis-server') && has('redis-benchmark') ? false : 'redis not installed' }, async (t) => {
    for (const port of ['6379', '6380']) bed.start(bed.pod, ['redis-server', '--port', port, '--bind', bed.podIp, '--save', '', '--appendonly', 'no', '--protected-mode', 'no']);
    await waitFor('redis', () => bed.run(bed.client, ['redis-cli', '-h', bed.podIp, '-p', '6379', 'ping']).trim() === 'PONG');
    const rps = (port: string): number => {
      const out = bed.run(bed.client, ['redis-benchmark', '-h', bed.podIp, '-p', port, '-n', '5000', '-c', '8', '-t', 'set,get', '-q'], { timeoutMs: 60_000 });
      const nums = [...out.matchAll(/([\d.]+) requests per second/g)].map((m) => Number(m[1]));
      return nums.length ? Math.min(...nums) : 0;
    };
    const via = rps('6379');
    const direct = rps('6380');
    redis = rps;
    t.ok(via > 0, `redis via proxy: ${via.toFixed(0)} req/s (direct ${direct.toFixed(0)})`);
  });

  await t.test('pgbench → PostgreSQL (server-speaks-after-startup protocol, bounded -t)', { skip: PG_BIN && has('pgbench') ? false : 'PostgreSQL not installed' }, async (t) => {
    const data = join(dir, 'pg');
    mkdirSync(data);
    const pgUser = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
    if (pgUser.status !== 0) return void t.pass('skipped: no postgres user to run initdb as');
    spawnSync('chown', ['postgres:postgres', dir, data]);
    bed.run(bed.pod, ['runuser', '-u', 'postgres', '--', `${PG_BIN}/initdb`, '-D', data, '-A', 'trust', '-U', 'postgres'], { timeoutMs: 60_000 });
    // The app sees the proxy's (pod) address as the peer: trust the test subnet.
    appendFileSync(join(data, 'pg_hba.conf'), `host all all ${bed.podIp}/24 trust\n`);
    bed.start(bed.pod, ['runuser', '-u', 'postgres', '--', `${PG_BIN}/postgres`, '-D', data, '-k', data, '-h', bed.podIp, '-p', '5432', '-c', 'fsync=off', '-c', 'max_connections=20']);
    await waitFor('postgres via proxy', () => spawnSync('ip', ['netns', 'exec', bed.client, `${PG_BIN}/pg_isready`, '-h', bed.podIp, '-p', '5432']).status === 0, 20_000);
    bed.run(bed.client, ['pgbench', '-i', '-s', '1', '-h', bed.podIp, '-U', 'postgres', 'postgres'], { timeoutMs: 60_000 });
    const out = bed.run(bed.client, ['pgbench', '-h', bed.podIp, '-U', 'postgres', '-c', '4', '-j', '2', '-t', '200', 'postgres'], { timeoutMs: 90_000 });
    t.match(out, /number of transactions actually processed: 800\/800/, 'all 800 transactions went through the proxy');
    t.comment(out.split('\n').find((l) => l.startsWith('tps')) ?? '');
  });

  await t.test('iperf3 bulk through the proxy (bounded seconds)', { skip: has('iperf3') ? false : 'iperf3 not installed' }, async (t) => {
    bed.start(bed.pod, ['iperf3', '-s', '-p', '5201', '-B', bed.podIp]);
    bed.start(bed.pod, ['iperf3', '-s', '-p', '5202', '-B', bed.podIp]);
    await new Promise((r) => setTimeout(r, 300));
    const gbps = (port: string): number => {
      const j = JSON.parse(bed.run(bed.client, ['iperf3', '-c', bed.podIp, '-p', port, '-t', '3', '-J'], { timeoutMs: 30_000 })) as { end: { sum_received: { bits_per_second: number; bytes: number } } };
      return j.end.sum_received.bits_per_second / 1e9;
    };
    const via = gbps('5201');
    const direct = gbps('5202');
    t.ok(via > 0, `iperf3 via proxy (native relay): ${via.toFixed(2)} Gbit/s; direct ${direct.toFixed(2)} Gbit/s`);
    iperf = gbps;
  });

  await t.test('metrics saw the inbound traffic', async (t) => {
    const metrics = curl(`http://${bed.podIp}:15020/metrics`);
    const sum = (name: string): number => [...metrics.matchAll(new RegExp(`^${name}\\{[^}]*direction="inbound"[^}]*\\} (\\d+)`, 'gm'))].reduce((a, m) => a + Number(m[1]), 0);
    t.ok(sum('weft_tcp_connections_opened_total') > 10, `connections opened: ${sum('weft_tcp_connections_opened_total')}`);
    t.ok(sum('weft_requests_total') >= 6, `HTTP requests: ${sum('weft_requests_total')}`);
    t.ok(sum('weft_tcp_sent_bytes_total') > 30 * 2 ** 20, 'sent bytes include the 30 MiB download');
  });

  if (has('nginx')) {
    // SIGTERM in the middle of a stream of keep-alive requests: every request nginx answered
    // reaches curl whole; after the drain a new connection fails (curl stops there), none is cut short.
    const urls = Array.from({ length: 1000 }, (_, i) => ['-o', '/dev/null', `http://${bed.podIp}/small.txt?drain=${i}`]).flat();
    const client = bed.start(bed.client, ['curl', '-s', '--rate', '200/s', '--fail-early', '--connect-timeout', '1', '--max-time', '30', '-w', '%{http_code} %{size_download}\n', ...urls]);
    const clientDone = new Promise((r) => client.once('exit', r));
    await waitFor('requests flowing', () => (client.output().match(/^200 /gm) ?? []).length >= 20);
    t.equal(await proxy.stop(), 0, 'SIGTERM during a request stream: the proxy drains and exits 0');
    await clientDone;
    const lines = client.output().trim().split('\n');
    const ok = lines.filter((l) => l.startsWith('200 '));
    t.ok(ok.every((l) => l === '200 6'), 'every answered request arrived whole');
    const served = readFileSync(join(dir, 'access.log'), 'utf8').split('\n').filter((l) => l.includes('?drain=') && l.endsWith(' 200')).length;
    t.equal(ok.length, served, `no completed request lost (${served} answered before the drain, ${lines.length - ok.length} refused after)`);
  } else t.equal(await proxy.stop(), 0, 'SIGTERM: the proxy drains and exits 0');

  if (iperf || redis) {
    const js = await startProxy(bed, 'js');
    const gbps = iperf?.('5201');
    if (gbps !== undefined) t.ok(gbps > 0, `iperf3 via proxy (js relay): ${gbps.toFixed(2)} Gbit/s`);
    const rps = redis?.('6379');
    if (rps !== undefined) t.ok(rps > 0, `redis via proxy (js relay): ${rps.toFixed(0)} req/s`);
    t.equal(await js.stop(), 0);
  }
});
