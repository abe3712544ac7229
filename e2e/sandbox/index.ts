// The pod sandbox: a Kubernetes node and its pods emulated with network namespaces, veths,
// a bridge, cgroup v2 directories and a private bpffs, so end-to-end and kernel tests run
// the real injected Pod specs (init containers, sidecars, apps) on this machine.
//
//   const node = await createNode({ prefix: 'wfxx', t });     // t: tap test, tears down
//   const server = await node.runPod(serverPod);              // waits for readiness
//   const svc = await node.addService('echo', server);
//   const r = await client.exec(['curl', '-s', `http://${svc.ipv4}:8080/`]);
//
// Layout of a node named N with prefix P (every kernel object carries `P-N`):
//   netns  P-N                   the node: bridge `br0` = 10.<s>.0.1/24, fd00:<s>::1/64
//   netns  P-N-<i>-<pod>         a pod: `eth0` (veth into br0), lo up, default routes via br0
//   cgroup <cgroup2>/P-N/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod<uid_>.slice/cri-containerd-<id>.scope
//          (cgroupfs driver: <cgroup2>/P-N/kubepods/besteffort/pod<uid>/<id>)
//   bpffs  /tmp/P-N-XXXX/bpffs   what pods see as hostPath /sys/fs/bpf
//   tmp    /tmp/P-N-XXXX/        pod dirs (emptyDirs, logs, image configs)
// It never changes the root network namespace: veths are created inside the node netns.
// See docs/sandbox.md for what is emulated and what is not.
import type { Container, Pod } from './types.js';

export type * from './types.js';
export { createNode } from './node.js';
export { sweepStale, leftovers, isEmpty, cgroup2Mount } from './cleanup.js';
export { builtinImages, weftImage } from './images.js';
export { allCapabilities, capabilityPlan, capMask, DEFAULT_CAPABILITIES, NAMED_CAPABILITIES, type HostCaps } from './caps.js';
export { hostCaps } from './host-caps.js';

/** The part of a tap test the sandbox uses: teardown runs also when the test throws. */
export interface TeardownHost {
  teardown(fn: () => unknown): void;
}

export type CgroupDriver = 'systemd' | 'cgroupfs';

export interface NodeOptions {
  /** Kernel-object prefix of the calling suite, `[a-z][a-z0-9]{1,7}` (e.g. `wfsb`). */
  prefix: string;
  /** Node name, `[a-z0-9]{1,6}`, default `n1`; two live nodes of one prefix need different names. */
  name?: string;
  /**
   * Subnet number s (2..250): pods get 10.<s>.0.x/24 and fd00:<s>::x/64, services 10.<s>.96.x
   * and fd00:<s>:96::x. Default: derived from prefix and name, unique among this process's nodes.
   */
  subnet?: number;
  /** How pod cgroups are laid out, as a kubelet with this driver would. Default `systemd`. */
  cgroupDriver?: CgroupDriver;
  /** Image name → local command. Looked up by exact image, then without tag/digest, then by last path part. */
  images?: Record<string, ImageMapping>;
  /**
   * Extra hostPath mappings (host path as written in the Pod → real path here), longest prefix
   * wins. Built in: `/sys/fs/bpf` → the node's bpffs, `/sys/fs/cgroup` → the cgroup2 mount.
   */
  hostPathMap?: Record<string, string>;
  /** Mount a private bpffs for the node (default true). */
  bpffs?: boolean;
  /** Registers `node.teardown()` with `t.teardown`. */
  t?: TeardownHost;
  /** Repository root (default: found from this file); `<repo>/bin/weft` is the weft image. */
  repoRoot?: string;
  /** Grace period when a Pod sets no terminationGracePeriodSeconds (default 3000 ms; Kubernetes uses 30 s). */
  defaultGraceMs?: number;
  /** Remove leftovers of a crashed earlier run of this prefix+name first (default true). */
  sweep?: boolean;
}

export interface RunPodOptions {
  /** Wait until every container with a readiness probe is ready (default true). */
  waitReady?: boolean;
  /** Bound on init containers, sidecar startup and readiness together (default 30000 ms). */
  timeoutMs?: number;
  /** Extra image mappings for this pod only (win over the node's). */
  images?: Record<string, ImageMapping>;
}

/** What an image mapping is told: the container as the Pod wrote it, after `$(VAR)` expansion. */
export interface ImageContext {
  image: string;
  container: Container;
  /** `command` after expansion; undefined when the Pod gives none (use the image's entrypoint). */
  command: string[] | undefined;
  /** `args` after expansion; undefined when the Pod gives none. */
  args: string[] | undefined;
  /** The container's environment as it will be. */
  env: Record<string, string>;
  /** A directory private to this pod, for configs and data; removed at teardown. */
  podDir: string;
  pod: PodInfo;
  node: NodeInfo;
}

export interface MappedCommand {
  argv: string[];
  /** Added to (and overriding) the container's environment. */
  env?: Record<string, string>;
  cwd?: string;
}

/** Turns an image (plus command/args) into a local argv. */
export type ImageMapping = (ctx: ImageContext) => MappedCommand | Promise<MappedCommand>;

export interface NodeInfo {
  readonly prefix: string;
  readonly name: string;
  /** The node's network namespace name (`ip -n <netns>`) and its /run/netns path. */
  readonly netns: string;
  readonly netnsPath: string;
  readonly subnet: number;
  /** The bridge's addresses: the pods' gateway, also `status.hostIP`. */
  readonly hostIPv4: string;
  readonly hostIPv6: string;
  /** The host cgroup2 mount (from /proc/mounts). */
  readonly cgroup2: string;
  /** `<cgroup2>/<prefix>-<name>`: the node's sandbox root, parent of kubepods. */
  readonly cgroupRoot: string;
  readonly cgroupDriver: CgroupDriver;
  /** The node's bpffs mount, or undefined with `bpffs: false`. */
  readonly bpffs: string | undefined;
  /** The node's temp directory. */
  readonly dir: string;
  /** Node 24 (`process.execPath`) and `<repo>/bin/weft`. */
  readonly nodeBinary: string;
  readonly weftBinary: string;
}

export interface ExecOptions {
  /**
   * Container whose cgroup, mount namespace, environment and identity to use (default, as
   * kubectl: the `kubectl.kubernetes.io/default-container` annotation, else the first app container).
   */
  container?: string;
  /** Run as this uid/gid instead of the container's; uid 0 gets the container's capabilities. */
  uid?: number;
  gid?: number;
  env?: Record<string, string>;
  /** Written to stdin, then stdin is closed. */
  input?: string | Buffer;
  /** Killed (SIGKILL) after this long; default 30000. */
  timeoutMs?: number;
  cwd?: string;
}

export interface ExecResult {
  /** Exit code, or null when killed by a signal (then `signal` is set). */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

export interface ContainerExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export type ContainerKind = 'init' | 'sidecar' | 'app';

export interface ContainerStatus {
  name: string;
  kind: ContainerKind;
  /** 64 hex digits; names the container cgroup. */
  id: string;
  cgroupPath: string;
  pid: number | undefined;
  running: boolean;
  ready: boolean;
  exit: ContainerExit | undefined;
}

export interface PodInfo {
  readonly name: string;
  readonly namespace: string;
  readonly uid: string;
  /** The pod's network namespace name and /run/netns path. */
  readonly netns: string;
  readonly netnsPath: string;
  readonly ipv4: string;
  readonly ipv6: string;
  /** [ipv4, ipv6], as `status.podIPs`. */
  readonly ips: readonly string[];
  /** The pod-level cgroup directory (absolute path). */
  readonly cgroupPath: string;
  /** The pod's private directory (emptyDirs, logs, image configs). */
  readonly dir: string;
  /** The Pod as given, with metadata.name/namespace/uid filled in. */
  readonly manifest: Pod;
}

export interface SandboxPod extends PodInfo {
  /** Run argv inside the pod (its netns, a container's cgroup and mounts, that container's identity and capabilities). */
  exec(argv: string[], opts?: ExecOptions): Promise<ExecResult>;
  /** stdout and stderr of a container so far (interleaved as written; capped at 8 MiB, tail kept). */
  logs(container: string): string;
  /** Resolves when a container's output matches; rejects with its output after timeoutMs (default 10000). */
  waitForLog(container: string, pattern: RegExp | string, timeoutMs?: number): Promise<void>;
  /** The container's main process id while it runs. */
  pid(container: string): number | undefined;
  status(container: string): ContainerStatus;
  containers(): ContainerStatus[];
  /** Resolves when the container's process exits. */
  exited(container: string): Promise<ContainerExit>;
  /** Every container with a readiness probe passed once (probes run from the node netns, like a kubelet). */
  isReady(): boolean;
  /** Waits for readiness; rejects with the failing probe and the container's output. */
  waitReady(timeoutMs?: number): Promise<void>;
  /** Run a container's readiness (or startup) probe once now. */
  probe(container: string, which?: 'readiness' | 'startup'): Promise<boolean>;
  /** SIGTERM one container, SIGKILL its cgroup after `graceMs` (default: the pod's grace period). */
  stop(container: string, graceMs?: number): Promise<ContainerExit>;
  /** Stop everything in Kubernetes order (apps together, then sidecars in reverse) and remove the pod. */
  delete(): Promise<void>;
}

export interface ServiceAddress {
  name: string;
  ipv4: string;
  ipv6: string;
  /** The pod the address routes to. */
  pod: string;
}

export interface SandboxNode extends NodeInfo {
  /** Run a Pod: init containers, native sidecars, containers; waits for readiness unless told not to. */
  runPod(pod: Pod | Record<string, unknown>, opts?: RunPodOptions): Promise<SandboxPod>;
  /** A ClusterIP-like address (10.<s>.96.x and fd00:<s>:96::x) that routes to `pod` on any port. */
  addService(name: string, pod: SandboxPod): Promise<ServiceAddress>;
  pods(): SandboxPod[];
  /** Run argv in the node network namespace (as root, the caller's mounts). */
  exec(argv: string[], opts?: Pick<ExecOptions, 'env' | 'input' | 'timeoutMs' | 'cwd'>): Promise<ExecResult>;
  /** Remove every pod, process, namespace, cgroup, mount and directory of this node. Idempotent. */
  teardown(): Promise<void>;
}

/** What `leftovers(prefix)` finds of a prefix on this machine; all empty after a clean teardown. */
export interface Leftovers {
  netns: string[];
  cgroups: string[];
  mounts: string[];
  processes: number[];
  /** Links named with the prefix in the root network namespace (the sandbox never makes any). */
  links: string[];
  dirs: string[];
}
