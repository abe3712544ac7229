// `weft check [--mode tproxy|ebpf|all] [--json] [--simulate-missing F,…]`
import { z } from 'zod';
import { parseFlags } from '../../pkg/cli/flags.js';
import { FEATURE_IDS, MODES, renderTable, runChecks, type FeatureId, type Mode } from '../../pkg/check/index.js';

const specs = {
  mode: { type: 'string' as const, help: 'judge for tproxy|ebpf|all (default all)' },
  json: { type: 'boolean' as const, help: 'print the report as JSON' },
  'simulate-missing': { type: 'string' as const, help: `pretend these features are absent (test hook): ${FEATURE_IDS.join(',')}` },
};

const schema = z
  .object({
    mode: z.enum(['tproxy', 'ebpf', 'all'], { error: (i) => `"${String(i.input)}" is not allowed; allowed: tproxy, ebpf, all` }).default('all'),
    json: z.boolean().default(false),
    simulateMissing: z
      .string()
      .transform((s) => s.split(',').map((x) => x.trim()).filter(Boolean))
      .pipe(z.array(z.enum(FEATURE_IDS as [FeatureId, ...FeatureId[]], { error: (i) => `"${String(i.input)}" is not a feature; allowed: ${FEATURE_IDS.join(', ')}` })))
      .default([]),
  })
  .strict();

export async function run(argv: string[]): Promise<number> {
  const flags = parseFlags('check', 'Preflight: which kernel features and tools this host offers, and what each interception mode is missing.', specs, schema, argv);
  if (!flags) return 0;
  const modes: readonly Mode[] = flags.mode === 'all' ? MODES : [flags.mode];
  const report = runChecks({ modes, simulateMissing: flags.simulateMissing });
  process.stdout.write(flags.json ? JSON.stringify(report, null, 2) + '\n' : renderTable(report));
  if (!report.ok) process.stderr.write(`weft check: missing for ${modes.join('/')}: ${report.missing.join(', ')}\n`);
  return report.ok ? 0 : 1;
}
