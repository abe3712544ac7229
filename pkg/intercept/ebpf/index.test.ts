import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initSchema } from '../common.js';
import { runEbpfInit } from './index.js';

t.test('--dry-run prints the plan and needs no kernel access', async (t) => {
  const cg = mkdtempSync(join(tmpdir(), 'wfeb-cg-'));
  t.teardown(() => rmSync(cg, { recursive: true, force: true }));
  const lines: string[] = [];
  const config = initSchema.parse({ mode: 'ebpf', cgroup: cg, podUid: 'p1', bpffs: '/nonexistent/bpf', dryRun: true, ipv6: 'off', excludeInboundPorts: '9000' });
  t.equal(await runEbpfInit(config, { out: (l) => lines.push(l) }), 0);
  t.match(lines[0], /dry run: nothing changed/);
  const attach = lines.filter((l) => l.startsWith('attach '));
  t.equal(attach.length, 5, 'five programs (sk_msg is opt-in)');
  t.ok(attach.some((l) => /^attach weft_getsockopt \(.*\/getsockopt\.bpf\.o\) to cgroup /.test(l) && l.endsWith(`${cg} (BPF_F_ALLOW_MULTI)`)), 'getsockopt on the cgroup');
  t.ok(lines.includes('exclude inbound ports: 9000,15020,15021'), 'inbound exclusions with the admin and probe ports');
  t.ok(lines.some((l) => l.includes('pinned at /nonexistent/bpf/weft/p1/sk_lookup')), 'the per-pod pin');

  const cleanup: string[] = [];
  t.equal(await runEbpfInit({ ...config, cleanup: true }, { out: (l) => cleanup.push(l) }), 0);
  t.match(cleanup.join('\n'), /detach weft_\* programs from cgroup .*\nunpin \/nonexistent\/bpf\/weft\/p1\/sk_lookup/);
});

t.test('errors name the flag', async (t) => {
  await t.rejects(runEbpfInit(initSchema.parse({ mode: 'ebpf', dryRun: true })), { code: 'WEFT_ERR_BAD_FLAG', message: /--pod-uid/ });
  await t.rejects(runEbpfInit(initSchema.parse({ mode: 'ebpf', dryRun: true, cgroup: '/nonexistent/cg' })), { code: 'WEFT_ERR_BAD_FLAG', message: /--cgroup \/nonexistent\/cg: not a directory/ });
  await t.rejects(runEbpfInit(initSchema.parse({ mode: 'ebpf', dryRun: true, podUid: 'nope', cgroupRoot: tmpdir() })), { code: 'WEFT_ERR_APPLY_FAILED', message: /no cgroup of pod nope/ });
});
