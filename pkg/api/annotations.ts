// Pod annotations and labels weft reads, and the validation of their values. A bad value is
// refused with one message naming the annotation and what is allowed.
import { ErrorCodes, WeftError } from '../errors/index.js';
import { INBOUND_POLICIES, INTERCEPT_MODES, LOG_LEVELS, QUANTITY_RE, isCidr, type InterceptMode } from './values.js';

export const PREFIX = 'weft.dev/';

export const Annotations = {
  inject: 'weft.dev/inject',
  injected: 'weft.dev/injected',
  intercept: 'weft.dev/intercept',
  /** The short form users write. */
  interceptShort: 'intercept',
  excludeInboundPorts: 'weft.dev/exclude-inbound-ports',
  excludeOutboundPorts: 'weft.dev/exclude-outbound-ports',
  excludeOutboundCidrs: 'weft.dev/exclude-outbound-cidrs',
  includeOutboundCidrs: 'weft.dev/include-outbound-cidrs',
  proxyCpu: 'weft.dev/proxy-cpu',
  proxyMemory: 'weft.dev/proxy-memory',
  proxyCpuLimit: 'weft.dev/proxy-cpu-limit',
  proxyMemoryLimit: 'weft.dev/proxy-memory-limit',
  logLevel: 'weft.dev/log-level',
  opaquePorts: 'weft.dev/opaque-ports',
  nativeSidecar: 'weft.dev/native-sidecar',
  defaultInboundPolicy: 'weft.dev/default-inbound-policy',
} as const;

export const INJECT_VALUES = ['enabled', 'disabled'] as const;
export type InjectChoice = (typeof INJECT_VALUES)[number];

function bad(annotation: string, value: string, allowed: string): WeftError {
  return new WeftError(ErrorCodes.BAD_ANNOTATION, `annotation ${annotation}: "${value}" is invalid; allowed: ${allowed}`, { field: annotation });
}

function oneOf<T extends string>(annotation: string, value: string, allowed: readonly T[]): T {
  const v = value.trim();
  if ((allowed as readonly string[]).includes(v)) return v as T;
  throw bad(annotation, value, allowed.join(', '));
}

function list(value: string): string[] {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

/** `weft.dev/inject` as a pod annotation or label: `where` says which ("annotation weft.dev/inject", "label <key>"). */
export function parseInjectChoice(where: string, value: string): InjectChoice {
  const v = value.trim();
  if ((INJECT_VALUES as readonly string[]).includes(v)) return v as InjectChoice;
  throw new WeftError(ErrorCodes.BAD_ANNOTATION, `${where}: "${value}" is invalid; allowed: ${INJECT_VALUES.join(', ')}`, { field: where.replace(/^(annotation|label) /, '') });
}

export function parseMode(annotation: string, value: string): InterceptMode {
  return oneOf(annotation, value, INTERCEPT_MODES);
}

export function parseLogLevel(annotation: string, value: string): (typeof LOG_LEVELS)[number] {
  return oneOf(annotation, value, LOG_LEVELS);
}

export function parseInboundPolicy(annotation: string, value: string): (typeof INBOUND_POLICIES)[number] {
  return oneOf(annotation, value, INBOUND_POLICIES);
}

export function parseBool(annotation: string, value: string): boolean {
  return oneOf(annotation, value, ['true', 'false']) === 'true';
}

export function parsePorts(annotation: string, value: string): number[] {
  const out: number[] = [];
  for (const p of list(value)) {
    const n = /^\d{1,5}$/.test(p) ? Number(p) : NaN;
    if (!(n >= 1 && n <= 65535)) throw bad(annotation, p, 'a comma-separated list of ports 1-65535, e.g. "8080,9090"');
    if (!out.includes(n)) out.push(n);
  }
  return out;
}

export { isCidr };

export function parseCidrs(annotation: string, value: string, allowStar = false): string[] {
  const items = list(value);
  if (allowStar && items.length === 1 && items[0] === '*') return ['*'];
  for (const c of items) {
    if (!isCidr(c)) throw bad(annotation, c, `a comma-separated list of IPv4/IPv6 CIDRs such as 10.0.0.0/8 or fd00::/8${allowStar ? ', or *' : ''}`);
  }
  return [...new Set(items)];
}

export function parseQuantity(annotation: string, value: string): string {
  const v = value.trim();
  if (!QUANTITY_RE.test(v)) throw bad(annotation, value, 'a Kubernetes quantity such as 100m, 0.5, 64Mi or 1Gi');
  return v;
}

const SUFFIX: Record<string, number> = { n: 1e-9, u: 1e-6, m: 1e-3, '': 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60 };

/** The value of a quantity already checked against QUANTITY_RE (for comparing a request with a limit). */
export function quantityValue(q: string): number {
  const m = /^([0-9.]+)(.*)$/.exec(q);
  const num = Number(m?.[1] ?? NaN);
  const suffix = m?.[2] ?? '';
  if (/^[eE]/.test(suffix)) return num * 10 ** Number(suffix.slice(1));
  return num * (SUFFIX[suffix] ?? NaN);
}
