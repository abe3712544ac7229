// The TPROXY rule planner: config in, rules out, no I/O. Every rule is built by a small
// function that returns one `iptables-restore` line, commented `weft/<purpose>`; the policy
// routing is a list of tagged `ip` objects (ip-objects.ts). The executor (exec.ts) runs the
// plan; `weft init --dry-run` prints it. See docs/tproxy.md for the packet paths.
import type { InitConfig } from '../common.js';
import { cidrFamily } from '../init-flags.js';
import { plannedIpObjects, type IpObject } from './ip-objects.js';

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
  /** SO_MARK of the proxy's upstream sockets (`weft proxy --proxy-mark`); 0: none. */
  proxyMark: number;
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

export interface TproxyPlan {
  rulesets: readonly FamilyRuleset[];
  /** Policy routing, tagged with WEFT_RT_PROTO; per family: the fwmark rule, then the route. */
  ipObjects: readonly IpObject[];
}

/** IPv6 link-local destinations: the proxy cannot dial them without the scope id (interface),
 * which a diverted connection does not carry, so they are never diverted. */
export const IPV6_LINK_LOCAL = 'fe80::/10';

/** iptables-save prints a comment bare when it has no space: keep purposes space-free. */
const comment = (purpose: string): string => `-m comment --comment weft/${purpose}`;
const hex = (n: number): string => `0x${n.toString(16)}`;
/** Marks are whole values (mask 0xffffffff), as iptables-save prints them: a packet carrying
 * other mark bits as well is not weft's, and weft's mark replaces whatever mark it had. */
const setMark = (mark: number): string => `${hex(mark)}/0xffffffff`;
const matchMark = (mark: number): string => `-m mark --mark ${hex(mark)}`;
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
    rule(CHAINS.divert, '', 'divert-mark', `MARK --set-xmark ${setMark(p.mark)}`),
    rule(CHAINS.divert, '', 'divert-accept', 'ACCEPT'),
  ];
}

export function preroutingRules(p: TproxyPlanInput): string[] {
  return [
    rule(CHAINS.prerouting, '-p tcp -m socket --transparent', 'diverted-flow', CHAINS.divert),
    // Outbound: the app's packet was marked in OUTPUT, policy-routed to lo, and arrives here.
    rule(CHAINS.prerouting, `-i lo -p tcp ${matchMark(p.mark)}`, 'outbound-tproxy', `TPROXY --on-port ${p.outboundPort} --tproxy-mark ${setMark(p.mark)}`),
    rule(CHAINS.prerouting, '-i lo', 'loopback-in', 'RETURN'),
    rule(CHAINS.prerouting, '-p tcp', 'inbound', CHAINS.inbound),
  ];
}

export function inboundRules(p: TproxyPlanInput, family: Family): string[] {
  // Only connection openers are diverted: later packets of diverted flows matched the socket
  // rule above, and anything else is a reply to a local (non-transparent) socket.
  const out = [rule(CHAINS.inbound, '-p tcp ! --syn', 'inbound-not-new', 'RETURN')];
  if (family === 6) out.push(rule(CHAINS.inbound, `-d ${IPV6_LINK_LOCAL}`, 'ipv6-link-local', 'RETURN'));
  for (const ports of chunks(p.excludeInboundPorts)) out.push(rule(CHAINS.inbound, `-p tcp ${portMatch('dports', ports)}`, 'exclude-inbound-port', 'RETURN'));
  out.push(rule(CHAINS.inbound, '-p tcp', 'inbound-tproxy', `TPROXY --on-port ${p.inboundPort} --tproxy-mark ${setMark(p.mark)}`));
  return out;
}

export function outputRules(p: TproxyPlanInput, family: Family): string[] {
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
  if (p.proxyMark > 0) out.push(rule(CHAINS.output, matchMark(p.proxyMark), 'proxy-mark', 'RETURN'));
  if (family === 6) out.push(rule(CHAINS.output, `-d ${IPV6_LINK_LOCAL}`, 'ipv6-link-local', 'RETURN'));
  for (const ports of chunks(p.excludeOutboundPorts)) out.push(rule(CHAINS.output, `-p tcp ${portMatch('dports', ports)}`, 'exclude-outbound-port', 'RETURN'));
  for (const c of p.excludeOutboundCidrs.filter((c) => cidrFamily(c) === family)) out.push(rule(CHAINS.output, `-d ${c}`, 'exclude-outbound-cidr', 'RETURN'));
  const markTarget = `MARK --set-xmark ${setMark(p.mark)}`;
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

export function planTproxy(p: TproxyPlanInput): TproxyPlan {
  const rulesets = p.families.map((family) => ({
    family,
    rules: [...divertRules(p), ...preroutingRules(p), ...inboundRules(p, family), ...outputRules(p, family)],
    jumps: jumps(),
  }));
  return { rulesets, ipObjects: p.families.flatMap((f) => plannedIpObjects(f, p.mark, p.routeTable)) };
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
    proxyMark: c.proxyMark,
  };
}
