// `weft inject` as a user runs it: YAML in (file or stdin), YAML out, skip reasons on stderr,
// a bad annotation refused with a non-zero exit and nothing printed.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { parseAllDocuments } from 'yaml';

const weft = fileURLToPath(new URL('../main.js', import.meta.url));
// dist/cmd/main.js is what bin/weft imports: the test runner's loader hooks, which it adds to
// child processes, cannot load the extension-less bin/weft. NODE_OPTIONS is dropped too.
const env = { ...process.env, NODE_OPTIONS: '' };
const run = (args: string[], input?: string) => spawnSync(process.execPath, [weft, 'inject', ...args], { input, encoding: 'utf8', env });
const dir = mkdtempSync(join(tmpdir(), 'wfic-cli-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const pod = (annotations: Record<string, string> = {}, ns = 'shop') =>
  `apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  namespace: ${ns}\n  annotations: ${JSON.stringify(annotations)}\nspec:\n  containers:\n    - name: web\n      image: nginx\n`;

t.test('stdin in, injected YAML out', async (t) => {
  const r = run(['-f', '-'], pod());
  t.equal(r.status, 0, r.stderr);
  const [doc] = parseAllDocuments(r.stdout).map((d) => d.toJS() as { spec: { initContainers: { name: string }[] } });
  t.same(doc?.spec.initContainers.map((c) => c.name), ['weft-init', 'weft-proxy']);
});

t.test('--namespace-labels simulates the opt-in; skip reasons go to stderr, the object passes through', async (t) => {
  const r = run(['-f', '-', '--namespace-labels', 'team=a'], pod());
  t.equal(r.status, 0);
  t.match(r.stderr, /Pod\/web: skipped \(not-opted-in\): neither the pod nor its namespace says weft.dev\/inject: enabled/);
  t.notMatch(r.stdout, /weft-proxy/);
  const on = run(['-f', '-', '--namespace-labels', 'weft.dev/inject=enabled,team=a'], pod());
  t.match(on.stdout, /weft-proxy/);
  const sys = run(['-f', '-'], pod({}, 'kube-system'));
  t.match(sys.stderr, /skipped \(system-namespace\)/);
  t.throws(() => {
    const bad = run(['-f', '-', '--namespace-labels', 'oops'], pod());
    if (bad.status !== 0) throw new Error(bad.stderr);
  }, /--namespace-labels .*"oops" is not k=v/);
});

t.test('a bad annotation: non-zero exit, the same message as the webhook, nothing on stdout', async (t) => {
  for (const [k, v, re] of [
    ['intercept', 'ebpff', /WEFT_ERR_BAD_ANNOTATION: Pod\/web: annotation intercept: "ebpff" is invalid; allowed: tproxy, ebpf/],
    ['weft.dev/exclude-inbound-ports', '70000', /weft.dev\/exclude-inbound-ports: "70000" is invalid/],
    ['weft.dev/exclude-outbound-cidrs', '10.0.0.0/33', /"10.0.0.0\/33" is invalid/],
    ['weft.dev/proxy-memory', 'lots', /weft.dev\/proxy-memory: "lots" is invalid; allowed: a Kubernetes quantity/],
  ] as const) {
    const r = run(['-f', '-'], pod({ [k]: v }));
    t.not(r.status, 0, `${k}=${v}`);
    t.match(r.stderr, re);
    t.equal(r.stdout, '');
  }
});

t.test('--values reads chart values; a typo in them is named', async (t) => {
  const good = join(dir, 'values.yaml');
  writeFileSync(good, 'image: {repository: reg.example/weft, tag: "9.9"}\nproxy: {nativeSidecar: false}\n');
  const r = run(['-f', '-', '--values', good], pod());
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /image: reg.example\/weft:9.9/);
  t.match(r.stdout, /- wait-ready/);
  const bad = join(dir, 'bad.yaml');
  writeFileSync(bad, 'proxy: {nativeSidcar: false}\n');
  const b = run(['-f', '-', '--values', bad], pod());
  t.not(b.status, 0);
  t.match(b.stderr, /WEFT_ERR_BAD_CONFIG: .*bad.yaml: proxy: Unrecognized key: "nativeSidcar"/);
  const missing = run(['-f', join(dir, 'nope.yaml')]);
  t.not(missing.status, 0);
  t.match(missing.stderr, /--file .*nope.yaml/);
});

t.test('broken YAML and a workload without containers are named', async (t) => {
  const r = run(['-f', '-'], 'a: [b\n');
  t.not(r.status, 0);
  t.match(r.stderr, /WEFT_ERR_BAD_INPUT: document 1: not valid YAML/);
  const d = run(['-f', '-'], 'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec: {template: {spec: {}}}\n');
  t.not(d.status, 0);
  t.match(d.stderr, /Deployment\/d spec.template.spec.containers/);
});

t.test('stderr says what a cluster would do differently, and which resources passed through unchanged', async (t) => {
  const annotated = pod({ 'weft.dev/inject': 'enabled' });
  const r = run(['-f', '-', '--namespace-labels', 'team=a'], annotated);
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /weft-proxy/, 'offline, the annotation opts the pod in');
  t.match(r.stderr, /^weft inject: Pod\/web: warning: the pod opts in with the annotation weft.dev\/inject: enabled only; in a cluster .* would not be injected: label the pod \(or its namespace\) weft.dev\/inject: enabled$/m);
  const enabledNs = run(['-f', '-', '--namespace-labels', 'weft.dev/inject=enabled'], annotated);
  t.equal(enabledNs.stderr, '', 'in an enabled namespace the annotation works in a cluster too: no warning');
  t.equal(run(['-f', '-'], annotated).stderr, '', 'the default simulation is an enabled namespace');

  const rollout = 'apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata: {name: canary}\nspec:\n  template:\n    spec:\n      containers: [{name: app, image: app:1}]\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: b}\n';
  const p = run(['-f', '-'], rollout);
  t.equal(p.status, 0, p.stderr);
  t.match(p.stderr, /^weft inject: document 1 Rollout\/canary: passed through unchanged: it has a pod template \(spec.template\)/m);
  t.notMatch(p.stderr, /ConfigMap/, 'an object without a pod template passes silently');
  t.equal(p.stderr.trim().split('\n').length, 1, 'one line per resource passed through');
  t.notMatch(p.stdout, /weft-proxy/);
});
