// The sidecar's logger: the same JSON lines as createLogger's pino (level number, ISO time,
// component, the fields, msg; `err` serialized as pino does; the same redactions), written
// asynchronously and in order, without pino. pino and what it loads (sonic-boom,
// thread-stream, worker_threads) cost a proxy ~5 MiB of RSS for a few lines a minute; the
// controller, whose fastify wants pino, keeps it (index.ts).
import { write, writeSync } from 'node:fs';
import type { Logger } from './index.js';
import type { LOG_LEVELS } from './levels.js';

type Level = (typeof LOG_LEVELS)[number];
const NUM: Record<Level, number> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60, silent: Infinity };
const REDACTED_KEYS = new Set(['token', 'authorization']);
/** Bytes queued for a log pipe that does not drain; beyond it lines are dropped and counted. */
const MAX_QUEUED = 1 << 20;

function serializeError(e: Error): Record<string, unknown> {
  const out: Record<string, unknown> = { type: e.constructor?.name ?? 'Error', message: e.message, stack: e.stack };
  for (const [k, v] of Object.entries(e)) if (!(k in out)) out[k] = v;
  if (e.cause instanceof Error) out.cause = serializeError(e.cause);
  return out;
}

/** pino's redact paths: token, *.token, authorization, *.authorization, headers.authorization. */
function redacted(o: Record<string, unknown>): Record<string, unknown> {
  let copy: Record<string, unknown> | null = null;
  for (const [k, v] of Object.entries(o)) {
    let nv: unknown = v;
    if (REDACTED_KEYS.has(k)) nv = '[redacted]';
    else if (k === 'err' && v instanceof Error) nv = serializeError(v);
    else if (v && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Error)) {
      const inner = v as Record<string, unknown>;
      if (Object.keys(inner).some((x) => REDACTED_KEYS.has(x))) nv = Object.fromEntries(Object.entries(inner).map(([x, y]) => [x, REDACTED_KEYS.has(x) ? '[redacted]' : y]));
    }
    if (nv !== v) (copy ??= { ...o })[k] = nv;
  }
  return copy ?? o;
}

class Sink {
  private queue: Buffer[] = [];
  private queued = 0;
  private writing = false;
  private dropped = 0;

  constructor(private readonly fd: number) {
    process.once('exit', () => this.flushSync());
  }

  push(line: string): void {
    if (this.queued > MAX_QUEUED) {
      this.dropped++;
      return;
    }
    const b = Buffer.from(line, 'utf8');
    this.queue.push(b);
    this.queued += b.length;
    if (!this.writing) this.next();
  }

  private next(): void {
    if (this.dropped > 0) {
      const b = Buffer.from(`${JSON.stringify({ level: 40, time: new Date().toISOString(), msg: `log output stalled: ${this.dropped} line(s) dropped` })}\n`);
      this.dropped = 0;
      this.queue.unshift(b);
      this.queued += b.length;
    }
    if (this.queue.length === 0) return;
    const data = this.queue.length === 1 ? this.queue[0]! : Buffer.concat(this.queue);
    this.queue = [];
    this.writing = true;
    const send = (b: Buffer): void =>
      write(this.fd, b, 0, b.length, null, (err, n) => {
        if (!err && n < b.length) return send(b.subarray(n));
        this.queued -= data.length;
        this.writing = false;
        this.next();
      });
    send(data);
  }

  flushSync(): void {
    const data = Buffer.concat(this.queue);
    this.queue = [];
    try {
      for (let off = 0; off < data.length; ) off += writeSync(this.fd, data, off);
    } catch {
      // The log pipe is gone: nothing left to tell.
    }
  }
}

export function createLiteLogger(component: string, level: Level = 'info', fd = 2): Logger {
  const sink = new Sink(fd);
  const make = (bindings: string): Logger => {
    const threshold = NUM[level];
    const at = (n: number) =>
      function log(a: unknown, b?: unknown): void {
        if (n < threshold) return;
        const obj = typeof a === 'object' && a !== null ? (a instanceof Error ? { err: a } : (a as Record<string, unknown>)) : {};
        const msg = typeof a === 'string' ? a : typeof b === 'string' ? b : undefined;
        const fields = JSON.stringify(redacted(obj));
        const body = fields === '{}' ? '' : `,${fields.slice(1, -1)}`;
        sink.push(`{"level":${n},"time":"${new Date().toISOString()}"${bindings}${body}${msg === undefined ? '' : `,"msg":${JSON.stringify(msg)}`}}\n`);
      };
    return {
      level,
      trace: at(10),
      debug: at(20),
      info: at(30),
      warn: at(40),
      error: at(50),
      fatal: at(60),
      isLevelEnabled: (l: string) => (NUM[l as Level] ?? Infinity) >= threshold,
      child: (more: Record<string, unknown>) => make(`${bindings},${JSON.stringify(redacted(more)).slice(1, -1)}`),
    } as Logger;
  };
  return make(`,"component":${JSON.stringify(component)}`);
}
