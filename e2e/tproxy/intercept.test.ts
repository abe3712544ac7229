// Real interception through `weft init --mode tproxy`: a "client" pod and a "server" pod
// (network namespaces joined by a veth pair), a proxy in the client pod running as uid 0 with
// gid 1337 with transparent listeners on 15001/15006 that records getsockname() (the original
// destination) of every connection it accepts and relays it on. IPv4 and IPv6.
import t, { type Test } from 'tap';
import { type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { E2E_DIR, Netns, ROOT, missingPrerequisite, must, waitFor } from './netns.js';
import { startProxy, type ProxyKind, type ProxyUnderTest } from './proxy.js';

const skip = missingPrerequisite();

const C4 = '10.77.0.1';
const S4 = '10.77.0.2';
const S4_EXCLUDED = '10.78.0.2';
const C6 = 'fd77::1';
const S6 = 'fd77::2';

interface Pods {
  client: Netns;
  server: Netns;
}

function pods(t: Test): Pods {
  const client = new Netns('cli');
  t.teardown(() => client.destroy());
  const server = new Netns('srv');
  t.teardown(() => server.destroy());
  const [vc, vs] = [`wftp${process.pid % 100000}c`, `wftp${process.pid % 100000}s`];
  must(['ip', 'link', 'add', vc, 'netns', client.name, 'type', 'veth', 'peer', 'name', vs, 'netns', server.name]);
  client.ip('addr', 'add', `${C4}/24`, 'dev', vc);
  server.ip('addr', 'add', `${S4}/24`, 'dev', vs);
  server.ip('addr', 'add', `${S4_EXCLUDED}/24`, 'dev', vs);
  client.ip('-6', 'addr', 'add', `${C6}/64`, 'dev', vc, 'nodad');
  server.ip('-6', 'addr', 'add', `${S6}/64`, 'dev', vs, 'nodad');
  client.ip('link', 'set', vc, 'up');
  server.ip('link', 'set', vs, 'up');
  client.ip('route', 'add', '10.78.0.0/24', 'via', S4);
  // Strict reverse-path filtering, as many nodes set it: interception must not depend on it off.
  for (const dev of ['all', 'default', 'lo', vc]) client.exec(['sysctl', '-qw', `net.ipv4.conf.${dev}.rp_filter=1`]);
  return { client, server };
}

async function echo(ns: Netns, name: string, listen: string[]): Promise<ChildProcess> {
  const p = ns.spawn(['python3', `${E2E_DIR}echo_server.py`, name, ...listen]);
  await waitFor(`${name} echo server`, () => p.lines.includes('ready'));
  return p.child;
}

/** Connect from `ns` to host:port (with SO_MARK `mark` when given), send a line, return the one-line answer ('' on failure). */
function ask(ns: Netns, host: string, port: number, mark = 0): string {
  const py = [
    'import socket,sys',
    'a=socket.getaddrinfo(sys.argv[1],int(sys.argv[2]),type=socket.SOCK_STREAM)[0]',
    's=socket.socket(a[0],socket.SOCK_STREAM)',
    'm=int(sys.argv[3])',
    'm and s.setsockopt(socket.SOL_SOCKET,socket.SO_MARK,m)',
    's.settimeout(3)',
    's.connect(a[4])',
    's.sendall(b"hi\\n")',
    'print(s.recv(300).decode().strip())',
  ].join('\n');
  const r = ns.exec(['python3', '-c', py, host, String(port), String(mark)], { timeoutMs: 10_000 });
  return r.code === 0 ? r.stdout.trim() : `ERROR ${r.stderr.trim().split('\n').pop() ?? ''}`;
}

// The real proxy when this build has it (and its native addon); the stand-in always.
const weftProxySkip = existsSync(`${ROOT}dist/cmd/proxy/index.js`) && existsSync(`${ROOT}addon/build/Release/weft_native.node`) ? false : 'weft proxy or its addon not built';
const proxies: [ProxyKind, string | false][] = [
  ['standin', skip ?? false],
  ['weft', skip ?? weftProxySkip],
];

for (const [kind, why] of proxies) t.test(`tproxy interception end to end (${kind} proxy)`, { skip: why }, async (t) => {
  const { client, server } = pods(t);
  await echo(server, 'server', ['0.0.0.0:8080', '0.0.0.0:5432', '[::]:8080']);
  await echo(client, 'app', ['0.0.0.0:8081', '[::]:8081', '0.0.0.0:15021', '127.0.0.1:9000']);

  const init = client.weft(['init', '--mode', 'tproxy', '--ipv6', 'auto', '--exclude-outbound-ports', '5432', '--exclude-outbound-cidrs', '10.78.0.0/24']);
  t.equal(init.code, 0, `weft init: ${init.stderr}`);
  const proxy: ProxyUnderTest = await startProxy(client, kind);
  t.comment(`proxy under test: ${proxy.kind}`);

  const seen = (dst: string, port: number) => proxy.accepted().filter((a) => a.dst === dst && a.port === port);

  t.test('outbound IPv4: the proxy gets it with the original destination, once (its own connection is not looped)', async (t) => {
    t.match(ask(client, S4, 8080), new RegExp(`^server local=${S4}:8080 peer=${C4}:`));
    await waitFor('proxy record', () => seen(S4, 8080).length > 0).catch(() => {});
    t.same(seen(S4, 8080).map((a) => a.listener), [15001]);
  });
  t.test('outbound IPv6 likewise', async (t) => {
    t.match(ask(client, S6, 8080), /^server local=fd77::2:8080 peer=fd77::1:/);
    await waitFor('proxy record', () => seen(S6, 8080).length > 0).catch(() => {});
    t.same(seen(S6, 8080).map((a) => a.listener), [15001]);
  });
  t.test('an excluded outbound port bypasses the proxy', async (t) => {
    t.match(ask(client, S4, 5432), /^server local=10\.77\.0\.2:5432 /);
    t.same(seen(S4, 5432), []);
  });
  t.test('an excluded outbound CIDR bypasses the proxy', async (t) => {
    t.match(ask(client, S4_EXCLUDED, 8080), /^server local=10\.78\.0\.2:8080 /);
    t.same(seen(S4_EXCLUDED, 8080), []);
  });
  t.test('loopback is untouched', async (t) => {
    t.match(ask(client, '127.0.0.1', 9000), /^app local=127\.0\.0\.1:9000 peer=127\.0\.0\.1:/);
    t.same(seen('127.0.0.1', 9000), []);
  });
  t.test('inbound IPv4 reaches the inbound listener with the original destination', async (t) => {
    t.match(ask(server, C4, 8081), /^app local=10\.77\.0\.1:8081 /);
    await waitFor('proxy record', () => seen(C4, 8081).length > 0).catch(() => {});
    t.same(seen(C4, 8081).map((a) => a.listener), [15006]);
  });
  t.test('inbound IPv6 likewise', async (t) => {
    t.match(ask(server, C6, 8081), /^app local=fd77::1:8081 /);
    await waitFor('proxy record', () => seen(C6, 8081).length > 0).catch(() => {});
    t.same(seen(C6, 8081).map((a) => a.listener), [15006]);
  });
  t.test('an excluded inbound port reaches the app directly, and its replies are not diverted', async (t) => {
    t.match(ask(server, C4, 15021), /^app local=10\.77\.0\.1:15021 peer=10\.77\.0\.2:/);
    t.same(seen(C4, 15021), []);
  });
  t.test('IPv6 link-local destinations are not diverted (the proxy could not dial them without a scope)', async (t) => {
    const [cdev, sdev] = [`wftp${process.pid % 100000}c`, `wftp${process.pid % 100000}s`];
    const linkLocal = (ns: Netns, dev: string) => /inet6 (fe80::[0-9a-f:]+)\/64 scope link(?! tentative)/.exec(ns.ip('-6', 'addr', 'show', 'dev', dev))?.[1];
    await waitFor('link-local addresses usable', () => linkLocal(client, cdev) !== undefined && linkLocal(server, sdev) !== undefined, 5000).catch(() => {});
    const [cll, sll] = [linkLocal(client, cdev), linkLocal(server, sdev)];
    if (!cll || !sll) return t.fail(`no usable link-local address on ${cdev} or ${sdev}`);
    t.match(ask(server, `${cll}%${sdev}`, 8081), /^app local=fe80::/, 'inbound to the pod’s link-local address: the app answered');
    t.same(proxy.accepted().filter((a) => a.dst.startsWith('fe80:')), [], 'inbound: the proxy never saw it');
    t.match(ask(client, `${sll}%${cdev}`, 8080), /^server local=fe80::/, 'outbound to a link-local address: the server answered');
    t.same(proxy.accepted().filter((a) => a.dst.startsWith('fe80:')), [], 'outbound: the proxy never saw it');
  });
  t.test('re-run with --proxy-mark 0x53f (all of weft’s mark bits and more): such sockets are exempt, others still diverted', async (t) => {
    const r = client.weft(['init', '--mode', 'tproxy', '--ipv6', 'auto', '--exclude-outbound-ports', '5432', '--exclude-outbound-cidrs', '10.78.0.0/24', '--proxy-mark', '0x53f']);
    t.equal(r.code, 0, r.stderr);
    const before = seen(S4, 8080).length;
    t.match(ask(client, S4, 8080, 0x53f), new RegExp(`^server local=${S4}:8080 `));
    t.equal(seen(S4, 8080).length, before, 'marked like the proxy: not diverted');
    // Other bits besides weft's own mark do not make a packet weft's: still intercepted once.
    t.match(ask(client, S4, 8080, 0x539 | 0x10000), new RegExp(`^server local=${S4}:8080 `));
    await waitFor('proxy record', () => seen(S4, 8080).length > before).catch(() => {});
    t.equal(seen(S4, 8080).length, before + 1, 'an app socket with another mark is diverted (its mark is replaced)');
  });
  t.test('re-run with include-only CIDRs: only those destinations are intercepted', async (t) => {
    const r = client.weft(['init', '--include-outbound-cidrs', '10.78.0.0/24']);
    t.equal(r.code, 0, r.stderr);
    t.match(ask(client, S4_EXCLUDED, 8080), /^server local=10\.78\.0\.2:8080 /);
    await waitFor('proxy record', () => seen(S4_EXCLUDED, 8080).length > 0).catch(() => {});
    t.equal(seen(S4_EXCLUDED, 8080).length, 1, 'included CIDR intercepted');
    const before = seen(S4, 8080).length;
    t.match(ask(client, S4, 8080), /^server local=10\.77\.0\.2:8080 /);
    t.equal(seen(S4, 8080).length, before, 'other destinations not intercepted');
  });
  t.test('after --cleanup nothing is intercepted', async (t) => {
    t.equal(client.weft(['init', '--cleanup']).code, 0);
    const before = proxy.accepted().length;
    t.match(ask(client, S4, 8080), /^server local=10\.77\.0\.2:8080 /);
    t.match(ask(server, C4, 8081), /^app local=10\.77\.0\.1:8081 /);
    t.equal(proxy.accepted().length, before);
  });
});
