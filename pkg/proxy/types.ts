// What one accepted connection carries through its life: decided once at accept, then read
// by the opaque relay or the HTTP/1 session.
import type { Socket } from 'node:net';
import type { ConnMetrics, Direction } from '../metrics/proxy.js';
import type { Authorizer } from '../policy/types.js';

export interface Endpoint {
  address: string;
  port: number;
}

export type AccessLog = (rec: Record<string, unknown>) => void;

export interface ConnContext {
  readonly id: number;
  readonly direction: Direction;
  readonly src: Endpoint;
  readonly dst: Endpoint;
  readonly metrics: ConnMetrics;
  readonly authorizer: Authorizer;
  /** Decide each HTTP request (authorizer.needsHttp was true for this port). */
  readonly perRequestAuthz: boolean;
  readonly countAuthz: (allow: boolean, policy: string | undefined) => void;
  readonly accessLog: AccessLog | null;
  readonly idleMs: number;
  readonly started: number;
  /** The policy that decided the connection (L4), for the access log only; never sent to a client. */
  policy?: string | undefined;
}

/** Switches a connection to opaque relaying (after an HTTP upgrade, or instead of HTTP). */
export type StartOpaque = (down: Socket, up: Socket, head: Buffer | null, tail: Buffer | null) => void;
