// The shape every benchmark arm shares: how the client reaches the server through it, and which
// proxy processes it runs (for CPU and RSS accounting).
import type { SandboxPod } from '../../sandbox/index.js';

export interface Endpoint {
  host: string;
  port: number;
}

/** Where the client pod dials for each workload when this arm is active. */
export interface Targets {
  echo: Endpoint;
  sink: Endpoint;
  http: Endpoint;
  /** The HTTP target through a client-side and a server-side proxy, when the arm has both. */
  http2hop?: Endpoint;
}

export interface ProxyProcess {
  /** `client-side` or `server-side`. */
  role: 'client-side' | 'server-side';
  pid: number;
}

export interface ReadyArm {
  client: SandboxPod;
  targets: Targets;
  /** One-hop runs account only the client-side proxy; two-hop HTTP runs account all of them. */
  proxies: ProxyProcess[];
  /** Stops what setup started outside the sandbox's pods (the sandbox removes the pods). */
  stop(): Promise<void>;
}

export interface ArmSpec {
  name: string;
  /** One sentence: what sits between client and server. */
  description: string;
  /** Proxies on the one-hop paths (ping-pong, rt/s, conn/s, bulk, HTTP one-hop). */
  hops: number;
  setup(): Promise<ReadyArm | { skipped: string }>;
}

export const ECHO_PORT = 7000;
export const SINK_PORT = 7001;
export const HTTP_PORT = 8080;
/** CPU pinning of every arm: see docs/performance.md. */
export const CLIENT_CPU = 0;
export const SERVER_CPU = 1;
export const PROXY_CPU = 1;
