// /ready follows the listeners of a real `weft proxy --mode tproxy` start-up: 503 while the
// admin server is up and the listeners are not, never 200 when a listener cannot be opened
// (the process exits non-zero naming the flag), 200 only once connections go through, and
// 503 again from the moment SIGTERM starts the drain.
import { spawnSync } from 'node:child_process';
import t from 'tap';
import { nativeAvailable } from '../../pkg/native/index.js';
import { MAIN, PEER, peer, readyStatus, scrape, startPeer, startTproxy, sum } from './harness.js';
import { bedUnavailable, createBed, waitFor, type Bed } from './netns.js';

const has = (tool: string): boolean => spawnSync('which', [tool]).status === 0;
const skip = bedUnavailable() ?? (!nativeAvailable() ? 'native addon not built (tproxy listeners need IP_TRANSPARENT)' : !has('curl') ? 'curl not installed' : false);
const DELAY = new URL('./delay-listen.js', import.meta.url);
const BANNER_PORT = 3306; // opaque by default: relayed at once

/** Poll /ready until `stop()` says so; the distinct statuses in the order seen. */
async function watchReady(bed: Bed, stop: (status: number) => boolean, timeoutMs: number): Promise<number[]> {
  const seen: number[] = [];
  const t0 = Date.now();
  for (;;) {
    const s = readyStatus(bed);
    if (seen[seen.length - 1] !== s) seen.push(s);
    if (stop(s) || Date.now() - t0 > timeoutMs) return seen;
    await new Promise((r) => setTimeout(r, 10));
  }
}

t.test('/ready in a real start-up and drain', { skip, timeout: 120_000 }, async (t) => {
  const bed = await createBed('y');
  t.teardown(() => bed.close());
  await startPeer(bed, bed.pod, ['serve-banner', bed.podIp, String(BANNER_PORT), 'hello\n']);

  await t.test('an inbound port already taken: never ready, exits non-zero naming --inbound-port', async (t) => {
    const squatter = await startPeer(bed, bed.pod, ['serve-hold', '0.0.0.0', '15006']);
    const p = bed.start(bed.pod, [process.execPath, MAIN, 'proxy', '--mode', 'tproxy', '--log-level', 'info']);
    const exited = new Promise<number | null>((r) => p.once('exit', (code) => r(code)));
    let done = false;
    void exited.then(() => (done = true));
    const seen = await watchReady(bed, () => done, 20_000);
    t.notOk(seen.includes(200), `/ready never said 200 (saw ${seen.join(' → ')})`);
    t.not(await exited, 0, 'the proxy exits non-zero');
    t.match(p.output(), /cannot listen on inbound 0\.0\.0\.0:15006: EADDRINUSE/, 'its error names the listener, the port and the cause');
    t.match(p.output(), /--inbound-port/, 'and the flag');
    squatter.kill('SIGTERM');
    await new Promise((r) => squatter.once('exit', r));
  });

  await t.test('listeners late: 503 while the admin server is up without them, 200 once connections go through', async (t) => {
    const p = bed.start(bed.pod, [process.execPath, '--import', `${DELAY.href}?ms=500`, MAIN, 'proxy', '--mode', 'tproxy', '--log-level', 'info']);
    const seen = await watchReady(bed, (s) => s === 200, 20_000);
    const r = peer<{ banner: string }>(bed, bed.client, ['banner', bed.podIp, String(BANNER_PORT)]);
    t.same(seen.filter((s) => s !== 0), [503, 200], `503 first, then 200 (saw ${seen.join(' → ')}; 0 = admin not up yet)`);
    t.equal(r.banner, 'hello\n', 'at the first 200 a connection goes through the proxy');
    p.kill('SIGTERM');
    await new Promise((r) => p.once('exit', r));
  });

  await t.test('SIGTERM: 503 from the start of the drain, exit 0 after the grace period', async (t) => {
    const proxy = await startTproxy(bed, ['--drain-grace-ms', '1500']);
    await startPeer(bed, bed.pod, ['serve-hold', bed.podIp, '9002']);
    // An opaque connection that stays open keeps the drain waiting until the grace ends.
    const held = bed.start(bed.client, [process.execPath, PEER, 'dial', bed.podIp, '9002']);
    await waitFor('the held connection is up', () => sum(scrape(bed), 'weft_tcp_connections_opened_total') === 1);
    const exit = proxy.stop();
    let done = false;
    void exit.then(() => (done = true));
    const seen = await watchReady(bed, () => done, 10_000);
    t.equal(seen[0], 503, `503 once the drain started (saw ${seen.join(' → ')})`);
    t.notOk(seen.includes(200), 'never ready again');
    t.equal(await exit, 0, 'exit 0');
    await waitFor('the held connection ends', () => held.exitCode !== null, 5000).catch(() => {});
    t.match(held.output(), /"error":"ECONNRESET"/, 'the connection still open at the end of the grace period was reset');
  });
});
