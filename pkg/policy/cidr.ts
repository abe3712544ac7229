// IPv4/IPv6 addresses and CIDRs as bigints, without node:net so policy evaluation stays
// pure. IPv4-mapped IPv6 addresses (::ffff:a.b.c.d, what a dual-stack socket reports for
// an IPv4 peer) are treated as the IPv4 address so v4 blocks match them, and IPv4-mapped
// blocks (::ffff:10.0.0.0/104) as the IPv4 block they map (10.0.0.0/8).

export interface ParsedIp {
  family: 4 | 6;
  value: bigint;
}

export interface Cidr {
  family: 4 | 6;
  /** Network address with host bits cleared. */
  base: bigint;
  prefix: number;
}

function parseV4(s: string): bigint | undefined {
  const parts = s.split('.');
  if (parts.length !== 4) return undefined;
  let v = 0n;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p) || (p.length > 1 && p.startsWith('0'))) return undefined;
    const n = Number(p);
    if (n > 255) return undefined;
    v = (v << 8n) | BigInt(n);
  }
  return v;
}

function parseV6(s: string): bigint | undefined {
  const zone = s.indexOf('%');
  if (zone >= 0) s = s.slice(0, zone);
  const lastColon = s.lastIndexOf(':');
  if (s.includes('.')) {
    // Embedded IPv4 tail (::ffff:1.2.3.4): rewrite it as two hex groups.
    const v4 = lastColon < 0 ? undefined : parseV4(s.slice(lastColon + 1));
    if (v4 === undefined) return undefined;
    s = `${s.slice(0, lastColon + 1)}${((v4 >> 16n) & 0xffffn).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const halves = s.split('::');
  if (halves.length > 2) return undefined;
  const group = (h: string): bigint[] | undefined => {
    if (h === '') return [];
    const out: bigint[] = [];
    for (const g of h.split(':')) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
      out.push(BigInt(`0x${g}`));
    }
    return out;
  };
  const head = group(halves[0] ?? '');
  const rest = halves.length === 2 ? group(halves[1] ?? '') : [];
  if (!head || !rest) return undefined;
  const given = head.length + rest.length;
  if (halves.length === 1 ? given !== 8 : given > 7) return undefined;
  const groups = [...head, ...Array<bigint>(8 - given).fill(0n), ...rest];
  return groups.reduce((acc, g) => (acc << 16n) | g, 0n);
}

const MAPPED_PREFIX = 0xffffn << 32n;

export function parseIp(s: string): ParsedIp | undefined {
  if (s.includes(':')) {
    const v = parseV6(s);
    if (v === undefined) return undefined;
    if (v >> 32n === 0xffffn) return { family: 4, value: v - MAPPED_PREFIX };
    return { family: 6, value: v };
  }
  const v = parseV4(s);
  return v === undefined ? undefined : { family: 4, value: v };
}

/** `10.0.0.0/8`, `fd00::/8`, or a bare address (a /32 or /128). */
export function parseCidr(s: string): Cidr | undefined {
  const slash = s.indexOf('/');
  const addr = slash < 0 ? s : s.slice(0, slash);
  const ip = addr.includes(':') ? parseV6(addr) : parseV4(addr);
  if (ip === undefined) return undefined;
  const family: 4 | 6 = addr.includes(':') ? 6 : 4;
  const width = family === 4 ? 32 : 128;
  let prefix = width;
  if (slash >= 0) {
    const p = s.slice(slash + 1);
    if (!/^\d{1,3}$/.test(p)) return undefined;
    prefix = Number(p);
    if (prefix > width) return undefined;
  }
  // An IPv4-mapped block (::ffff:a.b.c.d/96+) is the IPv4 block it maps: peers arrive as
  // IPv4 (parseIp unmaps them), so a v6 spelling must compare as v4 or it never matches.
  if (family === 6 && prefix >= 96 && ip >> 32n === 0xffffn) {
    const v4Bits = BigInt(32 - (prefix - 96));
    return { family: 4, base: ((ip - MAPPED_PREFIX) >> v4Bits) << v4Bits, prefix: prefix - 96 };
  }
  const hostBits = BigInt(width - prefix);
  return { family, base: (ip >> hostBits) << hostBits, prefix };
}

export function cidrContains(c: Cidr, ip: ParsedIp): boolean {
  if (c.family !== ip.family) return false;
  const hostBits = BigInt((c.family === 4 ? 32 : 128) - c.prefix);
  return ip.value >> hostBits === c.base >> hostBits;
}
