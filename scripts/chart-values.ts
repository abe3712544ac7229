// The chart's values: pkg/api/values.ts's ValuesSchema (what the controller and
// `weft inject --values` read) plus the keys only the chart uses (certificates, monitoring).
// values.yaml and values.schema.json are both generated from this one zod schema, so the
// documented defaults are the parsed defaults and a typo'd key fails `helm install`.
import { z } from 'zod';
import { stringify } from 'yaml';
import { ValuesSchema } from '../pkg/api/values.js';

/** Chart-only keys; the ConfigMap given to the controller leaves these out. */
export const CHART_ONLY_KEYS = ['certManager', 'tls', 'monitoring'] as const;

const chartOnly = {
  certManager: z
    .strictObject({
      enabled: z.boolean().default(false).describe('issue the webhook certificate with cert-manager (its cainjector fills caBundle) instead of Helm-generated certificates'),
      issuerRef: z
        .strictObject({
          name: z.string().default('').describe('an existing issuer; empty: the chart creates a self-signed Issuer'),
          kind: z.enum(['Issuer', 'ClusterIssuer']).default('Issuer').describe('kind of issuerRef.name'),
        })
        .prefault({})
        .describe('issuer of the webhook certificate'),
    })
    .prefault({})
    .describe('cert-manager integration'),
  tls: z
    .strictObject({
      validityDays: z.number().int().min(1).max(36500).default(3650).describe('validity of the webhook CA and certificate, in days (kept across helm upgrade)'),
    })
    .prefault({})
    .describe('the webhook serving certificate'),
  monitoring: z
    .strictObject({
      enabled: z.boolean().default(false).describe('create Prometheus Operator monitors (needs the monitoring.coreos.com CRDs)'),
      serviceMonitor: z.boolean().default(true).describe('a ServiceMonitor for the controller /metrics'),
      podMonitor: z.boolean().default(true).describe('a PodMonitor for every injected proxy /metrics (admin port)'),
      interval: z.string().regex(/^([0-9]+(ms|s|m|h))+$/, 'must be a Prometheus duration such as 30s').default('30s').describe('scrape interval'),
      labels: z.record(z.string(), z.string()).default({}).describe('extra labels on the monitors, e.g. the release label your Prometheus selects'),
    })
    .prefault({})
    .describe('Prometheus Operator monitors'),
};

const shape = ValuesSchema.shape as Record<string, z.ZodType>;
// Keys the values schema already defines win, so moving a key into pkg/api needs no change here.
const missing = Object.fromEntries(Object.entries(chartOnly).filter(([k]) => !(k in shape)));

export const ChartValuesSchema = ValuesSchema.extend(missing).describe('weft chart values');

type Json = Record<string, unknown>;

/** Every object with properties rejects unknown keys; maps keep their value schema. */
function closeObjects(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(closeObjects);
  if (node === null || typeof node !== 'object') return node;
  const out: Json = {};
  for (const [k, v] of Object.entries(node as Json)) {
    out[k] = k === 'properties' ? Object.fromEntries(Object.entries(v as Json).map(([p, s]) => [p, closeObjects(s)])) : closeObjects(v);
  }
  if (out.type === 'object' && out.properties !== undefined && out.additionalProperties === undefined) out.additionalProperties = false;
  return out;
}

/** values.schema.json: input side (defaults optional), closed objects. */
export function valuesJsonSchema(): Json {
  // draft-07: understood by Helm 3's validator as well as Helm 4's.
  const s = z.toJSONSchema(ChartValuesSchema, { target: 'draft-07', io: 'input', unrepresentable: 'any' }) as Json;
  return { ...(closeObjects(s) as Json), title: 'weft chart values' };
}

export function defaultChartValues(): Json {
  return ChartValuesSchema.parse({}) as Json;
}

function inline(v: unknown): string {
  return stringify(v, { lineWidth: 0, flowCollectionPadding: false }).trimEnd();
}

function emit(schema: Json, value: Json, indent: string, lines: string[]): void {
  const props = (schema.properties ?? {}) as Json;
  for (const [key, sub] of Object.entries(props)) {
    const s = sub as Json;
    const v = value[key];
    if (v === undefined) continue;
    if (typeof s.description === 'string') lines.push(`${indent}# -- ${s.description}`);
    const isObj = s.type === 'object' && s.properties !== undefined;
    if (isObj) {
      lines.push(`${indent}${key}:`);
      emit(s, v as Json, `${indent}  `, lines);
      continue;
    }
    const text = inline(v);
    const empty = (Array.isArray(v) && v.length === 0) || (typeof v === 'object' && v !== null && Object.keys(v).length === 0);
    if (empty || !text.includes('\n')) lines.push(`${indent}${key}: ${empty ? (Array.isArray(v) ? '[]' : '{}') : text}`);
    else lines.push(`${indent}${key}:`, ...text.split('\n').map((l) => `${indent}  ${l}`));
  }
}

/** values.yaml: every default, each with its `# --` description (helm-docs style). */
export function valuesYaml(): string {
  const schema = z.toJSONSchema(ChartValuesSchema, { io: 'output', unrepresentable: 'any' }) as Json;
  const lines = [
    '# Default values of the weft chart. GENERATED by `npm run gen` from pkg/api/values.ts',
    '# (and scripts/chart-values.ts for the chart-only keys): edit the zod schema, not this file.',
    `# The controller reads these values (--values) minus the chart-only keys ${CHART_ONLY_KEYS.join(', ')}.`,
    '',
  ];
  emit(schema, defaultChartValues(), '', lines);
  return lines.join('\n') + '\n';
}
