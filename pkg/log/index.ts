// Structured JSON logs (pino, which fastify already brings) with fixed keys:
// ns, pod, dir, dst, code. Decisions at info, payloads at debug.
import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };
export { LOG_LEVELS } from './levels.js';

export function createLogger(component: string, level: LevelWithSilent = 'info', destination: number | NodeJS.WritableStream = 2): Logger {
  const dest = typeof destination === 'number' ? pino.destination({ fd: destination, sync: false }) : destination;
  return pino({ level, base: { component }, timestamp: pino.stdTimeFunctions.isoTime, redact: { paths: ['token', '*.token', 'authorization', '*.authorization', 'headers.authorization'], censor: '[redacted]' } }, dest);
}
