// prom-client's metric classes, imported from their own files. The package's index also
// loads the Pushgateway (http, https, zlib, tls), the cluster aggregator (cluster,
// child_process, dgram) and the default collectors (perf_hooks): ~15 MiB of RSS a sidecar
// proxy would carry for nothing. Types still come from the package's own declarations.
import CounterImpl from 'prom-client/lib/counter.js';
import GaugeImpl from 'prom-client/lib/gauge.js';
import HistogramImpl from 'prom-client/lib/histogram.js';
import RegistryImpl from 'prom-client/lib/registry.js';
import type * as Prom from 'prom-client';

export type Registry = Prom.Registry;
export type Counter<T extends string = string> = Prom.Counter<T>;
export type Gauge<T extends string = string> = Prom.Gauge<T>;
export type Histogram<T extends string = string> = Prom.Histogram<T>;

export const Counter = CounterImpl as unknown as typeof Prom.Counter;
export const Gauge = GaugeImpl as unknown as typeof Prom.Gauge;
export const Histogram = HistogramImpl as unknown as typeof Prom.Histogram;
export const Registry = RegistryImpl as unknown as typeof Prom.Registry;
