// The TypeScript mirror of bpf/include/weft.h must match the compiled objects' BTF byte for
// byte: a field moved in C without its mirror would make the loader write wrong bytes.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { ROOT } from '../../native/load.js';
import { LAYOUTS, MAPS, encodeConfig, encodeLpmKey, encodePortKey, ipBytes, sumPerCpu, type MapName } from './maps.js';
import { BPF_OBJECTS } from './plan.js';

interface BtfType {
  kind: string;
  name: string;
  size: number | undefined;
  typeId: number | undefined;
  nrElems: number | undefined;
  members: { name: string; typeId: number; offset: number }[];
}

/** Every type of `bpftool btf dump file X format raw`, by id. */
function btfTypes(obj: string): Map<number, BtfType> {
  const r = spawnSync('bpftool', ['btf', 'dump', 'file', obj, 'format', 'raw'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`bpftool: ${r.stderr}`);
  const out = new Map<number, BtfType>();
  let cur: BtfType | null = null;
  for (const line of r.stdout.split('\n')) {
    const head = /^\[(\d+)\] (\w+) '([^']*)'(.*)$/.exec(line);
    if (head) {
      const rest = head[4] ?? '';
      const num = (k: string): number | undefined => {
        const m = new RegExp(`\\b${k}=(\\d+)`).exec(rest);
        return m ? Number(m[1]) : undefined;
      };
      const type: BtfType = { kind: head[2] ?? '', name: head[3] ?? '', size: num('size'), typeId: num('type_id'), nrElems: num('nr_elems'), members: [] };
      out.set(Number(head[1]), type);
      cur = type;
      continue;
    }
    const member = /^\s+'([^']+)' type_id=(\d+) bits_offset=(\d+)/.exec(line);
    if (member && cur) cur.members.push({ name: member[1] ?? '', typeId: Number(member[2]), offset: Number(member[3]) / 8 });
  }
  return out;
}

/** sizeof a BTF type, following typedefs, qualifiers and arrays. */
function sizeOf(types: Map<number, BtfType>, id: number): number {
  const t = types.get(id);
  if (t === undefined) throw new Error(`no BTF type ${id}`);
  if (t.kind === 'ARRAY') return (t.nrElems ?? 0) * sizeOf(types, t.typeId ?? 0);
  if (t.kind === 'TYPEDEF' || t.kind === 'CONST' || t.kind === 'VOLATILE') return sizeOf(types, t.typeId ?? 0);
  if (t.kind === 'PTR') return 8;
  if (t.size === undefined) throw new Error(`BTF type ${id} (${t.kind}) has no size`);
  return t.size;
}

/** Named structs with each field's offset and size. */
function btfStructs(types: Map<number, BtfType>): Map<string, { size: number; fields: { name: string; offset: number; size: number }[] }> {
  const out = new Map<string, { size: number; fields: { name: string; offset: number; size: number }[] }>();
  for (const t of types.values()) {
    if (t.kind !== 'STRUCT' || t.name === '(anon)') continue;
    out.set(t.name, { size: t.size ?? 0, fields: t.members.map((m) => ({ name: m.name, offset: m.offset, size: sizeOf(types, m.typeId) })) });
  }
  return out;
}

/** enum bpf_map_type numbers (linux/bpf.h) of the types MAPS names. */
const MAP_TYPE_NUMBERS: Record<string, number> = { hash: 1, percpu_array: 6, lru_hash: 9, lpm_trie: 11, sockmap: 15, sockhash: 18, sk_storage: 24 };

/** The BTF-defined maps (`.maps` section) of an object: __uint(type, N) and friends are
 * pointers to arrays of N elements; key and value are pointers to their types. */
function btfMaps(types: Map<number, BtfType>): Map<string, { type: number; keySize: number; valueSize: number; maxEntries: number }> {
  const out = new Map<string, { type: number; keySize: number; valueSize: number; maxEntries: number }>();
  const pointee = (id: number): number => types.get(id)?.typeId ?? 0;
  for (const t of types.values()) {
    if (t.kind !== 'VAR') continue;
    const def = types.get(t.typeId ?? 0);
    if (def?.kind !== 'STRUCT' || !def.members.some((m) => m.name === 'type')) continue;
    const member = (n: string) => def.members.find((m) => m.name === n);
    const uint = (n: string): number => {
      const m = member(n);
      return m ? (types.get(pointee(m.typeId))?.nrElems ?? 0) : 0;
    };
    const sized = (n: string): number => {
      const m = member(n);
      return m ? sizeOf(types, pointee(m.typeId)) : 0;
    };
    out.set(t.name, { type: uint('type'), keySize: sized('key'), valueSize: sized('value'), maxEntries: uint('max_entries') });
  }
  return out;
}

const objDir = `${ROOT}/bpf/build`;
const haveBpftool = spawnSync('bpftool', ['version']).status === 0;
const built = BPF_OBJECTS.every((o) => existsSync(`${objDir}/${o}.bpf.o`));
const skip = !haveBpftool ? 'bpftool missing' : !built ? "bpf objects not built ('npm run build:bpf')" : false;

t.test('struct layouts (offsets and sizes) match the BTF of every object', { skip }, async (t) => {
  for (const o of BPF_OBJECTS) {
    const structs = btfStructs(btfTypes(`${objDir}/${o}.bpf.o`));
    for (const [name, layout] of Object.entries(LAYOUTS)) {
      const got = structs.get(name);
      if (got === undefined) continue; // unused types are dropped from an object's BTF
      t.equal(got.size, layout.size, `${o}: sizeof(struct ${name})`);
      t.same(got.fields, layout.fields, `${o}: fields (name, offset, size) of struct ${name}`);
    }
    t.ok(structs.has('weft_config'), `${o} carries weft_config (the .rodata config)`);
  }
});

t.test('MAPS mirrors every map definition of every object', { skip }, async (t) => {
  const seen = new Set<string>();
  for (const o of BPF_OBJECTS) {
    for (const [name, got] of btfMaps(btfTypes(`${objDir}/${o}.bpf.o`))) {
      seen.add(name);
      const want = (MAPS as Record<string, (typeof MAPS)[MapName]>)[name];
      t.ok(want, `${o}: map ${name} is in MAPS`);
      if (!want) continue;
      t.same(got, { type: MAP_TYPE_NUMBERS[want.type], keySize: want.keySize, valueSize: want.valueSize, maxEntries: want.maxEntries }, `${o}: map ${name}`);
    }
  }
  t.same([...seen].sort(), Object.keys(MAPS).sort(), 'every map of MAPS is defined by some object');
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
