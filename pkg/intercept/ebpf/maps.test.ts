// The TypeScript mirror of bpf/include/weft.h must match the compiled objects' BTF byte for
// byte: a field moved in C without its mirror would make the loader write wrong bytes.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { ROOT } from '../../native/load.js';
import { LAYOUTS, encodeConfig, encodeLpmKey, encodePortKey, ipBytes, sumPerCpu } from './maps.js';
import { BPF_OBJECTS } from './plan.js';

interface BtfStruct {
  size: number;
  fields: { name: string; offset: number }[];
}

/** STRUCT entries of `bpftool btf dump file X format raw`. */
function btfStructs(obj: string): Map<string, BtfStruct> {
  const r = spawnSync('bpftool', ['btf', 'dump', 'file', obj, 'format', 'raw'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`bpftool: ${r.stderr}`);
  const out = new Map<string, BtfStruct>();
  let cur: BtfStruct | null = null;
  for (const line of r.stdout.split('\n')) {
    const head = /^\[\d+\] STRUCT '([^']+)' size=(\d+)/.exec(line);
    if (head) {
      cur = { size: Number(head[2]), fields: [] };
      out.set(head[1] ?? '', cur);
      continue;
    }
    const member = /^\s+'([^']+)' type_id=\d+ bits_offset=(\d+)/.exec(line);
    if (member && cur) cur.fields.push({ name: member[1] ?? '', offset: Number(member[2]) / 8 });
    else if (!line.startsWith('\t')) cur = null;
  }
  return out;
}

const objDir = `${ROOT}/bpf/build`;
const haveBpftool = spawnSync('bpftool', ['version']).status === 0;
const built = BPF_OBJECTS.every((o) => existsSync(`${objDir}/${o}.bpf.o`));

t.test('struct layouts match the BTF of every object', { skip: !haveBpftool ? 'bpftool missing' : !built ? "bpf objects not built ('npm run build:bpf')" : false }, async (t) => {
  for (const o of BPF_OBJECTS) {
    const structs = btfStructs(`${objDir}/${o}.bpf.o`);
    for (const [name, layout] of Object.entries(LAYOUTS)) {
      const got = structs.get(name);
      if (got === undefined) continue; // unused types are dropped from an object's BTF
      t.equal(got.size, layout.size, `${o}: sizeof(struct ${name})`);
      t.same(got.fields, layout.fields.map(({ name, offset }) => ({ name, offset })), `${o}: fields of struct ${name}`);
    }
    t.ok(structs.has('weft_config'), `${o} carries weft_config (the .rodata config)`);
  }
});

t.test('encoders write the layouts', async (t) => {
  const cfg = encodeConfig({ proxyUid: 1337, proxyGid: 1338, outboundPort: 15001, inboundPort: 15006, ipv6: true, includeAll: true });
  t.equal(cfg.length, LAYOUTS.weft_config.size);
  t.same([cfg.readUInt32LE(0), cfg.readUInt32LE(4), cfg.readUInt16LE(8), cfg.readUInt16LE(10), cfg.readUInt32LE(12)], [1337, 1338, 15001, 15006, 3]);
  t.same([...encodePortKey(15020, 0)], [0xac, 0x3a, 0, 0], 'port key: little-endian port, direction');
  t.equal(ipBytes('10.1.2.3').toString('hex'), '00000000000000000000ffff0a010203', 'IPv4 kept IPv4-mapped');
  t.equal(ipBytes('fd00::1').toString('hex'), 'fd000000000000000000000000000001');
  t.equal(ipBytes('::ffff:1.2.3.4').toString('hex'), '00000000000000000000ffff01020304');
  t.equal(ipBytes('::1').toString('hex'), '00000000000000000000000000000001');
  const lpm = encodeLpmKey('10.0.0.0/8');
  t.equal(lpm.readUInt32LE(0), 104, 'IPv4 prefix length + 96');
  t.equal(lpm.subarray(4).toString('hex'), '00000000000000000000ffff0a000000');
  t.equal(encodeLpmKey('fd00::/16').readUInt32LE(0), 16);
  t.equal(encodeLpmKey('192.168.1.1').readUInt32LE(0), 128, 'a bare address is a host prefix');
  t.throws(() => encodeLpmKey('300.1.1.1/8'), RangeError);
  const percpu = Buffer.alloc(16);
  percpu.writeBigUInt64LE(2n, 0);
  percpu.writeBigUInt64LE(3n, 8);
  t.equal(sumPerCpu(percpu), 5, 'per-CPU counters are summed');
});
