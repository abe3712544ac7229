// The sidecar's fast path to its config, without importing zod. zod is the source of truth
// for the proxy's flags (proxy-config.ts: the schema, its errors, --help), but importing it
// costs every meshed pod ~16 MiB of RSS and ~50 ms of startup — about a quarter of an idle
// proxy — while the injector's flags are plain: numbers, lists, enums, two JSON objects.
// This parser accepts only that plain form and returns the very object the schema would;
// anything else (--help, an odd spelling, any invalid value) returns null and cmd/proxy asks
// the schema, which then gives the error. proxy-fast.test.ts checks both agree on the
// injector's real output and on generated flag sets, as init-fast.ts does for `weft init`.
import { parseArgs } from 'node:util';
import { envName } from '../cli/flag-specs.js';
import { LOG_LEVELS } from '../log/levels.js';
import type { AppProbe, ProxyFlags } from './proxy-config.js';
import { DEFAULT_OPAQUE_PORTS, DEFAULT_TOKEN_FILE, PROBE_KINDS, buildProxyConfig, podInfoFromEnv, proxyFlagSpecs, type ProxyConfig } from './proxy-flags.js';

/** Thrown inside the parser: this input is for zod to judge. */
class NotPlain extends Error {}
const notPlain = (): never => {
  throw new NotPlain();
};

const camel = (flag: string): string => flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const onlyKeys = (o: Record<string, unknown>, allowed: readonly string[]): void => {
  for (const k of Object.keys(o)) if (!allowed.includes(k)) notPlain();
};

const intIn = (s: string, min: number, max: number): number => {
  const n = /^\d{1,15}$/.test(s) ? Number(s) : Number.NaN;
  return Number.isSafeInteger(n) && n >= min && n <= max ? n : notPlain();
};
const oneOf = <T extends string>(s: string, allowed: readonly T[]): T => ((allowed as readonly string[]).includes(s) ? (s as T) : notPlain());
const portNumber = (v: unknown): number => (typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= 65535 ? v : notPlain());
const str = (v: unknown): string => (typeof v === 'string' ? v : notPlain());

function portList(s: string): number[] {
  const out: number[] = [];
  for (const part of s.split(',')) {
    const p = part.trim();
    if (p !== '') out.push(intIn(p, 1, 65535));
  }
  return out;
}

function probe(v: unknown): AppProbe {
  if (!isObj(v)) return notPlain();
  onlyKeys(v, ['httpGet', 'tcpSocket', 'grpc', 'timeoutSeconds']);
  const kinds = ['httpGet', 'tcpSocket', 'grpc'].filter((k) => k in v);
  if (kinds.length !== 1) return notPlain();
  const t = v.timeoutSeconds === undefined ? {} : typeof v.timeoutSeconds === 'number' && v.timeoutSeconds > 0 && Number.isFinite(v.timeoutSeconds) ? { timeoutSeconds: v.timeoutSeconds } : notPlain();
  const inner = v[kinds[0]!];
  if (!isObj(inner)) return notPlain();
  if (kinds[0] === 'tcpSocket') {
    onlyKeys(inner, ['port', 'host']);
    return { tcpSocket: { port: portNumber(inner.port), ...(inner.host === undefined ? {} : { host: str(inner.host) }) }, ...t };
  }
  if (kinds[0] === 'grpc') {
    onlyKeys(inner, ['port', 'service']);
    return { grpc: { port: portNumber(inner.port), service: inner.service === undefined ? '' : str(inner.service) }, ...t };
  }
  onlyKeys(inner, ['port', 'path', 'scheme', 'host', 'httpHeaders']);
  const path = inner.path === undefined ? '/' : str(inner.path);
  if (!path.startsWith('/')) notPlain();
  const headers = inner.httpHeaders === undefined ? [] : Array.isArray(inner.httpHeaders) ? inner.httpHeaders : notPlain();
  return {
    httpGet: {
      port: portNumber(inner.port),
      path,
      scheme: inner.scheme === undefined ? 'HTTP' : oneOf(str(inner.scheme), ['HTTP', 'HTTPS'] as const),
      ...(inner.host === undefined ? {} : { host: str(inner.host) }),
      httpHeaders: headers.map((h: unknown) => {
        if (!isObj(h)) return notPlain();
        onlyKeys(h, ['name', 'value']);
        const name = str(h.name);
        return name.length > 0 ? { name, value: str(h.value) } : notPlain();
      }),
    },
    ...t,
  };
}

const PROBE_KEY = new RegExp(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?/(${PROBE_KINDS.join('|')})$`);

function appProbes(s: string): ProxyFlags['appProbes'] {
  const raw: unknown = JSON.parse(s);
  if (!isObj(raw)) return notPlain();
  const out: Record<string, AppProbe> = {};
  for (const [k, v] of Object.entries(raw)) {
    if (!PROBE_KEY.test(k)) notPlain();
    out[k] = probe(v);
  }
  return out;
}

function podLabels(s: string): Readonly<Record<string, string>> {
  const raw: unknown = JSON.parse(s);
  if (!isObj(raw)) return notPlain();
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(raw)) out[k === '' ? notPlain() : k] = str(v);
  return Object.freeze(out);
}

// What z.url() with an http(s) protocol accepts, narrowed to plain URLs (else: ask zod).
const PLAIN_URL = /^https?:\/\/[A-Za-z0-9.-]+(:\d{1,5})?(\/[A-Za-z0-9._~/%-]*)?$/;

/** The config parseProxyConfig would give for these flags and env, or null when zod must decide. */
export function fastProxyConfig(argv: readonly string[], env: NodeJS.ProcessEnv): Readonly<ProxyConfig> | null {
  try {
    const options = Object.fromEntries(Object.entries(proxyFlagSpecs).map(([k, v]) => [k, { type: v.type }]));
    const { values } = parseArgs({ args: [...argv], options: { ...options, help: { type: 'boolean', short: 'h' } }, strict: true, allowPositionals: false });
    if (values.help) return null;
    // Flags win over env; an empty env var is unset (pkg/cli/flags.ts reads them the same way).
    const raw: Record<string, string | boolean | undefined> = {};
    for (const [name, spec] of Object.entries(proxyFlagSpecs)) {
      const v = (values as Record<string, string | boolean | undefined>)[name];
      const e = env[envName(name)];
      let value: string | boolean | undefined = v !== undefined ? v : e !== undefined && e !== '' ? e : undefined;
      if (spec.type === 'boolean' && typeof value === 'string') value = /^(1|true|yes)$/i.test(value) ? true : /^(0|false|no)$/i.test(value) ? false : notPlain();
      raw[camel(name)] = value;
    }
    const text = (k: string): string | undefined => {
      const v = raw[k];
      return typeof v === 'string' ? v : v === undefined ? undefined : notPlain();
    };
    const get = <T>(k: string, parse: (s: string) => T, dflt: T): T => {
      const v = text(k);
      return v === undefined ? dflt : parse(v);
    };
    const optional = <K extends string>(k: K, check: (s: string) => boolean): { [P in K]?: string } => {
      const v = text(k);
      if (v === undefined) return {};
      return check(v) ? ({ [k]: v } as { [P in K]?: string }) : notPlain();
    };
    const flags = {
      mode: get('mode', (s) => oneOf(s, ['tproxy', 'ebpf', 'none'] as const), 'tproxy' as const),
      inboundPort: get('inboundPort', (s) => intIn(s, 1, 65535), 15006),
      outboundPort: get('outboundPort', (s) => intIn(s, 1, 65535), 15001),
      adminPort: get('adminPort', (s) => intIn(s, 1, 65535), 15020),
      proxyMark: get('proxyMark', (s) => intIn(s, 0, 4294967294), 0),
      connectTimeoutMs: get('connectTimeoutMs', (s) => intIn(s, 1, Number.MAX_SAFE_INTEGER), 5000),
      idleTimeoutMs: get('idleTimeoutMs', (s) => intIn(s, 0, Number.MAX_SAFE_INTEGER), 3_600_000),
      detectTimeoutMs: get('detectTimeoutMs', (s) => intIn(s, 0, Number.MAX_SAFE_INTEGER), 100),
      opaquePorts: get('opaquePorts', portList, [...DEFAULT_OPAQUE_PORTS]),
      defaultInboundPolicy: get('defaultInboundPolicy', (s) => oneOf(s, ['allow', 'deny'] as const), 'allow' as const),
      ...optional('policyFile', (s) => s.length > 0),
      ...optional('controller', (s) => PLAIN_URL.test(s)),
      ...optional('controllerCa', (s) => s.length > 0),
      ...optional('controllerCaPem', (s) => s.includes('-----BEGIN CERTIFICATE-----')),
      tokenFile: get('tokenFile', (s) => (s.length > 0 ? s : notPlain()), DEFAULT_TOKEN_FILE),
      logLevel: get('logLevel', (s) => oneOf(s, LOG_LEVELS), 'info' as const),
      accessLog: raw.accessLog === undefined ? false : raw.accessLog === true ? true : raw.accessLog === false ? false : notPlain(),
      drainGraceMs: get('drainGraceMs', (s) => intIn(s, 0, Number.MAX_SAFE_INTEGER), 20_000),
      relay: get('relay', (s) => oneOf(s, ['native', 'js'] as const), 'native' as const),
      appProbes: get('appProbes', appProbes, {}),
      podLabels: get('podLabels', podLabels, Object.freeze({})),
    } satisfies ProxyFlags;
    // The schema's cross-field rules: break one and zod names it.
    if (new Set([flags.inboundPort, flags.outboundPort, flags.adminPort]).size !== 3) return null;
    const ca = flags.controllerCa !== undefined || flags.controllerCaPem !== undefined;
    if (ca && !flags.controller?.startsWith('https:')) return null;
    if (flags.controllerCa !== undefined && flags.controllerCaPem !== undefined) return null;
    return buildProxyConfig(Object.freeze(flags), podInfoFromEnv(env));
  } catch (e) {
    if (e instanceof NotPlain || e instanceof SyntaxError || (e as NodeJS.ErrnoException).code?.startsWith('ERR_PARSE_ARGS')) return null;
    throw e;
  }
}
