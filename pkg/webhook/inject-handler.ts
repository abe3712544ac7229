// POST /inject from the body text to the answer: JSON parse (refusing prototype-poisoning
// keys as fastify's parser does), review, metrics, the log line, the skip Event. One function
// for both ways a review arrives: the fastify route (app.inject, and any request the fast path
// passes on) and the fast path, a plain node handler in front of fastify on the HTTPS server
// that takes every `POST /inject` with a JSON body. At thousands of reviews a second
// fastify's per-request machinery (request/reply objects, child logger, hooks, content-type
// parsing) cost as much as the review itself.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { KubeEvent } from '../api/k8s-types.js';
import type { InjectConfig } from '../inject/index.js';
import type { Logger } from '../log/index.js';
import type { InjectorMetrics } from '../metrics/injector.js';
import { malformed, review, type AdmissionOutcome } from './admission.js';

export interface InjectHandlerOptions {
  config: InjectConfig;
  metrics: InjectorMetrics;
  logger: Logger;
  recordEvent: (event: KubeEvent) => void;
}

export interface InjectAnswer {
  status: number;
  payload: string;
}

// The patterns secure-json-parse (fastify's JSON parser) checks before looking closer: a
// `__proto__` key, or a `constructor` key (poisoning only with a `prototype` under it).
const PROTO_RE = /"(?:_|\\u005[Ff])(?:_|\\u005[Ff])(?:p|\\u0070)(?:r|\\u0072)(?:o|\\u006[Ff])(?:t|\\u0074)(?:o|\\u006[Ff])(?:_|\\u005[Ff])(?:_|\\u005[Ff])"\s*:/;
const CONSTRUCTOR_RE = /"(?:c|\\u0063)(?:o|\\u006[Ff])(?:n|\\u006[Ee])(?:s|\\u0073)(?:t|\\u0074)(?:r|\\u0072)(?:u|\\u0075)(?:c|\\u0063)(?:t|\\u0074)(?:o|\\u006[Ff])(?:r|\\u0072)"\s*:/;

function poisoned(v: unknown): string | undefined {
  const stack = [v];
  while (stack.length) {
    const o = stack.pop();
    if (typeof o !== 'object' || o === null) continue;
    if (Object.hasOwn(o, '__proto__')) return 'a "__proto__" key';
    const c = (o as Record<string, unknown>).constructor;
    if (Object.hasOwn(o, 'constructor') && typeof c === 'object' && c !== null && Object.hasOwn(c, 'prototype')) return 'a "constructor.prototype" key';
    stack.push(...Object.values(o));
  }
  return undefined;
}

/** JSON text → the parsed body, or the 400 outcome. */
function parseBody(text: string): { body: unknown } | { outcome: AdmissionOutcome } {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (e) {
    return { outcome: malformed(`body is not valid JSON: ${(e as Error).message}`) };
  }
  if (PROTO_RE.test(text) || CONSTRUCTOR_RE.test(text)) {
    const why = poisoned(body);
    if (why) return { outcome: malformed(`body is not valid JSON: it has ${why}`) };
  }
  return { body };
}

export function answerInject(text: string, o: InjectHandlerOptions): InjectAnswer {
  const started = process.hrtime.bigint();
  const parsed = parseBody(text);
  const out = 'outcome' in parsed ? parsed.outcome : review(parsed.body, o.config);
  o.metrics.review(out.result, out.reason, Number(process.hrtime.bigint() - started) / 1e9);
  if (out.httpStatus === 400) o.logger.warn({ result: out.result, msg400: out.message }, 'malformed AdmissionReview');
  else if (out.pod !== undefined && (out.result === 'error' || o.logger.isLevelEnabled('info'))) {
    const fields = { ns: out.ns, pod: out.pod, result: out.result, reason: out.reason || undefined, code: out.result === 'refused' ? 'WEFT_ERR_BAD_ANNOTATION' : undefined };
    if (out.result === 'error') o.logger.error(fields, out.message ?? 'injection failed');
    else o.logger.info(fields, out.message ?? out.result);
  }
  if (out.event) o.recordEvent(out.event);
  return { status: out.httpStatus, payload: JSON.stringify(out.body) };
}

export interface FastPathState {
  /** True once fastify is closing: answer 503 and close, as fastify's return503OnClosing does. */
  closing: () => boolean;
  /** True during the controller's shutdown delay: answer, and close the connection. */
  draining: () => boolean;
  bodyLimit: number;
}

const JSON_TYPE = 'application/json; charset=utf-8';
const UNAVAILABLE = '{"error":"Service Unavailable","message":"Service Unavailable","statusCode":503}';

/** Whether the fast path takes this request (else fastify does, with its own errors). */
export function isFastInject(req: IncomingMessage): boolean {
  if (req.method !== 'POST' || req.url !== '/inject') return false;
  const type = req.headers['content-type'];
  return type !== undefined && /^application\/json\s*(;|$)/i.test(type);
}

export function fastInject(req: IncomingMessage, res: ServerResponse, o: InjectHandlerOptions, s: FastPathState): void {
  const send = (status: number, payload: string, close: boolean) => {
    const headers: Record<string, string | number> = { 'content-type': JSON_TYPE, 'content-length': Buffer.byteLength(payload) };
    if (close) headers.connection = 'close';
    res.writeHead(status, headers);
    res.end(payload);
  };
  if (s.closing()) {
    req.resume();
    return send(503, UNAVAILABLE, true);
  }
  const tooLarge = () => {
    o.metrics.review('error', 'malformed', 0);
    // Connection: close ends the socket once the answer is flushed; the rest of the body is dropped.
    send(413, JSON.stringify({ statusCode: 413, code: 'FST_ERR_CTP_BODY_TOO_LARGE', error: 'Payload Too Large', message: 'Request body is too large' }), true);
    req.resume();
  };
  const declared = Number(req.headers['content-length']);
  if (declared > s.bodyLimit) return tooLarge();
  const chunks: Buffer[] = [];
  let size = 0;
  req.on('data', (c: Buffer) => {
    size += c.length;
    if (size > s.bodyLimit) {
      req.removeAllListeners('data');
      tooLarge();
    } else chunks.push(c);
  });
  req.on('end', () => {
    if (size > s.bodyLimit) return;
    const text = chunks.length === 1 ? (chunks[0] as Buffer).toString('utf8') : Buffer.concat(chunks).toString('utf8');
    let a: InjectAnswer;
    try {
      a = answerInject(text, o);
    } catch (e) {
      o.logger.error({ err: e }, 'request failed');
      a = { status: 500, payload: JSON.stringify({ error: 'Internal Server Error', message: (e as Error).message }) };
    }
    send(a.status, a.payload, s.draining());
  });
  req.on('error', () => req.destroy());
}
