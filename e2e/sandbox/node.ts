// A sandbox node: its network namespace with the bridge, its cgroup root, its bpffs and temp
// dir; it creates pods and services and tears everything down (async, or sync at exit).
import { appendFileSync, chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ErrorCodes, WeftError } from '../../pkg/errors/index.js';
import {
  CREATED_PATHS_FILE,
  cgroup2Mount,
  killCgroupSync,
  registerLive,
  removeCreatedPathsSync,
  rmCgroupTreeSync,
  sweepStale,
} from './cleanup.js';
import type { CgroupDriver, ExecResult, NodeOptions, RunPodOptions, SandboxNode, SandboxPod, ServiceAddress } from './index.js';
import { PodRuntime, type PodHost } from './pod.js';
import { must, run, runSync } from './sh.js';
import type { Pod } from './types.js';

const usedSubnets = new Set<number>();

function defaultSubnet(prefix: string, name: string): number {
  let h = 0;
  for (const ch of `${prefix}-${name}`) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
  let s = 100 + (h % 140);
  while (usedSubnets.has(s)) s = s >= 240 ? 100 : s + 1;
  return s;
}

/** `<repo>` from `<repo>/dist/e2e/sandbox/node.js` or `<repo>/e2e/sandbox/node.ts`. */
function findRepoRoot(): string {
  let d = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    if (existsSync(join(d, 'package.json')) && existsSync(join(d, 'bin', 'weft'))) return d;
    d = dirname(d);
  }
  return resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
}

function bad(field: string, msg: string): WeftError {
  return new WeftError(ErrorCodes.SANDBOX, `createNode: ${field}: ${msg}`, { field });
}

class Node implements SandboxNode, PodHost {
  readonly prefix: string;
  readonly name: string;
  readonly netns: string;
  readonly netnsPath: string;
  readonly subnet: number;
  readonly hostIPv4: string;
  readonly hostIPv6: string;
  readonly cgroup2: string;
  readonly cgroupRoot: string;
  readonly cgroupDriver: CgroupDriver;
  readonly bpffs: string | undefined;
  readonly dir: string;
  readonly nodeBinary = process.execPath;
  readonly weftBinary: string;
  readonly repoRoot: string;
  readonly opts: NodeOptions;
  private readonly podList: PodRuntime[] = [];
  private readonly services: ServiceAddress[] = [];
  private podSeq = 0;
  private unregister: () => void = () => {};
  private torn = false;

  constructor(opts: NodeOptions, subnet: number, dir: string) {
    this.opts = opts;
    this.prefix = opts.prefix;
    this.name = opts.name ?? 'n1';
    this.netns = `${this.prefix}-${this.name}`;
    this.netnsPath = `/run/netns/${this.netns}`;
    this.subnet = subnet;
    this.hostIPv4 = `10.${subnet}.0.1`;
    this.hostIPv6 = `fd00:${subnet}::1`;
    this.cgroup2 = cgroup2Mount();
    this.cgroupRoot = join(this.cgroup2, this.netns);
    this.cgroupDriver = opts.cgroupDriver ?? 'systemd';
    this.dir = dir;
    this.bpffs = opts.bpffs === false ? undefined : join(dir, 'bpffs');
    this.repoRoot = opts.repoRoot ?? findRepoRoot();
    this.weftBinary = join(this.repoRoot, 'bin', 'weft');
  }

  async setUp(): Promise<void> {
    this.unregister = registerLive(this);
    this.opts.t?.teardown(() => this.teardown());
    const n = this.netns;
    await must('create node netns', ['ip', 'netns', 'add', n]);
    await must('set up node bridge', ['ip', '-n', n, '-b', '-'], {
      input: [
        'link set lo up',
        'link add br0 type bridge',
        `addr add ${this.hostIPv4}/24 dev br0`,
        `addr add ${this.hostIPv6}/64 dev br0 nodad`,
        'link set br0 up',
        '',
      ].join('\n'),
    });
    // Forwarding inside the node netns only: service addresses are routed through it.
    await must('node sysctls', ['nsenter', `--net=${this.netnsPath}`, '--', 'sysctl', '-q', '-w', 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1', 'net.ipv6.conf.default.accept_dad=0']);
    mkdirSync(join(this.cgroupRoot, ...(this.cgroupDriver === 'systemd' ? ['kubepods.slice', 'kubepods-besteffort.slice'] : ['kubepods', 'besteffort'])), { recursive: true });
    if (this.bpffs !== undefined) {
      mkdirSync(this.bpffs);
      await must('mount node bpffs', ['mount', '-t', 'bpf', `${this.netns}-bpffs`, this.bpffs]);
    }
  }

  /** Pod-level cgroup directory for a pod uid, as the kubelet names it. */
  podCgroup(uid: string): string {
    return this.cgroupDriver === 'systemd'
      ? join(this.cgroupRoot, 'kubepods.slice', 'kubepods-besteffort.slice', `kubepods-besteffort-pod${uid.replaceAll('-', '_')}.slice`)
      : join(this.cgroupRoot, 'kubepods', 'besteffort', `pod${uid}`);
  }

  containerCgroup(podCgroup: string, id: string): string {
    return join(podCgroup, this.cgroupDriver === 'systemd' ? `cri-containerd-${id}.scope` : id);
  }

  hostPathMap(): Record<string, string> {
    return {
      ...(this.bpffs === undefined ? {} : { '/sys/fs/bpf': this.bpffs }),
      '/sys/fs/cgroup': this.cgroup2,
      ...(this.opts.hostPathMap ?? {}),
    };
  }

  /** Note a host path the sandbox created (a mountPath), so teardown or a later sweep removes it. */
  recordCreated(path: string): void {
    appendFileSync(join(this.dir, CREATED_PATHS_FILE), `${path}\n`);
  }

  async runPod(pod: Pod | Record<string, unknown>, opts: RunPodOptions = {}): Promise<SandboxPod> {
    if (this.torn) throw new WeftError(ErrorCodes.SANDBOX, `node ${this.netns} was torn down`, { field: 'node' });
    const index = ++this.podSeq;
    if (index > 200) throw new WeftError(ErrorCodes.SANDBOX, `node ${this.netns}: at most 200 pods per node`, { field: 'pods' });
    const rt = new PodRuntime(this, pod, index, opts);
    this.podList.push(rt);
    try {
      await rt.start();
    } catch (e) {
      await rt.delete().catch(() => {});
      throw e;
    }
    return rt;
  }

  podRemoved(p: PodRuntime): void {
    const i = this.podList.indexOf(p);
    if (i >= 0) this.podList.splice(i, 1);
  }

  async addService(name: string, pod: SandboxPod): Promise<ServiceAddress> {
    if (!this.podList.includes(pod as PodRuntime)) throw new WeftError(ErrorCodes.SANDBOX, `addService ${name}: pod ${pod.name} is not on node ${this.netns}`, { field: 'pod' });
    const k = this.services.length + 10;
    if (k > 250) throw new WeftError(ErrorCodes.SANDBOX, `addService ${name}: at most 240 services per node`, { field: 'services' });
    const svc: ServiceAddress = { name, ipv4: `10.${this.subnet}.96.${k}`, ipv6: `fd00:${this.subnet}:96::${k}`, pod: pod.name };
    await must(`service ${name}: address on pod`, ['ip', '-n', pod.netns, '-b', '-'], {
      input: `addr add ${svc.ipv4}/32 dev eth0\naddr add ${svc.ipv6}/128 dev eth0 nodad\n`,
    });
    await must(`service ${name}: route in node`, ['ip', '-n', this.netns, '-b', '-'], {
      input: `route add ${svc.ipv4}/32 via ${pod.ipv4} dev br0\nroute add ${svc.ipv6}/128 via ${pod.ipv6} dev br0\n`,
    });
    this.services.push(svc);
    return svc;
  }

  pods(): SandboxPod[] {
    return [...this.podList];
  }

  exec(argv: string[], opts: { env?: Record<string, string>; input?: string | Buffer; timeoutMs?: number; cwd?: string } = {}): Promise<ExecResult> {
    return run(['nsenter', `--net=${this.netnsPath}`, '--', ...argv], {
      ...(opts.env === undefined ? {} : { env: { ...process.env, ...opts.env } }),
      ...(opts.input === undefined ? {} : { input: opts.input }),
      ...(opts.timeoutMs === undefined ? {} : { timeoutMs: opts.timeoutMs }),
      ...(opts.cwd === undefined ? {} : { cwd: opts.cwd }),
    });
  }

  async teardown(): Promise<void> {
    if (this.torn) return;
    this.torn = true;
    const errors: string[] = [];
    for (const p of [...this.podList].reverse()) {
      try {
        await p.delete();
      } catch (e) {
        errors.push(`pod ${p.name}: ${(e as Error).message}`);
      }
    }
    errors.push(...this.cleanupSync());
    if (errors.length > 0) throw new WeftError(ErrorCodes.SANDBOX, `teardown of node ${this.netns} left: ${errors.join('; ')}`, { field: 'teardown' });
  }

  /** Remove everything without waiting for graceful exits (also used at process exit). Returns what failed. */
  cleanupSync(): string[] {
    this.torn = true;
    this.unregister();
    const errors: string[] = [];
    killCgroupSync(this.cgroupRoot);
    for (const p of [...this.podList]) p.forgetSync();
    this.podList.length = 0;
    removeCreatedPathsSync(this.dir);
    if (this.bpffs !== undefined && existsSync(this.bpffs)) {
      // Pins go with the bpffs instance once it is unmounted and no process holds it.
      for (const e of readdirSync(this.bpffs)) {
        try {
          rmSync(join(this.bpffs, e), { recursive: true, force: true });
        } catch {
          // maps.debug/progs.debug are the kernel's own iterators: they go with the mount
        }
      }
      const u = runSync(['umount', this.bpffs]);
      if (!u.ok && !/not mounted/.test(u.stderr)) {
        const lazy = runSync(['umount', '-l', this.bpffs]);
        if (!lazy.ok) errors.push(`umount ${this.bpffs}: ${u.stderr.trim()}`);
      }
    }
    for (const ns of this.podNetnsLeft()) runSync(['ip', 'netns', 'del', ns]);
    if (existsSync(this.netnsPath)) {
      const d = runSync(['ip', 'netns', 'del', this.netns]);
      if (!d.ok) errors.push(`ip netns del ${this.netns}: ${d.stderr.trim()}`);
    }
    errors.push(...rmCgroupTreeSync(this.cgroupRoot));
    try {
      rmSync(this.dir, { recursive: true, force: true });
    } catch (e) {
      errors.push(`rm ${this.dir}: ${(e as Error).message}`);
    }
    usedSubnets.delete(this.subnet);
    return errors;
  }

  private podNetnsLeft(): string[] {
    const r = runSync(['ip', 'netns', 'list']);
    return r.stdout
      .split('\n')
      .map((l) => l.split(' ')[0] ?? '')
      .filter((n) => n.startsWith(`${this.netns}-`));
  }
}

/** Create a node (see NodeOptions); everything it makes carries `<prefix>-<name>`. */
export async function createNode(opts: NodeOptions): Promise<SandboxNode> {
  if (!/^[a-z][a-z0-9]{1,7}$/.test(opts.prefix ?? '')) throw bad('prefix', `"${opts.prefix}" must match [a-z][a-z0-9]{1,7}`);
  const name = opts.name ?? 'n1';
  if (!/^[a-z0-9]{1,6}$/.test(name)) throw bad('name', `"${name}" must match [a-z0-9]{1,6}`);
  if (opts.cgroupDriver !== undefined && opts.cgroupDriver !== 'systemd' && opts.cgroupDriver !== 'cgroupfs') {
    throw bad('cgroupDriver', `"${String(opts.cgroupDriver)}" is not allowed; allowed: systemd, cgroupfs`);
  }
  if (opts.subnet !== undefined && (!Number.isInteger(opts.subnet) || opts.subnet < 2 || opts.subnet > 250)) throw bad('subnet', 'must be an integer in 2..250');
  if (process.getuid?.() !== 0) throw new WeftError(ErrorCodes.MISSING_FEATURE, 'the pod sandbox needs root (network namespaces, cgroups, mounts)', { field: 'uid' });
  const subnet = opts.subnet ?? defaultSubnet(opts.prefix, name);
  if (usedSubnets.has(subnet)) throw bad('subnet', `${subnet} is already used by another node of this process`);
  if (opts.sweep !== false) sweepStale(`${opts.prefix}-${name}`);
  usedSubnets.add(subnet);
  const dir = mkdtempSync(join(tmpdir(), `${opts.prefix}-${name}-`));
  chmodSync(dir, 0o755); // non-root containers read configs and emptyDirs below it
  const node = new Node(opts, subnet, dir);
  try {
    await node.setUp();
  } catch (e) {
    node.cleanupSync();
    throw e;
  }
  return node;
}
