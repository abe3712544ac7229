// Structured JSON logs with fixed keys: ns, pod, dir, dst, code. Decisions at info, payloads
// at debug. Two writers of the same format: pino (createLogger) where fastify wants it — the
// controller — and lite.ts (createLiteLogger) in the sidecar proxy, which keeps pino's weight
// out of every pod. Code takes the small Logger interface both satisfy.
import { pino, type Logger as PinoLogger, type LevelWithSilent } from 'pino';

export type { PinoLogger };
export { LOG_LEVELS } from './levels.js';

/** A log call: fields then a message, or a message alone (pino's argument order). */
export interface LogFn {
  (obj: unknown, msg?: string): void;
  (msg: string): void;
}

export interface Logger {
  level: string;
  trace: LogFn;
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
  fatal: LogFn;
  isLevelEnabled(level: string): boolean;
  child(bindings: Record<string, unknown>): Logger;
}

/** pino, with the fixed redactions; for fastify servers and the CLI commands. */
export function createLogger(component: string, level: LevelWithSilent = 'info', destination: number | NodeJS.WritableStream = 2): PinoLogger {
  const dest = typeof destination === 'number' ? pino.destination({ fd: destination, sync: false }) : destination;
  return pino({ level, base: { component }, timestamp: pino.stdTimeFunctions.isoTime, redact: { paths: ['token', '*.token', 'authorization', '*.authorization', 'headers.authorization'], censor: '[redacted]' } }, dest);
}
