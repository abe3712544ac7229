// Address helpers: IPv4-mapped unmapping, the peer class metric label, and "is this
// destination the proxy itself" (a loop: refused with RST).
import { networkInterfaces } from 'node:os';
import type { PeerClass } from '../metrics/proxy.js';

export function unmap(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

export function isLoopback(a: string): boolean {
  return a.startsWith('127.') || a === '::1';
}

function isPrivate(a: string): boolean {
  if (a.includes(':')) {
    const h = a.toLowerCase();
    return h.startsWith('fd') || h.startsWith('fc') || h.startsWith('fe80:');
  }
  const [x, y] = a.split('.').map(Number) as [number, number];
  return x === 10 || (x === 172 && y >= 16 && y <= 31) || (x === 192 && y === 168) || (x === 100 && y >= 64 && y <= 127) || (x === 169 && y === 254);
}

/** This host's addresses (all interfaces) plus the pod IPs and the unspecified addresses. */
export function localAddresses(podIps: readonly string[] = []): Set<string> {
  const set = new Set<string>(['0.0.0.0', '::', ...podIps.map(unmap)]);
  for (const list of Object.values(networkInterfaces())) for (const i of list ?? []) set.add(unmap(i.address));
  return set;
}

export class PeerClassifier {
  constructor(private readonly locals: ReadonlySet<string>) {}
  classify(address: string): PeerClass {
    if (isLoopback(address)) return 'loopback';
    if (this.locals.has(address)) return 'local';
    return isPrivate(address) ? 'cluster' : 'external';
  }
  /** A destination that is one of the proxy's own listeners on a local address: a loop. */
  isSelf(address: string, port: number, ownPorts: ReadonlySet<number>): boolean {
    return ownPorts.has(port) && (isLoopback(address) || this.locals.has(address));
  }
}
