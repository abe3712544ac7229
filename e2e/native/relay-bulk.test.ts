// A bounded bulk transfer through the native relay: 1 GiB from a client to a hashing sink
// on loopback; the sink's SHA-256 must equal the client's, and the relay's counter the size.
import { randomBytes } from 'node:crypto';
import t from 'tap';
import { nativeAvailable } from '../../pkg/native/index.js';
import { collect, dial, makeChunks, sendAll, startHashSink, startRelayProxy } from '../../pkg/native/test-support.js';

const TOTAL = 1 << 30;

t.test('1 GiB client → relay → sink: SHA-256 equal', { skip: nativeAvailable() ? false : 'native addon not built', timeout: 60000 }, async (t) => {
  const sink = await startHashSink();
  t.teardown(sink.close);
  const proxy = await startRelayProxy(sink.port, { pipeSize: 1 << 20 });
  t.teardown(proxy.close);
  const client = await dial(proxy.port);
  const reply = collect(client);
  const started = Date.now();
  const sent = await sendAll(client, makeChunks(randomBytes(1 << 20), TOTAL));
  const { data, error } = await reply;
  const secs = (Date.now() - started) / 1000;
  t.equal(error, null);
  t.equal(data.toString(), sent, 'sink hash equals client hash');
  const r = await proxy.relays[0]!.result;
  t.same(r, { bytesUp: TOTAL, bytesDown: 64, reason: 'eof' });
  t.comment(`1 GiB in ${secs.toFixed(1)} s (${(TOTAL / secs / 2 ** 20).toFixed(0)} MiB/s, including hashing on both ends)`);
});
