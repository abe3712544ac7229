// Test hook, loaded with `node --import <this file>?ms=N …/cmd/main.js proxy`: the proxy's
// listeners come up N ms late (ProxyEngine.start waits first), so a test can watch /ready
// while the admin server is up and the listeners are not. Everything else in the process is
// the real `weft proxy`, on whichever connection path (native pool or Node) it uses.
import { ProxyEngine } from '../../pkg/proxy/engine.js';

const ms = Number(new URL(import.meta.url).searchParams.get('ms') ?? 0);
const start = ProxyEngine.prototype.start;
ProxyEngine.prototype.start = async function (this: ProxyEngine): Promise<void> {
  if (ms > 0) await new Promise((r) => setTimeout(r, ms));
  return start.call(this);
};
