// The AdmissionReview (admission.k8s.io/v1) codec: request in, response out, around the pure
// injector. No I/O here, so it is tested without a server and shared by the bench.
import { z } from 'zod';
import type { KubeEvent, Pod } from '../api/k8s-types.js';
import { parsePod } from '../api/pod-schema.js';
import { ErrorCodes, WeftError, describeZodError, isWeftError } from '../errors/index.js';
import { injectPod, isSkip, skipEvent, type InjectConfig } from '../inject/index.js';
import type { AdmissionResult } from '../metrics/injector.js';

export const ADMISSION_API = 'admission.k8s.io/v1' as const;

const ReviewSchema = z.object({
  apiVersion: z.literal(ADMISSION_API, { error: `must be ${ADMISSION_API}` }),
  kind: z.literal('AdmissionReview', { error: 'must be AdmissionReview' }),
  request: z.object(
    {
      uid: z.string({ error: 'must be a string' }).min(1, 'must not be empty'),
      kind: z.object({ group: z.string(), version: z.string(), kind: z.string() }, { error: 'must be {group, version, kind}' }),
      namespace: z.string().optional(),
      operation: z.string({ error: 'must be a string' }),
      object: z.unknown().optional(),
      dryRun: z.boolean().optional(),
    },
    { error: 'must be an object' },
  ),
});

export interface AdmissionStatus {
  code: number;
  message: string;
  reason?: string;
}

export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  patchType?: 'JSONPatch';
  patch?: string;
  status?: AdmissionStatus;
}

export interface AdmissionOutcome {
  /** HTTP status: 200 with a response, or 400 for a malformed review. */
  httpStatus: 200 | 400;
  body: { apiVersion: typeof ADMISSION_API; kind: 'AdmissionReview'; response: AdmissionResponse } | { error: string; message: string };
  result: AdmissionResult;
  /** Skip reason, refusal field, or '' (metric label). */
  reason: string;
  /** Log fields. */
  ns?: string;
  pod?: string;
  message?: string;
  /** The Event to record for a skipped pod. */
  event?: KubeEvent;
}

const answer = (response: AdmissionResponse) => ({ apiVersion: ADMISSION_API, kind: 'AdmissionReview' as const, response });

export function malformed(message: string): AdmissionOutcome {
  return { httpStatus: 400, body: { error: 'Bad Request', message: `malformed AdmissionReview: ${message}` }, result: 'error', reason: 'malformed', message };
}

/** Decide one AdmissionReview body (already JSON-parsed). Never throws. */
export function review(body: unknown, config: InjectConfig): AdmissionOutcome {
  const parsed = ReviewSchema.safeParse(body);
  if (!parsed.success) return malformed(describeZodError(parsed.error));
  const req = parsed.data.request;
  const uid = req.uid;
  const isPod = req.kind.group === '' && req.kind.version === 'v1' && req.kind.kind === 'Pod';
  if (!isPod || req.operation !== 'CREATE') {
    return { httpStatus: 200, body: answer({ uid, allowed: true }), result: 'skipped', reason: isPod ? 'not-create' : 'not-a-pod' };
  }
  let pod: Pod;
  try {
    pod = parsePod(req.object, 'request.object');
  } catch (e) {
    return malformed((e as Error).message);
  }
  const ns = req.namespace || pod.metadata?.namespace || 'default';
  const podName = pod.metadata?.name || pod.metadata?.generateName || '';
  try {
    const r = injectPod(pod, { name: ns }, config);
    if (isSkip(r)) {
      // A dryRun review must have no side effects (the webhook declares NoneOnDryRun).
      const event = req.dryRun === true ? {} : { event: skipEvent(pod, ns, r) };
      return { httpStatus: 200, body: answer({ uid, allowed: true }), result: 'skipped', reason: r.skip, ns, pod: podName, message: r.message, ...event };
    }
    const patch = Buffer.from(JSON.stringify(r.patch)).toString('base64');
    return { httpStatus: 200, body: answer({ uid, allowed: true, patchType: 'JSONPatch', patch }), result: 'injected', reason: '', ns, pod: podName, message: r.marker };
  } catch (e) {
    if (isWeftError(e) && e.code === ErrorCodes.BAD_ANNOTATION) {
      const status = { code: 400, reason: 'BadRequest', message: `weft: ${e.message}` };
      return { httpStatus: 200, body: answer({ uid, allowed: false, status }), result: 'refused', reason: e.field ?? 'annotation', ns, pod: podName, message: e.message };
    }
    const message = e instanceof WeftError ? e.message : `internal error: ${(e as Error)?.message ?? String(e)}`;
    return { httpStatus: 200, body: answer({ uid, allowed: false, status: { code: 500, message: `weft: ${message}` } }), result: 'error', reason: 'internal', ns, pod: podName, message };
  }
}
