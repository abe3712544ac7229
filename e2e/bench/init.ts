// How long `weft init --mode tproxy` takes to program a pod (target: <= 100 ms), in a
// throwaway network namespace: (1) in-process, the planner + executor alone (a Node process
// inside the namespace times plan + apply, cleaning up between runs); (2) the CLI wall time,
// `ip netns exec … node bin/weft init`, Node start included. Medians of N fresh applies.
//   node dist/e2e/bench/init.js [--runs N]
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const TARGET_MS = 100;

export interface InitBenchResult {
  runs: number;
  /** plan + apply (ip rules/routes, iptables-restore v4 and v6), in-process. */
  inProcessMedianMs: number;
  /** the whole CLI, Node start included. */
  cliMedianMs: number;
  /** `node -e 0` in the namespace: the share of the CLI time that is Node itself. */
  nodeStartMedianMs: number;
  targetMs: number;
  backend: string;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return Number((s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2).toFixed(1));
};

function sh(argv: string[], timeout = 30_000): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout });
  return { code: r.status ?? 1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

// Runs inside the namespace: times plan + apply N times, cleanup (untimed) after each.
const inner = `
const root = process.argv[1];
const { initSchema } = await import(root + 'dist/pkg/intercept/common.js');
const { planTproxy, planInput } = await import(root + 'dist/pkg/intercept/tproxy/plan.js');
const { applyPlan, cleanupPlan, detectBackend, iptablesTools } = await import(root + 'dist/pkg/intercept/tproxy/exec.js');
const runs = Number(process.argv[2]);
const config = initSchema.parse({ ipv6: 'on' });
const times = [];
let backend = '';
for (let i = 0; i < runs; i++) {
  const t0 = process.hrtime.bigint();
  const tools = iptablesTools(detectBackend('auto'));
  const plan = planTproxy(planInput(config, [4, 6]));
  applyPlan(plan, tools);
  times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  backend = tools.backend;
  cleanupPlan(plan, tools, [4, 6]);
}
process.stdout.write(JSON.stringify({ times, backend }));
`;

export async function benchInit(opts: { runs?: number } = {}): Promise<InitBenchResult> {
  const runs = opts.runs ?? 11;
  const ns = `wftp-bench-${process.pid}`;
  const must = (argv: string[]) => {
    const r = sh(argv);
    if (r.code !== 0) throw new Error(`${argv.join(' ')}: ${r.stderr.trim()}`);
    return r.stdout;
  };
  must(['ip', 'netns', 'add', ns]);
  try {
    must(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
    const exec = (argv: string[]) => ['ip', 'netns', 'exec', ns, ...argv];
    const { times, backend } = JSON.parse(must(exec([process.execPath, '--input-type=module', '-e', inner, root, String(runs)]))) as { times: number[]; backend: string };

    const cli: number[] = [];
    const nodeStart: number[] = [];
    for (let i = 0; i < runs; i++) {
      let t0 = performance.now();
      must(exec([process.execPath, `${root}bin/weft`, 'init', '--mode', 'tproxy', '--ipv6', 'on']));
      cli.push(performance.now() - t0);
      must(exec([process.execPath, `${root}bin/weft`, 'init', '--cleanup']));
      t0 = performance.now();
      must(exec([process.execPath, '-e', '0']));
      nodeStart.push(performance.now() - t0);
    }
    return { runs, inProcessMedianMs: median(times), cliMedianMs: median(cli), nodeStartMedianMs: median(nodeStart), targetMs: TARGET_MS, backend };
  } finally {
    sh(['ip', 'netns', 'del', ns]);
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const i = process.argv.indexOf('--runs');
  const r = await benchInit(i > 0 ? { runs: Number(process.argv[i + 1]) } : {});
  process.stdout.write(JSON.stringify(r, null, 2) + '\n');
  process.stdout.write(
    `weft init (tproxy, IPv4+IPv6, ${r.backend}): in-process plan+apply median ${r.inProcessMedianMs} ms (target <= ${r.targetMs} ms: ${r.inProcessMedianMs <= r.targetMs ? 'met' : 'NOT met'}); CLI median ${r.cliMedianMs} ms, of which Node start ~${r.nodeStartMedianMs} ms\n`,
  );
}
