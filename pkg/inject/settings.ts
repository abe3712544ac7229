// Values + pod annotations → the settings of one injection. Annotations override values;
// a bad annotation value throws a WeftError (BAD_ANNOTATION) naming it and what is allowed.
import {
  Annotations as A,
  parseBool,
  parseCidrs,
  parseInboundPolicy,
  parseLogLevel,
  parseMode,
  parsePorts,
  parseQuantity,
  quantityValue,
} from '../api/annotations.js';
import type { ResourceRequirements } from '../api/k8s-types.js';
import type { InterceptMode, Values } from '../api/values.js';
import { ErrorCodes, WeftError } from '../errors/index.js';

export interface Settings {
  mode: InterceptMode;
  nativeSidecar: boolean;
  logLevel: Values['proxy']['logLevel'];
  defaultInboundPolicy: Values['policy']['defaultInboundPolicy'];
  opaquePorts: number[];
  excludeInboundPorts: number[];
  excludeOutboundPorts: number[];
  excludeOutboundCidrs: string[];
  includeOutboundCidrs: string[];
  proxyResources: ResourceRequirements;
}

function pick(ann: Record<string, string>, key: string): string | undefined {
  return Object.hasOwn(ann, key) ? ann[key] : undefined;
}

function resolveMode(ann: Record<string, string>, dflt: InterceptMode): InterceptMode {
  const long = pick(ann, A.intercept);
  const short = pick(ann, A.interceptShort);
  const m1 = long === undefined ? undefined : parseMode(A.intercept, long);
  const m2 = short === undefined ? undefined : parseMode(A.interceptShort, short);
  if (m1 !== undefined && m2 !== undefined && m1 !== m2) {
    throw new WeftError(ErrorCodes.BAD_ANNOTATION, `annotations ${A.intercept} ("${m1}") and ${A.interceptShort} ("${m2}") disagree; set one of them, to tproxy or ebpf`, {
      field: A.intercept,
    });
  }
  return m1 ?? m2 ?? dflt;
}

export function resourceList(r: { cpu?: string | undefined; memory?: string | undefined }): Record<string, string> {
  const out: Record<string, string> = {};
  if (r.cpu !== undefined) out.cpu = r.cpu;
  if (r.memory !== undefined) out.memory = r.memory;
  return out;
}

/**
 * `weft.dev/proxy-cpu`/`-memory` set the request, and the limit too where values configure
 * one (so request ≤ limit holds); `weft.dev/proxy-cpu-limit`/`-memory-limit` set the limit.
 * A request above its limit is refused here, naming the annotation, rather than by the API
 * server's pod validation after admission.
 */
function proxyResources(ann: Record<string, string>, v: Values): ResourceRequirements {
  const requests = resourceList(v.proxy.resources.requests);
  const limits = resourceList(v.proxy.resources.limits);
  for (const [key, limitKey, res] of [
    [A.proxyCpu, A.proxyCpuLimit, 'cpu'],
    [A.proxyMemory, A.proxyMemoryLimit, 'memory'],
  ] as const) {
    const raw = pick(ann, key);
    if (raw !== undefined) {
      const q = parseQuantity(key, raw);
      requests[res] = q;
      if (limits[res] !== undefined) limits[res] = q;
    }
    const rawLimit = pick(ann, limitKey);
    if (rawLimit === undefined) continue;
    const limit = parseQuantity(limitKey, rawLimit);
    const request = requests[res];
    if (request !== undefined && quantityValue(request) > quantityValue(limit)) {
      const from = raw !== undefined ? `annotation ${key}` : `values proxy.resources.requests.${res}`;
      throw new WeftError(ErrorCodes.BAD_ANNOTATION, `annotation ${limitKey}: "${rawLimit}" is below the ${res} request ${request} (${from}); allowed: a quantity ≥ the request`, { field: limitKey });
    }
    limits[res] = limit;
  }
  return { ...(Object.keys(requests).length ? { requests } : {}), ...(Object.keys(limits).length ? { limits } : {}) };
}

export function resolveSettings(annotations: Record<string, string> | undefined, v: Values): Settings {
  const ann = annotations ?? {};
  const ports = (key: string, d: number[]) => {
    const raw = pick(ann, key);
    return raw === undefined ? d : parsePorts(key, raw);
  };
  const cidrs = (key: string, d: string[], star = false) => {
    const raw = pick(ann, key);
    return raw === undefined ? d : parseCidrs(key, raw, star);
  };
  const logRaw = pick(ann, A.logLevel);
  const nativeRaw = pick(ann, A.nativeSidecar);
  const policyRaw = pick(ann, A.defaultInboundPolicy);
  // Values lists were validated when the values were loaded (ValuesSchema).
  const includes = cidrs(A.includeOutboundCidrs, v.init.includeOutboundCidrs, true);
  return {
    mode: resolveMode(ann, v.interception.defaultMode),
    nativeSidecar: nativeRaw === undefined ? v.proxy.nativeSidecar : parseBool(A.nativeSidecar, nativeRaw),
    logLevel: logRaw === undefined ? v.proxy.logLevel : parseLogLevel(A.logLevel, logRaw),
    defaultInboundPolicy: policyRaw === undefined ? v.policy.defaultInboundPolicy : parseInboundPolicy(A.defaultInboundPolicy, policyRaw),
    opaquePorts: ports(A.opaquePorts, v.proxy.opaquePorts),
    excludeInboundPorts: ports(A.excludeInboundPorts, v.init.excludeInboundPorts),
    excludeOutboundPorts: ports(A.excludeOutboundPorts, v.init.excludeOutboundPorts),
    excludeOutboundCidrs: cidrs(A.excludeOutboundCidrs, v.init.excludeOutboundCidrs),
    includeOutboundCidrs: includes.length === 1 && includes[0] === '*' ? [] : includes,
    proxyResources: proxyResources(ann, v),
  };
}
