// `weft proxy --mode tproxy` behind the bed's TPROXY rules, on the edges a user notices:
// server-speaks-first banners (opaque port and detected port), counters equal to the bytes
// and connections sent, a client's RST and a server's early FIN passed on, and a
// destination that never answers the SYN failing within the connect timeout.
import { spawnSync } from 'node:child_process';
import t from 'tap';
import { nativeAvailable } from '../../pkg/native/index.js';
import { events, peer, scrape, startPeer, startTproxy, sum, type Sample } from './harness.js';
import { bedUnavailable, createBed, waitFor } from './netns.js';

const has = (tool: string): boolean => spawnSync('which', [tool]).status === 0;
const skip = bedUnavailable() ?? (!nativeAvailable() ? 'native addon not built (tproxy listeners need IP_TRANSPARENT)' : !has('curl') ? 'curl not installed' : false);

// A detection timeout far above what a banner takes: a banner that waited for it would show.
const DETECT_MS = 3000;
const CONNECT_MS = 1000;
const PORTS = { opaqueBanner: 3306, banner: 2200, sink: 9000, finFirst: 9001, hold: 9002, http: 8080, blackhole: 7070 };

t.test('tproxy edges', { skip, timeout: 180_000 }, async (t) => {
  const bed = await createBed('e');
  t.teardown(() => bed.close());
  const proxy = await startTproxy(bed, ['--detect-timeout-ms', String(DETECT_MS), '--connect-timeout-ms', String(CONNECT_MS), '--opaque-ports', String(PORTS.opaqueBanner)]);
  const ip = bed.podIp;
  await startPeer(bed, bed.pod, ['serve-banner', ip, String(PORTS.opaqueBanner), 'opaque-banner\n']);
  await startPeer(bed, bed.pod, ['serve-banner', ip, String(PORTS.banner), 'detected-banner\n']);
  await startPeer(bed, bed.pod, ['serve-sink', ip, String(PORTS.sink)]);
  const finFirst = await startPeer(bed, bed.pod, ['serve-fin-first', ip, String(PORTS.finFirst), 'bye first\n']);
  const hold = await startPeer(bed, bed.pod, ['serve-hold', ip, String(PORTS.hold)]);
  await startPeer(bed, bed.pod, ['serve-http', ip, String(PORTS.http)]);
  const inbound = { direction: 'inbound' };
  /** Wait until every connection the proxy opened is closed: counters are final then. */
  const settled = async (): Promise<Sample> => {
    let s: Sample = [];
    await waitFor('connections closed', () => {
      s = scrape(bed);
      return sum(s, 'weft_tcp_connections_opened_total') === sum(s, 'weft_tcp_connections_closed_total');
    });
    return s;
  };

  await t.test('server speaks first on an opaque port: the banner arrives at once', async (t) => {
    const r = peer<{ bannerMs: number; banner: string; echo: string }>(bed, bed.client, ['banner', ip, String(PORTS.opaqueBanner)]);
    t.equal(r.banner, 'opaque-banner\n', 'the banner reached a client that had sent nothing');
    t.ok(r.bannerMs < DETECT_MS / 3, `it took ${r.bannerMs.toFixed(1)} ms (detection timeout ${DETECT_MS} ms)`);
    t.equal(r.echo, 'ping\n', 'then the conversation goes both ways');
  });

  await t.test('server speaks first on a detected port: the banner ends detection, no timeout wait', async (t) => {
    const before = await settled();
    const r = peer<{ bannerMs: number; banner: string; echo: string }>(bed, bed.client, ['banner', ip, String(PORTS.banner)]);
    t.equal(r.banner, 'detected-banner\n', 'the banner reached a client that had sent nothing');
    t.ok(r.bannerMs < DETECT_MS / 3, `it took ${r.bannerMs.toFixed(1)} ms, not the ${DETECT_MS} ms detection timeout`);
    t.equal(r.echo, 'ping\n');
    const after = await settled();
    t.equal(sum(after, 'weft_requests_total') - sum(before, 'weft_requests_total'), 0, 'relayed as opaque TCP, not HTTP');
  });

  await t.test('metrics equal what was sent: connections and bytes by direction, requests', async (t) => {
    const before = await settled();
    const big = peer<{ sha: string; reply: string }>(bed, bed.client, ['send', ip, String(PORTS.sink), String(3 << 20)]);
    const small = peer<{ sha: string; reply: string }>(bed, bed.client, ['send', ip, String(PORTS.sink), '1000']);
    t.equal(big.reply, `${big.sha} ${3 << 20}`, 'the sink got the 3 MiB intact (native relay after the handover)');
    t.equal(small.reply, `${small.sha} 1000`, 'and the 1000 bytes');
    const url = `http://${ip}:${PORTS.http}/`;
    const curl = bed.run(bed.client, ['curl', '-sS', '-m', '10', '-o', '/dev/null', '-w', '%{size_request} %{size_header} %{size_download} %{num_connects}\n', url, '-o', '/dev/null', `${url}again`]);
    const rows = curl.trim().split('\n').map((l) => l.split(' ').map(Number));
    t.same(rows.map((r) => r[3]), [1, 0], 'two HTTP requests over one connection');
    const after = await settled();
    const d = (name: string, labels: Record<string, string> = inbound): number => sum(after, name, labels) - sum(before, name, labels);
    const replyBytes = Buffer.byteLength(`${big.reply}\n`) + Buffer.byteLength(`${small.reply}\n`);
    const httpUp = rows.reduce((a, r) => a + r[0]!, 0);
    const httpDown = rows.reduce((a, r) => a + r[1]! + r[2]!, 0);
    t.equal(d('weft_tcp_connections_opened_total'), 3, 'inbound connections opened: 3');
    t.equal(d('weft_tcp_connections_closed_total'), 3, 'inbound connections closed: 3');
    t.equal(d('weft_tcp_received_bytes_total'), (3 << 20) + 1000 + httpUp, `received bytes: exactly what the clients sent (${(3 << 20) + 1000 + httpUp})`);
    t.equal(d('weft_tcp_sent_bytes_total'), replyBytes + httpDown, `sent bytes: exactly what the clients got (${replyBytes + httpDown})`);
    t.equal(d('weft_requests_total', { direction: 'inbound', method: 'GET', response_code: '200' }), 2, 'two requests, GET 200');
    t.equal(d('weft_requests_total'), 2, 'and nothing else');
    t.equal(d('weft_tcp_connection_failures_total'), 0, 'no failures');
    for (const name of ['weft_tcp_connections_opened_total', 'weft_tcp_received_bytes_total', 'weft_tcp_sent_bytes_total']) {
      t.equal(d(name, { direction: 'outbound' }), 0, `${name}: nothing outbound`);
    }
  });

  await t.test('a client RST reaches the server as an RST (JS relay and native relay)', async (t) => {
    for (const n of [1000, 1 << 20]) {
      const seen = events(hold, 'hold').length;
      t.same(peer(bed, bed.client, ['rst', ip, String(PORTS.hold), String(n)]), { sent: n });
      await waitFor('the server saw the client leave', () => events(hold, 'hold').length > seen);
      const ev = events(hold, 'hold')[seen]!;
      t.equal(ev.how, 'ECONNRESET', `after ${n} bytes: the server got ECONNRESET, not a FIN`);
      t.ok((ev.got as number) > 0 && (ev.got as number) <= n, `it had received ${ev.got as number} bytes first`);
    }
  });

  await t.test('server FIN first (half-close): the client reads to EOF and can still send', async (t) => {
    const seen = events(finFirst, 'fin-first').length;
    const n = 300_000;
    const r = peer<{ got: string; error?: string; sent: number }>(bed, bed.client, ['fin-first', ip, String(PORTS.finFirst), String(n)]);
    t.equal(r.got, 'bye first\n', 'the early bytes and the FIN reached the client');
    t.equal(r.error, undefined, 'an EOF, not an error');
    await waitFor('the server saw the client FIN', () => events(finFirst, 'fin-first').length > seen);
    t.same(events(finFirst, 'fin-first')[seen], { event: 'fin-first', got: n }, `all ${n} bytes sent after the server's FIN arrived, then the client's FIN`);
  });

  await t.test('a destination that drops SYNs: the client gets an RST within the connect timeout, counted', async (t) => {
    // Only the proxy's own connect to the destination is dropped (OUTPUT: locally made SYNs).
    bed.run(bed.pod, ['iptables', '-A', 'OUTPUT', '-p', 'tcp', '--dport', String(PORTS.blackhole), '--syn', '-m', 'comment', '--comment', 'wfpx/blackhole', '-j', 'DROP']);
    const before = await settled();
    const r = peer<{ connected: boolean; error: string | null; ms: number }>(bed, bed.client, ['dial', ip, String(PORTS.blackhole)]);
    t.ok(r.connected, 'the proxy accepted the connection');
    t.equal(r.error, 'ECONNRESET', 'then reset it');
    t.ok(r.ms >= CONNECT_MS * 0.9, `after the connect timeout (${r.ms.toFixed(0)} ms, timeout ${CONNECT_MS} ms)`);
    t.ok(r.ms < CONNECT_MS + 5000, 'not after the kernel gave up on its SYN retries');
    const after = await settled();
    t.equal(sum(after, 'weft_tcp_connection_failures_total', { direction: 'inbound', reason: 'connect_timeout' }) - sum(before, 'weft_tcp_connection_failures_total', { direction: 'inbound', reason: 'connect_timeout' }), 1, 'failure counted with reason connect_timeout');
  });

  t.equal(await proxy.stop(), 0, 'SIGTERM: exit 0');
});
