// Denies in the proxy log: which policy and rule refused whom (policy names go to logs and
// metrics only, never to the client). Info level, at most `burst` lines per `windowMs`, so a
// client hammering a denied port cannot flood the log; what was left out is counted in the
// next line (`suppressed`). Wraps any Authorizer; allows are not logged (the access log has
// them).
import type { Logger } from '../log/index.js';
import type { AuthzDecision, AuthzRequest, Authorizer } from './types.js';

export interface DecisionLogOptions {
  burst?: number;
  windowMs?: number;
  now?: () => number;
}

const MAX_PATH = 200;

export function withDenyLog(inner: Authorizer, log: Logger, opts: DecisionLogOptions = {}): Authorizer {
  const burst = opts.burst ?? 10;
  const windowMs = opts.windowMs ?? 1000;
  const now = opts.now ?? Date.now;
  let windowStart = -Infinity;
  let inWindow = 0;
  let suppressed = 0;
  const record = (req: AuthzRequest, d: AuthzDecision) => {
    const t = now();
    if (t - windowStart >= windowMs) {
      windowStart = t;
      inWindow = 0;
    }
    if (inWindow >= burst) {
      suppressed++;
      return;
    }
    inWindow++;
    const line: Record<string, unknown> = {
      dir: req.direction,
      src: `${req.source.address}:${req.source.port}`,
      dst: `${req.destination.address}:${req.destination.port}`,
      code: 'policy_denied',
      reason: d.reason,
    };
    if (d.policy !== undefined) line.policy = d.policy;
    if (d.rule !== undefined) line.rule = d.rule;
    if (req.http) {
      line.method = req.http.method;
      line.path = req.http.path.length > MAX_PATH ? `${req.http.path.slice(0, MAX_PATH)}…` : req.http.path;
    }
    if (suppressed > 0) {
      line.suppressed = suppressed;
      suppressed = 0;
    }
    log.info(line, d.policy !== undefined ? `denied by policy ${d.policy} rule ${d.rule ?? '-'}` : `denied: ${d.reason}`);
  };
  return {
    decide(req) {
      const d = inner.decide(req);
      if (!d.allow) record(req, d);
      return d;
    },
    needsHttp: (direction, port) => inner.needsHttp(direction, port),
  };
}
