// `weft demo` is the README's first command: run it as CI would see a user run it, in both
// modes, and require every check it prints to hold.
import t from 'tap';
import { runDemo } from './demo/run.js';
import { leftovers, isEmpty } from './sandbox/index.js';

t.test('weft demo: injected pods talk through both proxies, the policy allows one client and denies the other', async (t) => {
  const lines: string[] = [];
  const checks = await runDemo({ modes: ['tproxy', 'ebpf'], out: (l) => lines.push(l), prefix: 'wfdemot' });
  t.comment(lines.join('\n'));
  for (const mode of ['tproxy', 'ebpf'] as const) {
    const mine = checks.filter((c) => c.mode === mode);
    t.equal(mine.length, 6, `${mode}: the demo ran all six checks`);
    for (const c of mine) t.ok(c.ok, `${mode}: ${c.what}: ${c.detail}`);
  }
  t.ok(lines.some((l) => /\| web-tproxy\s+\|/.test(l)) && lines.some((l) => /\| web-ebpf\s+\|/.test(l)), 'the metrics table lists the server proxy in each mode');
  t.ok(isEmpty(leftovers('wfdemot')), 'nothing of the demo is left on the machine');
});
