// `weft check` on this host: everything is present here; a feature simulated missing, or a
// PATH without iptables, is named and exits non-zero. Probes leave no namespace or mount.
import t from 'tap';
import { mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { WEFT, missingPrerequisite, sh } from './netns.js';

const skip = missingPrerequisite(['ip', 'iptables-nft-restore', 'bpftool', 'mount']);
const weft = (args: string[], env: NodeJS.ProcessEnv = process.env) => sh([process.execPath, WEFT, 'check', ...args], { env, timeoutMs: 120_000 });

function leftovers(): string[] {
  const netns = sh(['ip', 'netns', 'list']).stdout.split('\n').filter((l) => l.startsWith('weft-check-'));
  const dirs = readdirSync(tmpdir()).filter((d) => d.startsWith('weft-check-bpffs-'));
  const mounts = sh(['cat', '/proc/mounts']).stdout.split('\n').filter((l) => l.includes('weft-check-bpffs-'));
  return [...netns, ...dirs, ...mounts];
}

t.test('on this host every feature is present', { skip: skip ?? false }, async (t) => {
  const r = weft([]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /^tproxy-target\s+ok\s+tproxy\s/m);
  t.match(r.stdout, /^cgroup2\s+ok\s+ebpf\s+\/\S+$/m, 'cgroup2 with its mount path');
  t.match(r.stdout, /^ok: this host has everything tproxy and ebpf mode needs$/m);
  const json = weft(['--json']);
  t.equal(json.code, 0);
  const report = JSON.parse(json.stdout) as { ok: boolean; features: { id: string; ok: boolean }[] };
  t.ok(report.ok);
  t.same(report.features.filter((f) => !f.ok).map((f) => f.id), [], 'no feature absent');
  t.same(leftovers(), [], 'no scratch namespace, bpffs dir or mount left');
});

t.test('a feature simulated missing is named and the exit is non-zero', { skip: skip ?? false }, async (t) => {
  const r = weft(['--simulate-missing', 'sk-lookup,tproxy-target']);
  t.equal(r.code, 1);
  t.match(r.stdout, /^sk-lookup\s+MISSING\s+ebpf\s+simulated missing/m);
  t.match(r.stderr, /missing for tproxy\/ebpf: tproxy-target, sk-lookup/);
  t.equal(weft(['--simulate-missing', 'sk-lookup', '--mode', 'tproxy']).code, 0, 'tproxy mode does not need sk_lookup');
  const bad = weft(['--simulate-missing', 'warp-drive']);
  t.equal(bad.code, 2);
  t.match(bad.stderr, /--simulate-missing .*"warp-drive" is not a feature/);
});

t.test('a PATH without iptables names iptables as missing', { skip: skip ?? false }, async (t) => {
  const bin = mkdtempSync(`${tmpdir()}/wftp-bin-`);
  t.teardown(() => rmSync(bin, { recursive: true, force: true }));
  for (const tool of ['ip', 'bpftool', 'mount', 'umount']) symlinkSync(sh(['sh', '-c', `command -v ${tool}`]).stdout.trim(), `${bin}/${tool}`);
  const r = weft(['--mode', 'tproxy'], { ...process.env, PATH: bin });
  t.equal(r.code, 1);
  t.match(r.stdout, /^iptables\s+MISSING\s+tproxy\s+no backend works: nft: IPv4: iptables-nft-restore: not found on PATH/m);
  t.match(r.stdout, /^tproxy-target\s+MISSING/m);
  t.match(r.stderr, /missing for tproxy: iptables, tproxy-target/);
  t.same(leftovers(), []);
});
