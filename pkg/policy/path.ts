// HTTP request-target → the path policy rules are matched against. Pure. Without this a
// DENY of "/admin*" is bypassed by "/x/../admin", "//admin", "/%61dmin", "/./admin" or
// "GET http://host/admin" (absolute-form), all of which the app serves as /admin.
//
// Like Istio's default normalization (Envoy normalize_path + merge_slashes):
// 1. absolute-form (`http://host:port/p?q`) → its path; the query and fragment are dropped;
// 2. %XX of unreserved characters (A-Z a-z 0-9 - . _ ~) is decoded, every other %XX is kept
//    with upper-case hex (so "%2e%2E" becomes "..", and is then removed as a dot segment);
// 3. runs of "/" are merged and "." / ".." segments removed (RFC 3986 5.2.4).
// A path no normalization can make unambiguous is flagged `ambiguous` (see docs/policy.md):
// an encoded "/" or "\" (%2F, %5C), a raw "\", a malformed "%", a target that is not
// origin-form, or "//" next to ".." where merging before or after resolving gives different
// paths (servers disagree on that order). Evaluation then fails closed: a DENY rule's path
// conditions count as matched, an ALLOW rule's as not matched.

export interface NormalizedPath {
  path: string;
  ambiguous: boolean;
}

const UNRESERVED = /^[A-Za-z0-9\-._~]$/;
const ABSOLUTE_FORM = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*/;

export function normalizePath(target: string): NormalizedPath {
  let p = target;
  let ambiguous = false;
  const abs = ABSOLUTE_FORM.exec(p);
  if (abs) p = p.slice(abs[0].length);
  const cut = p.search(/[?#]/);
  if (cut >= 0) p = p.slice(0, cut);
  if (abs && p === '') p = '/';
  // OPTIONS * (asterisk-form) names no path.
  if (p === '*' && !abs) return { path: '*', ambiguous: false };
  if (!p.startsWith('/')) {
    ambiguous = true;
    p = `/${p}`;
  }
  if (p.includes('\\')) ambiguous = true;
  p = p.replace(/%([0-9A-Fa-f]{2})?/g, (all, hex: string | undefined) => {
    if (hex === undefined) {
      ambiguous = true;
      return all;
    }
    const ch = String.fromCharCode(parseInt(hex, 16));
    if (UNRESERVED.test(ch)) return ch;
    if (ch === '/' || ch === '\\') ambiguous = true;
    return `%${hex.toUpperCase()}`;
  });
  // nginx merges slashes, then resolves dots; Envoy resolves, then merges.
  const mergedFirst = removeDotSegments(mergeSlashes(p));
  if (mergeSlashes(removeDotSegments(p)) !== mergedFirst) ambiguous = true;
  return { path: mergedFirst, ambiguous };
}

const mergeSlashes = (p: string): string => p.replace(/\/{2,}/g, '/');

/** RFC 3986 remove_dot_segments for a path starting with "/". */
function removeDotSegments(p: string): string {
  const segs = p.split('/').slice(1);
  const out: string[] = [];
  segs.forEach((s, i) => {
    if (s === '.' || s === '..') {
      if (s === '..') out.pop();
      // "/a/.." names the directory: keep the trailing slash.
      if (i === segs.length - 1) out.push('');
    } else out.push(s);
  });
  return `/${out.join('/')}`;
}
