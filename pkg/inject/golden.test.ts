// Golden tests over real-world pod shapes: fixture YAML in testdata/ → the injected YAML
// (with the skip reasons as comments) and, for Pods, the JSON Patch the webhook would send.
// UPDATE_GOLDEN=1 regenerates the expected files.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import t, { type Test } from 'tap';
import { parse, parseAllDocuments } from 'yaml';
import type { Pod } from '../api/k8s-types.js';
import { parseProxyConfig } from '../api/proxy-config.js';
import { defaultValues, parseValuesYaml, type Values } from '../api/values.js';
import { injectPod, isSkip, type InjectConfig } from './index.js';
import { applyJsonPatch, TESTDATA } from './testing.js';
import { injectYaml } from './workloads.js';

const VERSION = '0.1.0';
const custom = parseValuesYaml(readFileSync(`${TESTDATA}values-custom.yaml`, 'utf8'));
const controller = parseValuesYaml(readFileSync(`${TESTDATA}values-controller.yaml`, 'utf8'));
const update = process.env.UPDATE_GOLDEN === '1';
const GOLDEN = `${TESTDATA}golden/`;

interface Case {
  name: string;
  fixture: string;
  values?: Values;
  namespaceLabels?: Record<string, string>;
}

const cases: Case[] = [
  { name: 'pod-simple', fixture: 'pod-simple.yaml' },
  { name: 'pod-multi', fixture: 'pod-multi.yaml' },
  { name: 'pod-ebpf', fixture: 'pod-ebpf.yaml' },
  { name: 'pod-classic', fixture: 'pod-classic.yaml' },
  { name: 'pod-exclusions', fixture: 'pod-exclusions.yaml' },
  { name: 'pod-ebpf-exclusions', fixture: 'pod-ebpf-exclusions.yaml' },
  { name: 'pod-with-sidecar', fixture: 'pod-with-sidecar.yaml' },
  { name: 'pod-hostnetwork', fixture: 'pod-hostnetwork.yaml' },
  { name: 'pod-uid-1337', fixture: 'pod-uid-1337.yaml' },
  { name: 'pod-port-conflict', fixture: 'pod-port-conflict.yaml' },
  { name: 'pod-opted-out', fixture: 'pod-opted-out.yaml' },
  { name: 'pod-not-opted-in', fixture: 'pod-simple.yaml', namespaceLabels: {} },
  { name: 'job', fixture: 'job.yaml' },
  { name: 'cronjob', fixture: 'cronjob.yaml' },
  { name: 'workloads', fixture: 'workloads.yaml' },
  { name: 'deployment-yaml11', fixture: 'deployment-yaml11.yaml' },
  { name: 'pod-probes', fixture: 'pod-probes.yaml' },
  { name: 'pod-resources', fixture: 'pod-resources.yaml' },
  { name: 'unknown-kinds', fixture: 'unknown-kinds.yaml' },
  { name: 'pod-grpc-sidecar-probes', fixture: 'pod-grpc-sidecar-probes.yaml' },
  { name: 'annotation-opt-in', fixture: 'annotation-opt-in.yaml', namespaceLabels: { team: 'a' } },
  { name: 'values-custom-simple', fixture: 'pod-simple.yaml', values: custom },
  { name: 'values-custom-exclusions', fixture: 'pod-exclusions.yaml', values: custom },
  { name: 'values-controller-simple', fixture: 'pod-simple.yaml', values: controller },
];

const configOf = (c: Case): InjectConfig => ({ values: c.values ?? defaultValues(), version: VERSION, controllerNamespace: 'weft-system' });

function check(t: Test, file: string, actual: string): void {
  if (update || !existsSync(file)) {
    mkdirSync(GOLDEN, { recursive: true });
    writeFileSync(file, actual);
  }
  t.equal(actual, readFileSync(file, 'utf8'), `${file} (UPDATE_GOLDEN=1 regenerates)`);
}

for (const c of cases) {
  t.test(c.name, async (t) => {
    const input = readFileSync(`${TESTDATA}${c.fixture}`, 'utf8');
    const opts = { config: configOf(c), namespaceLabels: c.namespaceLabels };
    const { output, reports } = injectYaml(input, opts);
    const said = (r: (typeof reports)[number]) => (r.injected ? `injected${r.warning ? `; warning: ${r.warning}` : ''}` : (r.note ?? `skipped (${r.skip?.skip}): ${r.skip?.message}`));
    const comments = reports.map((r) => `# ${r.where}: ${said(r)}\n`).join('');
    check(t, `${GOLDEN}${c.name}.yaml`, comments + output);

    // kubectl reads YAML 1.1: every value must mean the same there as in YAML 1.2.
    const as11 = parseAllDocuments(output, { version: '1.1' }).map((d) => d.toJS() as unknown);
    t.same(as11, parseAllDocuments(output).map((d) => d.toJS() as unknown), 'a YAML 1.1 reader sees the same values');

    // Inject-twice equals inject-once, and says why.
    const again = injectYaml(output, opts);
    t.equal(again.output, output, 'injecting the output again changes nothing');
    for (const r of again.reports) t.notOk(r.injected, `${r.where} is not injected twice`);
    t.same(again.reports.map((r) => r.note), reports.map((r) => r.note), 'the same objects are passed through with a note');

    if (input.includes('\n---')) return;
    const doc = parse(input) as Pod;
    if (doc.kind !== 'Pod') return;
    const r = injectPod(doc, { name: doc.metadata?.namespace ?? 'default', labels: c.namespaceLabels }, configOf(c));
    if (isSkip(r)) return;
    check(t, `${GOLDEN}${c.name}.patch.json`, JSON.stringify(r.patch, null, 2) + '\n');
    // The proxy starts with exactly these args and env (a schema mismatch crash-loops it).
    const proxy = [...(r.injectedPod.spec.initContainers ?? []), ...r.injectedPod.spec.containers].find((x) => x.name === 'weft-proxy');
    const env = Object.fromEntries((proxy?.env ?? []).filter((e) => e.value !== undefined).map((e) => [e.name, e.value]));
    const cfg = parseProxyConfig(proxy?.args?.slice(1) ?? [], env);
    t.ok(cfg, 'weft proxy accepts the injected args and env');
    if (env.WEFT_APP_PROBES !== undefined) t.same(cfg?.appProbes, JSON.parse(env.WEFT_APP_PROBES), 'and reads every app probe as written');
    t.same(applyJsonPatch(doc, r.patch), r.injectedPod, 'the JSON Patch applied to the original pod yields the injected pod');
    t.same(parse(output), r.injectedPod, 'offline output and webhook agree');
  });
}
