// Running host tools (ip, mount, curl…) for the sandbox: async for setup and probes, sync for
// the exit-time cleanup that must finish before the process is gone.
import { spawn, spawnSync } from 'node:child_process';
import { ErrorCodes, WeftError } from '../../pkg/errors/index.js';
import type { ExecResult } from './index.js';

/** Single-quote for /bin/sh. */
export const shq = (s: string): string => `'${s.replaceAll("'", `'\\''`)}'`;

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  input?: string | Buffer;
  timeoutMs?: number;
  cwd?: string;
}

/** Run argv to completion, never throwing for a non-zero exit. */
export function run(argv: string[], opts: RunOptions = {}): Promise<ExecResult> {
  const [file, ...args] = argv;
  if (file === undefined) throw new WeftError(ErrorCodes.SANDBOX, 'empty argv', { field: 'argv' });
  return new Promise((resolve) => {
    const child = spawn(file, args, {
      env: opts.env ?? process.env,
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true,
      ...(opts.cwd === undefined ? {} : { cwd: opts.cwd }),
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.stdin.on('error', () => {});
    child.stdin.end(opts.input ?? '');
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    }, opts.timeoutMs ?? 30_000);
    const finish = (code: number | null, signal: NodeJS.Signals | null): void => {
      clearTimeout(timer);
      resolve({ code, signal, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString(), timedOut });
    };
    child.on('error', (e) => {
      err.push(Buffer.from(String(e.message)));
      finish(127, null);
    });
    child.on('close', finish);
  });
}

/** Run argv; a non-zero exit throws a WeftError naming the step and quoting stderr. */
export async function must(step: string, argv: string[], opts: RunOptions = {}): Promise<string> {
  const r = await run(argv, opts);
  if (r.code !== 0) {
    throw new WeftError(ErrorCodes.SANDBOX, `${step}: \`${argv.join(' ')}\` failed (${r.code ?? r.signal}): ${r.stderr.trim() || r.stdout.trim()}`, { field: step });
  }
  return r.stdout;
}

/** Synchronous best-effort run for exit-time cleanup; returns stdout ('' on failure). */
export function runSync(argv: string[]): { ok: boolean; stdout: string; stderr: string } {
  const [file, ...args] = argv;
  if (file === undefined) return { ok: false, stdout: '', stderr: '' };
  const r = spawnSync(file, args, { encoding: 'utf8', timeout: 10_000 });
  return { ok: r.status === 0, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
