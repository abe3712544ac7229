// The contract between the proxy and policy evaluation. The proxy asks `decide` once per
// connection (L4) and, for HTTP, once per request; policy code never does I/O here.

export interface AuthzPeer {
  address: string;
  port: number;
}

export interface AuthzRequest {
  direction: 'inbound' | 'outbound';
  /** The connecting peer (for inbound: the client). */
  source: AuthzPeer;
  /** The original destination (for inbound: this pod's address and the app's port). */
  destination: AuthzPeer;
  /** Present only for HTTP requests; absent for the L4 (connection) decision. */
  http?: { method: string; path: string };
}

export type AuthzReason = 'default-allow' | 'default-deny' | 'deny-policy' | 'allow-policy' | 'no-allow-match';

export interface AuthzDecision {
  allow: boolean;
  reason: AuthzReason;
  /** namespace/name of the deciding policy (for logs and metrics; never sent to a client). */
  policy?: string;
  /** Index of the matching rule within that policy. */
  rule?: number;
}

export interface Authorizer {
  decide(req: AuthzRequest): AuthzDecision;
  /** True when some policy for this destination port has HTTP fields (methods/paths): the
   * proxy must then parse HTTP and decide per request rather than allow the connection. */
  needsHttp(direction: AuthzRequest['direction'], port: number): boolean;
}

/** Allows everything: used when no policy source is configured. */
export const allowAll: Authorizer = {
  decide: () => ({ allow: true, reason: 'default-allow' }),
  needsHttp: () => false,
};
