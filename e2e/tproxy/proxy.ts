// The proxy the interception test runs in the client pod: uid 0, gid 1337 (the TPROXY-mode
// identity), transparent listeners on 15001 and 15006, reporting each accepted connection's
// original destination. Two kinds: the real `weft proxy --mode tproxy --access-log` (its
// access log's `dst` is what it read with getsockname), and a stand-in (standin_proxy.py)
// that prints getsockname() of every accepted connection.
import { E2E_DIR, WEFT, waitFor, type Netns } from './netns.js';

export type ProxyKind = 'weft' | 'standin';

export interface Accepted {
  listener: number;
  dst: string;
  port: number;
}

export interface ProxyUnderTest {
  kind: string;
  accepted(): Accepted[];
}

const asTproxyIdentity = ['setpriv', '--regid', '1337', '--clear-groups'];

/** "10.0.0.1:80" or "fd00::1:80" → [address, port]. */
const splitHostPort = (s: string): [string, number] => {
  const i = s.lastIndexOf(':');
  return [s.slice(0, i).replace(/^\[|\]$/g, ''), Number(s.slice(i + 1))];
};

const parse = <T>(l: string): T | null => {
  try {
    return JSON.parse(l) as T;
  } catch {
    return null;
  }
};

export async function startProxy(ns: Netns, kind: ProxyKind): Promise<ProxyUnderTest> {
  if (kind === 'weft') {
    const p = ns.spawn([...asTproxyIdentity, process.execPath, WEFT, 'proxy', '--mode', 'tproxy', '--access-log', '--log-level', 'info']);
    await waitFor('weft proxy ready', () => p.errLines.some((l) => l.includes('"proxy ready"')), 10_000);
    return {
      kind: 'weft proxy --mode tproxy (access log dst)',
      accepted: () =>
        p.lines
          .map((l) => parse<{ dir?: string; dst?: string }>(l))
          .filter((r): r is { dir: string; dst: string } => typeof r?.dir === 'string' && typeof r.dst === 'string')
          .map((r) => {
            const [dst, port] = splitHostPort(r.dst);
            return { listener: r.dir === 'outbound' ? 15001 : 15006, dst, port };
          }),
    };
  }
  const p = ns.spawn([...asTproxyIdentity, 'python3', `${E2E_DIR}standin_proxy.py`, '15001,15006']);
  await waitFor('stand-in proxy', () => p.lines.some((l) => l.includes('"ready"')));
  return {
    kind: 'stand-in (e2e/tproxy/standin_proxy.py: IP_TRANSPARENT listeners, getsockname)',
    accepted: () =>
      p.lines
        .map((l) => parse<{ listener?: number; dst?: [string, number] }>(l))
        .filter((r) => r?.dst !== undefined)
        .map((r) => ({ listener: r?.listener ?? 0, dst: r?.dst?.[0] ?? '', port: r?.dst?.[1] ?? 0 })),
  };
}
