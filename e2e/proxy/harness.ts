// What the proxy's kernel tests share on top of the netns bed: the real `weft proxy` started
// in the pod namespace, the peer CLI (peer.ts) run in either namespace, and /metrics read
// as numbers so a test can compare counters with exactly what it sent.
import { fileURLToPath } from 'node:url';
import { waitFor, type Bed } from './netns.js';

export const MAIN = fileURLToPath(new URL('../../cmd/main.js', import.meta.url));
export const PEER = fileURLToPath(new URL('./peer.js', import.meta.url));

export interface RunningProxy {
  output: () => string;
  /** SIGTERM; resolves with the exit code. */
  stop: () => Promise<number | null>;
}

/** `weft proxy --mode tproxy …flags` in the pod namespace, once /ready answers 200. */
export async function startTproxy(bed: Bed, flags: string[] = [], node: string[] = []): Promise<RunningProxy> {
  const p = bed.start(bed.pod, [process.execPath, ...node, MAIN, 'proxy', '--mode', 'tproxy', '--log-level', 'info', ...flags]);
  const exited = new Promise<number | null>((r) => p.once('exit', (code) => r(code)));
  await waitFor('proxy /ready', () => readyStatus(bed) === 200, 20_000).catch((e: unknown) => {
    throw new Error(`${(e as Error).message}; proxy output: ${p.output().slice(0, 3000)}`);
  });
  return {
    output: p.output,
    stop: () => {
      if (p.exitCode !== null || p.signalCode !== null) return exited;
      p.kill('SIGTERM');
      return exited;
    },
  };
}

/** GET /ready from inside the pod: the status, or 0 when nothing answers. */
export function readyStatus(bed: Bed): number {
  try {
    return Number(bed.run(bed.pod, ['curl', '-s', '-o', '/dev/null', '-m', '2', '-w', '%{http_code}', 'http://127.0.0.1:15020/ready'], { timeoutMs: 5000 }));
  } catch {
    return 0;
  }
}

/** Start a peer server and wait until it listens. */
export async function startPeer(bed: Bed, ns: string, args: string[]): Promise<ReturnType<Bed['start']>> {
  const p = bed.start(ns, [process.execPath, PEER, ...args]);
  await waitFor(`peer ${args.join(' ')}`, () => p.output().includes('"listening"'));
  return p;
}

/** Run a peer client to completion; its JSON line. */
export function peer<T = Record<string, unknown>>(bed: Bed, ns: string, args: string[], timeoutMs = 60_000): T {
  const out = bed.run(ns, [process.execPath, PEER, ...args], { timeoutMs });
  return JSON.parse(out.trim().split('\n').pop() ?? '{}') as T;
}

/** The JSON lines a peer server printed. */
export function events(p: { output: () => string }, event: string): Record<string, unknown>[] {
  return p
    .output()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((o) => o.event === event);
}

export type Sample = { name: string; labels: Record<string, string>; value: number }[];

export function scrape(bed: Bed): Sample {
  const text = bed.run(bed.pod, ['curl', '-sS', '-m', '5', 'http://127.0.0.1:15020/metrics']);
  const out: Sample = [];
  for (const line of text.split('\n')) {
    const m = /^([a-z_:]+)(?:\{(.*)\})? ([-+.\deE]+|NaN)$/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

/** Sum of a metric's series whose labels include `labels`. */
export function sum(s: Sample, name: string, labels: Record<string, string> = {}): number {
  return s.filter((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v)).reduce((a, x) => a + x.value, 0);
}
