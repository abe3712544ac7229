// Helpers for the TPROXY kernel tests: network namespaces named wftp-<tag>-<pid>, commands
// run inside them, and a teardown that removes every namespace and process made, also when
// a test fails.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const WEFT = `${ROOT}bin/weft`;
export const E2E_DIR = `${ROOT}e2e/tproxy/`;

export interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Under tap, @tapjs/processinfo wraps child_process and puts its loader back into every
 * child's NODE_OPTIONS (which breaks `bin/weft`), whatever env is passed; so commands run
 * through `env -u NODE_OPTIONS`.
 */
const ENV = '/usr/bin/env';
const bare = (argv: readonly string[]): string[] => ['-u', 'NODE_OPTIONS', ...argv];

export function sh(argv: readonly string[], opts: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Result {
  const r = spawnSync(ENV, bare(argv), { input: opts.input ?? '', encoding: 'utf8', timeout: opts.timeoutMs ?? 30_000, env: opts.env ?? process.env });
  return { code: r.status ?? (r.error ? 127 : 1), stdout: r.stdout ?? '', stderr: (r.stderr ?? '') + (r.error ? String(r.error.message) : '') };
}

export function must(argv: readonly string[], opts: { input?: string; env?: NodeJS.ProcessEnv } = {}): string {
  const r = sh(argv, opts);
  if (r.code !== 0) throw new Error(`${argv.join(' ')} failed (${r.code}): ${r.stderr.trim()}`);
  return r.stdout;
}

export const has = (tool: string): boolean => sh(['sh', '-c', `command -v ${tool}`]).code === 0;

/** Why the kernel tests cannot run here, or null. */
export function missingPrerequisite(tools: readonly string[] = ['ip', 'iptables-nft-restore', 'ip6tables-nft-restore', 'python3', 'setpriv']): string | null {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces, netfilter)';
  const missing = tools.filter((t) => !has(t));
  return missing.length ? `missing tools: ${missing.join(', ')}` : null;
}

export class Netns {
  private static seq = 0;
  readonly name: string;
  private readonly children: ChildProcess[] = [];
  constructor(tag: string) {
    this.name = `wftp-${tag}-${process.pid}-${Netns.seq++}`;
    must(['ip', 'netns', 'add', this.name]);
    must(['ip', '-n', this.name, 'link', 'set', 'lo', 'up']);
  }
  exec(argv: readonly string[], opts: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Result {
    return sh(['ip', 'netns', 'exec', this.name, ...argv], opts);
  }
  ip(...args: string[]): string {
    return must(['ip', '-n', this.name, ...args]);
  }
  /** `weft <args>` inside the namespace, with the test's Node. */
  weft(args: readonly string[], env?: NodeJS.ProcessEnv): Result {
    return this.exec([process.execPath, WEFT, ...args], env ? { env } : {});
  }
  /** A long-running process in the namespace; its stdout lines are collected. */
  spawn(argv: readonly string[]): { child: ChildProcess; lines: string[]; errLines: string[] } {
    const child = spawn(ENV, bare(['ip', 'netns', 'exec', this.name, ...argv]), { stdio: ['ignore', 'pipe', 'pipe'] });
    const collect = (stream: NodeJS.ReadableStream | null, into: string[]) => {
      let buf = '';
      stream?.on('data', (d: Buffer) => {
        buf += d.toString();
        const parts = buf.split('\n');
        buf = parts.pop() ?? '';
        into.push(...parts);
      });
    };
    const lines: string[] = [];
    const errLines: string[] = [];
    collect(child.stdout, lines);
    collect(child.stderr, errLines);
    this.children.push(child);
    return { child, lines, errLines };
  }
  destroy(): void {
    for (const c of this.children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    // Anything else still running in the namespace was started by this test.
    for (const pid of sh(['ip', 'netns', 'pids', this.name]).stdout.split('\n').filter(Boolean)) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
    sh(['ip', 'netns', 'del', this.name]);
  }
}

/** Wait until `pred` holds (polling), or throw after `ms`. */
export async function waitFor(what: string, pred: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * A PATH holding exactly the tools the weft image has (Dockerfile: Debian's `iptables` and
 * `iproute2`, no `nftables`), as symlinks into this host's copies. Removed with `dispose()`.
 */
export function imageToolset(): { path: string; dispose: () => void } {
  const dir = mkdtempSync(`${tmpdir()}/wftp-image-bin-`);
  const listed = sh(['dpkg-query', '-L', 'iptables', 'iproute2']).stdout.split('\n');
  // The alternatives Debian's postinst makes (iptables → iptables-nft, …) are not in dpkg -L.
  const alternatives = ['iptables', 'iptables-save', 'iptables-restore', 'ip6tables', 'ip6tables-save', 'ip6tables-restore'].map((t) => sh(['sh', '-c', `command -v ${t}`]).stdout.trim());
  for (const file of [...listed, ...alternatives].filter((f) => /\/s?bin\/[^/]+$/.test(f) && existsSync(f))) {
    const link = `${dir}/${basename(file)}`;
    if (!existsSync(link)) symlinkSync(file, link);
  }
  return { path: dir, dispose: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Everything `--cleanup` must leave byte-identical, for one iptables backend. */
export function snapshot(ns: Netns, backend: 'nft' | 'legacy'): string {
  const strip = (s: string) => s.split('\n').filter((l) => !l.startsWith('#')).join('\n');
  return [
    // What the kernel holds, not only what iptables shows: an empty table left behind
    // shows here (this host's nft; the image has none).
    has('nft') ? ns.exec(['nft', 'list', 'ruleset']).stdout : '(no nft on this host)',
    strip(ns.exec([`iptables-${backend}-save`]).stdout),
    strip(ns.exec([`ip6tables-${backend}-save`]).stdout),
    ns.ip('-4', 'rule', 'show'),
    ns.ip('-6', 'rule', 'show'),
    ns.ip('-4', 'route', 'show', 'table', 'all'),
    ns.ip('-6', 'route', 'show', 'table', 'all'),
  ].join('\n----\n');
}
