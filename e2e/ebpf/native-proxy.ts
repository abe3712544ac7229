// A stand-in outbound proxy built on the real native addon (pkg/native): SO_ORIGINAL_DST
// through originalDst(), an upstream connect() as the proxy uid, and the zero-copy splice
// relay. Run as uid 1337 inside the pod by lifecycle.test.ts; one JSON line per connection.
import net from 'node:net';
import { connectSocket, fdOf, originalDst, relaySockets } from '../../pkg/native/index.js';

const port = Number(process.argv[2] ?? 15001);
const say = (o: Record<string, unknown>): void => void process.stdout.write(`${JSON.stringify(o)}\n`);

const server = net.createServer({ pauseOnConnect: true }, (down) => {
  void (async () => {
    try {
      const orig = originalDst(fdOf(down), 4);
      say({ event: 'outbound', orig: orig && [orig.address, orig.port] });
      if (!orig) return down.destroy();
      const up = await connectSocket({ address: orig.address, port: orig.port, timeoutMs: 3000 });
      const { result } = relaySockets(down, up, { idleTimeoutMs: 5000 });
      const r = await result;
      say({ event: 'relayed', up: r.bytesUp, down: r.bytesDown, reason: r.reason });
    } catch (e) {
      say({ event: 'error', error: String(e) });
      down.destroy();
    }
  })();
});
server.listen(port, '127.0.0.1', () => say({ event: 'ready' }));
