// Pure renderers of `iptables-restore --noflush` input: given the planned ruleset and the
// current `iptables-save -t mangle` text, produce the one transaction that applies, cleans up
// or rolls back weft's chains. Reading the current state lets a re-run replace weft's chains
// and keep exactly one jump into each, and lets cleanup remove exactly what weft added.
import { WEFT_CHAINS, type FamilyRuleset, type Jump } from './plan.js';

/** Any chain named WEFT_…, also one an earlier weft had and this one no longer plans. */
const isWeftChain = (name: string): boolean => /^WEFT_[A-Z0-9_]+$/.test(name);
const JUMP_LINE = /^-A ([^\s]+) (.*-j WEFT_[A-Z0-9_]+)$/;

export interface MangleState {
  /** weft chains that exist. */
  chains: string[];
  /** Rules of weft's chains, as `-A` lines, in order. */
  chainRules: string[];
  /** Jumps into weft chains: built-in chain, spec, and 1-based position in that chain. */
  jumps: { from: string; spec: string; position: number }[];
}

/** Read weft's part of the mangle table from `iptables-save` output. */
export function parseMangle(save: string): MangleState {
  const state: MangleState = { chains: [], chainRules: [], jumps: [] };
  let inMangle = false;
  const positions = new Map<string, number>();
  for (const raw of save.split('\n')) {
    // iptables-save quotes comments (`--comment "weft/x"`); weft's have no spaces, so unquote.
    const line = raw.trimEnd().replace(/--comment "([^"\s]*)"/g, '--comment $1');
    if (line.startsWith('*')) inMangle = line === '*mangle';
    if (!inMangle) continue;
    const decl = /^:(\S+) /.exec(line);
    if (decl?.[1] && isWeftChain(decl[1])) state.chains.push(decl[1]);
    const add = /^-A (\S+) /.exec(line);
    if (!add?.[1]) continue;
    const chain = add[1];
    const pos = (positions.get(chain) ?? 0) + 1;
    positions.set(chain, pos);
    if (isWeftChain(chain)) {
      state.chainRules.push(line);
      continue;
    }
    const j = JUMP_LINE.exec(line);
    if (j?.[1] && j[2]) state.jumps.push({ from: j[1], spec: j[2], position: pos });
  }
  return state;
}

/** Declare (or, if it exists, flush) every weft chain, fill them, ensure exactly one of each
 * jump; jumps and WEFT_ chains this plan does not have (an older weft's) go. */
export function renderApply(rs: FamilyRuleset, current: MangleState): string {
  const out = ['*mangle', ...WEFT_CHAINS.map((c) => `:${c} - [0:0]`), ...WEFT_CHAINS.map((c) => `-F ${c}`), ...rs.rules];
  for (const j of rs.jumps) out.push(...ensureOneJump(j, current));
  for (const j of current.jumps) {
    if (!rs.jumps.some((w) => w.from === j.from && w.spec === j.spec)) out.push(`-D ${j.from} ${j.spec}`);
  }
  const stale = current.chains.filter((c) => !WEFT_CHAINS.includes(c));
  out.push(...stale.map((c) => `-F ${c}`), ...stale.map((c) => `-X ${c}`));
  out.push('COMMIT', '');
  return out.join('\n');
}

function ensureOneJump(j: Jump, current: MangleState): string[] {
  const present = current.jumps.filter((c) => c.from === j.from && c.spec === j.spec).length;
  if (present === 0) return [`-I ${j.from} 1 ${j.spec}`];
  return Array.from({ length: present - 1 }, () => `-D ${j.from} ${j.spec}`);
}

/** Remove every jump into a weft chain and every weft chain; null when there is nothing. */
export function renderCleanup(current: MangleState): string | null {
  if (current.chains.length === 0 && current.jumps.length === 0) return null;
  return [
    '*mangle',
    ...current.jumps.map((j) => `-D ${j.from} ${j.spec}`),
    ...current.chains.map((c) => `-F ${c}`),
    ...current.chains.map((c) => `-X ${c}`),
    'COMMIT',
    '',
  ].join('\n');
}

/** Put weft's part of the mangle table back as it was in `before`; null when nothing to do. */
export function renderRollback(before: MangleState, now: MangleState): string | null {
  const same =
    before.chains.join() === now.chains.join() &&
    before.chainRules.join('\n') === now.chainRules.join('\n') &&
    JSON.stringify(before.jumps) === JSON.stringify(now.jumps);
  if (same) return null;
  const out = ['*mangle', ...now.jumps.map((j) => `-D ${j.from} ${j.spec}`), ...now.chains.map((c) => `-F ${c}`)];
  out.push(...now.chains.filter((c) => !before.chains.includes(c)).map((c) => `-X ${c}`));
  out.push(...before.chains.filter((c) => !now.chains.includes(c)).map((c) => `:${c} - [0:0]`));
  out.push(...before.chainRules);
  // Ascending positions: each insert lands where it was, the earlier ones already in place.
  for (const j of [...before.jumps].sort((a, b) => a.position - b.position)) out.push(`-I ${j.from} ${j.position} ${j.spec}`);
  out.push('COMMIT', '');
  return out.join('\n');
}

const BUILTIN_MANGLE = ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'];

/** True when the save shows a mangle table with nothing in it: built-in chains, ACCEPT
 * policies, no rules. With iptables-nft that table exists only because someone used it. */
export function isEmptyMangle(save: string): boolean {
  let inMangle = false;
  let seen = false;
  for (const line of save.split('\n')) {
    if (line.startsWith('*')) inMangle = line.trim() === '*mangle';
    if (!inMangle || line.startsWith('#') || line.startsWith('*') || line.trim() === '' || line.trim() === 'COMMIT') continue;
    seen = true;
    const decl = /^:(\S+) (\S+) /.exec(line);
    if (!decl || !BUILTIN_MANGLE.includes(decl[1] ?? '') || decl[2] !== 'ACCEPT') return false;
  }
  return seen;
}
