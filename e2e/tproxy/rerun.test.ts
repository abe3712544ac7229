// `weft init --mode tproxy` re-runs and its edges, against the real kernel in throwaway
// network namespaces: a re-run with other flags converges to what those flags program from
// scratch; weft's rules and routes are found by their tag, so someone else's identical ones
// are kept; a broken iptables-nft falls back to legacy; exit codes tell usage from failure.
import t, { type Test } from 'tap';
import { chmodSync, rmSync, writeFileSync } from 'node:fs';
import { Netns, has, imageToolset, missingPrerequisite, snapshot } from './netns.js';

const skip = missingPrerequisite();

function withNetns(t: Test, tag: string): Netns {
  const ns = new Netns(tag);
  t.teardown(() => ns.destroy());
  return ns;
}

/** `ip rule` priorities depend on the order objects were added; everything else must match. */
const noPriorities = (s: string): string => s.replace(/^\d+:\t/gm, 'N:\t');

t.test('a re-run with another mark, table and IPv6 off converges to a fresh apply of those flags', { skip: skip ?? false }, async (t) => {
  const ns = withNetns(t, 'conv');
  const before = snapshot(ns, 'nft');
  const second = ['init', '--ipv6', 'off', '--mark', '0x10', '--route-table', '200'];
  t.equal(ns.weft(['init', '--ipv6', 'on']).code, 0);
  const r = ns.weft(second);
  t.equal(r.code, 0, r.stderr);
  const converged = snapshot(ns, 'nft');
  t.notMatch(converged, /lookup 133|table 133/, 'the old rule and route are gone');
  t.notMatch(converged.split('\n----\n')[2] ?? '', /WEFT_/, 'the IPv6 chains are gone');

  t.equal(ns.weft(['init', '--cleanup']).code, 0);
  t.equal(snapshot(ns, 'nft'), before);
  t.equal(ns.weft(second).code, 0);
  t.equal(noPriorities(snapshot(ns, 'nft')), noPriorities(converged), 'the same as programming the second flags from scratch');
  t.equal(ns.weft(['init', '--cleanup']).code, 0);
  t.equal(snapshot(ns, 'nft'), before, 'cleanup needs no --mark or --route-table: it finds weft’s objects by tag');
});

t.test('someone else’s identical ip rule and route are kept, by apply and by cleanup', { skip: skip ?? false }, async (t) => {
  const ns = withNetns(t, 'foreign');
  ns.ip('-4', 'rule', 'add', 'fwmark', '0x539', 'lookup', '133');
  ns.ip('-4', 'route', 'add', 'local', '0.0.0.0/0', 'dev', 'lo', 'table', '133');
  const before = snapshot(ns, 'nft');
  const r = ns.weft(['init', '--ipv6', 'off']);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stderr, /ipv4-local-route \(present, not weft's: kept\)/);
  const rules = ns.ip('-4', 'rule', 'show');
  t.match(rules, /fwmark 0x539 lookup 133 proto 87$/m, 'weft’s own rule, tagged');
  t.match(rules, /fwmark 0x539 lookup 133$/m, 'beside the foreign one');
  t.equal(ns.weft(['init', '--ipv6', 'off']).code, 0);
  t.equal(ns.ip('-4', 'rule', 'show').match(/fwmark 0x539/g)?.length, 2, 're-run: still one of each');
  t.equal(ns.weft(['init', '--cleanup']).code, 0);
  t.equal(snapshot(ns, 'nft'), before, 'cleanup removed weft’s objects only');
});

t.test('an iptables-nft that is on PATH but fails: legacy is used, and --dry-run says why', { skip: skip ?? (has('iptables-legacy-save') ? false : 'no iptables-legacy') }, async (t) => {
  const ns = withNetns(t, 'nftbroken');
  ns.exec(['iptables-legacy', '-t', 'mangle', '-S']);
  ns.exec(['ip6tables-legacy', '-t', 'mangle', '-S']);
  const image = imageToolset();
  t.teardown(image.dispose);
  for (const tool of ['iptables-nft-save', 'ip6tables-nft-save']) {
    const file = `${image.path}/${tool}`;
    rmSync(file);
    // What iptables-nft prints on a kernel without nf_tables.
    writeFileSync(file, '#!/bin/sh\necho "iptables-nft-save v1.8.9 (nf_tables): Could not fetch rule set generation id: Protocol not supported" >&2\nexit 1\n');
    chmodSync(file, 0o755);
  }
  const env = { ...process.env, PATH: image.path };
  const dry = ns.weft(['init', '--dry-run'], env);
  t.equal(dry.code, 0, dry.stderr);
  t.match(dry.stdout, /^# weft init --mode tproxy: iptables backend legacy \(iptables-nft-save fails: .*Protocol not supported \(exit 1\); iptables-legacy works\)/m);
  const before = snapshot(ns, 'legacy');
  const r = ns.weft(['init', '--ipv6', 'on'], env);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stderr, /"backend":"legacy"/);
  t.match(ns.exec(['iptables-legacy-save']).stdout, /^:WEFT_OUTPUT /m, 'the rules went to iptables-legacy');
  t.equal(ns.weft(['init', '--cleanup'], env).code, 0);
  t.equal(snapshot(ns, 'legacy'), before);
});

t.test('exit codes: 2 for a bad flag or usage, nothing touched', { skip: skip ?? false }, async (t) => {
  const ns = withNetns(t, 'codes');
  const before = snapshot(ns, 'nft');
  for (const argv of [['--mode', 'tproxy', '--cgroup', '/x'], ['--include-outbound-cidrs', '*,10.0.0.0/8'], ['--nope'], ['--mark', '0']]) {
    const r = ns.weft(['init', ...argv]);
    t.equal(r.code, 2, `${argv.join(' ')}: exit 2 (${r.stderr.trim()})`);
    t.match(r.stderr, /WEFT_ERR_BAD_FLAG/);
  }
  t.match(ns.weft(['init', '--cgroup', '/x']).stderr, /--cgroup applies to --mode ebpf only; this is --mode tproxy/);
  t.equal(snapshot(ns, 'nft'), before);
});
