// `weft init --mode tproxy|ebpf`: flags (docs/flags.md) → one frozen InitConfig → the mode's
// runner. No logic here. Exit codes: 0 done, 2 bad flag or usage (nothing was touched),
// 1 the interception could not be programmed or removed (what was applied is rolled back).
// The flags are read by the zod-free fast path when they are plain (the injector's always
// are), else by the zod schema — loaded only then, as it is most of the init's start-up.
import { ErrorCodes, WeftError, isWeftError } from '../../pkg/errors/index.js';
import type { InitConfig } from '../../pkg/intercept/common.js';
import { fastInitConfig } from '../../pkg/intercept/init-fast.js';
import { otherModeFlag } from '../../pkg/intercept/init-flags.js';

export const EXIT_FAILED = 1;

/** With the zod schema: the source of truth, its errors and its --help. */
export async function parseInitFlagsWithSchema(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<InitConfig | null> {
  const [{ parseFlags }, { INIT_SUMMARY, initFlagSpecs, initSchema }] = await Promise.all([import('../../pkg/cli/flags.js'), import('../../pkg/intercept/common.js')]);
  return checked(parseFlags('init', INIT_SUMMARY, initFlagSpecs, initSchema, argv, env), argv);
}

export async function parseInitFlags(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<InitConfig | null> {
  const fast = fastInitConfig(argv, env);
  return fast ? checked(fast, argv) : parseInitFlagsWithSchema(argv, env);
}

function checked(config: InitConfig | null, argv: readonly string[]): InitConfig | null {
  const wrong = config && otherModeFlag(config.mode, argv);
  if (wrong) throw new WeftError(ErrorCodes.BAD_FLAG, `weft init: ${wrong.message}`, { field: wrong.flag });
  return config;
}

export async function run(argv: string[]): Promise<number> {
  const config = await parseInitFlags(argv);
  if (!config) return 0;
  try {
    return await runMode(config);
  } catch (e) {
    // A bad flag found late (a mode's own check) is still usage: exit 2 through cmd/main.
    if (!isWeftError(e) || e.code === ErrorCodes.BAD_FLAG) throw e;
    process.stderr.write(`weft: ${e.code}: ${e.message}\n`);
    return EXIT_FAILED;
  }
}

async function runMode(config: InitConfig): Promise<number> {
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
