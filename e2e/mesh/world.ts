// One mode's world: a sandbox node, the long-lived server pod, a client and a client with
// outbound exclusions, all injected by the real injector. Reused by every case of the mode.
import { createNode, type SandboxNode, type SandboxPod, type ServiceAddress, type TeardownHost } from '../sandbox/index.js';
import { clientPod, images, inject, PORTS, serverPod, type Mode } from './helpers.js';

export interface World {
  mode: Mode;
  node: SandboxNode;
  web: SandboxPod;
  svc: ServiceAddress;
  client: SandboxPod;
  /** Excludes outbound port 9101 and the web pod's own addresses (not its service address). */
  clientX: SandboxPod;
}

export const PREFIX = 'wfms';

export async function buildWorld(t: TeardownHost, mode: Mode): Promise<World> {
  const node = await createNode({ prefix: PREFIX, name: mode === 'tproxy' ? 'tp' : 'eb', t, images });
  const web = await node.runPod(inject(serverPod(mode)), { timeoutMs: 120000 });
  const svc = await node.addService('web', web);
  const client = await node.runPod(inject(clientPod('client', mode)), { timeoutMs: 60000 });
  const clientX = await node.runPod(
    inject(clientPod('client-x', mode, { 'weft.dev/exclude-outbound-ports': String(PORTS.exclOut), 'weft.dev/exclude-outbound-cidrs': `${web.ipv4}/32,${web.ipv6}/128` })),
    { timeoutMs: 60000 },
  );
  return { mode, node, web, svc, client, clientX };
}

export interface Run {
  code: number | null;
  out: string;
  err: string;
}

/** Run argv in a pod's container (bounded); a failure shows as a non-zero code with stderr. */
export async function run(pod: SandboxPod, argv: string[], timeoutMs = 20000, container = 'client'): Promise<Run> {
  const r = await pod.exec(argv, { container, timeoutMs });
  return { code: r.timedOut ? -1 : r.code, out: r.stdout.trim(), err: `${r.timedOut ? `timed out after ${timeoutMs} ms; ` : ''}${r.stderr.trim()}` };
}
