// `weft proxy`: flags/env → config → startProxy; SIGTERM drains (exit 0).
// The V8 compile cache is switched on before the proxy's dependencies load (prom-client,
// pino): it roughly halves startup on a warm start. Failure to enable it is harmless.
import { enableCompileCache } from 'node:module';
import { setFlagsFromString } from 'node:v8';

/**
 * V8's young generation doubles under allocation pressure up to 3 × 16 MiB by default, and
 * under load that growth was most of a proxy's RSS (97 → 170 MiB). The proxy's garbage is
 * short-lived per-connection objects, so a young generation that stays at its initial size
 * costs little CPU. The growth factor is read each time V8 considers growing, so setting it
 * here (unlike --max-semi-space-size, fixed when the heap is created) takes effect.
 */
export const SIDECAR_V8_FLAGS = ['--semi-space-growth-factor=1'] as const;

export async function run(argv: string[]): Promise<number> {
  for (const f of SIDECAR_V8_FLAGS) setFlagsFromString(f);
  enableCompileCache?.();
  // The injector's plain flags skip zod (pkg/api/proxy-fast.ts); anything else — --help, a bad
  // value — goes to the schema, which gives the error.
  const { fastProxyConfig } = await import('../../pkg/api/proxy-fast.js');
  const config = fastProxyConfig(argv, process.env) ?? (await import('../../pkg/api/proxy-config.js')).parseProxyConfig(argv);
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
