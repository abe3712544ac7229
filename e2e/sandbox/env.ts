// A container's environment as the kubelet builds it: `env` in order with `$(VAR)` expansion
// against the variables defined before, the downward API for `valueFrom.fieldRef`, and the
// same expansion for `command`/`args`. Pure: no I/O.
import { ErrorCodes, WeftError } from '../../pkg/errors/index.js';
import type { Container } from './types.js';

/** Kubernetes' expansion: `$(NAME)` → value when NAME is known, `$$` → `$`, otherwise kept. */
export function expand(input: string, vars: Readonly<Record<string, string>>): string {
  let out = '';
  for (let i = 0; i < input.length; i++) {
    const c = input[i];
    if (c !== '$' || i + 1 >= input.length) {
      out += c;
      continue;
    }
    const next = input[i + 1];
    if (next === '$') {
      out += '$';
      i++;
    } else if (next === '(') {
      const end = input.indexOf(')', i + 2);
      if (end < 0) {
        out += input.slice(i);
        break;
      }
      const name = input.slice(i + 2, end);
      out += Object.hasOwn(vars, name) ? vars[name] : `$(${name})`;
      i = end;
    } else {
      out += c;
    }
  }
  return out;
}

/** What the downward API can answer for this pod. */
export interface DownwardFields {
  name: string;
  namespace: string;
  uid: string;
  podIP: string;
  podIPs: string[];
  hostIP: string;
  serviceAccountName: string;
  nodeName: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

function fieldRef(path: string, f: DownwardFields, where: string): string {
  switch (path) {
    case 'metadata.name':
      return f.name;
    case 'metadata.namespace':
      return f.namespace;
    case 'metadata.uid':
      return f.uid;
    case 'status.podIP':
      return f.podIP;
    case 'status.podIPs':
      return f.podIPs.join(',');
    case 'status.hostIP':
      return f.hostIP;
    case 'status.hostIPs':
      return f.hostIP;
    case 'spec.serviceAccountName':
      return f.serviceAccountName;
    case 'spec.nodeName':
      return f.nodeName;
  }
  const m = /^metadata\.(labels|annotations)\['(.+)'\]$/.exec(path);
  if (m) return (m[1] === 'labels' ? f.labels : f.annotations)[m[2]!] ?? '';
  throw new WeftError(
    ErrorCodes.SANDBOX,
    `${where}.valueFrom.fieldRef.fieldPath: "${path}" is not supported; allowed: metadata.name, metadata.namespace, metadata.uid, metadata.labels['k'], metadata.annotations['k'], status.podIP, status.podIPs, status.hostIP, spec.serviceAccountName, spec.nodeName`,
    { field: `${where}.valueFrom.fieldRef.fieldPath` },
  );
}

/** Placeholder for resourceFieldRef (limits are not emulated): the value Kubernetes gives with no limit set, roughly. */
const RESOURCE_PLACEHOLDER: Record<string, string> = {
  'limits.cpu': '2',
  'requests.cpu': '0',
  'limits.memory': '8589934592',
  'requests.memory': '0',
};

/**
 * The container's own env, in order, after expansion. As the kubelet does it, `$(VAR)` sees
 * only the variables this container defined before it — never the runtime's PATH, HOSTNAME
 * or HOME, which the caller lays underneath (`{ ...base, ...own }`). `command` and `args`
 * expand against the result, the whole own env.
 */
export function containerEnv(c: Container, where: string, f: DownwardFields): Record<string, string> {
  const env: Record<string, string> = {};
  (c.env ?? []).forEach((e, i) => {
    const at = `${where}.env[${i}]`;
    if (typeof e.name !== 'string' || e.name === '') throw new WeftError(ErrorCodes.SANDBOX, `${at}.name: must be a non-empty string`, { field: `${at}.name` });
    if (e.valueFrom?.fieldRef) env[e.name] = fieldRef(e.valueFrom.fieldRef.fieldPath, f, at);
    else if (e.valueFrom?.resourceFieldRef) env[e.name] = RESOURCE_PLACEHOLDER[e.valueFrom.resourceFieldRef.resource] ?? '0';
    else if (e.valueFrom) throw new WeftError(ErrorCodes.SANDBOX, `${at}.valueFrom: only fieldRef and resourceFieldRef are emulated`, { field: `${at}.valueFrom` });
    else env[e.name] = expand(e.value ?? '', env);
  });
  return env;
}
