// `weft version [--json]`
import { z } from 'zod';
import { parseFlags } from '../../pkg/cli/flags.js';
import { versionInfo } from '../../pkg/version/index.js';

const specs = { json: { type: 'boolean' as const, help: 'print JSON' } };
const schema = z.object({ json: z.boolean().default(false) }).strict();

export async function run(argv: string[]): Promise<number> {
  const flags = parseFlags('version', 'Print the weft, git commit, Node.js, addon and bpf object versions.', specs, schema, argv);
  if (!flags) return 0;
  const v = await versionInfo();
  if (flags.json) process.stdout.write(JSON.stringify(v) + '\n');
  else process.stdout.write(Object.entries(v).map(([k, x]) => `${k.padEnd(7)} ${x}`).join('\n') + '\n');
  return 0;
}
