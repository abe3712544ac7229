// The outbound path with SO_ORIGINAL_DST: `weft proxy --mode ebpf` (outbound destination
// from SO_ORIGINAL_DST) behind an iptables REDIRECT in the pod namespace, which answers
// SO_ORIGINAL_DST the same way the eBPF getsockopt program does. The proxy runs with gid
// 1337 and the rule exempts that gid, so its own upstream connections are not redirected.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { nativeAvailable } from '../../pkg/native/index.js';
import { bedUnavailable, createBed, waitFor } from './netns.js';

const WEFT = fileURLToPath(new URL('../../../bin/weft', import.meta.url));
const has = (tool: string): boolean => spawnSync('which', [tool]).status === 0;
const skip = bedUnavailable() ?? (!nativeAvailable() ? 'native addon not built (SO_ORIGINAL_DST)' : !has('python3') || !has('setpriv') || !has('curl') ? 'python3, setpriv and curl are needed' : false);

t.test('outbound via REDIRECT: the original destination is recovered and HTTP is proxied', { skip, timeout: 60_000 }, async (t) => {
  const bed = await createBed('r');
  const dir = mkdtempSync(join(tmpdir(), 'wfpx-redirect-'));
  t.teardown(async () => {
    await bed.close();
    rmSync(dir, { recursive: true, force: true });
  });
  writeFileSync(join(dir, 'hello.txt'), 'hello from the client namespace\n');
  bed.run(bed.pod, ['iptables', '-t', 'nat', '-A', 'OUTPUT', '-p', 'tcp', '-d', bed.clientIp, '-m', 'owner', '!', '--gid-owner', '1337', '-m', 'comment', '--comment', 'weft/outbound-redirect', '-j', 'REDIRECT', '--to-ports', '15001']);
  bed.start(bed.client, ['python3', '-m', 'http.server', '8080', '--bind', bed.clientIp, '--directory', dir]);
  const proxy = bed.start(bed.pod, ['setpriv', '--regid', '1337', '--clear-groups', '--', process.execPath, WEFT, 'proxy', '--mode', 'ebpf', '--log-level', 'info', '--access-log']);
  await waitFor('proxy ready', () => spawnSync('ip', ['netns', 'exec', bed.pod, 'curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', 'http://127.0.0.1:15020/ready'], { encoding: 'utf8' }).stdout === '200', 15_000).catch((e: unknown) => {
    throw new Error(`${(e as Error).message}; proxy output: ${proxy.output().slice(0, 2000)}`);
  });
  await waitFor('http server', () => spawnSync('ip', ['netns', 'exec', bed.client, 'curl', '-s', '-o', '/dev/null', `http://${bed.clientIp}:8080/hello.txt`]).status === 0);

  const url = `http://${bed.clientIp}:8080/hello.txt`;
  let out = '';
  try {
    out = bed.run(bed.pod, ['curl', '-sS', '--max-time', '10', url]);
  } catch (e) {
    t.comment(proxy.output().slice(-3000));
    throw e;
  }
  t.equal(out, 'hello from the client namespace\n', 'the app reached its original destination through the proxy');
  await new Promise((r) => setTimeout(r, 200));
  t.match(proxy.output(), new RegExp(`"dir":"outbound".*"dst":"${bed.clientIp.replaceAll('.', '\\.')}:8080".*"path":"/hello.txt","status":200`), 'the access log has the original destination');
  const metrics = bed.run(bed.pod, ['curl', '-sS', 'http://127.0.0.1:15020/metrics']);
  t.match(metrics, /weft_requests_total\{[^}]*direction="outbound"[^}]*peer="cluster"[^}]*\} 1/, 'counted as an outbound request to a cluster peer');

  // An app connecting straight to the outbound listener would loop: refused.
  const loop = spawnSync('ip', ['netns', 'exec', bed.pod, 'curl', '-sS', '--max-time', '5', `http://${bed.podIp}:15001/`], { encoding: 'utf8' });
  t.not(loop.status, 0, 'a connection to the proxy itself is refused');
  t.match(bed.run(bed.pod, ['curl', '-sS', 'http://127.0.0.1:15020/metrics']), /weft_tcp_connection_failures_total\{[^}]*reason="(loop|no_original_dst)"[^}]*\} 1/);
});
