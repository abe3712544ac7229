// A bulk transfer through `weft proxy --mode tproxy`: the SHA-256 of the bytes a client
// streams equals the SHA-256 of what the server received, and the proxy counted every byte.
// 1 GiB by default (about 10 s here); WEFT_PROXY_BULK_MIB sets another size.
import t from 'tap';
import { nativeAvailable } from '../../pkg/native/index.js';
import { peer, scrape, startPeer, startTproxy, sum } from './harness.js';
import { bedUnavailable, createBed, waitFor } from './netns.js';

const skip = bedUnavailable() ?? (nativeAvailable() ? false : 'native addon not built (tproxy listeners need IP_TRANSPARENT)');
const MIB = Number(process.env.WEFT_PROXY_BULK_MIB ?? 1024);

t.test(`${MIB} MiB through the proxy, SHA-256 equal at both ends`, { skip, timeout: 300_000 }, async (t) => {
  const bed = await createBed('b');
  t.teardown(() => bed.close());
  const proxy = await startTproxy(bed);
  await startPeer(bed, bed.pod, ['serve-sink', bed.podIp, '9000']);
  const bytes = MIB * 2 ** 20;
  const r = peer<{ sha: string; reply: string; ms: number }>(bed, bed.client, ['send', bed.podIp, '9000', String(bytes)], 280_000);
  t.equal(r.reply, `${r.sha} ${bytes}`, `the server received all ${MIB} MiB with the SHA-256 the client sent (${(r.ms / 1000).toFixed(1)} s, ${((bytes * 8) / r.ms / 1e6).toFixed(2)} Gbit/s with hashing)`);
  let s = scrape(bed);
  await waitFor('connection closed', () => sum((s = scrape(bed)), 'weft_tcp_connections_closed_total') === 1);
  t.equal(sum(s, 'weft_tcp_received_bytes_total', { direction: 'inbound' }), bytes, 'received bytes counted exactly');
  t.equal(await proxy.stop(), 0);
});
