// Test hook, loaded with `node --import <this file>?ms=N …/cmd/main.js proxy`: each listener
// adopted from a file descriptor (the addon's IP_TRANSPARENT listeners in tproxy mode) comes
// up N ms late, one after the other, so a test can watch /ready while the admin server is up
// and the listeners are not. Everything else in the process is the real `weft proxy`.
import { Server } from 'node:net';

const ms = Number(new URL(import.meta.url).searchParams.get('ms') ?? 0);
const listen = Server.prototype.listen;
Server.prototype.listen = function (this: Server, ...args: unknown[]): Server {
  const o = args[0];
  if (ms > 0 && typeof o === 'object' && o !== null && 'fd' in o) {
    setTimeout(() => listen.apply(this, args as Parameters<typeof listen>), ms);
    return this;
  }
  return listen.apply(this, args as Parameters<typeof listen>);
} as typeof listen;
