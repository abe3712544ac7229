// The TPROXY rule planner: config in, rules out, no I/O. Every rule is built by a small
// function that returns one `iptables-restore` line, commented `weft/<purpose>`; the policy
// routing is a list of `ip` argv pairs (add, del). The executor (exec.ts) runs the plan;
// `weft init --dry-run` prints it. See docs/tproxy.md for the packet paths.
import type { InitConfig } from '../common.js';
import { cidrFamily } from '../common.js';

export type Family = 4 | 6;

/** What the planner needs from the config (IP families already resolved). */
export interface TproxyPlanInput {
  families: readonly Family[];
  proxyUid: number;
  proxyGid: number;
  inboundPort: number;
  outboundPort: number;
  excludeInboundPorts: readonly number[];
  excludeOutboundPorts: readonly number[];
  excludeOutboundCidrs: readonly string[];
  /** null: every destination; []: none. */
  includeOutboundCidrs: readonly string[] | null;
  mark: number;
  routeTable: number;
}

/** weft's own chains, all in the mangle table. */
export const CHAINS = {
  prerouting: 'WEFT_PREROUTING',
  inbound: 'WEFT_INBOUND',
  output: 'WEFT_OUTPUT',
  divert: 'WEFT_DIVERT',
} as const;
export const WEFT_CHAINS: readonly string[] = Object.values(CHAINS);

/** A jump from a built-in chain into one of weft's; inserted once, first in its chain. */
export interface Jump {
  from: 'PREROUTING' | 'OUTPUT';
  /** The rule spec after `-A <from> ` exactly as iptables-save prints it. */
  spec: string;
}

export interface FamilyRuleset {
  family: Family;
  /** `iptables-restore` lines appending to weft's chains (chains declared by the renderer). */
  rules: readonly string[];
  jumps: readonly Jump[];
}

/** One policy-routing step: how to add it, how to remove it, and how to see it is there. */
export interface IpStep {
  purpose: string;
  add: readonly string[];
  del: readonly string[];
  /** argv whose output shows the object when present. */
  show: readonly string[];
  /** Words that, delimited by spaces, appear in a line of `show`'s output only when present. */
  presentPattern: string;
  /** The kernel refuses a duplicate add with EEXIST: try `add` first, no `show` needed. */
  addFailsIfPresent: boolean;
}

export interface TproxyPlan {
  rulesets: readonly FamilyRuleset[];
  ipSteps: readonly IpStep[];
}

/** iptables-save prints a comment bare when it has no space: keep purposes space-free. */
const comment = (purpose: string): string => `-m comment --comment weft/${purpose}`;
const hex = (n: number): string => `0x${n.toString(16)}`;
const markMask = (mark: number): string => `${hex(mark)}/${hex(mark)}`;
/** `-m multiport` takes at most 15 ports per rule. */
const chunks = <T>(xs: readonly T[], n = 15): T[][] => {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += n) out.push(xs.slice(i, i + n));
  return out;
};
const portMatch = (dir: 'dports' | 'sports', ports: readonly number[]): string =>
  ports.length === 1 ? `--${dir === 'dports' ? 'dport' : 'sport'} ${ports[0]}` : `-m multiport --${dir} ${ports.join(',')}`;
const rule = (chain: string, match: string, purpose: string, target: string): string =>
  `-A ${chain} ${match ? `${match} ` : ''}${comment(purpose)} -j ${target}`;

/** Flows already diverted to the proxy: their packets belong to a transparent socket. */
export function divertRules(p: TproxyPlanInput): string[] {
  return [
    rule(CHAINS.divert, '', 'divert-mark', `MARK --set-xmark ${markMask(p.mark)}`),
    rule(CHAINS.divert, '', 'divert-accept', 'ACCEPT'),
  ];
}

export function preroutingRules(p: TproxyPlanInput): string[] {
  const m = markMask(p.mark);
  return [
    rule(CHAINS.prerouting, '-p tcp -m socket --transparent', 'diverted-flow', CHAINS.divert),
    // Outbound: the app's packet was marked in OUTPUT, policy-routed to lo, and arrives here.
    rule(CHAINS.prerouting, `-i lo -p tcp -m mark --mark ${m}`, 'outbound-tproxy', `TPROXY --on-port ${p.outboundPort} --tproxy-mark ${m}`),
    rule(CHAINS.prerouting, '-i lo', 'loopback-in', 'RETURN'),
    rule(CHAINS.prerouting, '-p tcp', 'inbound', CHAINS.inbound),
  ];
}

export function inboundRules(p: TproxyPlanInput): string[] {
  const m = markMask(p.mark);
  // Only connection openers are diverted: later packets of diverted flows matched the socket
  // rule above, and anything else is a reply to a local (non-transparent) socket.
  const out = [rule(CHAINS.inbound, '-p tcp ! --syn', 'inbound-not-new', 'RETURN')];
  for (const ports of chunks(p.excludeInboundPorts)) out.push(rule(CHAINS.inbound, `-p tcp ${portMatch('dports', ports)}`, 'exclude-inbound-port', 'RETURN'));
  out.push(rule(CHAINS.inbound, '-p tcp', 'inbound-tproxy', `TPROXY --on-port ${p.inboundPort} --tproxy-mark ${m}`));
  return out;
}

export function outputRules(p: TproxyPlanInput, family: Family): string[] {
  const m = markMask(p.mark);
  const out = [
    rule(CHAINS.output, '-o lo', 'loopback-out', 'RETURN'),
    // Only TCP for now; UDP/DNS would add its own rules here.
    rule(CHAINS.output, '! -p tcp', 'not-tcp', 'RETURN'),
    // Packets answering a connection someone else opened are never outbound interceptions:
    // the proxy's inbound sockets before accept() and after close() have no owner to match,
    // and replies on excluded inbound ports come from the app.
    rule(CHAINS.output, '-m conntrack --ctdir REPLY', 'reply-direction', 'RETURN'),
    rule(CHAINS.output, `-m owner --uid-owner ${p.proxyUid}`, 'proxy-uid', 'RETURN'),
    rule(CHAINS.output, `-m owner --gid-owner ${p.proxyGid}`, 'proxy-gid', 'RETURN'),
  ];
  for (const ports of chunks(p.excludeOutboundPorts)) out.push(rule(CHAINS.output, `-p tcp ${portMatch('dports', ports)}`, 'exclude-outbound-port', 'RETURN'));
  for (const c of p.excludeOutboundCidrs.filter((c) => cidrFamily(c) === family)) out.push(rule(CHAINS.output, `-d ${c}`, 'exclude-outbound-cidr', 'RETURN'));
  const markTarget = `MARK --set-xmark ${m}`;
  if (p.includeOutboundCidrs === null) {
    out.push(rule(CHAINS.output, '-p tcp', 'outbound-mark', markTarget));
  } else {
    for (const c of p.includeOutboundCidrs.filter((c) => cidrFamily(c) === family)) out.push(rule(CHAINS.output, `-p tcp -d ${c}`, 'include-outbound-cidr', markTarget));
  }
  return out;
}

export function jumps(): Jump[] {
  return [
    { from: 'PREROUTING', spec: `${comment('jump-prerouting')} -j ${CHAINS.prerouting}` },
    { from: 'OUTPUT', spec: `${comment('jump-output')} -j ${CHAINS.output}` },
  ];
}

export function ipSteps(p: TproxyPlanInput, family: Family): IpStep[] {
  const f = `-${family}`;
  const mark = markMask(p.mark);
  const table = String(p.routeTable);
  const dflt = family === 4 ? '0.0.0.0/0' : '::/0';
  // `ip rule` prints the mask only when it is not all ones.
  const shownMark = p.mark === 0xffffffff ? hex(p.mark) : mark;
  return [
    {
      purpose: `ipv${family}-fwmark-rule`,
      add: ['ip', f, 'rule', 'add', 'fwmark', mark, 'lookup', table],
      del: ['ip', f, 'rule', 'del', 'fwmark', mark, 'lookup', table],
      show: ['ip', f, 'rule', 'show'],
      presentPattern: `fwmark ${shownMark} lookup ${table}`,
      // the kernel takes duplicate rules: look first
      addFailsIfPresent: false,
    },
    {
      purpose: `ipv${family}-local-route`,
      add: ['ip', f, 'route', 'add', 'local', dflt, 'dev', 'lo', 'table', table],
      del: ['ip', f, 'route', 'del', 'local', dflt, 'dev', 'lo', 'table', table],
      // `show table all`: `show table 133` fails while the table does not exist yet.
      show: ['ip', f, 'route', 'show', 'table', 'all'],
      presentPattern: `local default dev lo table ${table}`,
      addFailsIfPresent: true,
    },
  ];
}

export function planTproxy(p: TproxyPlanInput): TproxyPlan {
  const rulesets = p.families.map((family) => ({
    family,
    rules: [...divertRules(p), ...preroutingRules(p), ...inboundRules(p), ...outputRules(p, family)],
    jumps: jumps(),
  }));
  return { rulesets, ipSteps: p.families.flatMap((f) => ipSteps(p, f)) };
}

/** The planner's input from the validated `weft init` config, once IPv6 is decided. */
export function planInput(c: InitConfig, families: readonly Family[]): TproxyPlanInput {
  return {
    families,
    proxyUid: c.proxyUid,
    proxyGid: c.proxyGid,
    inboundPort: c.inboundPort,
    outboundPort: c.outboundPort,
    excludeInboundPorts: c.excludeInboundPorts,
    excludeOutboundPorts: c.excludeOutboundPorts,
    excludeOutboundCidrs: c.excludeOutboundCidrs,
    includeOutboundCidrs: c.includeOutboundCidrs,
    mark: c.mark,
    routeTable: c.routeTable,
  };
}
