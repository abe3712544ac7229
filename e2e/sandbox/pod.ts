// One pod on a sandbox node: its netns and veth, its cgroups, and its containers run in the
// kubelet's order (init containers, native sidecars gated on their probes, then containers
// with postStart hooks), readiness probes, exec, and deletion in Kubernetes order.
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ErrorCodes, WeftError } from '../../pkg/errors/index.js';
import { capabilityPlan } from './caps.js';
import { killCgroupSync, rmCgroupTreeSync } from './cleanup.js';
import { ContainerRuntime } from './container.js';
import { containerEnv, expand, type DownwardFields } from './env.js';
import { hostCaps } from './host-caps.js';
import { mapImage } from './images.js';
import type { ContainerExit, ContainerKind, ContainerStatus, ExecOptions, ExecResult, ImageMapping, NodeInfo, RunPodOptions, SandboxPod } from './index.js';
import { launchArgv } from './launch.js';
import { probeOnce, probeTimings, type ProbeTarget } from './probe.js';
import { bindMounts, checkPod } from './podspec.js';
import { must, run, runSync, sleep } from './sh.js';
import type { Container, Pod, Probe } from './types.js';

/** What a pod needs from its node. */
export interface PodHost extends NodeInfo {
  readonly opts: { images?: Record<string, ImageMapping>; defaultGraceMs?: number };
  podCgroup(uid: string): string;
  containerCgroup(podCgroup: string, id: string): string;
  hostPathMap(): Record<string, string>;
  recordCreated(path: string): void;
  podRemoved(p: PodRuntime): void;
  exec(argv: string[], opts?: { timeoutMs?: number }): Promise<ExecResult>;
}

export class PodRuntime implements SandboxPod {
  readonly name: string;
  readonly namespace: string;
  readonly uid: string;
  readonly netns: string;
  readonly netnsPath: string;
  readonly ipv4: string;
  readonly ipv6: string;
  readonly ips: readonly string[];
  readonly cgroupPath: string;
  readonly dir: string;
  readonly manifest: Pod;
  private readonly host: PodHost;
  private readonly index: number;
  private readonly opts: RunPodOptions;
  private readonly list: ContainerRuntime[] = [];
  private readonly envs = new Map<string, Record<string, string>>();
  private readonly probeDetail = new Map<string, { last: string }>();
  private readonly probeFailures = new Map<string, Error>();
  private deleted = false;

  constructor(host: PodHost, input: unknown, index: number, opts: RunPodOptions) {
    this.host = host;
    this.index = index;
    this.opts = opts;
    this.manifest = checkPod(input);
    const meta = this.manifest.metadata!;
    this.name = meta.name!;
    this.namespace = meta.namespace!;
    this.uid = meta.uid!;
    this.netns = `${host.netns}-${index}-${this.name.replace(/[^a-z0-9-]/g, '-').slice(0, 24)}`;
    this.netnsPath = `/run/netns/${this.netns}`;
    this.ipv4 = `10.${host.subnet}.0.${index + 9}`;
    this.ipv6 = `fd00:${host.subnet}::${(index + 9).toString(16)}`;
    this.ips = [this.ipv4, this.ipv6];
    this.cgroupPath = host.podCgroup(this.uid);
    this.dir = join(host.dir, 'pods', `${index}-${this.name}`);
  }

  private get grace(): number {
    const s = this.manifest.spec.terminationGracePeriodSeconds;
    return s === undefined ? (this.host.opts.defaultGraceMs ?? 3000) : s * 1000;
  }

  async start(): Promise<void> {
    const deadline = Date.now() + (this.opts.timeoutMs ?? 30_000);
    mkdirSync(join(this.dir, 'logs'), { recursive: true });
    mkdirSync(this.cgroupPath, { recursive: true });
    await this.setUpNetwork();
    const spec = this.manifest.spec;
    for (const [i, c] of (spec.initContainers ?? []).entries()) {
      const where = `spec.initContainers[${i}]`;
      if (c.restartPolicy === 'Always') {
        const rt = await this.startContainer(c, 'sidecar', where, deadline);
        // As the kubelet: the next init container waits for this sidecar's startup probe
        // (here: its readiness probe when it has no startup probe).
        const gate = c.startupProbe ? 'startupProbe' : c.readinessProbe ? 'readinessProbe' : undefined;
        if (gate) await this.untilProbe(rt, gate, deadline);
        if (gate === 'startupProbe' && c.readinessProbe) void this.readinessLoop(rt);
        else rt.ready = true;
      } else {
        const rt = await this.startContainer(c, 'init', where, deadline);
        const exit = await this.until(rt.exited(), deadline, `init container ${c.name} did not finish`, rt);
        if (exit.code !== 0) {
          throw new WeftError(
            ErrorCodes.SANDBOX,
            `pod ${this.name}: init container ${c.name} (${where}) exited with ${exit.code ?? exit.signal}; its output:\n${rt.logs().trimEnd() || '(none)'}`,
            { field: where },
          );
        }
      }
    }
    for (const [i, c] of spec.containers.entries()) {
      const rt = await this.startContainer(c, 'app', `spec.containers[${i}]`, deadline);
      void this.readinessLoop(rt);
    }
    if (this.opts.waitReady !== false) await this.waitReady(Math.max(1000, deadline - Date.now()));
  }

  private async setUpNetwork(): Promise<void> {
    const h = this.host;
    const veth = `veth${this.index}`;
    await must(`pod ${this.name}: netns`, ['ip', 'netns', 'add', this.netns]);
    // The pair is made inside the node netns with its peer put straight into the pod: the
    // root network namespace never sees either end.
    await must(`pod ${this.name}: veth`, ['ip', '-n', h.netns, '-b', '-'], {
      input: `link add ${veth} type veth peer name eth0 netns ${this.netns}\nlink set ${veth} master br0 up\n`,
    });
    await must(`pod ${this.name}: addresses`, ['ip', '-n', this.netns, '-b', '-'], {
      input: [
        'link set lo up',
        `addr add ${this.ipv4}/24 dev eth0`,
        `addr add ${this.ipv6}/64 dev eth0 nodad`,
        'link set eth0 up',
        `route add default via ${h.hostIPv4} dev eth0`,
        `route add ::/0 via ${h.hostIPv6} dev eth0`,
        '',
      ].join('\n'),
    });
  }

  private downward(): DownwardFields {
    const m = this.manifest.metadata!;
    return {
      name: this.name,
      namespace: this.namespace,
      uid: this.uid,
      podIP: this.ipv4,
      podIPs: [...this.ips],
      hostIP: this.host.hostIPv4,
      serviceAccountName: this.manifest.spec.serviceAccountName ?? 'default',
      nodeName: this.host.netns,
      labels: m.labels ?? {},
      annotations: m.annotations ?? {},
    };
  }

  private async startContainer(c: Container, kind: ContainerKind, where: string, deadline: number): Promise<ContainerRuntime> {
    const h = this.host;
    const plan = capabilityPlan(this.manifest.spec, c, where, hostCaps());
    // The runtime's env (as from the image and the runtime), under the container's own;
    // $(VAR) in env, command and args sees only the container's own (containerEnv).
    const base = {
      PATH: `${dirname(h.nodeBinary)}:${dirname(h.weftBinary)}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`,
      HOSTNAME: this.name,
      HOME: plan.uid === 0 ? '/root' : '/',
    };
    const own = containerEnv(c, where, this.downward());
    const env = { ...base, ...own };
    const mapped = await mapImage(
      [this.opts.images ?? {}, h.opts.images ?? {}],
      {
        image: c.image ?? '',
        container: c,
        command: c.command?.map((s) => expand(s, own)),
        args: c.args?.map((s) => expand(s, own)),
        env,
        podDir: this.dir,
        pod: this,
        node: h,
      },
      where,
    );
    const fullEnv = { ...env, ...(mapped.env ?? {}) };
    this.envs.set(c.name, fullEnv);
    const mounts = bindMounts(c, where, { pod: this.manifest, podDir: this.dir, hostPathMap: h.hostPathMap(), created: (p) => h.recordCreated(p) });
    const id = randomBytes(32).toString('hex');
    const cg = h.containerCgroup(this.cgroupPath, id);
    mkdirSync(cg);
    const rt = new ContainerRuntime(c, kind, where, id, cg, plan);
    this.list.push(rt);
    await rt.start({ netnsPath: this.netnsPath, argv: mapped.argv, env: fullEnv, mounts, cwd: c.workingDir ?? mapped.cwd ?? '/', logFile: join(this.dir, 'logs', `${c.name}.log`) });
    const hook = c.lifecycle?.postStart?.exec?.command;
    if (hook && hook.length > 0) {
      const r = await this.exec(hook, { container: c.name, timeoutMs: Math.max(1000, deadline - Date.now()) });
      if (r.code !== 0) {
        throw new WeftError(ErrorCodes.SANDBOX, `pod ${this.name}: postStart hook of ${c.name} exited with ${r.code ?? r.signal}: ${(r.stderr + r.stdout).trim()}`, {
          field: `${where}.lifecycle.postStart`,
        });
      }
    }
    return rt;
  }

  private async until<T>(p: Promise<T>, deadline: number, what: string, rt: ContainerRuntime): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(this.failure(`${what} in time`, rt)), Math.max(0, deadline - Date.now()));
    });
    try {
      return await Promise.race([p, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  private failure(what: string, rt: ContainerRuntime): WeftError {
    const detail = this.probeDetail.get(rt.name)?.last;
    const exit = rt.exit ? ` (exited with ${rt.exit.code ?? rt.exit.signal})` : '';
    return new WeftError(
      ErrorCodes.SANDBOX,
      `pod ${this.name}: ${what}${exit}${detail ? `; last probe: ${detail}` : ''}; output of ${rt.name}:\n${rt.logs().trimEnd().slice(-4000) || '(none)'}`,
      { field: rt.where },
    );
  }

  private target(rt: ContainerRuntime): ProbeTarget {
    return {
      podIP: this.ipv4,
      container: rt.spec,
      where: rt.where,
      nodeExec: (argv, timeoutMs) => this.host.exec(argv, { timeoutMs }),
      containerExec: (argv, timeoutMs) => this.exec(argv, { container: rt.name, timeoutMs }),
    };
  }

  /** Probe until success; throws if the container exits, the pod is deleted, or the deadline passes. */
  private async untilProbe(rt: ContainerRuntime, which: 'startupProbe' | 'readinessProbe', deadline: number): Promise<void> {
    const probe = rt.spec[which] as Probe;
    const { periodMs, initialDelayMs } = probeTimings(probe);
    const detail = { last: '' };
    this.probeDetail.set(rt.name, detail);
    // A startup probe has failureThreshold × periodSeconds (real seconds) before the kubelet
    // would kill the container; here that is an error, as no container is restarted.
    const budget = which === 'startupProbe' ? Date.now() + (probe.initialDelaySeconds ?? 0) * 1000 + (probe.failureThreshold ?? 3) * (probe.periodSeconds ?? 10) * 1000 : Infinity;
    await sleep(initialDelayMs);
    for (let tries = 1; ; tries++) {
      if (this.deleted) throw new WeftError(ErrorCodes.SANDBOX, `pod ${this.name} was deleted`, { field: rt.where });
      if (!rt.running) throw this.failure(`${rt.name} exited before its ${which} passed`, rt);
      if (await probeOnce(probe, this.target(rt), which, detail)) return;
      if (Date.now() + periodMs > budget) throw this.failure(`${which} of ${rt.name} failed ${tries} times, past failureThreshold × periodSeconds`, rt);
      if (Date.now() + periodMs > deadline) throw this.failure(`${which} of ${rt.name} did not pass in time`, rt);
      await sleep(periodMs);
    }
  }

  /** Startup probe, then readiness probe, until the container is ready once (probing then stops). */
  private async readinessLoop(rt: ContainerRuntime): Promise<void> {
    const forever = Number.MAX_SAFE_INTEGER;
    try {
      if (rt.spec.startupProbe) await this.untilProbe(rt, 'startupProbe', forever);
      if (rt.spec.readinessProbe) await this.untilProbe(rt, 'readinessProbe', forever);
      rt.ready = rt.running;
    } catch (e) {
      // It stays not ready; waitReady reports why at once.
      if (!this.deleted) this.probeFailures.set(rt.name, e as Error);
    }
  }

  private serving(): ContainerRuntime[] {
    return this.list.filter((c) => c.kind !== 'init');
  }

  isReady(): boolean {
    const s = this.serving();
    return s.length > 0 && s.every((c) => c.ready && c.running);
  }

  async waitReady(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.isReady()) return;
      const failed = [...this.probeFailures.values()][0];
      if (failed) throw failed;
      const dead = this.serving().find((c) => !c.running);
      if (dead) throw this.failure(`container ${dead.name} is not running`, dead);
      if (Date.now() > deadline) {
        const notReady = this.serving().find((c) => !c.ready)!;
        throw this.failure(`${notReady.name} not ready after ${timeoutMs} ms`, notReady);
      }
      await sleep(50);
    }
  }

  async probe(container: string, which: 'readiness' | 'startup' = 'readiness'): Promise<boolean> {
    const rt = this.get(container);
    const p = which === 'startup' ? rt.spec.startupProbe : rt.spec.readinessProbe;
    if (!p) throw new WeftError(ErrorCodes.SANDBOX, `pod ${this.name}: container ${container} has no ${which}Probe`, { field: `${rt.where}.${which}Probe` });
    return probeOnce(p, this.target(rt), `${which}Probe`, { last: '' });
  }

  private get(container: string): ContainerRuntime {
    const rt = this.list.find((c) => c.name === container);
    if (!rt) {
      const known = this.list.map((c) => c.name).join(', ') || '(none started)';
      throw new WeftError(ErrorCodes.SANDBOX, `pod ${this.name}: no container "${container}"; containers: ${known}`, { field: 'container' });
    }
    return rt;
  }

  async exec(argv: string[], opts: ExecOptions = {}): Promise<ExecResult> {
    if (this.deleted) throw new WeftError(ErrorCodes.SANDBOX, `pod ${this.name} was deleted`, { field: 'pod' });
    const name =
      opts.container ??
      this.manifest.metadata?.annotations?.['kubectl.kubernetes.io/default-container'] ??
      this.list.find((c) => c.kind === 'app')?.name ??
      this.list[0]?.name;
    if (name === undefined) throw new WeftError(ErrorCodes.SANDBOX, `pod ${this.name}: no container to exec into yet`, { field: 'container' });
    const rt = this.get(name);
    const plan =
      opts.uid === undefined && opts.gid === undefined
        ? rt.plan
        : capabilityPlan(this.manifest.spec, rt.spec, rt.where, hostCaps(), { ...(opts.uid === undefined ? {} : { uid: opts.uid }), ...(opts.gid === undefined ? {} : { gid: opts.gid }) });
    const pid = rt.pid;
    const launch = launchArgv({
      cgroupDir: rt.cgroupPath,
      netnsPath: this.netnsPath,
      ...(pid === undefined ? { mounts: [] } : { joinMountNsOf: pid }),
      cwd: opts.cwd ?? rt.spec.workingDir ?? '/',
      setpriv: plan.setpriv,
      argv,
      env: { ...(this.envs.get(name) ?? {}), ...(opts.env ?? {}) },
    });
    return run(launch, {
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' },
      ...(opts.input === undefined ? {} : { input: opts.input }),
      timeoutMs: opts.timeoutMs ?? 30_000,
    });
  }

  logs(container: string): string {
    return this.get(container).logs();
  }

  async waitForLog(container: string, pattern: RegExp | string, timeoutMs = 10_000): Promise<void> {
    const rt = this.get(container);
    const hit = (): boolean => (typeof pattern === 'string' ? rt.logs().includes(pattern) : pattern.test(rt.logs()));
    if (hit()) return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(this.failure(`no output matching ${String(pattern)} from ${container} within ${timeoutMs} ms`, rt));
      }, timeoutMs);
      const off = rt.onOutput(() => {
        if (hit()) {
          clearTimeout(timer);
          off();
          resolve();
        } else if (!rt.running) {
          clearTimeout(timer);
          off();
          reject(this.failure(`${container} exited without output matching ${String(pattern)}`, rt));
        }
      });
    });
  }

  pid(container: string): number | undefined {
    return this.get(container).pid;
  }

  status(container: string): ContainerStatus {
    return this.get(container).status();
  }

  containers(): ContainerStatus[] {
    return this.list.map((c) => c.status());
  }

  exited(container: string): Promise<ContainerExit> {
    return this.get(container).exited();
  }

  async stop(container: string, graceMs?: number): Promise<ContainerExit> {
    return this.stopOne(this.get(container), graceMs ?? this.grace, Date.now() + (graceMs ?? this.grace));
  }

  private async stopOne(rt: ContainerRuntime, graceMs: number, deadline: number): Promise<ContainerExit> {
    const preStop = rt.spec.lifecycle?.preStop?.exec?.command;
    if (rt.running && preStop && preStop.length > 0) {
      await this.exec(preStop, { container: rt.name, timeoutMs: Math.max(100, deadline - Date.now()) }).catch(() => undefined);
    }
    return rt.stop(Math.max(0, Math.min(graceMs, deadline - Date.now())));
  }

  async delete(): Promise<void> {
    if (this.deleted) return;
    const deadline = Date.now() + this.grace;
    // Kubernetes: app containers (and any running init container) together, then native
    // sidecars one by one in reverse order, all within one grace period.
    await Promise.all(this.list.filter((c) => c.kind !== 'sidecar').map((c) => this.stopOne(c, this.grace, deadline)));
    for (const c of this.list.filter((x) => x.kind === 'sidecar').reverse()) await this.stopOne(c, this.grace, deadline);
    this.deleted = true;
    this.forgetSync();
  }

  /** Kill what is left and remove the pod's netns, cgroups and directory. */
  forgetSync(): void {
    this.deleted = true;
    killCgroupSync(this.cgroupPath);
    if (runSync(['ip', 'netns', 'del', this.netns]).ok === false) {
      // already gone, or never made
    }
    rmCgroupTreeSync(this.cgroupPath);
    rmSync(this.dir, { recursive: true, force: true });
    this.host.podRemoved(this);
  }
}
