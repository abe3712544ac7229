// The API server's view of a webhook entry, as data: does this admission request reach it?
// Label selectors with apimachinery's semantics (matchLabels and matchExpressions, ANDed; an
// absent selector matches everything, an empty one too) and the entry's rules.

export interface Requirement {
  key: string;
  operator: string;
  values?: string[];
}
export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: Requirement[];
}
export interface RuleWithOperations {
  apiGroups: string[];
  apiVersions: string[];
  operations: string[];
  resources: string[];
  scope?: string;
}
export interface MutatingWebhook {
  name: string;
  rules?: RuleWithOperations[];
  namespaceSelector?: LabelSelector;
  objectSelector?: LabelSelector;
  clientConfig: { service?: { name: string; namespace: string; path?: string; port?: number }; caBundle?: string };
}

/** metav1.LabelSelectorAsSelector + Matches. Unknown operators are an error, as the API
 * server rejects them when the configuration is created. */
export function selectorMatches(sel: LabelSelector | undefined, labels: Readonly<Record<string, string>>): boolean {
  if (!sel) return true;
  for (const [k, v] of Object.entries(sel.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const r of sel.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, r.key);
    const values = r.values ?? [];
    switch (r.operator) {
      case 'In':
      case 'NotIn': {
        if (values.length === 0) throw new Error(`matchExpressions ${r.key}: operator ${r.operator} needs values`);
        const inValues = has && values.includes(labels[r.key] as string);
        if (r.operator === 'In' ? !inValues : inValues) return false;
        break;
      }
      case 'Exists':
      case 'DoesNotExist':
        if (values.length > 0) throw new Error(`matchExpressions ${r.key}: operator ${r.operator} takes no values`);
        if (r.operator === 'Exists' ? !has : has) return false;
        break;
      default:
        throw new Error(`matchExpressions ${r.key}: unknown operator "${r.operator}"; allowed: In, NotIn, Exists, DoesNotExist`);
    }
  }
  return true;
}

export interface AdmissionRequestShape {
  group: string;
  version: string;
  resource: string;
  operation: string;
  namespaceLabels: Readonly<Record<string, string>>;
  objectLabels: Readonly<Record<string, string>>;
}

/** A namespaced request reaches the entry when one rule matches and both selectors do. */
export function webhookCalled(w: MutatingWebhook, req: AdmissionRequestShape): boolean {
  const any = (list: string[], v: string) => list.includes('*') || list.includes(v);
  const ruled = (w.rules ?? []).some(
    (r) => any(r.apiGroups, req.group) && any(r.apiVersions, req.version) && any(r.resources, req.resource) && any(r.operations, req.operation) && (r.scope === undefined || r.scope === '*' || r.scope === 'Namespaced'),
  );
  return ruled && selectorMatches(w.namespaceSelector, req.namespaceLabels) && selectorMatches(w.objectSelector, req.objectLabels);
}
