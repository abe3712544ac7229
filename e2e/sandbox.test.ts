// The pod sandbox on the real kernel (root): pods from Pod specs reach each other over IPv4,
// IPv6 and a service address; probes gate readiness; identity and capabilities are what
// Kubernetes gives; volumes, init/sidecar order and the weft image work; and teardown leaves
// nothing behind and never touches the root network namespace.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { allCapabilities, capMask } from './sandbox/caps.js';
import { hostCaps } from './sandbox/host-caps.js';
import { createNode, DEFAULT_CAPABILITIES, isEmpty, leftovers, sweepStale, type SandboxPod } from './sandbox/index.js';
import { run } from './sandbox/sh.js';

const PREFIX = 'wfsb';

if (process.getuid?.() !== 0) {
  t.plan(0, 'the pod sandbox needs root');
  process.exit(0);
}

/** The root netns's links, routes, rules and firewall, without counters and timestamps. */
async function rootNetState(): Promise<string> {
  const cmds = [
    ['ip', '-o', 'link', 'show'],
    ['ip', '-4', 'route', 'show', 'table', 'all'],
    ['ip', '-6', 'route', 'show', 'table', 'all'],
    ['ip', '-4', 'rule'],
    ['ip', '-6', 'rule'],
    ['iptables-save'],
    ['ip6tables-save'],
    ['iptables-legacy-save'],
    ['nft', 'list', 'ruleset'],
    ['sysctl', 'net.ipv4.ip_forward', 'net.ipv6.conf.all.forwarding', 'net.ipv6.conf.default.accept_dad'],
  ];
  const out: string[] = [];
  for (const c of cmds) {
    const r = await run(c);
    const text = r.stdout
      .split('\n')
      .filter((l) => !l.startsWith('#'))
      .map((l) => l.replace(/\[\d+:\d+\]/g, '').replace(/packets \d+ bytes \d+/g, ''))
      .join('\n');
    out.push(`## ${c.join(' ')}\n${text}`);
  }
  return out.join('\n');
}

const before = await rootNetState();
sweepStale(PREFIX);
const node = await createNode({ prefix: PREFIX, name: 'n1', t });

/** /proc/<pid>/status of a container's main process: runPod returns once it is the command itself. */
async function procStatus(pod: SandboxPod, container: string, comm: string): Promise<Record<string, string>> {
  const pid = pod.pid(container);
  if (pid === undefined) throw new Error(`${container} is not running`);
  if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() !== comm) throw new Error(`${container}: pid ${pid} is not ${comm} yet`);
  const fields: Record<string, string> = {};
  for (const line of readFileSync(`/proc/${pid}/status`, 'utf8').split('\n')) {
    const [k, v] = line.split(':\t');
    if (k && v !== undefined) fields[k] = v.trim();
  }
  return fields;
}

const hex = (m: bigint): string => m.toString(16).padStart(16, '0');

// A small HTTP server: answers with its pod name, ready only once /data/ready exists.
const SERVER = `
const http = require('node:http'); const fs = require('node:fs');
http.createServer((req, res) => {
  if (req.url === '/ready') { res.statusCode = fs.existsSync('/data/ready') ? 200 : 503; return res.end(); }
  res.end('hello from ' + process.env.POD_NAME + ' ' + req.socket.localAddress + '\\n');
}).listen(8080, '::', () => console.log('listening'));
`;

let server: SandboxPod;
let client: SandboxPod;

t.test('a readinessProbe gates the pod until it passes', async (t) => {
  server = await node.runPod(
    {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'server', namespace: 'demo' },
      spec: {
        volumes: [{ name: 'data', emptyDir: {} }],
        containers: [
          {
            name: 'http',
            image: 'node:24',
            command: ['node', '-e', SERVER],
            env: [{ name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }],
            ports: [{ name: 'http', containerPort: 8080 }],
            readinessProbe: { httpGet: { path: '/ready', port: 'http' }, periodSeconds: 1 },
            volumeMounts: [{ name: 'data', mountPath: '/data' }],
          },
          { name: 'helper', image: 'busybox', command: ['sleep', 'infinity'], volumeMounts: [{ name: 'data', mountPath: '/data' }] },
        ],
      },
    },
    { waitReady: false },
  );
  await server.waitForLog('http', 'listening');
  t.equal(await server.probe('http'), false, 'the probe fails while /data/ready is missing');
  await t.rejects(server.waitReady(1500), { code: 'WEFT_ERR_SANDBOX', message: /http not ready[\s\S]*HTTP 503/ });
  t.equal(server.isReady(), false);
  // The other container writes into the shared emptyDir; the first one sees it.
  const w = await server.exec(['touch', '/data/ready'], { container: 'helper' });
  t.equal(w.code, 0, w.stderr);
  await server.waitReady(10_000);
  t.equal(server.isReady(), true);
});

t.test('pods reach each other by pod IP (IPv4, IPv6) and by service address', async (t) => {
  client = await node.runPod({ metadata: { name: 'client' }, spec: { containers: [{ name: 'shell', image: 'busybox', command: ['sleep', 'infinity'] }] } });
  t.not(client.ipv4, server.ipv4);
  t.match(server.ipv4, new RegExp(`^10\\.${node.subnet}\\.0\\.\\d+$`));
  t.match(server.ipv6, new RegExp(`^fd00:${node.subnet}::[0-9a-f]+$`));
  const svc = await node.addService('web', server);
  for (const [what, addr] of [
    ['pod IPv4', server.ipv4],
    ['pod IPv6', `[${server.ipv6}]`],
    ['service IPv4', svc.ipv4],
    ['service IPv6', `[${svc.ipv6}]`],
  ] as const) {
    const r = await client.exec(['curl', '-sS', '--max-time', '5', `http://${addr}:8080/`]);
    t.equal(r.code, 0, `${what}: ${r.stderr}`);
    t.match(r.stdout, /^hello from server /, what);
  }
  t.match(svc.ipv4, new RegExp(`^10\\.${node.subnet}\\.96\\.`));
  // The node netns is the kubelet's vantage point: it reaches pods too.
  const fromNode = await node.exec(['curl', '-sS', '--max-time', '5', `http://${server.ipv4}:8080/`]);
  t.match(fromNode.stdout, /hello from server/);
});

t.test('uid, gid and capabilities are what Kubernetes with containerd gives', async (t) => {
  const sleep = (name: string, securityContext: Record<string, unknown>): Record<string, unknown> => ({ name, image: 'busybox', command: ['sleep', 'infinity'], securityContext });
  const pod = await node.runPod({
    metadata: { name: 'caps' },
    spec: {
      securityContext: { runAsUser: 2000, runAsGroup: 2100 },
      containers: [
        sleep('root', { runAsUser: 0, runAsGroup: 0 }),
        sleep('addrop', { runAsUser: 0, runAsGroup: 0, capabilities: { add: ['NET_ADMIN', 'CAP_BPF'], drop: ['NET_RAW'] } }),
        sleep('dropall', { runAsUser: 0, runAsGroup: 0, capabilities: { drop: ['ALL'] } }),
        sleep('minimal', { runAsUser: 0, runAsGroup: 0, capabilities: { drop: ['ALL'], add: ['NET_BIND_SERVICE'] } }),
        sleep('nonroot', { runAsUser: 1337, runAsGroup: 1337, capabilities: { add: ['NET_ADMIN'] } }),
        sleep('podlevel', {}),
        sleep('privileged', { runAsUser: 0, privileged: true }),
        sleep('nnp', { runAsUser: 0, allowPrivilegeEscalation: false }),
      ],
    },
  });
  const def = capMask(DEFAULT_CAPABILITIES);
  const root = await procStatus(pod, 'root', 'sleep');
  t.equal(root.CapEff, hex(def), 'root: the runtime default set, effective');
  t.equal(root.CapPrm, hex(def));
  t.equal(root.CapBnd, hex(def));
  t.equal(root.CapInh, hex(0n));
  t.match(root.Uid, /^0\t0\t0\t0$/);
  t.equal(root.NoNewPrivs, '0');

  const addrop = await procStatus(pod, 'addrop', 'sleep');
  t.equal(addrop.CapEff, hex((def | capMask(['NET_ADMIN', 'BPF'])) & ~capMask(['NET_RAW'])), 'add NET_ADMIN and BPF, drop NET_RAW');

  t.equal((await procStatus(pod, 'dropall', 'sleep')).CapEff, hex(0n), 'drop ALL');
  t.equal((await procStatus(pod, 'dropall', 'sleep')).CapBnd, hex(0n));
  t.equal((await procStatus(pod, 'minimal', 'sleep')).CapEff, hex(capMask(['NET_BIND_SERVICE'])), 'drop ALL, add NET_BIND_SERVICE');

  const nonroot = await procStatus(pod, 'nonroot', 'sleep');
  t.equal(nonroot.CapEff, hex(0n), 'non-root: no effective capability even with add');
  t.equal(nonroot.CapPrm, hex(0n));
  t.equal(nonroot.CapAmb, hex(0n));
  t.equal(nonroot.CapBnd, hex(def | capMask(['NET_ADMIN'])), 'non-root: bounding set as for root');
  t.match(nonroot.Uid, /^1337\t1337\t1337\t1337$/);
  t.match(nonroot.Gid, /^1337\t1337\t1337\t1337$/);

  const podlevel = await procStatus(pod, 'podlevel', 'sleep');
  t.match(podlevel.Uid, /^2000\t/, 'the pod securityContext applies when the container sets none');
  t.match(podlevel.Gid, /^2100\t/);
  t.equal(podlevel.CapEff, hex(0n));

  // Every capability this machine has (its own bounding set may lack some, e.g. SYS_RESOURCE).
  const own = BigInt('0x' + (/^CapBnd:\t([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? '0'));
  t.equal((await procStatus(pod, 'privileged', 'sleep')).CapEff, hex(capMask(allCapabilities(hostCaps().lastCap)) & own), 'privileged: every capability up to cap_last_cap');
  t.equal((await procStatus(pod, 'nnp', 'sleep')).NoNewPrivs, '1', 'allowPrivilegeEscalation: false sets no_new_privs');

  // exec runs as the container's user unless told otherwise.
  t.match((await pod.exec(['id', '-u'], { container: 'nonroot' })).stdout, /^1337$/m);
  t.match((await pod.exec(['id', '-u'], { container: 'nonroot', uid: 0 })).stdout, /^0$/m);
  await pod.delete();
});

t.test('hostPath and emptyDir volumes, readOnly honoured; /sys/fs/bpf and /sys/fs/cgroup map to the node', async (t) => {
  const hostDir = mkdtempSync(join(tmpdir(), 'wfsbt-'));
  t.teardown(() => rmSync(hostDir, { recursive: true, force: true }));
  const mountPath = '/var/lib/wfsb-sandbox-test/data';
  t.notOk(existsSync('/var/lib/wfsb-sandbox-test'), 'the mountPath does not exist on the host yet');
  const pod = await node.runPod({
    metadata: { name: 'volumes' },
    spec: {
      volumes: [
        { name: 'host', hostPath: { path: hostDir, type: 'Directory' } },
        { name: 'scratch', emptyDir: {} },
        { name: 'bpf', hostPath: { path: '/sys/fs/bpf' } },
        { name: 'cgroup', hostPath: { path: '/sys/fs/cgroup' } },
      ],
      containers: [
        {
          name: 'writer',
          image: 'busybox',
          command: ['sleep', 'infinity'],
          volumeMounts: [
            { name: 'host', mountPath },
            { name: 'scratch', mountPath: '/scratch' },
            { name: 'bpf', mountPath: '/sys/fs/bpf' },
            { name: 'cgroup', mountPath: '/sys/fs/cgroup', readOnly: true },
          ],
        },
        { name: 'reader', image: 'busybox', command: ['sleep', 'infinity'], volumeMounts: [{ name: 'host', mountPath, readOnly: true }, { name: 'scratch', mountPath: '/scratch' }] },
      ],
    },
  });
  const w = await pod.exec(['sh', '-c', `echo from-pod > ${mountPath}/f && echo shared > /scratch/s`], { container: 'writer' });
  t.equal(w.code, 0, w.stderr);
  t.equal(readFileSync(join(hostDir, 'f'), 'utf8'), 'from-pod\n', 'hostPath writes land on the host');
  const r = await pod.exec(['sh', '-c', `cat ${mountPath}/f /scratch/s; echo x > ${mountPath}/g`], { container: 'reader' });
  t.equal(r.stdout, 'from-pod\nshared\n', 'the other container sees both volumes');
  t.not(r.code, 0, 'a readOnly mount refuses writes');
  t.match(r.stderr, /Read-only file system/);
  const fs = await pod.exec(['stat', '-f', '-c', '%T', '/sys/fs/bpf', '/sys/fs/cgroup'], { container: 'writer' });
  t.equal(fs.stdout, 'bpf_fs\ncgroup2fs\n', 'hostPath /sys/fs/bpf is the node bpffs, /sys/fs/cgroup the cgroup2 mount');
  const pin = await pod.exec(['touch', '/sys/fs/cgroup/wfsb-should-fail'], { container: 'writer' });
  t.not(pin.code, 0, 'the readOnly cgroup mount refuses writes');
  t.notOk(existsSync(join(node.bpffs!, 'x')));
  await pod.delete();
  t.ok(existsSync(mountPath), 'created mountPaths stay while the node lives (other pods may use them)');
});

t.test('kubelet order: init containers, native sidecar gated on its startupProbe, postStart, then apps; delete in reverse', async (t) => {
  const logDir = mkdtempSync(join(tmpdir(), 'wfsbt-'));
  t.teardown(() => rmSync(logDir, { recursive: true, force: true }));
  const log = (what: string): string[] => ['sh', '-c', `echo ${what} >> /order/log`];
  const mounts = [{ name: 'order', mountPath: '/order' }];
  const pod = await node.runPod({
    metadata: { name: 'order', uid: '0d9b3c1e-1111-4222-8333-944455556666' },
    spec: {
      terminationGracePeriodSeconds: 5,
      volumes: [{ name: 'order', hostPath: { path: logDir } }],
      initContainers: [
        { name: 'init1', image: 'busybox', command: log('init1'), volumeMounts: mounts },
        {
          name: 'sidecar',
          image: 'busybox',
          restartPolicy: 'Always',
          // Listens only after a moment: the next init container must still find it up.
          command: ['sh', '-c', `trap 'echo sidecar-term >> /order/log; exit 0' TERM; sleep 0.5; echo sidecar-up >> /order/log; socat TCP-LISTEN:9000,fork,reuseaddr SYSTEM:'echo hi' & wait`],
          startupProbe: { tcpSocket: { port: 9000 }, periodSeconds: 1, failureThreshold: 30 },
          volumeMounts: mounts,
        },
        { name: 'init2', image: 'busybox', command: ['sh', '-c', 'socat -T2 - TCP:127.0.0.1:9000 >> /order/log'], volumeMounts: mounts },
      ],
      containers: [
        {
          name: 'app',
          image: 'busybox',
          command: ['sh', '-c', `trap 'echo app-term >> /order/log; exit 0' TERM; echo app-up >> /order/log; while :; do sleep 0.1; done`],
          lifecycle: { postStart: { exec: { command: log('poststart') } } },
          volumeMounts: mounts,
        },
        { name: 'late', image: 'busybox', command: log('late'), volumeMounts: mounts },
      ],
    },
  }, { waitReady: false });
  await pod.exited('late');
  const lines = readFileSync(join(logDir, 'log'), 'utf8').trim().split('\n');
  t.equal(lines[0], 'init1');
  t.equal(lines[1], 'sidecar-up');
  t.equal(lines[2], 'hi', 'init2 ran after the sidecar was started');
  t.ok(lines.indexOf('poststart') < lines.indexOf('late'), 'the next container waits for postStart');
  t.ok(lines.includes('app-up'));
  t.match(pod.cgroupPath, /kubepods-besteffort-pod0d9b3c1e_1111_4222_8333_944455556666\.slice$/);
  const cg = readFileSync(`/proc/${pod.pid('app')}/cgroup`, 'utf8');
  t.match(cg, new RegExp(`^0::/${node.netns}/kubepods\\.slice/kubepods-besteffort\\.slice/kubepods-besteffort-pod0d9b3c1e_1111_4222_8333_944455556666\\.slice/cri-containerd-[0-9a-f]{64}\\.scope$`, 'm'));
  await pod.delete();
  const after = readFileSync(join(logDir, 'log'), 'utf8').trim().split('\n');
  t.ok(after.indexOf('app-term') >= 0 && after.indexOf('app-term') < after.indexOf('sidecar-term'), `apps stop before sidecars: ${after.join(',')}`);
});

t.test('env: downward API and $(VAR) expansion; the weft image runs the local build on Node 24', async (t) => {
  const pod = await node.runPod(
    {
      metadata: { name: 'env', namespace: 'ns1', uid: '11111111-2222-4333-8444-555555555555' },
      spec: {
        serviceAccountName: 'sa1',
        initContainers: [{ name: 'weft', image: 'ghcr.io/example/weft:dev', command: ['weft'], args: ['version'] }],
        containers: [
          {
            name: 'show',
            image: 'busybox',
            command: ['sh', '-c', 'echo "$0|$1|$POD|$NS|$UID_|$IP|$IPS|$HOST|$SA|$COMBINED"; echo "$2|$RUNTIME|$HOSTNAME"; node --version; sleep infinity'],
            args: ['$(POD)-arg', '$$(POD)', '$(HOSTNAME)'],
            env: [
              { name: 'POD', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
              { name: 'NS', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
              { name: 'UID_', valueFrom: { fieldRef: { fieldPath: 'metadata.uid' } } },
              { name: 'IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
              { name: 'IPS', valueFrom: { fieldRef: { fieldPath: 'status.podIPs' } } },
              { name: 'HOST', valueFrom: { fieldRef: { fieldPath: 'status.hostIP' } } },
              { name: 'SA', valueFrom: { fieldRef: { fieldPath: 'spec.serviceAccountName' } } },
              { name: 'COMBINED', value: '$(NS)/$(POD)/$(UNKNOWN)' },
              // The runtime's own variables are set but not expanded (kubelet semantics).
              { name: 'RUNTIME', value: '$(PATH)+$(HOME)' },
            ],
          },
        ],
      },
    },
    { waitReady: true },
  );
  await pod.waitForLog('show', /^v\d+/m);
  const [line, runtime, nodeVersion] = pod.logs('show').split('\n');
  t.equal(
    line,
    `env-arg|$(POD)|env|ns1|11111111-2222-4333-8444-555555555555|${pod.ipv4}|${pod.ipv4},${pod.ipv6}|${node.hostIPv4}|sa1|ns1/env/$(UNKNOWN)`,
  );
  t.equal(runtime, '$(HOSTNAME)|$(PATH)+$(HOME)|env', "$(VAR) sees only the container's own env; HOSTNAME itself is set");
  t.equal(nodeVersion, process.version, 'the Node running the tests is first on PATH');
  t.match(pod.logs('weft'), /0\.1\.0|weft/, 'the weft image ran <repo>/bin/weft');
});

t.test('an init container that fails gives a clear error and leaves nothing of the pod', async (t) => {
  await t.rejects(
    node.runPod({
      metadata: { name: 'broken' },
      spec: {
        initContainers: [{ name: 'bad', image: 'busybox', command: ['sh', '-c', 'echo boom >&2; exit 3'] }],
        containers: [{ name: 'never', image: 'busybox', command: ['sleep', 'infinity'] }],
      },
    }),
    { code: 'WEFT_ERR_SANDBOX', message: /init container bad \(spec\.initContainers\[0\]\) exited with 3[\s\S]*boom/ },
  );
  t.notOk(node.pods().some((p) => p.name === 'broken'));
  const ns = (await run(['ip', 'netns', 'list'])).stdout;
  t.notMatch(ns, /-broken/, 'its netns is gone');
  await t.rejects(node.runPod({ metadata: { name: 'typo' }, spec: { containers: [{ name: 'x', image: 'mystery' }] } }), {
    code: 'WEFT_ERR_SANDBOX',
    message: /spec\.containers\[0\]\.image: "mystery" has no mapping/,
  });
  await t.rejects(node.runPod({ metadata: { name: 'caps' }, spec: { containers: [{ name: 'x', image: 'b', command: ['true'], securityContext: { capabilities: { add: ['NET_ADMN'] } } }] } }), {
    message: /capabilities\.add: unknown capability "NET_ADMN"/,
  });
});

t.test('a second node with the cgroupfs driver lives beside the first', async (t) => {
  const n2 = await createNode({ prefix: PREFIX, name: 'n2', cgroupDriver: 'cgroupfs' });
  t.teardown(() => n2.teardown());
  t.not(n2.subnet, node.subnet);
  const pod = await n2.runPod({ metadata: { name: 'web' }, spec: { containers: [{ name: 'nginx', image: 'nginx:1.25', ports: [{ containerPort: 80 }], readinessProbe: { httpGet: { port: 80 } } }] } });
  t.equal(pod.cgroupPath, join(n2.cgroup2, 'wfsb-n2', 'kubepods', 'besteffort', `pod${pod.uid}`));
  t.match(readFileSync(`/proc/${pod.pid('nginx')}/cgroup`, 'utf8'), new RegExp(`^0::/wfsb-n2/kubepods/besteffort/pod${pod.uid}/[0-9a-f]{64}$`, 'm'));
  const r = await n2.exec(['curl', '-sS', `http://[${pod.ipv6}]/`]);
  t.equal(r.stdout, 'web\n', 'the nginx image answers with its pod name');
  const redis = await n2.runPod({ metadata: { name: 'cache' }, spec: { containers: [{ name: 'redis', image: 'docker.io/library/redis:7', readinessProbe: { tcpSocket: { port: 6379 } } }] } });
  const ping = await n2.exec(['redis-cli', '-h', redis.ipv6, 'ping']);
  t.equal(ping.stdout.trim(), 'PONG', 'the redis image is redis-server');
  await n2.teardown();
  t.ok(isEmpty(leftovers('wfsb-n2')), 'the second node is gone');
  t.ok(server.isReady(), 'the first node is untouched');
});

t.test('sweepStale removes what a killed run left; the exit hook cleans a run that never tore down', async (t) => {
  const script = (name: string, end: string): string =>
    `const m = await import(${JSON.stringify(new URL('./sandbox/index.js', import.meta.url).href)});
     const n = await m.createNode({ prefix: 'wfsb', name: '${name}' });
     await n.runPod({ metadata: { name: 'p' }, spec: { containers: [{ name: 'c', image: 'b', command: ['sleep', 'infinity'] }] } });
     console.log('up'); ${end}`;
  const child = (name: string, end: string): Promise<number | null> =>
    new Promise((resolve) => {
      const c = spawn(process.execPath, ['--input-type=module', '-e', script(name, end)], { stdio: ['ignore', 'pipe', 'inherit'] });
      c.stdout.on('data', (d: Buffer) => {
        if (d.toString().includes('up') && end === '') c.kill('SIGKILL');
      });
      c.on('close', resolve);
    });
  await child('crash', '');
  const left = leftovers('wfsb-crash');
  t.ok(left.netns.length >= 2 && left.cgroups.length > 0 && left.mounts.length > 0 && left.processes.length > 0, 'a SIGKILLed run leaves netns, cgroups, mounts, processes');
  t.ok(isEmpty(sweepStale('wfsb-crash')), 'sweepStale removes them all');
  t.equal(await child('exit', 'process.exit(0);'), 0);
  t.strictSame(leftovers('wfsb-exit'), { netns: [], cgroups: [], mounts: [], processes: [], links: [], dirs: [] }, 'process exit ran the sync cleanup');
});

t.test('a test that throws still tears its node down (t.teardown)', async (t) => {
  const script = `import t from 'tap';
    const m = await import(${JSON.stringify(new URL('./sandbox/index.js', import.meta.url).href)});
    await t.test('throws', async (t) => {
      const n = await m.createNode({ prefix: 'wfsb', name: 'thrw', t });
      await n.runPod({ metadata: { name: 'p' }, spec: { containers: [{ name: 'c', image: 'b', command: ['sleep', 'infinity'] }] } });
      throw new Error('boom');
    });
    console.log('LEFT ' + JSON.stringify(m.leftovers('wfsb-thrw')));`;
  const out = await run([process.execPath, '--input-type=module', '-e', script], { cwd: new URL('../..', import.meta.url).pathname, env: { ...process.env, TAP: '0' } });
  const line = /^LEFT (.*)$/m.exec(out.stdout)?.[1];
  if (!t.ok(line, 'the child reported its leftovers')) t.comment(out.stdout, out.stderr);
  t.match(out.stdout, /boom/, 'the test failed');
  t.strictSame(JSON.parse(line ?? '{}'), { netns: [], cgroups: [], mounts: [], processes: [], links: [], dirs: [] }, 'nothing left once the failed test ended');
});

t.test('teardown leaves nothing and the root network namespace is unchanged', async (t) => {
  await node.teardown();
  await node.teardown();
  t.strictSame(leftovers(PREFIX), { netns: [], cgroups: [], mounts: [], processes: [], links: [], dirs: [] });
  t.notMatch((await run(['ip', 'netns', 'list'])).stdout, /^wfsb-/m);
  t.notMatch(readFileSync('/proc/mounts', 'utf8'), /wfsb-/);
  t.notOk(existsSync(join(node.cgroup2, 'wfsb-n1')));
  t.notOk(existsSync('/var/lib/wfsb-sandbox-test'), 'created mountPaths are removed');
  t.equal(await rootNetState(), before);
});
