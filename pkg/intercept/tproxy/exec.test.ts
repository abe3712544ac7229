// The tools layer against scripted runners: backend detection (which really runs each save),
// the save cache, and the drop of an nft mangle table left empty.
import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { chooseBackend, detectBackend, dropEmptyNftMangle, iptablesTools, legacyTablesExist, withSaveCache, type RunResult } from './exec.js';

const ok = (stdout = ''): RunResult => ({ code: 0, stdout, stderr: '' });
const NFT_BROKEN: RunResult = { code: 1, stdout: '', stderr: 'iptables-nft-save v1.8.9 (nf_tables): Could not fetch rule set generation id: Protocol not supported\n' };

/** legacy/nft: the save output of both families, or a failure. */
const saves = (legacy: string | RunResult, nft: string | RunResult) => (argv: readonly string[]): RunResult => {
  const v = argv[0]?.includes('legacy') ? legacy : argv[0]?.includes('nft') ? nft : '';
  return typeof v === 'string' ? ok(v) : v;
};
const missing: RunResult = { code: 127, stdout: '', stderr: 'not found on PATH' };

const legacyTables = () => true;
const noLegacyTables = () => false;

t.test('backend detection prefers the backend that already has rules', async (t) => {
  t.equal(detectBackend('auto', saves('-A INPUT -j ACCEPT\n', ''), legacyTables), 'legacy');
  t.equal(detectBackend('auto', saves('', ''), legacyTables), 'nft');
  t.equal(detectBackend('auto', saves('-A X\n', '-A Y\n'), legacyTables), 'nft');
  t.equal(detectBackend('auto', saves('', missing), legacyTables), 'legacy', 'no iptables-nft tools');
  t.equal(detectBackend('legacy', saves('', '')), 'legacy');
  t.throws(() => detectBackend('auto', () => missing, legacyTables), { code: 'WEFT_ERR_MISSING_FEATURE', message: /no usable iptables backend: neither iptables-nft-save nor iptables-legacy-save runs/ });
});

t.test('without a legacy table in the namespace its tools are not run, unless nft fails', async (t) => {
  const calls: string[] = [];
  const run = (argv: readonly string[]): RunResult => {
    calls.push(argv[0] ?? '');
    return saves('-A X\n', '')(argv);
  };
  t.equal(detectBackend('auto', run, noLegacyTables), 'nft', 'no legacy table: its rules cannot exist');
  t.same(calls, ['iptables-nft-save', 'ip6tables-nft-save']);
  t.equal(detectBackend('auto', saves('', NFT_BROKEN), noLegacyTables), 'legacy', 'nft broken: legacy is tried');
  const dir = mkdtempSync(`${tmpdir()}/wftp-procnet-`);
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  t.notOk(legacyTablesExist(dir), 'no x_tables files: none');
  writeFileSync(`${dir}/ip_tables_names`, '');
  writeFileSync(`${dir}/ip6_tables_names`, '');
  t.notOk(legacyTablesExist(dir), 'empty lists: none');
  writeFileSync(`${dir}/ip6_tables_names`, 'mangle\n');
  t.ok(legacyTablesExist(dir));
});

t.test('iptables-nft on PATH but failing (no nf_tables in the kernel): legacy, and the reason says so', async (t) => {
  const c = chooseBackend('auto', saves('', NFT_BROKEN), legacyTables);
  t.equal(c.backend, 'legacy');
  t.match(c.reason, /iptables-nft-save fails: .*Could not fetch rule set generation id.*\(exit 1\); iptables-legacy works/);
  t.throws(() => chooseBackend('auto', saves(missing, NFT_BROKEN), legacyTables), { message: /Could not fetch rule set generation id/ });
  t.match(chooseBackend('auto', saves('', ''), legacyTables).reason, /no rules in either backend; iptables-nft works/);
  t.match(chooseBackend('nft', saves('', '')).reason, /set by --iptables-backend/);
});

t.test('the save cache answers a repeated save until something else runs', async (t) => {
  const calls: string[] = [];
  const run = withSaveCache((argv, input) => {
    calls.push(argv.join(' ') + (input ? ' <<' : ''));
    return ok(`n=${calls.length}`);
  });
  t.equal(run(['iptables-nft-save']).stdout, 'n=1');
  t.equal(run(['iptables-nft-save']).stdout, 'n=1', 'cached');
  run(['ip', '-4', 'rule', 'add', 'fwmark', '1', 'lookup', '1']);
  t.equal(run(['iptables-nft-save']).stdout, 'n=1', 'ip does not change what iptables shows');
  t.equal(run(['ip6tables-nft-save']).stdout, 'n=3');
  run(['iptables-nft-restore', '--noflush'], '*mangle\nCOMMIT\n');
  t.equal(run(['iptables-nft-save']).stdout, 'n=5', 'read again after a restore');
  t.equal(run(['ip6tables-nft-save']).stdout, 'n=3', 'an IPv4 restore leaves IPv6 tables as they were');
  run(['ip6tables-nft-restore', '--noflush'], '*mangle\nCOMMIT\n');
  t.equal(run(['ip6tables-nft-save']).stdout, 'n=7');
  t.same(calls, ['iptables-nft-save', 'ip -4 rule add fwmark 1 lookup 1', 'ip6tables-nft-save', 'iptables-nft-restore --noflush <<', 'iptables-nft-save', 'ip6tables-nft-restore --noflush <<', 'ip6tables-nft-save']);
});

t.test('an nft mangle table left empty is deleted with iptables-nft-restore, never nft', async (t) => {
  const calls: string[] = [];
  let table = '*mangle\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n';
  const run = (argv: readonly string[], input?: string): RunResult => {
    calls.push(`${argv.join(' ')}${input ? ` <<${input.replaceAll('\n', '|')}` : ''}`);
    if (argv[0] === 'iptables-nft-restore' && argv.length === 1) table = '';
    return ok(argv[0] === 'iptables-nft-save' ? table : '');
  };
  t.ok(dropEmptyNftMangle(run, iptablesTools('nft'), 4));
  t.ok(calls.includes('iptables-nft-restore <<*mangle|COMMIT|'), 'a replacing restore of an empty *mangle');
  t.notOk(calls.some((c) => c.startsWith('nft ')), 'the nft tool is never run (the image has none)');
  table = '*mangle\n:OUTPUT ACCEPT [0:0]\n-A OUTPUT -j MARK --set-mark 1\nCOMMIT\n';
  calls.length = 0;
  t.notOk(dropEmptyNftMangle(run, iptablesTools('nft'), 4), 'a table with someone else’s rules stays');
  t.same(calls, ['iptables-nft-save']);
  t.notOk(dropEmptyNftMangle(run, iptablesTools('legacy'), 4), 'legacy tables cannot be deleted: not tried');
});
