// An Authorizer whose policy can be swapped while the proxy holds on to it: sources update
// it when a new policy arrives; the proxy keeps calling the same object.
import { createAuthorizer, type CompiledAuthorizer, type CompiledPolicy, type DefaultInbound, type PeerResolver } from './eval.js';
import type { AuthzDecision, AuthzRequest, Authorizer } from './types.js';

export class LiveAuthorizer implements Authorizer {
  #current: CompiledAuthorizer;

  constructor(defaultInbound: DefaultInbound) {
    this.#current = createAuthorizer([], { defaultInbound });
  }

  get current(): CompiledAuthorizer {
    return this.#current;
  }

  set(policies: readonly CompiledPolicy[], defaultInbound: DefaultInbound, peers?: PeerResolver): void {
    this.#current = createAuthorizer(policies, peers ? { defaultInbound, peers } : { defaultInbound });
  }

  decide(req: AuthzRequest): AuthzDecision {
    return this.#current.decide(req);
  }

  needsHttp(direction: AuthzRequest['direction'], port: number): boolean {
    return this.#current.needsHttp(direction, port);
  }
}

export interface PolicySource {
  authorizer: Authorizer;
  close(): Promise<void>;
}

/** What a source is told about its pod. The contract is {namespace, name?, labels,
 * defaultInbound}; callers that only know part of it (no labels, `defaultInboundPolicy`)
 * are accepted too: missing labels match only selector-less policies. */
export interface SourceSelf {
  namespace?: string | undefined;
  name?: string | undefined;
  labels?: Record<string, string> | undefined;
  defaultInbound?: DefaultInbound | undefined;
  defaultInboundPolicy?: DefaultInbound | undefined;
}

export function normalizeSelf(s: SourceSelf): { namespace: string; name?: string; labels: Record<string, string>; defaultInbound: DefaultInbound } {
  const out: { namespace: string; name?: string; labels: Record<string, string>; defaultInbound: DefaultInbound } = {
    namespace: s.namespace || 'default',
    labels: s.labels ?? {},
    defaultInbound: s.defaultInbound ?? s.defaultInboundPolicy ?? 'allow',
  };
  if (s.name) out.name = s.name;
  return out;
}
