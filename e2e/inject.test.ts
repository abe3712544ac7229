// The injected Pod runs as specified: a Pod manifest goes through the `weft inject` CLI (YAML
// in, YAML out, read back as YAML 1.1 like kubectl) and the result runs in the pod sandbox, in
// both interception modes with a native and a classic sidecar. weft-init must exit 0, the
// proxy must start with the identity and capabilities the injector asked for and pass its
// startup probe, and the app must be reachable through the mesh with its rewritten probe
// passing.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import t from 'tap';
import { parse, stringify } from 'yaml';
import type { Pod } from '../pkg/api/k8s-types.js';
import { defaultValues } from '../pkg/api/values.js';
import { injectPod, isSkip } from '../pkg/inject/index.js';
import { capMask } from './sandbox/caps.js';
import { createNode, isEmpty, leftovers, sweepStale, type SandboxPod } from './sandbox/index.js';

const PREFIX = 'wfin';

if (process.getuid?.() !== 0) {
  t.plan(0, 'the pod sandbox needs root');
  process.exit(0);
}

sweepStale(PREFIX);
const node = await createNode({ prefix: PREFIX, name: 'n1', t });

function appPod(name: string, annotations: Record<string, string>): Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'shop', annotations },
    spec: {
      terminationGracePeriodSeconds: 3,
      containers: [
        {
          name: 'web',
          image: 'nginx:1.27',
          ports: [{ name: 'http', containerPort: 8080 }],
          readinessProbe: { httpGet: { path: '/', port: 'http' }, periodSeconds: 1 },
        },
      ],
    },
  };
}

/** `weft inject -f -` as a user runs it (`env -i`: the test runner's loader hooks must not reach it). */
function injectWithCli(pod: Pod): Pod {
  const r = spawnSync('env', ['-i', process.execPath, node.weftBinary, 'inject', '-f', '-', '--namespace-labels', 'weft.dev/inject=enabled'], { input: stringify(pod), encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`weft inject failed (${r.status}): ${r.stderr}`);
  if (r.stderr !== '') throw new Error(`weft inject said: ${r.stderr}`);
  return parse(r.stdout, { version: '1.1' }) as Pod;
}

function proc(pid: number | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (pid === undefined) return out;
  for (const line of readFileSync(`/proc/${pid}/status`, 'utf8').split('\n')) {
    const [k, v] = line.split(':\t');
    if (k && v !== undefined) out[k] = v.trim();
  }
  return out;
}

const hex = (names: string[]) => capMask(names).toString(16).padStart(16, '0');

const variants = [
  { mode: 'tproxy', native: true, uid: '0', gid: '1337', caps: ['NET_ADMIN'] },
  { mode: 'ebpf', native: true, uid: '1337', gid: '1337', caps: [] as string[] },
  { mode: 'tproxy', native: false, uid: '0', gid: '1337', caps: ['NET_ADMIN'] },
  { mode: 'ebpf', native: false, uid: '1337', gid: '1337', caps: [] as string[] },
] as const;

for (const v of variants) {
  t.test(`${v.mode}, ${v.native ? 'native' : 'classic'} sidecar, through weft inject`, async (t) => {
    const annotations: Record<string, string> = { intercept: v.mode, ...(v.native ? {} : { 'weft.dev/native-sidecar': 'false' }) };
    const name = `web-${v.mode}-${v.native ? 'n' : 'c'}`;
    let pod: SandboxPod;
    try {
      pod = await node.runPod(injectWithCli(appPod(name, annotations)), { timeoutMs: 45_000 });
    } catch (e) {
      t.fail(`the injected pod did not start: ${(e as Error).message.slice(0, 3000)}`);
      return;
    }
    t.teardown(() => pod.delete());

    const init = pod.status('weft-init');
    t.same(init.exit, { code: 0, signal: null }, 'weft-init ran and exited 0');
    const proxy = pod.status('weft-proxy');
    t.equal(proxy.kind, v.native ? 'sidecar' : 'app', v.native ? 'the proxy is a native sidecar' : 'the proxy is the first container');
    t.ok(proxy.running, 'the proxy runs');
    t.same(
      pod.containers().map((c) => c.name),
      v.native ? ['weft-init', 'weft-proxy', 'web'] : ['weft-init', 'weft-proxy', 'web'],
    );

    const st = proc(proxy.pid);
    t.equal(st.Uid?.split('\t')[0], v.uid, `proxy uid ${v.uid}`);
    t.equal(st.Gid?.split('\t')[0], v.gid, `proxy gid ${v.gid}`);
    t.equal(st.CapEff, hex([...v.caps]), `proxy effective capabilities: ${v.caps.join(',') || 'none'}`);
    t.equal(st.NoNewPrivs, '1', 'no privilege escalation');

    t.ok(await pod.probe('weft-proxy', 'startup'), 'the proxy answers its startup probe (/ready on 15020)');
    t.ok(await pod.probe('web'), 'the rewritten app probe (/app-health/web/readyz on 15020) passes');
    const r = await node.exec(['curl', '-sS', '--max-time', '5', `http://${pod.ipv4}:8080/`]);
    t.equal(r.code, 0, `the app answers through the proxy: ${r.stderr}`);
    t.match(r.stdout, name);
  });
}

// Which capabilities the eBPF weft-init really needs on this kernel (no seccomp in the
// sandbox): BPF + NET_ADMIN, the default, suffice to load, attach to the pod cgroup and pin
// the sk_lookup link in bpffs (the variants above run with the default); BPF alone does not.
// Runtimes whose seccomp profile admits bpf(2) only with SYS_ADMIN need it added
// (docs/injection.md).
t.test('eBPF weft-init capabilities', async (t) => {
  const base = defaultValues();
  const withCaps = (caps: string[]) => ({ ...base, init: { ...base.init, ebpf: { ...base.init.ebpf, capabilities: caps } } });
  const run = async (name: string, caps: string[]) => {
    const r = injectPod(appPod(name, { intercept: 'ebpf' }), { name: 'shop' }, { values: withCaps(caps), version: '0.1.0' });
    if (isSkip(r)) throw new Error(r.message);
    const pod = await node.runPod(r.injectedPod, { waitReady: false, timeoutMs: 30_000 });
    await pod.delete();
  };
  t.same(base.init.ebpf.capabilities, ['BPF', 'NET_ADMIN'], 'the default is the least that works');
  await t.resolves(run('caps-bpf-netadmin', ['BPF', 'NET_ADMIN']), 'BPF + NET_ADMIN: weft-init succeeds');
  await t.rejects(run('caps-bpf-only', ['BPF']), { code: 'WEFT_ERR_SANDBOX', message: /weft-init/ }, 'BPF alone: weft-init fails');
});

t.test('nothing of the suite is left behind', async (t) => {
  await node.teardown();
  // Killed processes may take a moment to be reaped; give them a bounded while.
  for (let i = 0; i < 50 && !isEmpty(leftovers(PREFIX)); i++) await new Promise((r) => setTimeout(r, 100));
  t.ok(isEmpty(leftovers(PREFIX)), JSON.stringify(leftovers(PREFIX)));
});
