// `weft init --mode tproxy|ebpf`: flags (docs/flags.md) → one frozen InitConfig → the mode's
// runner. No logic here.
import { ErrorCodes, WeftError } from '../../pkg/errors/index.js';
import { parseFlags } from '../../pkg/cli/flags.js';
import { INIT_SUMMARY, initFlagSpecs, initSchema, type InitConfig } from '../../pkg/intercept/common.js';

export function parseInitFlags(argv: string[], env: NodeJS.ProcessEnv = process.env): InitConfig | null {
  return parseFlags('init', INIT_SUMMARY, initFlagSpecs, initSchema, argv, env);
}

export async function run(argv: string[]): Promise<number> {
  const config = parseInitFlags(argv);
  if (!config) return 0;
  if (config.mode === 'ebpf') {
    // A variable specifier: the eBPF mode is built separately and may be absent from a build.
    const ebpfModule = '../../pkg/intercept/ebpf/index.js';
    let ebpf: { runEbpfInit: (c: InitConfig) => Promise<number> };
    try {
      ebpf = (await import(ebpfModule)) as typeof ebpf;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ERR_MODULE_NOT_FOUND' || !String(e).includes('intercept/ebpf/index.js')) throw e;
      throw new WeftError(ErrorCodes.MISSING_FEATURE, '--mode ebpf: the eBPF interception is not built into this weft', { field: '--mode' });
    }
    return ebpf.runEbpfInit(config);
  }
  const { runTproxyInit } = await import('../../pkg/intercept/tproxy/index.js');
  return runTproxyInit(config);
}
