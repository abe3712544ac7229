// The TypeScript mirror of bpf/include/weft.h: struct layouts (checked against the BTF of
// the built objects by maps.test.ts), the maps weft creates, and encoders for the bytes the
// loader writes into them. Multi-byte integers are little-endian except where the header
// says network byte order (IP addresses).
import { isIPv4 } from 'node:net';
import { normalizeCidr } from '../common.js';

export interface Field {
  name: string;
  offset: number;
  size: number;
}
export interface StructLayout {
  size: number;
  fields: readonly Field[];
}

export const LAYOUTS = {
  weft_config: {
    size: 16,
    fields: [
      { name: 'proxy_uid', offset: 0, size: 4 },
      { name: 'proxy_gid', offset: 4, size: 4 },
      { name: 'outbound_port', offset: 8, size: 2 },
      { name: 'inbound_port', offset: 10, size: 2 },
      { name: 'flags', offset: 12, size: 4 },
    ],
  },
  weft_addr: {
    size: 20,
    fields: [
      { name: 'ip', offset: 0, size: 16 },
      { name: 'port', offset: 16, size: 2 },
      { name: 'family', offset: 18, size: 2 },
    ],
  },
  weft_tuple: {
    size: 36,
    fields: [
      { name: 'local_ip', offset: 0, size: 16 },
      { name: 'remote_ip', offset: 16, size: 16 },
      { name: 'local_port', offset: 32, size: 2 },
      { name: 'remote_port', offset: 34, size: 2 },
    ],
  },
  weft_port_key: {
    size: 4,
    fields: [
      { name: 'port', offset: 0, size: 2 },
      { name: 'dir', offset: 2, size: 1 },
      { name: 'pad', offset: 3, size: 1 },
    ],
  },
  weft_lpm_key: {
    size: 20,
    fields: [
      { name: 'prefixlen', offset: 0, size: 4 },
      { name: 'ip', offset: 4, size: 16 },
    ],
  },
} as const satisfies Record<string, StructLayout>;

/** Entries per connection-tracking map: one per connection in flight of a busy pod. */
export const CONN_ENTRIES = 65536;
/** Entries of the pairs hand-over (WEFT_PAIR_ENTRIES): handshakes in flight, not connections. */
export const PAIR_ENTRIES = 8192;

/** Every map of weft.h: the kernel type name (as bpftool/libbpf spell it) and sizes. Socket
 * storage has no size of its own (max_entries 0): each socket carries its value. */
export const MAPS = {
  orig_dst: { type: 'sk_storage', keySize: 4, valueSize: LAYOUTS.weft_addr.size, maxEntries: 0 },
  pairs: { type: 'lru_hash', keySize: LAYOUTS.weft_tuple.size, valueSize: LAYOUTS.weft_addr.size, maxEntries: PAIR_ENTRIES },
  proxy_orig: { type: 'sk_storage', keySize: 4, valueSize: LAYOUTS.weft_addr.size, maxEntries: 0 },
  local_socks: { type: 'sockhash', keySize: LAYOUTS.weft_tuple.size, valueSize: 8, maxEntries: CONN_ENTRIES },
  listeners: { type: 'sockmap', keySize: 4, valueSize: 8, maxEntries: 2 },
  excluded_ports: { type: 'hash', keySize: LAYOUTS.weft_port_key.size, valueSize: 1, maxEntries: 1024 },
  excluded_cidrs: { type: 'lpm_trie', keySize: LAYOUTS.weft_lpm_key.size, valueSize: 1, maxEntries: 1024 },
  included_cidrs: { type: 'lpm_trie', keySize: LAYOUTS.weft_lpm_key.size, valueSize: 1, maxEntries: 1024 },
  counters: { type: 'percpu_array', keySize: 4, valueSize: 8, maxEntries: 9 },
} as const;
export type MapName = keyof typeof MAPS;

/** Indices of the `counters` map (enum weft_counter). */
export const COUNTERS = {
  redirected: 0,
  origDstFull: 1,
  pairsFull: 2,
  sockhashFull: 3,
  steered: 4,
  noListener: 5,
  origDstAnswered: 6,
  msgRedirected: 7,
  origDstUnknown: 8,
} as const;
export type CounterName = keyof typeof COUNTERS;

export const CFG_IPV6 = 1;
export const CFG_INCLUDE_ALL = 2;
export const CFG_SK_MSG = 4;
export const DIR_INBOUND = 0;
export const DIR_OUTBOUND = 1;

export interface BpfRuntimeConfig {
  proxyUid: number;
  proxyGid: number;
  outboundPort: number;
  inboundPort: number;
  ipv6: boolean;
  includeAll: boolean;
  /** sk_msg attached: sockops pairs sockets in local_socks. */
  skMsg?: boolean;
}

/** struct weft_config, the bytes copied over each object's .rodata `weft_cfg`. */
export function encodeConfig(c: BpfRuntimeConfig): Buffer {
  const b = Buffer.alloc(LAYOUTS.weft_config.size);
  b.writeUInt32LE(c.proxyUid, 0);
  b.writeUInt32LE(c.proxyGid, 4);
  b.writeUInt16LE(c.outboundPort, 8);
  b.writeUInt16LE(c.inboundPort, 10);
  b.writeUInt32LE((c.ipv6 ? CFG_IPV6 : 0) | (c.includeAll ? CFG_INCLUDE_ALL : 0) | (c.skMsg ? CFG_SK_MSG : 0), 12);
  return b;
}

export function encodePortKey(port: number, dir: typeof DIR_INBOUND | typeof DIR_OUTBOUND): Buffer {
  const b = Buffer.alloc(LAYOUTS.weft_port_key.size);
  b.writeUInt16LE(port, 0);
  b.writeUInt8(dir, 2);
  return b;
}

/** 16 network-order bytes; IPv4 as IPv4-mapped IPv6 (::ffff:a.b.c.d), as the programs keep it. */
export function ipBytes(address: string): Buffer {
  const b = Buffer.alloc(16);
  if (isIPv4(address)) {
    b.writeUInt16BE(0xffff, 10);
    address.split('.').forEach((o, i) => b.writeUInt8(Number(o), 12 + i));
    return b;
  }
  const [head = '', tail = ''] = address.split('::');
  const hs = head === '' ? [] : head.split(':');
  let ts = tail === '' ? [] : tail.split(':');
  // An embedded dotted quad at the end (::ffff:1.2.3.4).
  const last = ts.at(-1);
  if (last !== undefined && isIPv4(last)) {
    const q = last.split('.').map(Number);
    ts = [...ts.slice(0, -1), (((q[0] ?? 0) << 8) | (q[1] ?? 0)).toString(16), (((q[2] ?? 0) << 8) | (q[3] ?? 0)).toString(16)];
  }
  const groups = address.includes('::') ? [...hs, ...Array<string>(8 - hs.length - ts.length).fill('0'), ...ts] : hs;
  groups.forEach((g, i) => b.writeUInt16BE(Number.parseInt(g, 16), i * 2));
  return b;
}

/** struct weft_lpm_key for a CIDR (validated upstream by common.ts). */
export function encodeLpmKey(cidr: string): Buffer {
  const norm = normalizeCidr(cidr);
  if (norm === null) throw new RangeError(`not a CIDR: ${cidr}`);
  const [addr = '', len = '0'] = norm.split('/');
  const b = Buffer.alloc(LAYOUTS.weft_lpm_key.size);
  b.writeUInt32LE(Number(len) + (isIPv4(addr) ? 96 : 0), 0);
  ipBytes(addr).copy(b, 4);
  return b;
}

export function encodeCounterKey(name: CounterName): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(COUNTERS[name], 0);
  return b;
}

/** Sum of a per-CPU u64 value as mapLookup returns it (each CPU's value in a row). */
export function sumPerCpu(raw: Buffer): number {
  let sum = 0n;
  for (let off = 0; off + 8 <= raw.length; off += 8) sum += raw.readBigUInt64LE(off);
  return Number(sum);
}
