// SO_ORIGINAL_DST through a real netfilter NAT REDIRECT, inside a private network namespace:
// a client connects to 127.0.0.1:7777 (v4) or [::1]:7777 (v6), the nat OUTPUT rule sends
// it to the native listener, and originalDst() on the accepted socket reports :7777.
import t from 'tap';
import { IS_ROOT, FACADE_URL, makeNetns, runNodeScript, sh } from './helpers.js';

const script = (host: string, family: 4 | 6): string => `
import net from 'node:net';
import { listenServer, originalDst, localAddress, fdOf } from '${FACADE_URL}';
const server = await listenServer({ host: '${host}', port: 15001 });
const accepted = new Promise((r) => server.once('connection', r));
const client = net.connect({ host: '${host}', port: 7777 });
client.on('error', () => {});
const s = await accepted;
const out = { orig: originalDst(fdOf(s), ${family}), other: originalDst(fdOf(s), ${family === 4 ? 6 : 4}), local: localAddress(fdOf(s)) };
console.log(JSON.stringify(out));
process.exit(0);
`;

function hasTool(name: string): boolean {
  try {
    sh('sh', ['-c', `command -v ${name}`]);
    return true;
  } catch {
    return false;
  }
}

if (!IS_ROOT) {
  t.plan(0, 'needs root (network namespace, netfilter)');
} else {
  const v4skip = hasTool('iptables') ? false : 'iptables not installed';
  const v6skip = hasTool('ip6tables') ? false : 'ip6tables not installed';
  t.test('IPv4: iptables nat REDIRECT → originalDst reports the address the client dialled', { skip: v4skip }, async (t) => {
    const ns = makeNetns('od4');
    t.teardown(ns.remove);
    ns.exec('iptables', ['-t', 'nat', '-A', 'OUTPUT', '-p', 'tcp', '-d', '127.0.0.1', '--dport', '7777', '-j', 'REDIRECT', '--to-ports', '15001']);
    const out = (await runNodeScript(script('127.0.0.1', 4), ['ip', 'netns', 'exec', ns.name])) as Record<string, unknown>;
    t.same(out.orig, { address: '127.0.0.1', port: 7777, family: 4 });
    t.same(out.local, { address: '127.0.0.1', port: 15001, family: 4 }, 'getsockname shows the listener, not the original');
    t.equal(out.other, null, 'asking the IPv6 level of an IPv4 socket gives null');
  });

  t.test('IPv6: ip6tables nat REDIRECT → originalDst reports the address the client dialled', { skip: v6skip }, async (t) => {
    const ns = makeNetns('od6');
    t.teardown(ns.remove);
    try {
      ns.exec('ip6tables', ['-t', 'nat', '-A', 'OUTPUT', '-p', 'tcp', '-d', '::1', '--dport', '7777', '-j', 'REDIRECT', '--to-ports', '15001']);
    } catch (e) {
      t.fail(`ip6tables nat REDIRECT could not be added: ${(e as Error).message}`);
      return;
    }
    const out = (await runNodeScript(script('::1', 6), ['ip', 'netns', 'exec', ns.name])) as Record<string, unknown>;
    t.same(out.orig, { address: '::1', port: 7777, family: 6 });
    t.same(out.local, { address: '::1', port: 15001, family: 6 });
  });
}
