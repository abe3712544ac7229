import t from 'tap';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseFlags } from '../../cli/flags.js';
import { INIT_SUMMARY, initFlagSpecs, initSchema } from '../common.js';
import { neededFeatures, runEbpfInit } from './index.js';

t.test('--dry-run prints the plan and needs no kernel access', async (t) => {
  const cg = mkdtempSync(join(tmpdir(), 'wfeb-cg-'));
  t.teardown(() => rmSync(cg, { recursive: true, force: true }));
  const lines: string[] = [];
  const config = initSchema.parse({ mode: 'ebpf', cgroup: cg, podUid: 'p1', bpffs: '/nonexistent/bpf', dryRun: true, ipv6: 'off', excludeInboundPorts: '9000' });
  t.equal(await runEbpfInit(config, { out: (l) => lines.push(l) }), 0);
  t.match(lines[0], /dry run: nothing changed/);
  const attach = lines.filter((l) => /^\d+\. attach /.test(l));
  t.equal(attach.length, 5, 'five programs (sk_msg is opt-in)');
  t.ok(attach.some((l) => /^1\. attach weft_getsockopt \(\/[^ ]*[^/]\/bpf\/build\/getsockopt\.bpf\.o\) to cgroup /.test(l) && l.endsWith(`${cg} (BPF_F_ALLOW_MULTI)`)), 'getsockopt first, on the cgroup, from a normalized path');
  t.notOk(lines.some((l) => l.includes('//') || l.includes('/../')), 'no // or .. in the printed paths');
  t.ok(lines.includes('exclude inbound ports: 9000,15020,15021'), 'inbound exclusions with the admin and probe ports');
  t.ok(lines.some((l) => l.includes('pinned at /nonexistent/bpf/weft/p1/sk_lookup')), 'the per-pod pin');

  const cleanup: string[] = [];
  t.equal(await runEbpfInit({ ...config, cleanup: true }, { out: (l) => cleanup.push(l) }), 0);
  t.match(cleanup.join('\n'), /detach weft_\* programs from cgroup .*\nunpin \/nonexistent\/bpf\/weft\/p1\/sk_lookup .*\nunpin \/nonexistent\/bpf\/weft\/p1\/local_socks/);
});

t.test('errors name the flag', async (t) => {
  await t.rejects(runEbpfInit(initSchema.parse({ mode: 'ebpf', dryRun: true })), { code: 'WEFT_ERR_BAD_FLAG', message: /--pod-uid/ });
  await t.rejects(runEbpfInit(initSchema.parse({ mode: 'ebpf', dryRun: true, cgroup: '/nonexistent/cg' })), { code: 'WEFT_ERR_BAD_FLAG', message: /--cgroup \/nonexistent\/cg: not a directory/ });
  await t.rejects(runEbpfInit(initSchema.parse({ mode: 'ebpf', dryRun: true, podUid: 'nope', cgroupRoot: tmpdir() })), { code: 'WEFT_ERR_APPLY_FAILED', message: /no cgroup of pod nope/ });
});

t.test('a kernel without a needed feature fails before anything is touched, naming it', async (t) => {
  const cg = mkdtempSync(join(tmpdir(), 'wfeb-cg-'));
  t.teardown(() => rmSync(cg, { recursive: true, force: true }));
  const config = initSchema.parse({ mode: 'ebpf', cgroup: cg, podUid: 'p1', bpffs: join(cg, 'bpffs'), ipv6: 'off' });
  const all = (skMsg: boolean): Record<string, boolean> => Object.fromEntries(neededFeatures(skMsg).map((f) => [f, true]));
  const probed: boolean[] = [];
  const probe = (over: Record<string, boolean>) => () => {
    probed.push(true);
    return { ...all(true), ...over };
  };
  await t.rejects(runEbpfInit(config, { probe: probe({ 'helper sk_storage_get in cgroup/connect4': false, lru_hash: false }) }), {
    code: 'WEFT_ERR_MISSING_FEATURE',
    message: /lacks eBPF features weft needs: lru_hash, helper sk_storage_get in cgroup\/connect4 \(.*--mode tproxy\)/,
  });
  t.equal(probed.length, 1, 'the injected probe was asked');
  await t.rejects(runEbpfInit(config, { skMsg: true, probe: probe({ sk_msg: false }) }), { message: /lacks eBPF features weft needs: sk_msg \(/ }, 'sk_msg is needed when it is on');
  await t.rejects(runEbpfInit(config, { skMsg: false, objDir: join(cg, 'no-objects'), probe: probe({ sk_msg: false, 'helper msg_redirect_hash in sk_msg': false }) }), { message: /bpf objects not built/ }, 'and not when it is off: init goes past the probe (to the objects, missing here)');
  t.ok(neededFeatures(true).includes('helper msg_redirect_hash in sk_msg') && !neededFeatures(false).includes('sk_msg'), 'sk_msg and its helper only with sk_msg on');
  t.same(readdirSync(cg), [], 'nothing was created (no bpffs directory, no pin)');
});

t.test('--sk-msg on (env WEFT_SK_MSG) attaches sk_msg; anything but on|off is refused', async (t) => {
  const cg = mkdtempSync(join(tmpdir(), 'wfeb-cg-'));
  t.teardown(() => rmSync(cg, { recursive: true, force: true }));
  const parse = (argv: string[], env: NodeJS.ProcessEnv = {}) => parseFlags('init', INIT_SUMMARY, initFlagSpecs, initSchema, ['--mode', 'ebpf', '--cgroup', cg, '--pod-uid', 'p1', '--dry-run', ...argv], env);
  const plan = async (argv: string[], env: NodeJS.ProcessEnv = {}): Promise<string[]> => {
    const lines: string[] = [];
    const config = parse(argv, env);
    if (config === null) throw new Error('no config');
    await runEbpfInit(config, { out: (l) => lines.push(l) });
    return lines.filter((l) => / attach weft_sk_msg /.test(l));
  };
  t.same(await plan([]), [], 'off by default');
  t.match(await plan(['--sk-msg', 'on']), [/^1\. attach weft_sk_msg .* to map local_socks, pinned at .*\/weft\/p1\/local_socks$/], '--sk-msg on');
  t.equal((await plan([], { WEFT_SK_MSG: 'on' })).length, 1, 'env WEFT_SK_MSG=on');
  t.throws(() => parse(['--sk-msg', 'yes']), { code: 'WEFT_ERR_BAD_FLAG', message: /--sk-msg \(WEFT_SK_MSG\): "yes" is not allowed; allowed: on, off/ });
});
