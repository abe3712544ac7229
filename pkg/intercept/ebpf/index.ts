// `weft init --mode ebpf`: sweep defunct pins, find the pod cgroup, then attach (idempotent),
// print the plan (--dry-run) or remove everything weft attached (--cleanup).
import { existsSync, mkdirSync, readFileSync, readdirSync, rmdirSync, statSync, unlinkSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { ErrorCodes, WeftError } from '../../errors/index.js';
import { createLogger, type Logger } from '../../log/index.js';
import { bpfDetach, bpfLinkInfo, bpfLoad, bpfProbe, bpfQuery, type BpfLoadResult } from '../../native/bpf.js';
import { ROOT } from '../../native/load.js';
import type { InitConfig } from '../common.js';
import { findCgroup2Mount, findPodCgroup } from './discover.js';
import { CGROUP_PROGRAMS, describeCleanup, describePlan, planEbpf, podPins, toLoadSpec, type EbpfPlan } from './plan.js';

export { planEbpf, describePlan, toLoadSpec } from './plan.js';

export interface EbpfInitOptions {
  /** Where the built objects are (default <root>/bpf/build). */
  objDir?: string;
  /** The pod network namespace (default: this process's). */
  netnsPath?: string;
  /** Attach sk_msg (default: --sk-msg, env WEFT_SK_MSG; off unless on, see docs/ebpf.md). */
  skMsg?: boolean;
  /** Test hook: smaller maps. */
  maxEntries?: Readonly<Record<string, number>>;
  log?: Logger;
  /** Test hook: the kernel feature probe (default: the addon's bpf.probe). */
  probe?: () => Readonly<Record<string, boolean>>;
  /** Where --dry-run prints (default stdout). */
  out?: (line: string) => void;
}

/** Kernel features the programs need, named as the addon's probe names them: program and
 * map types, and each helper a program calls beyond the base set (a kernel can offer a
 * program type without a helper weft calls from it; the verifier would refuse it late). */
export function neededFeatures(skMsg: boolean): string[] {
  const always = [
    'cgroup_sock_addr', 'sock_ops', 'cgroup_sockopt', 'sk_lookup',
    'sockmap', 'sockhash', 'lpm_trie', 'lru_hash', 'sk_storage', 'percpu_array',
    'helper get_current_uid_gid in cgroup/connect4', 'helper sk_storage_get in cgroup/connect4', 'helper sk_storage_get in cgroup/connect6',
    'helper sk_storage_get in sockops', 'helper sk_storage_delete in sockops', 'helper sock_map_update in sockops', 'helper sock_hash_update in sockops',
    'helper get_current_uid_gid in cgroup/getsockopt', 'helper sk_storage_get in cgroup/getsockopt',
    'helper sk_assign in sk_lookup', 'helper sk_release in sk_lookup',
  ];
  return skMsg ? [...always, 'sk_msg', 'helper msg_redirect_hash in sk_msg'] : always;
}

export async function runEbpfInit(config: InitConfig, opts: EbpfInitOptions = {}): Promise<number> {
  const log: Logger = opts.log ?? createLogger('init');
  const out = opts.out ?? ((l: string) => void process.stdout.write(`${l}\n`));
  const netnsPath = opts.netnsPath ?? '/proc/self/ns/net';
  const cgroupPath = resolveCgroup(config);
  const podKey = podKeyOf(config, cgroupPath);
  const plan = planEbpf(config, {
    cgroupPath,
    netnsPath,
    bpffs: config.bpffs,
    podKey,
    objDir: resolve(opts.objDir ?? `${ROOT}/bpf/build`),
    ipv6: wantIpv6(config),
    skMsg: opts.skMsg ?? config.skMsg === 'on',
    ...(opts.maxEntries ? { maxEntries: opts.maxEntries } : {}),
  });

  if (config.dryRun) {
    out(`# weft init --mode ebpf${config.cleanup ? ' --cleanup' : ''} (dry run: nothing changed)`);
    for (const l of config.cleanup ? describeCleanup(plan) : describePlan(plan)) out(l);
    return 0;
  }

  sweepDefunct(config.bpffs, log);
  if (config.cleanup) {
    const removed = cleanup(plan);
    log.info({ cgroup: cgroupPath, removed }, 'ebpf interception removed');
    return 0;
  }
  checkFeatures(opts.probe ?? bpfProbe, plan.runtime.skMsg === true);
  ensureObjects(plan);

  const attached = bpfQuery(cgroupPath).filter((p) => (CGROUP_PROGRAMS as readonly string[]).includes(p.name));
  const link = bpfLinkInfo(plan.linkPinPath);
  const complete = CGROUP_PROGRAMS.every((n) => attached.some((p) => p.name === n)) && link !== null && link.netnsIno === netnsIno(netnsPath) &&
    (plan.sockhashPinPath === null || existsSync(plan.sockhashPinPath));
  if (complete && attached.length === CGROUP_PROGRAMS.length) {
    log.info({ cgroup: cgroupPath, pin: plan.linkPinPath }, 'ebpf interception already attached; nothing to do');
    return 0;
  }
  if (attached.length > 0 || link !== null) {
    // Partly attached (an earlier run died, or a foreign pin): start again from clean.
    log.warn({ cgroup: cgroupPath, programs: attached.map((p) => p.name) }, 'ebpf interception partly attached; re-attaching');
    cleanup(plan);
  }
  mkdirSync(plan.pinDir, { recursive: true });
  let result: BpfLoadResult;
  try {
    result = bpfLoad(toLoadSpec(plan));
  } catch (e) {
    removeEmptyDir(plan.pinDir);
    const err = e as Error & { code?: string; syscall?: string };
    throw new WeftError(ErrorCodes.APPLY_FAILED, `ebpf ${err.syscall ?? 'load'} failed (nothing left attached): ${err.message}`, { field: err.syscall ?? 'load', cause: e });
  }
  log.info({ cgroup: cgroupPath, pin: plan.linkPinPath, programs: result.programs.map((p) => `${p.name}#${p.id}`) }, 'ebpf interception attached');
  return 0;
}

function resolveCgroup(config: InitConfig): string {
  if (config.cgroup !== undefined) {
    if (!isDir(config.cgroup)) throw new WeftError(ErrorCodes.BAD_FLAG, `--cgroup ${config.cgroup}: not a directory`, { field: '--cgroup' });
    return config.cgroup;
  }
  if (config.podUid === undefined) {
    throw new WeftError(ErrorCodes.BAD_FLAG, '--mode ebpf needs --pod-uid (env WEFT_POD_UID from the downward API) or --cgroup', { field: '--pod-uid' });
  }
  return findPodCgroup(config.cgroupRoot ?? findCgroup2Mount(), config.podUid);
}

/** The per-pod directory under <bpffs>/weft/: the pod UID, else the cgroup's name. */
export function podKeyOf(config: Pick<InitConfig, 'podUid'>, cgroupPath: string): string {
  const raw = config.podUid ?? basename(cgroupPath);
  return raw.replace(/[^A-Za-z0-9_.-]/g, '_');
}

function wantIpv6(config: InitConfig): boolean {
  if (config.ipv6 !== 'auto') return config.ipv6 === 'on';
  // auto: the pod has a global (non-loopback, non-link-local) IPv6 address.
  try {
    return readFileSync('/proc/net/if_inet6', 'utf8')
      .split('\n')
      .some((l) => {
        const [addr, , , scope] = l.trim().split(/\s+/);
        return addr !== undefined && scope === '00' && addr !== '00000000000000000000000000000001';
      });
  } catch {
    return false;
  }
}

function checkFeatures(probeKernel: () => Readonly<Record<string, boolean>>, skMsg: boolean): void {
  const probe = probeKernel();
  const missing = neededFeatures(skMsg).filter((f) => probe[f] !== true);
  if (missing.length > 0) {
    throw new WeftError(ErrorCodes.MISSING_FEATURE, `this kernel lacks eBPF features weft needs: ${missing.join(', ')} (see docs/ebpf.md for versions; use --mode tproxy)`, { field: '--mode' });
  }
}

function ensureObjects(plan: EbpfPlan): void {
  const missing = plan.objects.filter((o) => !existsSync(o));
  if (missing.length) throw new WeftError(ErrorCodes.MISSING_FEATURE, `bpf objects not built: ${missing.join(', ')}; run 'npm run build:bpf'`);
}

/** Detach every weft program from the cgroup and remove the pod's pins. Returns what went. */
export function cleanup(plan: Pick<EbpfPlan, 'cgroupPath' | 'pinDir'>): string[] {
  const removed: string[] = [];
  if (isDir(plan.cgroupPath)) {
    for (const p of bpfQuery(plan.cgroupPath)) {
      if (!p.name.startsWith('weft_')) continue;
      bpfDetach(plan.cgroupPath, p.attachType, p.id);
      removed.push(`${p.name}#${p.id}`);
    }
  }
  for (const pin of podPins(plan.pinDir)) {
    if (!existsSync(pin)) continue;
    unlinkSync(pin);
    removed.push(pin);
  }
  removeEmptyDir(plan.pinDir);
  return removed;
}

/** Unpin sk_lookup links whose netns is gone (netns_ino 0) under <bpffs>/weft/. */
export function sweepDefunct(bpffs: string, log?: Logger): string[] {
  const base = `${bpffs.replace(/\/+$/, '')}/weft`;
  const swept: string[] = [];
  let pods: string[];
  try {
    pods = readdirSync(base);
  } catch {
    return swept;
  }
  for (const pod of pods) {
    const [pin = '', ...others] = podPins(`${base}/${pod}`);
    // A directory without a pin may be another pod's init between mkdir and pin: left alone.
    const info = existsSync(pin) ? bpfLinkInfo(pin) : null;
    if (info === null || info.netnsIno !== 0) continue;
    unlinkSync(pin);
    for (const p of others) if (existsSync(p)) unlinkSync(p);
    removeEmptyDir(`${base}/${pod}`);
    swept.push(pod);
    log?.info({ pod, pin }, 'swept a defunct sk_lookup pin');
  }
  return swept;
}

function removeEmptyDir(dir: string): void {
  try {
    rmdirSync(dir);
  } catch {
    // not empty or already gone: leave it
  }
}

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

function netnsIno(path: string): number {
  return statSync(path).ino;
}
