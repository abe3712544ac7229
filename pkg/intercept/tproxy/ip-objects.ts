// weft's policy-routing objects (`ip rule`, `ip route`) as data, pure: what a plan wants, how
// to read what is there from `ip -N -j` output, and the argv to add or remove each. Every
// object weft adds carries the routing protocol WEFT_RT_PROTO (`ip rule … protocol 87`,
// `ip route … proto 87`), so weft finds and removes exactly its own objects — whatever
// --mark or --route-table an earlier run used — and never an identical one someone else made.
import type { Family } from './plan.js';

/** The rtnetlink protocol number that tags weft's rules and routes: 87 is ASCII "W", not
 * assigned in iproute2's rt_protos (0-4, 8-16, 18, 42, 99, 186-192 are). */
export const WEFT_RT_PROTO = 87;

const FULL_MASK = 0xffffffff;
const hex = (n: number): string => `0x${n.toString(16)}`;

/** An object as weft plans it. */
export type IpObject =
  /** `fwmark <mark> lookup <table>`: diverted packets use weft's table. */
  | { kind: 'rule'; family: Family; fwmark: number; fwmask: number; table: number }
  /** `local default dev lo table <table>`: weft's table delivers everything locally. */
  | { kind: 'route'; family: Family; type: string; dst: string; dev: string; table: number };

/** An object found tagged with WEFT_RT_PROTO, with what removes it and what puts it back. */
export interface FoundIpObject {
  key: string;
  family: Family;
  label: string;
  del: string[];
  add: string[];
}

const fam = (f: Family): string => `-${f}`;
const fwmarkText = (mark: number, mask: number): string => (mask === FULL_MASK ? hex(mark) : `${hex(mark)}/${hex(mask)}`);

/** Identity of an object: same key, same object (the kernel's view, not weft's wording). */
export function keyOf(o: IpObject): string {
  if (o.kind === 'rule') return `${o.family} rule fwmark ${fwmarkText(o.fwmark, o.fwmask)} lookup ${o.table}`;
  return `${o.family} route ${o.type} ${o.dst} dev ${o.dev} table ${o.table}`;
}

/** `ipv4-fwmark-rule`, `ipv6-local-route`: the step names errors and logs use. */
export function labelOf(o: IpObject): string {
  return `ipv${o.family}-${o.kind === 'rule' ? 'fwmark-rule' : `${o.type}-route`}`;
}

export function addArgv(o: IpObject): string[] {
  if (o.kind === 'rule') return ['ip', fam(o.family), 'rule', 'add', 'fwmark', fwmarkText(o.fwmark, o.fwmask), 'lookup', String(o.table), 'protocol', String(WEFT_RT_PROTO)];
  const dst = o.dst === 'default' ? (o.family === 4 ? '0.0.0.0/0' : '::/0') : o.dst;
  return ['ip', fam(o.family), 'route', 'add', o.type, dst, 'dev', o.dev, 'table', String(o.table), 'proto', String(WEFT_RT_PROTO)];
}

/** The objects weft's policy routing needs for one family. */
export function plannedIpObjects(family: Family, mark: number, table: number): IpObject[] {
  return [
    { kind: 'rule', family, fwmark: mark, fwmask: FULL_MASK, table },
    { kind: 'route', family, type: 'local', dst: 'default', dev: 'lo', table },
  ];
}

type Json = Record<string, unknown>;
const str = (v: unknown): string | undefined => (typeof v === 'string' || typeof v === 'number' ? String(v) : undefined);
const isWeft = (o: Json): boolean => str(o.protocol) === String(WEFT_RT_PROTO);

function parseArray(text: string, what: string): Json[] {
  const t = text.trim();
  if (t === '') return [];
  const v = JSON.parse(t) as unknown;
  if (!Array.isArray(v)) throw new Error(`${what}: expected a JSON array from ip -j`);
  return v as Json[];
}

/** `ip -N` prints route types as numbers (rtnetlink RTN_*); `ip route del` wants names. */
const ROUTE_TYPES: Record<string, string> = { '1': 'unicast', '2': 'local', '3': 'broadcast', '4': 'anycast', '5': 'multicast', '6': 'blackhole', '7': 'unreachable', '8': 'prohibit', '9': 'throw', '10': 'nat' };

const RULE_FIELDS = new Set(['priority', 'fwmark', 'fwmask', 'table', 'protocol']);

/** Tagged rules from `ip -N -j -<f> rule show` (every rule with `tagged` false). */
export function parseRules(text: string, family: Family, tagged = true): FoundIpObject[] {
  return parseArray(text, 'ip rule show')
    .filter((r) => !tagged || isWeft(r))
    .map((r) => {
      const mark = str(r.fwmark);
      const mask = str(r.fwmask);
      const table = str(r.table);
      const fwmark = mark === undefined ? undefined : mask === undefined ? mark : `${mark}/${mask}`;
      const sel = [...(fwmark ? ['fwmark', fwmark] : []), ...(table ? ['lookup', table] : [])];
      const prio = str(r.priority);
      const at = prio === undefined ? [] : ['priority', prio];
      // Any other selector makes it a different rule from the one weft plans.
      const other = Object.entries(r).filter(([k, v]) => !RULE_FIELDS.has(k) && !(k === 'src' && v === 'all'));
      return {
        key: `${family} rule ${sel.join(' ')}${other.length ? ` ${JSON.stringify(other)}` : ''}`,
        family,
        label: `ipv${family} rule ${prio ?? ''}: ${sel.join(' ')} protocol ${WEFT_RT_PROTO}`,
        del: ['ip', fam(family), 'rule', 'del', ...at, ...sel, 'protocol', String(WEFT_RT_PROTO)],
        add: ['ip', fam(family), 'rule', 'add', ...at, ...sel, 'protocol', String(WEFT_RT_PROTO)],
      };
    });
}

/** Tagged routes from `ip -N -j -<f> route show table all` (every route with `tagged` false). */
export function parseRoutes(text: string, family: Family, tagged = true): FoundIpObject[] {
  return parseArray(text, 'ip route show table all')
    .filter((r) => !tagged || isWeft(r))
    .map((r) => {
      const t = str(r.type) ?? 'unicast';
      const type = ROUTE_TYPES[t] ?? t;
      const dst = str(r.dst) ?? 'default';
      const dev = str(r.dev);
      const table = str(r.table) ?? '254';
      const metric = str(r.metric);
      const spec = [type, dst, ...(dev ? ['dev', dev] : []), 'table', table];
      const exact = [...spec, ...(metric !== undefined && family === 6 ? ['metric', metric] : []), 'proto', String(WEFT_RT_PROTO)];
      return {
        key: `${family} route ${spec.join(' ')}`,
        family,
        label: `ipv${family} route ${spec.join(' ')} proto ${WEFT_RT_PROTO}`,
        del: ['ip', fam(family), 'route', 'del', ...exact],
        add: ['ip', fam(family), 'route', 'add', ...exact],
      };
    });
}

/** One `ip -batch` listing per family: its rules, then its routes (two JSON arrays, one a line). */
export const listArgv = (family: Family): string[] => ['ip', '-N', '-j', fam(family), '-batch', '-'];
export const LIST_INPUT = 'rule show\nroute show table all\n';

export function parseListing(stdout: string, family: Family, tagged = true): FoundIpObject[] {
  const [rules = '', routes = ''] = stdout.split('\n').filter((l) => l.trim() !== '');
  return [...parseRules(rules, family, tagged), ...parseRoutes(routes, family, tagged)];
}

export interface IpDiff {
  /** Planned and missing. */
  add: IpObject[];
  /** Tagged and not planned (an earlier run's mark or table, a family now off, duplicates). */
  remove: FoundIpObject[];
}

export function diffIpObjects(planned: readonly IpObject[], found: readonly FoundIpObject[]): IpDiff {
  const add: IpObject[] = [];
  const claimed = new Set<FoundIpObject>();
  for (const o of planned) {
    const hit = found.find((f) => !claimed.has(f) && f.key === keyOf(o));
    if (hit) claimed.add(hit);
    else add.push(o);
  }
  return { add, remove: found.filter((f) => !claimed.has(f)) };
}
