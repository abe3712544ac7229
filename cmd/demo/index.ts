// `weft demo [--mode tproxy|ebpf|both]`: the data plane on this machine (needs root).
import { z } from 'zod';
import { parseFlags } from '../../pkg/cli/flags.js';
import { ErrorCodes, WeftError } from '../../pkg/errors/index.js';

const specs = { mode: { type: 'string' as const, help: 'interception mode(s) to show: tproxy, ebpf or both (default both)' } };
const schema = z.object({ mode: z.enum(['tproxy', 'ebpf', 'both'], { error: 'must be tproxy, ebpf or both' }).default('both') }).strict();

export async function run(argv: string[]): Promise<number> {
  const flags = parseFlags('demo', 'Run the data plane on this machine: pods as network namespaces, injected by the real webhook.', specs, schema, argv);
  if (!flags) return 0;
  if (process.getuid?.() !== 0) throw new WeftError(ErrorCodes.MISSING_FEATURE, 'weft demo needs root (network namespaces, netfilter, bpf); run it with sudo', { field: 'uid' });
  const { runDemo } = await import('../../e2e/demo/run.js');
  const modes = flags.mode === 'both' ? (['tproxy', 'ebpf'] as const) : ([flags.mode] as const);
  const checks = await runDemo({ modes: [...modes], out: (l) => process.stdout.write(l + '\n') });
  return checks.every((c) => c.ok) ? 0 : 1;
}
