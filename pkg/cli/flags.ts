// Flags and WEFT_* env → one validated, frozen object. A command declares its flags once
// (zod schema + per-flag help); an unknown flag, a bad value or a bad env var fails with an
// error that names the flag and says what is allowed.
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { ErrorCodes, WeftError } from '../errors/index.js';
import { envName, helpText, type FlagSpecs } from './flag-specs.js';

export { envName, helpText, type FlagSpec, type FlagSpecs } from './flag-specs.js';

/**
 * Parse argv (flags win over env) and validate with `schema`, whose keys are the flag names
 * in camelCase. Returns `null` when --help was asked (help already printed).
 */
export function parseFlags<S extends z.ZodType>(
  command: string,
  summary: string,
  specs: FlagSpecs,
  schema: S,
  argv: string[],
  env: NodeJS.ProcessEnv = process.env,
): Readonly<z.output<S>> | null {
  const options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean; short?: string }> = { help: { type: 'boolean', short: 'h' } };
  for (const [name, s] of Object.entries(specs)) {
    options[name] = { type: s.type, ...(s.multiple ? { multiple: true } : {}), ...(s.short ? { short: s.short } : {}) };
  }
  let values: Record<string, unknown>;
  try {
    ({ values } = parseArgs({ args: argv, options, strict: true, allowPositionals: false }));
  } catch (e) {
    throw new WeftError(ErrorCodes.BAD_FLAG, `weft ${command}: ${(e as Error).message}; see 'weft ${command} --help'`, { field: 'argv' });
  }
  if (values.help) {
    process.stdout.write(helpText(command, summary, specs));
    return null;
  }
  const raw: Record<string, unknown> = {};
  for (const [name, s] of Object.entries(specs)) {
    const key = name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
    let v = values[name];
    if (v === undefined) {
      const e = env[envName(name)];
      if (e !== undefined && e !== '') v = s.type === 'boolean' ? parseBoolEnv(name, e) : s.multiple ? e.split(',') : e;
    }
    if (v !== undefined) raw[key] = v;
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const msgs = parsed.error.issues.map((i) => {
      const key = String(i.path[0] ?? '');
      const flag = key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
      return `--${flag} (${envName(flag)}): ${i.message}`;
    });
    throw new WeftError(ErrorCodes.BAD_FLAG, `weft ${command}: ${msgs.join('; ')}`, { field: msgs[0]?.split(' ')[0] ?? 'argv' });
  }
  return Object.freeze(parsed.data) as Readonly<z.output<S>>;
}

function parseBoolEnv(flag: string, v: string): boolean {
  if (/^(1|true|yes)$/i.test(v)) return true;
  if (/^(0|false|no)$/i.test(v)) return false;
  throw new WeftError(ErrorCodes.BAD_FLAG, `${envName(flag)}: "${v}" is not a boolean; allowed: true, false, 1, 0`, { field: envName(flag) });
}

/** Reusable zod pieces for flags (values arrive as strings). */
export const flag = {
  port: () => z.coerce.number({ error: 'must be a number' }).int('must be an integer').min(1, 'must be 1-65535').max(65535, 'must be 1-65535'),
  id: () => z.coerce.number({ error: 'must be a number' }).int('must be an integer').min(0, 'must be 0-4294967294').max(4294967294, 'must be 0-4294967294'),
  durationMs: () => z.coerce.number({ error: 'must be a number of milliseconds' }).int().min(0, 'must be >= 0'),
};
