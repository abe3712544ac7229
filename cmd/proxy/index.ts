// `weft proxy`: flags/env → config → startProxy; SIGTERM drains (exit 0).
// The V8 compile cache is switched on before the proxy's dependencies load (fastify,
// prom-client): it roughly halves startup on a warm start. Failure to enable it is harmless.
import { enableCompileCache } from 'node:module';

export async function run(argv: string[]): Promise<number> {
  enableCompileCache?.();
  const { parseProxyConfig } = await import('../../pkg/api/proxy-config.js');
  const config = parseProxyConfig(argv);
  if (!config) return 0;
  const { startProxy } = await import('../../pkg/proxy/index.js');
  let finished: (code: number) => void = () => {};
  const exited = new Promise<number>((r) => (finished = r));
  const proxy = await startProxy(config, { onShutdown: () => finished(0) });
  const onSignal = () => void proxy.drain().then(() => finished(0));
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  const code = await exited;
  process.off('SIGTERM', onSignal);
  process.off('SIGINT', onSignal);
  // Drain has closed listeners and connections; leftover timers must not keep us alive.
  setTimeout(() => process.exit(code), 100).unref();
  return code;
}
