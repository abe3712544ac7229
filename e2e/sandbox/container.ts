// One running container: its process (started through launch.ts), its output, its exit, and
// the SIGTERM → grace → SIGKILL stop the kubelet does.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, readFileSync, type WriteStream } from 'node:fs';
import type { CapabilityPlan } from './caps.js';
import { killCgroupSync } from './cleanup.js';
import type { ContainerExit, ContainerKind, ContainerStatus } from './index.js';
import { launchArgv, type BindMount } from './launch.js';
import type { Container } from './types.js';

const MAX_LOG = 8 * 1024 * 1024;

export interface ContainerStart {
  netnsPath: string;
  argv: string[];
  env: Record<string, string>;
  mounts: BindMount[];
  cwd: string | undefined;
  logFile: string;
}

export class ContainerRuntime {
  readonly name: string;
  readonly kind: ContainerKind;
  readonly id: string;
  readonly cgroupPath: string;
  readonly spec: Container;
  /** JSON path in the Pod, for messages (`spec.initContainers[0]`). */
  readonly where: string;
  readonly plan: CapabilityPlan;
  ready = false;
  exit: ContainerExit | undefined;
  private child: ChildProcess | undefined;
  private out = '';
  private log: WriteStream | undefined;
  private exitWaiters: ((e: ContainerExit) => void)[] = [];
  private outWaiters = new Set<() => void>();

  constructor(spec: Container, kind: ContainerKind, where: string, id: string, cgroupPath: string, plan: CapabilityPlan) {
    this.spec = spec;
    this.name = spec.name;
    this.kind = kind;
    this.where = where;
    this.id = id;
    this.cgroupPath = cgroupPath;
    this.plan = plan;
  }

  get pid(): number | undefined {
    return this.child !== undefined && this.exit === undefined ? this.child.pid : undefined;
  }

  get running(): boolean {
    return this.child !== undefined && this.exit === undefined;
  }

  /** Resolves once the process runs in its namespaces, cgroup and mounts (or has exited). */
  start(s: ContainerStart): Promise<void> {
    this.log = createWriteStream(s.logFile, { flags: 'a' });
    this.log.on('error', () => {});
    const argv = launchArgv({
      cgroupDir: this.cgroupPath,
      netnsPath: s.netnsPath,
      mounts: s.mounts,
      ...(s.cwd === undefined ? {} : { cwd: s.cwd }),
      setpriv: this.plan.setpriv,
      argv: s.argv,
      env: s.env,
      signalFd3: true,
    });
    const child = spawn(argv[0]!, argv.slice(1), { env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' }, stdio: ['ignore', 'pipe', 'pipe', 'pipe'], detached: true });
    this.child = child;
    const onData = (d: Buffer): void => {
      this.log?.write(d);
      this.out += d.toString();
      if (this.out.length > MAX_LOG) this.out = this.out.slice(this.out.length - MAX_LOG);
      for (const w of this.outWaiters) w();
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.on('error', (e) => onData(Buffer.from(`sandbox: ${e.message}\n`)));
    // As when a container's pid 1 dies: whatever it left behind (holding our pipes open) is killed.
    child.on('exit', () => killCgroupSync(this.cgroupPath));
    child.on('close', (code, signal) => {
      this.exit = { code, signal };
      this.ready = false;
      this.log?.end();
      for (const w of this.exitWaiters) w(this.exit);
      this.exitWaiters = [];
      for (const w of this.outWaiters) w();
    });
    const signal = child.stdio[3] as NodeJS.ReadableStream | null;
    const setUp = new Promise<void>((resolve) => {
      if (signal === null) return resolve();
      signal.once('data', () => resolve());
      signal.once('end', () => resolve());
      signal.once('error', () => resolve());
      signal.resume();
    });
    return setUp.then(() => this.untilExecd());
  }

  /**
   * env and setpriv still run for a moment after set-up; wait (bounded) until the pid is the
   * command itself, so /proc/<pid>/status shows the container's uid and capabilities.
   */
  private async untilExecd(): Promise<void> {
    const launcher = (cmd: string): boolean =>
      cmd.startsWith('/usr/bin/env\0-i\0') || cmd.startsWith('/usr/bin/setpriv\0') || (cmd.startsWith('/bin/sh\0-c\0') && cmd.includes('echo started >&3'));
    for (let i = 0; i < 400 && this.running; i++) {
      try {
        if (!launcher(readFileSync(`/proc/${this.child!.pid}/cmdline`, 'utf8'))) return;
      } catch {
        return;
      }
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  logs(): string {
    return this.out;
  }

  /** Resolves on the next output or exit. */
  onOutput(fn: () => void): () => void {
    this.outWaiters.add(fn);
    return () => this.outWaiters.delete(fn);
  }

  exited(): Promise<ContainerExit> {
    if (this.exit !== undefined || this.child === undefined) return Promise.resolve(this.exit ?? { code: null, signal: null });
    return new Promise((resolve) => this.exitWaiters.push(resolve));
  }

  /** SIGTERM the main process; after graceMs kill the whole container cgroup. */
  async stop(graceMs: number): Promise<ContainerExit> {
    if (this.child === undefined) return { code: null, signal: null };
    if (this.exit === undefined) {
      try {
        this.child.kill('SIGTERM');
      } catch {
        // already gone
      }
      let timer: NodeJS.Timeout | undefined;
      const graceOver = new Promise<'grace'>((r) => (timer = setTimeout(() => r('grace'), graceMs)));
      const first = await Promise.race([this.exited(), graceOver]);
      clearTimeout(timer);
      if (first === 'grace') killCgroupSync(this.cgroupPath);
    }
    // Children the main process left behind die with it, as with a container's pid namespace.
    killCgroupSync(this.cgroupPath);
    return this.exited();
  }

  status(): ContainerStatus {
    return { name: this.name, kind: this.kind, id: this.id, cgroupPath: this.cgroupPath, pid: this.pid, running: this.running, ready: this.ready, exit: this.exit };
  }
}
