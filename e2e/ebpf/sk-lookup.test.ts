// weft_sk_lookup in isolation, with BPF_PROG_TEST_RUN: the object is loaded (not attached),
// a real listening socket goes into `listeners`, and each synthetic lookup shows which
// socket the program picked (ctx.cookie) — no namespace or traffic needed.
import t from 'tap';
import net from 'node:net';
import { existsSync } from 'node:fs';
import { once } from 'node:events';
import { fdOf, nativeAvailable, socketCookie } from '../../pkg/native/index.js';
import { bpfTestRun } from '../../pkg/native/bpf.js';
import { ROOT } from '../../pkg/native/load.js';
import { DIR_INBOUND, encodeConfig, encodePortKey, ipBytes } from '../../pkg/intercept/ebpf/maps.js';

const OBJECT = `${ROOT}/bpf/build/sk_lookup.bpf.o`;
const skip = process.getuid?.() !== 0 ? 'needs root' : !nativeAvailable() ? 'native addon not built' : !existsSync(OBJECT) ? 'bpf objects not built' : null;

const AF_INET = 2;
const AF_INET6 = 10;
const TCP = 6;
const UDP = 17;
const SK_DROP = 0;

/** struct bpf_sk_lookup (72 bytes; offsets from linux/bpf.h). */
function lookupCtx(family: number, protocol: number, localIp: string, localPort: number, remoteIp = family === AF_INET ? '10.9.9.9' : 'fd00::9'): Buffer {
  const b = Buffer.alloc(72);
  b.writeUInt32LE(family, 8);
  b.writeUInt32LE(protocol, 12);
  if (family === AF_INET) {
    ipBytes(remoteIp).copy(b, 16, 12); // remote_ip4
    ipBytes(localIp).copy(b, 40, 12); // local_ip4
  } else {
    ipBytes(remoteIp).copy(b, 20);
    ipBytes(localIp).copy(b, 44);
  }
  b.writeUInt16BE(40000, 36); // remote_port, network order
  b.writeUInt32LE(localPort, 60); // local_port, host order
  return b;
}

t.test('sk_lookup picks the proxy listener, except for exclusions', { skip: skip ?? false }, async (t) => {
  const listener = net.createServer();
  listener.listen(0, '127.0.0.1');
  await once(listener, 'listening');
  t.teardown(() => void listener.close());
  const fd = fdOf(listener);
  const cookie = socketCookie(fd);

  const dual = net.createServer();
  dual.listen(0, '::');
  await once(dual, 'listening');
  t.teardown(() => void dual.close());
  const dualFd = fdOf(dual);
  const dualCookie = socketCookie(dualFd);

  const run = (ctx: Buffer, withListener = true, key1Fd: number | null = null, ipv6 = true) => {
    const r = bpfTestRun({
      object: OBJECT,
      rodata: encodeConfig({ proxyUid: 1337, proxyGid: 1337, outboundPort: 15001, inboundPort: 15006, ipv6, includeAll: true }),
      mapEntries: [15020, 15021, 9000].map((p) => ({ map: 'excluded_ports', key: encodePortKey(p, DIR_INBOUND), value: Buffer.from([1]) })),
      sockmapEntries: [
        ...(withListener ? [{ map: 'listeners', key: Buffer.from([0, 0, 0, 0]), fd }] : []),
        ...(key1Fd === null ? [] : [{ map: 'listeners', key: Buffer.from([1, 0, 0, 0]), fd: key1Fd }]),
      ],
      ctx,
    });
    return { verdict: r.retval, cookie: r.ctx.readBigUInt64LE(0) };
  };

  t.same(run(lookupCtx(AF_INET, TCP, '10.1.2.3', 8080)), { verdict: 1, cookie }, 'TCP to the pod on :8080 → the proxy listener');
  t.same(run(lookupCtx(AF_INET, TCP, '10.1.2.3', 15020)), { verdict: 1, cookie: 0n }, 'excluded inbound port 15020: normal lookup');
  t.same(run(lookupCtx(AF_INET, TCP, '10.1.2.3', 9000)), { verdict: 1, cookie: 0n }, 'a configured excluded port: normal lookup');
  t.same(run(lookupCtx(AF_INET, TCP, '127.0.0.1', 8080)), { verdict: 1, cookie: 0n }, 'loopback destination: normal lookup');
  t.same(run(lookupCtx(AF_INET, UDP, '10.1.2.3', 8080)), { verdict: 1, cookie: 0n }, 'UDP: untouched');
  t.same(run(lookupCtx(AF_INET6, TCP, 'fd00::3', 8080)), { verdict: SK_DROP, cookie: 0n }, 'IPv6 interception on but only an IPv4 listener: dropped');
  t.same(run(lookupCtx(AF_INET, TCP, '10.1.2.3', 8080), false), { verdict: SK_DROP, cookie: 0n }, 'no proxy listener (proxy down): dropped, never past the proxy to the app');
  t.same(run(lookupCtx(AF_INET, TCP, '10.1.2.3', 15020), false), { verdict: 1, cookie: 0n }, 'no proxy listener, excluded port: normal lookup');
  t.same(run(lookupCtx(AF_INET, TCP, '10.1.2.3', 8080, '10.1.2.3')), { verdict: 1, cookie: 0n }, 'the pod to its own address (remote == local, e.g. the proxy dialling the app): normal lookup');
  t.same(run(lookupCtx(AF_INET6, TCP, 'fd00::3', 8080, 'fd00::3'), true, dualFd), { verdict: 1, cookie: 0n }, 'IPv6, remote == local: normal lookup');
  t.same(run(lookupCtx(AF_INET6, TCP, 'fd00::3', 8080), false, null, false), { verdict: 1, cookie: 0n }, 'IPv6 with IPv6 interception off: normal lookup, not a drop');
  t.same(run(lookupCtx(AF_INET6, TCP, 'fd00::3', 8080), true, dualFd), { verdict: 1, cookie: dualCookie }, 'IPv6 → the [::] listener');
  t.same(run(lookupCtx(AF_INET, TCP, '10.1.2.3', 8080), false, dualFd), { verdict: 1, cookie: dualCookie }, 'IPv4 with only a dual-stack [::] listener → that listener');
  t.same(run(lookupCtx(AF_INET6, TCP, '::1', 8080), true, dualFd), { verdict: 1, cookie: 0n }, 'IPv6 loopback: normal lookup');
});
