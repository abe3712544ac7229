// A throwaway "pod" for the eBPF kernel tests: a network namespace (wfeb-<id>-pod) wired
// by a veth to a peer namespace (wfeb-<id>-peer), a cgroup v2 directory (wfeb-<id>) and a
// private bpffs mount. Processes run inside with nsenter (not `ip netns exec`, which
// remounts /sys and would hide the cgroup2 mount). Everything is removed by destroy(),
// which tests register with t.teardown, so a failing test leaves nothing behind.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, rmdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { ROOT } from '../../pkg/native/load.js';

export const POD_IP = '10.240.0.2';
export const PEER_IP = '10.240.0.1';
/** A second peer address for CIDR-exclusion tests. */
export const PEER_IP2 = '10.240.0.3';
export const POD_IP6 = 'fd00:240::2';
export const PEER_IP6 = 'fd00:240::1';
export const SCRIPTS = `${ROOT}/e2e/ebpf`;
export const PYTHON = '/usr/bin/python3';

/** `sh -c` prefix for Node children: tap's process tracking adds its loader to every
 * spawn's NODE_OPTIONS, which breaks a plain `node bin/weft` (ERR_REQUIRE_CYCLE_MODULE). */
export const UNSET_NODE_OPTIONS = 'unset NODE_OPTIONS;';

export function sh(cmd: string, args: string[], input?: string): { code: number; out: string; err: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', input, timeout: 20_000 });
  return { code: r.status ?? -1, out: r.stdout ?? '', err: r.stderr ?? '' };
}

function must(cmd: string, args: string[]): string {
  const r = sh(cmd, args);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.err.trim()}`);
  return r.out;
}

/** Why the kernel tests cannot run here, or null. */
export function missingPrerequisite(): string | null {
  if (process.getuid?.() !== 0) return 'needs root';
  for (const tool of ['ip', 'nsenter', 'setpriv', 'bpftool', PYTHON]) {
    if (sh('sh', ['-c', `command -v ${tool}`]).code !== 0) return `${tool} is not installed`;
  }
  if (!/ cgroup2 /.test(readFileSync('/proc/mounts', 'utf8'))) return 'no cgroup2 mount';
  return null;
}

export class Pod {
  readonly id = `${process.pid.toString(36)}${Math.random().toString(36).slice(2, 6)}`;
  readonly podNs = `wfeb-${this.id}-pod`;
  readonly peerNs = `wfeb-${this.id}-peer`;
  readonly cgroup: string;
  readonly bpffs: string;
  private readonly procs: ChildProcess[] = [];
  private mounted = false;

  constructor() {
    const cg2 = readFileSync('/proc/mounts', 'utf8')
      .split('\n')
      .map((l) => l.split(' '))
      .find((f) => f[2] === 'cgroup2')?.[1];
    if (cg2 === undefined) throw new Error('no cgroup2 mount');
    this.cgroup = join(cg2, `wfeb-${this.id}`);
    this.bpffs = mkdtempSync(join(tmpdir(), 'wfeb-bpffs-'));
  }

  get podNsPath(): string {
    return `/run/netns/${this.podNs}`;
  }

  create(): this {
    mkdirSync(this.cgroup);
    must('mount', ['-t', 'bpf', `wfeb-${this.id}`, this.bpffs]);
    this.mounted = true;
    must('ip', ['netns', 'add', this.podNs]);
    must('ip', ['netns', 'add', this.peerNs]);
    const inPod = (...a: string[]) => must('nsenter', [`--net=${this.podNsPath}`, ...a]);
    const inPeer = (...a: string[]) => must('nsenter', [`--net=/run/netns/${this.peerNs}`, ...a]);
    inPod('ip', 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', this.peerNs);
    inPod('ip', 'addr', 'add', `${POD_IP}/24`, 'dev', 'eth0');
    inPod('ip', '-6', 'addr', 'add', `${POD_IP6}/64`, 'dev', 'eth0', 'nodad');
    inPod('ip', 'link', 'set', 'eth0', 'up');
    inPod('ip', 'link', 'set', 'lo', 'up');
    inPeer('ip', 'addr', 'add', `${PEER_IP}/24`, 'dev', 'eth0');
    inPeer('ip', 'addr', 'add', `${PEER_IP2}/24`, 'dev', 'eth0');
    inPeer('ip', '-6', 'addr', 'add', `${PEER_IP6}/64`, 'dev', 'eth0', 'nodad');
    inPeer('ip', 'link', 'set', 'eth0', 'up');
    inPeer('ip', 'link', 'set', 'lo', 'up');
    return this;
  }

  /** argv for a command in the pod (netns + cgroup), optionally as uid/gid. */
  podArgv(cmd: string[], as?: { uid: number; gid: number }): string[] {
    const user = as ? `setpriv --reuid ${as.uid} --regid ${as.gid} --clear-groups ` : '';
    const script = `${UNSET_NODE_OPTIONS} echo $$ > '${this.cgroup}/cgroup.procs' && exec ${user}"$@"`;
    return ['nsenter', `--net=${this.podNsPath}`, '--', 'sh', '-c', script, 'sh', ...cmd];
  }

  /** Run a command to completion in the pod (netns + cgroup). */
  runInPod(cmd: string[], as?: { uid: number; gid: number }): { code: number; out: string; err: string } {
    const [c, ...a] = this.podArgv(cmd, as);
    return sh(c ?? 'false', a);
  }

  runInPeer(cmd: string[]): { code: number; out: string; err: string } {
    return sh('nsenter', [`--net=/run/netns/${this.peerNs}`, '--', ...cmd]);
  }

  /** A one-shot TCP request from the app side of the pod; returns the reply or "error: …". */
  request(host: string, port: number): string {
    return this.runInPod([PYTHON, `${SCRIPTS}/client.py`, host, String(port)]).out.trim();
  }

  /** A one-shot TCP request from the peer namespace into the pod. */
  requestFromPeer(host: string, port: number): string {
    return this.runInPeer([PYTHON, `${SCRIPTS}/client.py`, host, String(port)]).out.trim();
  }

  /** Start a long-running process; resolves once it printed a line containing "ready". */
  async start(argv: string[]): Promise<Background> {
    const [c, ...a] = argv;
    const child = spawn(c ?? 'false', a, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.procs.push(child);
    const bg = new Background(child);
    await bg.ready();
    return bg;
  }

  startInPod(cmd: string[], as?: { uid: number; gid: number }): Promise<Background> {
    return this.start(this.podArgv(cmd, as));
  }

  startInPeer(cmd: string[]): Promise<Background> {
    return this.start(['nsenter', `--net=/run/netns/${this.peerNs}`, '--', ...cmd]);
  }

  /** Kill our processes (by pid), then remove the namespaces, the cgroup and the bpffs. */
  async stopProcesses(): Promise<void> {
    await Promise.all(
      this.procs.map(
        (p) =>
          new Promise<void>((resolve) => {
            if (p.exitCode !== null || p.signalCode !== null) return resolve();
            p.once('exit', () => resolve());
            p.kill('SIGKILL');
          }),
      ),
    );
    this.procs.length = 0;
  }

  deleteNetns(which: 'pod' | 'peer'): void {
    sh('ip', ['netns', 'del', which === 'pod' ? this.podNs : this.peerNs]);
  }

  async destroy(): Promise<void> {
    await this.stopProcesses();
    this.deleteNetns('pod');
    this.deleteNetns('peer');
    // The cgroup can only go once its processes are gone (they exit asynchronously).
    for (let i = 0; i < 50; i++) {
      try {
        rmdirSync(this.cgroup);
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') break;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    if (this.mounted) sh('umount', [this.bpffs]);
    this.mounted = false;
    rmSync(this.bpffs, { recursive: true, force: true });
  }
}

/** A background process whose stdout lines are JSON events (or plain text). */
export class Background {
  readonly lines: string[] = [];
  private waiters: (() => void)[] = [];
  constructor(readonly child: ChildProcess) {
    if (child.stdout) {
      createInterface({ input: child.stdout }).on('line', (l) => {
        this.lines.push(l);
        for (const w of this.waiters.splice(0)) w();
      });
    }
    child.stderr?.on('data', (d: Buffer) => this.lines.push(`stderr: ${d.toString().trim()}`));
    child.on('exit', () => {
      for (const w of this.waiters.splice(0)) w();
    });
  }

  /** WEFT_E2E_READY_MS raises the wait for a slow machine (e2e/ebpf/vm runs under TCG). */
  ready(timeoutMs = Number(process.env.WEFT_E2E_READY_MS ?? 5000)): Promise<void> {
    return this.waitFor((l) => l.includes('ready'), timeoutMs).then(() => undefined);
  }

  /** Resolves with the first line matching; rejects after timeoutMs or if the process exits. */
  waitFor(match: (line: string) => boolean, timeoutMs = 5000): Promise<string> {
    return new Promise((resolve, reject) => {
      const deadline = setTimeout(() => reject(new Error(`timed out; output so far:\n${this.lines.join('\n')}`)), timeoutMs);
      const check = (): void => {
        const found = this.lines.find(match);
        if (found !== undefined) {
          clearTimeout(deadline);
          resolve(found);
        } else if (this.child.exitCode !== null || this.child.signalCode !== null) {
          clearTimeout(deadline);
          reject(new Error(`exited (${this.child.exitCode ?? this.child.signalCode}); output:\n${this.lines.join('\n')}`));
        } else this.waiters.push(check);
      };
      check();
    });
  }

  /** Lets the lines the process printed while the test blocked in spawnSync arrive. */
  settle(ms = 150): Promise<void> {
    return new Promise((r) => setTimeout(r, ms));
  }

  events(): Record<string, unknown>[] {
    return this.lines.flatMap((l) => {
      try {
        return [JSON.parse(l) as Record<string, unknown>];
      } catch {
        return [];
      }
    });
  }
}

/** Ids of weft's programs, links and maps that the kernel still has, by id. */
export function liveBpfObjects(ids: { progs: number[]; maps: number[]; links: number[] }): string[] {
  const alive: string[] = [];
  const list = (kind: string): { id: number }[] => JSON.parse(must('bpftool', ['-j', kind, 'show']) || '[]') as { id: number }[];
  const progs = new Set(list('prog').map((p) => p.id));
  const maps = new Set(list('map').map((m) => m.id));
  const links = new Set(list('link').map((l) => l.id));
  for (const id of ids.progs) if (progs.has(id)) alive.push(`prog ${id}`);
  for (const id of ids.maps) if (maps.has(id)) alive.push(`map ${id}`);
  for (const id of ids.links) if (links.has(id)) alive.push(`link ${id}`);
  return alive;
}
