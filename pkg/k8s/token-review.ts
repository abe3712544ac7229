// TokenReview (authentication.k8s.io/v1): the API server tells us whose token this is.
// A projected service-account token bound to a pod carries the pod's name in
// `user.extra["authentication.kubernetes.io/pod-name"]`.
import { statusMessage, type KubeHttp } from './client.js';

export const POD_NAME_EXTRA = 'authentication.kubernetes.io/pod-name';
export const POD_UID_EXTRA = 'authentication.kubernetes.io/pod-uid';

export interface TokenReviewResult {
  authenticated: boolean;
  username?: string;
  extra?: Record<string, string[]>;
  /** The audiences the token is valid for, among those asked. */
  audiences?: string[];
  error?: string;
}

export async function reviewToken(http: KubeHttp, token: string, audiences: string[]): Promise<TokenReviewResult> {
  const r = await http.request<{ status?: { authenticated?: boolean; user?: { username?: string; extra?: Record<string, string[]> }; audiences?: string[]; error?: string } }>(
    'POST',
    '/apis/authentication.k8s.io/v1/tokenreviews',
    { body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token, audiences } } },
  );
  if (r.status !== 201 && r.status !== 200) throw new Error(`TokenReview: ${statusMessage(r)}`);
  const s = r.body.status ?? {};
  const out: TokenReviewResult = { authenticated: s.authenticated === true };
  if (s.user?.username) out.username = s.user.username;
  if (s.user?.extra) out.extra = s.user.extra;
  if (s.audiences) out.audiences = s.audiences;
  if (s.error) out.error = s.error;
  return out;
}

/** The `exp` of a JWT (ms since the epoch), read without verifying: only after TokenReview
 * accepted the token, to know how long that answer holds. undefined when there is none. */
export function tokenExpiry(token: string): number | undefined {
  const payload = token.split('.')[1];
  if (!payload) return undefined;
  try {
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { exp?: unknown };
    return typeof claims.exp === 'number' && Number.isFinite(claims.exp) ? claims.exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}
