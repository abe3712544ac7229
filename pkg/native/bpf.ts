// The typed facade over exports.bpf of the native addon (the libbpf loader). Thin on
// purpose: pkg/intercept/ebpf decides what to load and attach, and turns errors into
// WeftErrors that name the step.
import type { BpfAttachedProg, BpfLoadResult, BpfLoadSpec, BpfProgInfo, NativeBpf } from '../../addon/index.js';
import { ErrorCodes, WeftError } from '../errors/index.js';
import { loadAddon } from './load.js';

export type { BpfAttachedProg, BpfLoadResult, BpfLoadSpec, BpfProgInfo, NativeBpf } from '../../addon/index.js';

function bpf(): NativeBpf {
  const b = (loadAddon() as { bpf?: NativeBpf }).bpf;
  if (b === undefined) throw new WeftError(ErrorCodes.NATIVE, "the native addon was built without the eBPF loader (exports.bpf); run 'npm run build:addon'");
  return b;
}

/** Load and attach all objects, or nothing (see NativeBpf.load). */
export const bpfLoad = (spec: BpfLoadSpec): BpfLoadResult => bpf().load(spec);
export const bpfQuery = (cgroupPath: string): BpfAttachedProg[] => bpf().query(cgroupPath);
export const bpfDetach = (cgroupPath: string, attachType: string, progId: number): void => bpf().detach(cgroupPath, attachType, progId);
export const bpfLinkInfo = (pinPath: string): ReturnType<NativeBpf['linkInfo']> => bpf().linkInfo(pinPath);
export const bpfProgInfo = (id: number): BpfProgInfo | null => bpf().progInfo(id);
export const bpfMapInfo = (id: number): ReturnType<NativeBpf['mapInfo']> => bpf().mapInfo(id);
export const bpfMapLookup = (mapId: number, key: Buffer): Buffer | null => bpf().mapLookup(mapId, key);
export const bpfProbe = (): Record<string, boolean> => bpf().probe();
export const bpfTestRun = (spec: Parameters<NativeBpf['testRun']>[0]): ReturnType<NativeBpf['testRun']> => bpf().testRun(spec);
