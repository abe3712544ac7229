// `weft policy check`: evaluate AuthorizationPolicies offline with the proxy's own
// evaluation code. Exit 0 when allowed, 1 when denied, 2 on bad input.
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { parseFlags } from '../../pkg/cli/flags.js';
import { ErrorCodes, WeftError } from '../../pkg/errors/index.js';
import { checkRequest, formatDecision } from '../../pkg/policy/check.js';
import { parsePolicyFile } from '../../pkg/policy/load.js';

const SUMMARY = `Evaluate AuthorizationPolicies for one request, offline (same code as the proxy).
  weft policy check --from 10.1.0.5|web/frontend[@10.1.0.5] --to shop/api-0:8080 \\
    [--method GET --path /x] [--labels app=api,tier=backend] -f policies.yaml
Prints the decision and the deciding policy/rule; exit 0 allow, 1 deny, 2 bad input.`;

const specs = {
  file: { type: 'string' as const, short: 'f', help: 'policy YAML (AuthorizationPolicy documents, optional peers: map); "-" for stdin' },
  from: { type: 'string' as const, help: 'the client: IP, namespace/serviceAccount, or namespace/serviceAccount@IP' },
  to: { type: 'string' as const, help: 'the destination pod and port: namespace/pod:port' },
  method: { type: 'string' as const, help: 'HTTP method (with --path: an HTTP request; without: opaque TCP)' },
  path: { type: 'string' as const, help: 'HTTP path' },
  labels: { type: 'string' as const, help: 'the destination pod labels, k=v,k=v' },
  'default-inbound': { type: 'string' as const, help: 'the pod default when no ALLOW policy selects it: allow|deny (default allow)' },
  json: { type: 'boolean' as const, help: 'print the decision as JSON' },
};

const schema = z
  .object({
    file: z.string({ error: 'is required: the policy YAML file' }).min(1),
    from: z.string({ error: 'is required: IP or namespace/serviceAccount' }).min(1),
    to: z.string({ error: 'is required: namespace/pod:port' }).regex(/^[a-z0-9.-]+\/[a-z0-9.-]+:\d{1,5}$/, 'must be namespace/pod:port'),
    method: z.string().regex(/^[A-Z]+$/, 'must be an upper-case HTTP method').optional(),
    path: z.string().startsWith('/', 'must start with "/"').optional(),
    labels: z.string().regex(/^([^=,]+=[^=,]*)(,[^=,]+=[^=,]*)*$/, 'must be k=v,k=v').optional(),
    defaultInbound: z.enum(['allow', 'deny'], { error: 'must be allow or deny' }).default('allow'),
    json: z.boolean().default(false),
  })
  .strict()
  .refine((f) => (f.method === undefined) === (f.path === undefined), { message: 'give both --method and --path for an HTTP request, or neither for TCP', path: ['method'] });

export async function run(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === '--help' || sub === '-h' || sub === undefined) {
    process.stdout.write(`usage: weft policy check [flags]\n\n${SUMMARY}\n\nRun 'weft policy check --help' for flags.\n`);
    return sub === undefined ? 2 : 0;
  }
  if (sub !== 'check') throw new WeftError(ErrorCodes.UNKNOWN_COMMAND, `unknown policy subcommand "${sub}"; allowed: check`, { field: 'command' });
  const flags = parseFlags('policy check', SUMMARY, specs, schema, rest);
  if (!flags) return 0;
  const text = flags.file === '-' ? await readStdin() : await readFile(flags.file, 'utf8').catch((e: NodeJS.ErrnoException) => {
    throw new WeftError(ErrorCodes.BAD_FLAG, `--file: cannot read ${flags.file}: ${e.code ?? e.message}`, { field: '--file' });
  });
  const file = parsePolicyFile(text, flags.file === '-' ? 'stdin' : flags.file);
  const result = checkRequest(file, {
    from: flags.from,
    to: flags.to,
    ...(flags.method && flags.path ? { http: { method: flags.method, path: flags.path } } : {}),
    labels: flags.labels ?? '',
    defaultInbound: flags.defaultInbound,
  });
  process.stdout.write(flags.json ? JSON.stringify(result) + '\n' : formatDecision(result) + '\n');
  return result.decision.allow ? 0 : 1;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
