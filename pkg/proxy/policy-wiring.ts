// Where the proxy's Authorizer comes from; every source's denies are logged (rate-limited)
// with the deciding policy and rule (pkg/policy/decision-log.ts). The policy file source lives in pkg/policy and is
// loaded by name only when --policy-file is given, so the proxy starts without it otherwise.
import { readFile } from 'node:fs/promises';
import { DEFAULT_TOKEN_FILE, type PodInfo } from '../api/proxy-flags.js';
import { ErrorCodes, WeftError } from '../errors/index.js';
import type { Logger } from '../log/index.js';
import type { Registry } from '../metrics/registry.js';
import { withDenyLog } from '../policy/decision-log.js';
import { allowAll, type Authorizer } from '../policy/types.js';

export interface PolicySource {
  authorizer: Authorizer;
  /** For GET /config: where policy comes from. */
  description: string;
  close(): void | Promise<void>;
}

type WatchPolicyFile = (
  path: string,
  pod: { namespace?: string | undefined; name?: string | undefined; labels?: Readonly<Record<string, string>>; defaultInbound?: 'allow' | 'deny' },
  log: Logger,
  opts: { registry?: Registry },
) => Promise<{ authorizer: Authorizer; close(): void | Promise<void> }>;

/** The export names the policy file source may use (the first present wins). */
const WATCH_EXPORTS = ['watchPolicyFile'] as const;

export async function policySource(opts: {
  policyFile?: string | undefined;
  controller?: string | undefined;
  /** --token-file: the projected token (audience "weft") sent to the controller, re-read at each connect. */
  tokenFile?: string | undefined;
  /** --controller-ca FILE: the CA bundle that signed the controller's certificate, re-read at each connect. */
  controllerCa?: string | undefined;
  /** --controller-ca-pem: the same bundle as text (env WEFT_CONTROLLER_CA_PEM, set by the injector). */
  controllerCaPem?: string | undefined;
  defaultInboundPolicy: 'allow' | 'deny';
  pod: PodInfo;
  /** The pod's labels at admission (--pod-labels); a file policy's matchLabels selects on them. */
  podLabels?: Readonly<Record<string, string>> | undefined;
  log: Logger;
  registry?: Registry;
}): Promise<PolicySource> {
  const self = { namespace: opts.pod.namespace, name: opts.pod.name, labels: opts.podLabels ?? {}, defaultInbound: opts.defaultInboundPolicy };
  if (opts.policyFile) {
    let mod: Record<string, unknown>;
    try {
      const spec = '../policy/file-source.js';
      mod = (await import(spec)) as Record<string, unknown>;
    } catch (e) {
      throw new WeftError(ErrorCodes.BAD_FLAG, `--policy-file: this build has no policy file source (pkg/policy/file-source: ${(e as Error).message})`, { field: '--policy-file', cause: e });
    }
    const name = WATCH_EXPORTS.find((n) => typeof mod[n] === 'function');
    if (!name) throw new WeftError(ErrorCodes.BAD_FLAG, `--policy-file: pkg/policy/file-source exports none of ${WATCH_EXPORTS.join(', ')}`, { field: '--policy-file' });
    const watch = mod[name] as WatchPolicyFile;
    const w = await watch(opts.policyFile, self, opts.log, opts.registry ? { registry: opts.registry } : {});
    return { authorizer: withDenyLog(w.authorizer, opts.log), description: `file ${opts.policyFile}`, close: () => w.close() };
  }
  if (opts.controller) {
    let mod: Record<string, unknown>;
    try {
      const spec = '../policy/controller-source.js';
      mod = (await import(spec)) as Record<string, unknown>;
    } catch (e) {
      throw new WeftError(ErrorCodes.BAD_FLAG, `--controller: this build has no controller policy source (pkg/policy/controller-source: ${(e as Error).message})`, { field: '--controller', cause: e });
    }
    if (typeof mod.subscribePolicy !== 'function') throw new WeftError(ErrorCodes.BAD_FLAG, '--controller: pkg/policy/controller-source does not export subscribePolicy', { field: '--controller' });
    type SubscribeOpts = { registry?: Registry; ca?: string | (() => Promise<string>) };
    const subscribe = mod.subscribePolicy as (url: string, tokenPath: string, pod: Parameters<WatchPolicyFile>[1], log: Logger, o: SubscribeOpts) => ReturnType<WatchPolicyFile>;
    const so: SubscribeOpts = opts.registry ? { registry: opts.registry } : {};
    const ca = await controllerCa(opts.controllerCa, opts.controllerCaPem);
    if (ca) so.ca = ca;
    const s = await subscribe(opts.controller, opts.tokenFile ?? DEFAULT_TOKEN_FILE, self, opts.log, so);
    return { authorizer: withDenyLog(s.authorizer, opts.log), description: `controller ${new URL(opts.controller).host}`, close: () => s.close() };
  }
  return { authorizer: withDenyLog(defaultAuthorizer(opts.defaultInboundPolicy), opts.log), description: `default-inbound-policy ${opts.defaultInboundPolicy}`, close: () => {} };
}

/** The CA for the controller stream: PEM text as given, or a file checked now (a typo fails
 * at start-up, naming the flag) and re-read at each connect so a rotated bundle is used. */
async function controllerCa(file: string | undefined, pem: string | undefined): Promise<string | (() => Promise<string>) | undefined> {
  if (pem !== undefined) return pem;
  if (file === undefined) return undefined;
  const read = () => readFile(file, 'utf8');
  let text: string;
  try {
    text = await read();
  } catch (e) {
    throw new WeftError(ErrorCodes.BAD_FLAG, `--controller-ca: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { field: '--controller-ca', cause: e });
  }
  if (!text.includes('-----BEGIN CERTIFICATE-----')) throw new WeftError(ErrorCodes.BAD_FLAG, `--controller-ca: ${file} holds no PEM certificate ("-----BEGIN CERTIFICATE-----")`, { field: '--controller-ca' });
  return read;
}

/** No policy selects the pod: inbound follows --default-inbound-policy, outbound is allowed. */
export function defaultAuthorizer(inbound: 'allow' | 'deny'): Authorizer {
  if (inbound === 'allow') return allowAll;
  return {
    decide: (r) => (r.direction === 'inbound' ? { allow: false, reason: 'default-deny' } : { allow: true, reason: 'default-allow' }),
    needsHttp: () => false,
  };
}
