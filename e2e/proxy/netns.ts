// A two-namespace bed for the proxy's kernel tests: a "pod" namespace (the proxy, the app
// servers, a minimal TPROXY rule set) and a "client" namespace joined by a veth pair. Every
// name carries the wfpx prefix; everything made is removed in close(), also after failures.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';

export const PREFIX = 'wfpx';

export interface Bed {
  pod: string;
  client: string;
  podIp: string;
  clientIp: string;
  /** Run to completion in a namespace; throws on a non-zero exit. */
  run(ns: string, argv: string[], opts?: { input?: string; timeoutMs?: number }): string;
  /** Start a long-running process in a namespace; killed (by pid) in close(). */
  start(ns: string, argv: string[], opts?: { env?: NodeJS.ProcessEnv; stdout?: boolean }): ChildProcess & { output: () => string };
  close(): Promise<void>;
}

/** process.env without a test runner's loader hooks (NODE_OPTIONS) and TAP_* variables. */
function plainEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'NODE_OPTIONS' && !k.startsWith('TAP')));
}

function sh(argv: string[], opts: { input?: string; timeoutMs?: number } = {}): string {
  const r = spawnSync(argv[0]!, argv.slice(1), { input: opts.input, encoding: 'utf8', timeout: opts.timeoutMs ?? 30_000 });
  if (r.status !== 0) throw new Error(`${argv.join(' ')} → ${r.status ?? r.signal}: ${(r.stderr || r.stdout).slice(0, 500)}`);
  return r.stdout;
}

/** Why this host cannot run the bed, or null. */
export function bedUnavailable(): string | null {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces)';
  for (const tool of ['ip', 'iptables-restore']) if (spawnSync('which', [tool]).status !== 0) return `${tool} not installed`;
  return null;
}

export async function createBed(tag: string): Promise<Bed> {
  const id = `${tag}${process.pid % 10000}`;
  const pod = `${PREFIX}-${id}-pod`;
  const client = `${PREFIX}-${id}-cli`;
  const vp = `${PREFIX}${id}p`.slice(0, 15);
  const vc = `${PREFIX}${id}c`.slice(0, 15);
  const octet = 16 + (process.pid % 200);
  const podIp = `10.231.${octet}.2`;
  const clientIp = `10.231.${octet}.1`;
  const procs: ChildProcess[] = [];
  const close = async (): Promise<void> => {
    for (const p of procs.reverse()) {
      if (p.exitCode === null && p.signalCode === null && p.pid) {
        const gone = new Promise((r) => p.once('exit', r));
        p.kill('SIGTERM');
        await Promise.race([gone, new Promise((r) => setTimeout(r, 2000))]);
        if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
      }
    }
    for (const ns of [pod, client]) spawnSync('ip', ['netns', 'del', ns]);
  };
  try {
    for (const ns of [pod, client]) {
      spawnSync('ip', ['netns', 'del', ns]); // a leftover from a killed run
      sh(['ip', 'netns', 'add', ns]);
      sh(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
    }
    sh(['ip', 'link', 'add', vp, 'netns', pod, 'type', 'veth', 'peer', 'name', vc, 'netns', client]);
    sh(['ip', '-n', pod, 'addr', 'add', `${podIp}/24`, 'dev', vp]);
    sh(['ip', '-n', client, 'addr', 'add', `${clientIp}/24`, 'dev', vc]);
    sh(['ip', '-n', pod, 'link', 'set', vp, 'up']);
    sh(['ip', '-n', client, 'link', 'set', vc, 'up']);
    // Minimal inbound TPROXY: new connections arriving on the veth, except the admin port and
    // two excluded ports (for direct measurements), go to the proxy's inbound listener. Only
    // SYNs: later packets find their socket by the normal lookup (the pod IP is local), and
    // replies to the pod's own outbound connections must not meet TPROXY (it drops packets
    // whose socket is not transparent).
    sh(['ip', 'netns', 'exec', pod, 'iptables-restore'], {
      input: [
        '*mangle',
        ':WFPX_DIVERT - [0:0]',
        `-A PREROUTING -i ${vp} -p tcp -m socket --transparent -m comment --comment weft/established -j WFPX_DIVERT`,
        `-A PREROUTING -i ${vp} -p tcp -m multiport --dports 15020,5202,6380 -m comment --comment weft/exclude -j RETURN`,
        `-A PREROUTING -i ${vp} -p tcp --syn -m comment --comment weft/inbound -j TPROXY --on-port 15006 --on-ip 0.0.0.0 --tproxy-mark 0x539/0xffffffff`,
        '-A WFPX_DIVERT -j MARK --set-xmark 0x539/0xffffffff',
        '-A WFPX_DIVERT -j ACCEPT',
        'COMMIT',
        '',
      ].join('\n'),
    });
    sh(['ip', '-n', pod, 'rule', 'add', 'fwmark', '0x539', 'lookup', '133']);
    sh(['ip', '-n', pod, 'route', 'add', 'local', '0.0.0.0/0', 'dev', 'lo', 'table', '133']);
  } catch (e) {
    await close();
    throw e;
  }
  return {
    pod,
    client,
    podIp,
    clientIp,
    run: (ns, argv, opts) => sh(['ip', 'netns', 'exec', ns, ...argv], opts),
    start(ns, argv, opts = {}) {
      const p = spawn('ip', ['netns', 'exec', ns, ...argv], { stdio: ['ignore', 'pipe', 'pipe'], env: opts.env ?? plainEnv() }) as ChildProcess & { output: () => string };
      let out = '';
      p.stdout?.on('data', (b: Buffer) => (out += b.toString()));
      p.stderr?.on('data', (b: Buffer) => (out += b.toString()));
      p.output = () => out;
      procs.push(p);
      return p;
    },
    close,
  };
}

export async function waitFor(what: string, fn: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const t0 = Date.now();
  while (Date.now() - t0 < timeoutMs) {
    try {
      if (await fn()) return;
    } catch {
      // not yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}
