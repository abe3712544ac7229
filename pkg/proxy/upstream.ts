// Connecting to the original destination. With --proxy-mark the addon connects (SO_MARK must
// be set before connect); otherwise Node's net.connect does, the proxy's uid/gid keeping its
// own sockets out of interception.
import { Socket, connect } from 'node:net';
import type { FailureReason } from '../metrics/proxy.js';
import type { NativeCaps } from './native-bridge.js';
import type { Endpoint } from './types.js';

export interface UpstreamOptions {
  timeoutMs: number;
  mark: number;
  caps: NativeCaps;
}

export class ConnectError extends Error {
  constructor(
    readonly code: string,
    readonly reason: FailureReason,
  ) {
    super(`connect: ${code}`);
  }
}

export function failureReason(code: string | undefined): FailureReason {
  return code === 'ECONNREFUSED' ? 'connect_refused' : code === 'ETIMEDOUT' ? 'connect_timeout' : 'connect_error';
}

export function connectUpstream(dst: Endpoint, o: UpstreamOptions): Promise<Socket> {
  if (o.mark > 0 && o.caps.connect && o.caps.native) {
    const native = o.caps.native;
    return new Promise((resolve, reject) => {
      native.connect({ address: dst.address, port: dst.port, mark: o.mark, timeoutMs: o.timeoutMs }, (err, fd) => {
        if (err) return reject(new ConnectError(err.code ?? 'EIO', failureReason(err.code)));
        const s = new Socket({ fd, allowHalfOpen: true, readable: true, writable: true });
        s.pause();
        resolve(s);
      });
    });
  }
  return new Promise((resolve, reject) => {
    const s = connect({ host: dst.address, port: dst.port, allowHalfOpen: true, noDelay: true });
    s.pause();
    const timer = setTimeout(() => {
      s.destroy();
      reject(new ConnectError('ETIMEDOUT', 'connect_timeout'));
    }, o.timeoutMs);
    s.once('connect', () => {
      clearTimeout(timer);
      s.off('error', onError);
      resolve(s);
    });
    const onError = (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(new ConnectError(e.code ?? 'EIO', failureReason(e.code)));
    };
    s.once('error', onError);
  });
}
