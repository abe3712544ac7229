// `weft wait-ready`: the classic sidecar's postStart hook. Polls the proxy's /ready on
// loopback until it answers 200, so the kubelet starts the app containers only then.
import { request } from 'node:http';
import { z } from 'zod';
import { flag, parseFlags } from '../../pkg/cli/flags.js';

const specs = {
  'admin-port': { type: 'string' as const, help: 'proxy admin port (default 15020)' },
  'timeout-ms': { type: 'string' as const, help: 'give up after this long (default 120000)' },
  'interval-ms': { type: 'string' as const, help: 'poll interval (default 100)' },
};
const schema = z
  .object({
    adminPort: flag.port().default(15020),
    timeoutMs: flag.durationMs().default(120000),
    intervalMs: flag.durationMs().default(100),
  })
  .strict();

function probe(url: string, timeoutMs: number): Promise<number | string> {
  return new Promise((resolve) => {
    const req = request(url, { timeout: timeoutMs }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', (e) => resolve((e as NodeJS.ErrnoException).code ?? e.message));
    req.end();
  });
}

export async function run(argv: string[]): Promise<number> {
  const flags = parseFlags('wait-ready', 'Wait until the proxy on this pod answers /ready with 200.', specs, schema, argv);
  if (!flags) return 0;
  const url = `http://127.0.0.1:${flags.adminPort}/ready`;
  const deadline = Date.now() + flags.timeoutMs;
  let last: number | string = 'no answer';
  for (;;) {
    const got = await probe(url, Math.min(1000, Math.max(1, deadline - Date.now())));
    if (got === 200) return 0;
    // An HTTP status says more than a timeout cut short by the deadline: keep it.
    if (typeof got === 'number' || typeof last !== 'number') last = got;
    if (Date.now() >= deadline) break;
    await new Promise((r) => setTimeout(r, flags.intervalMs));
  }
  process.stderr.write(`weft wait-ready: ${url} not ready after ${flags.timeoutMs} ms (last: ${last})\n`);
  return 1;
}
