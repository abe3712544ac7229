// `weft inject -f FILE|-`: offline injection of Kubernetes YAML, the webhook's code.
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { parseFlags } from '../../pkg/cli/flags.js';
import { ErrorCodes, WeftError } from '../../pkg/errors/index.js';
import { defaultValues, parseValuesYaml } from '../../pkg/api/values.js';
import { Annotations } from '../../pkg/api/annotations.js';
import { injectYaml } from '../../pkg/inject/workloads.js';
import { weftVersion } from '../../pkg/version/index.js';

const specs = {
  file: { type: 'string' as const, short: 'f', help: 'YAML file to inject, or - for stdin' },
  values: { type: 'string' as const, help: 'chart values YAML (same file as the Helm chart)' },
  'namespace-labels': { type: 'string' as const, help: `simulate the namespace labels, k=v,…; default: opted in (${Annotations.inject}=enabled)` },
  namespace: { type: 'string' as const, help: 'namespace of objects that name none (default: default)' },
};

const labelsSchema = z
  .string()
  .transform((s, ctx) => {
    const out: Record<string, string> = {};
    for (const pair of s.split(',').filter((p) => p.trim() !== '')) {
      const m = /^\s*([^=\s]+)=([^=]*?)\s*$/.exec(pair);
      if (!m) {
        ctx.addIssue({ code: 'custom', message: `"${pair}" is not k=v; expected a list like ${Annotations.inject}=enabled,team=a` });
        return z.NEVER;
      }
      out[m[1] as string] = m[2] as string;
    }
    return out;
  });

const schema = z
  .object({
    file: z.string({ error: 'is required (a file, or - for stdin)' }).min(1),
    values: z.string().optional(),
    namespaceLabels: labelsSchema.optional(),
    namespace: z.string().min(1).default('default'),
  })
  .strict();

function read(path: string, what: string): string {
  try {
    return readFileSync(path === '-' ? 0 : path, 'utf8');
  } catch (e) {
    throw new WeftError(ErrorCodes.BAD_INPUT, `${what} ${path}: ${(e as Error).message}`, { field: what });
  }
}

export async function run(argv: string[]): Promise<number> {
  const flags = parseFlags('inject', 'Inject the weft init container and proxy into the pod templates of Kubernetes YAML; prints YAML.', specs, schema, argv);
  if (!flags) return 0;
  const values = flags.values === undefined ? defaultValues() : parseValuesYaml(read(flags.values, '--values'), flags.values);
  const { output, reports } = injectYaml(read(flags.file, '--file'), {
    config: { values, version: weftVersion() },
    namespaceLabels: flags.namespaceLabels,
    defaultNamespace: flags.namespace,
  });
  for (const r of reports) {
    if (r.skip) process.stderr.write(`weft inject: ${r.where}: skipped (${r.skip.skip}): ${r.skip.message}\n`);
    if (r.warning) process.stderr.write(`weft inject: ${r.where}: warning: ${r.warning}\n`);
    if (r.note) process.stderr.write(`weft inject: ${r.where}: ${r.note}\n`);
  }
  process.stdout.write(output);
  return 0;
}
