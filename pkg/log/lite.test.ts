// The sidecar's logger writes what pino writes: the same keys in the same order, the same
// err serialization and redactions, the same level filter. Both log the same calls into
// files, and the parsed lines are compared (times aside).
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { createLogger, type Logger } from './index.js';
import { createLiteLogger } from './lite.js';

function calls(log: Logger): void {
  log.info('plain message');
  log.info({ dir: 'inbound', dst: '10.0.0.7:8080', code: 'policy_denied' }, 'connection refused');
  log.debug({ detail: 'not shown at info' }, 'debug line');
  log.warn({ token: 'secret-token', headers: { authorization: 'Bearer x', accept: '*/*' }, nested: { token: 't' } }, 'redacted');
  const e = Object.assign(new Error('connect failed'), { code: 'ECONNREFUSED' });
  log.error({ err: e, dst: '10.0.0.9:80' }, 'upstream');
  log.child({ ns: 'shop', pod: 'web-0' }).info({ n: 3 }, 'from a child');
  log.info({ only: 'fields' });
}

t.test('same lines as pino, times aside', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wflog-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const read = (f: string) =>
    readFileSync(join(dir, f), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  const pinoFd = openSync(join(dir, 'pino'), 'w');
  const liteFd = openSync(join(dir, 'lite'), 'w');
  const p = createLogger('proxy', 'info', pinoFd);
  calls(p);
  p.flush();
  calls(createLiteLogger('proxy', 'info', liteFd));
  await new Promise((r) => setTimeout(r, 200));
  closeSync(pinoFd);
  closeSync(liteFd);
  const want = read('pino');
  const got = read('lite');
  t.equal(got.length, want.length, `${want.length} lines each (debug filtered out)`);
  for (let i = 0; i < want.length; i++) {
    const w = want[i]!;
    const g = got[i]!;
    t.same(Object.keys(g), Object.keys(w), `line ${i}: same keys in the same order`);
    t.match(g.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, `line ${i}: ISO time`);
    const strip = (o: Record<string, unknown>) => ({ ...o, time: 0, err: o.err ? { ...(o.err as object), stack: typeof (o.err as { stack?: string }).stack } : undefined });
    t.same(strip(g), strip(w), `line ${i}: same values`);
  }
  t.equal((got[2] as { token: string }).token, '[redacted]');
  t.equal((got[2] as { headers: { authorization: string } }).headers.authorization, '[redacted]');
});

t.test('silent writes nothing; isLevelEnabled follows the level', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wflog-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const fd = openSync(join(dir, 'silent'), 'w');
  const log = createLiteLogger('proxy', 'silent', fd);
  log.fatal('nothing');
  await new Promise((r) => setTimeout(r, 50));
  closeSync(fd);
  t.equal(readFileSync(join(dir, 'silent'), 'utf8'), '');
  const warn = createLiteLogger('proxy', 'warn', fd);
  t.ok(warn.isLevelEnabled('error'));
  t.notOk(warn.isLevelEnabled('info'));
});
