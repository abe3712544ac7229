// The proxy's metrics as Prometheus scrapes them: counters kept as plain numbers and folded in
// at scrape time (scraping twice must not double anything), the histogram's cumulative
// buckets, sum and count, and the registry's default labels on every series.
import t from 'tap';
import { createProxyMetrics } from './proxy.js';
import { createRegistry } from './registry.js';

const line = (text: string, prefix: string): string | undefined => text.split('\n').find((l) => l.startsWith(prefix));

t.test('counters and the histogram, scraped twice', async (t) => {
  const registry = createRegistry({ defaultLabels: { pod: 'web-0', namespace: 'shop' } });
  const m = createProxyMetrics(registry);
  const b = m.bound('inbound', 'cluster');
  b.opened.inc();
  b.opened.inc();
  b.received.inc(1500);
  b.failure('connect_refused');
  b.request('GET', 200);
  b.request('BREW', 418);
  m.authz('inbound', false, 'shop/deny-all');
  for (const v of [0.0001, 0.002, 0.002, 3, 20]) b.duration.observe(v);
  for (let scrape = 1; scrape <= 2; scrape++) {
    const text = await registry.metrics();
    t.match(line(text, 'weft_tcp_connections_opened_total{direction="inbound",peer="cluster"'), / 2$/, `scrape ${scrape}: opened 2`);
    t.match(line(text, 'weft_tcp_connections_opened_total{direction="outbound",peer="external"'), / 0$/, 'series exist before anything happened');
    t.match(line(text, 'weft_tcp_received_bytes_total{direction="inbound",peer="cluster"'), /pod="web-0".* 1500$/);
    t.match(line(text, 'weft_tcp_connection_failures_total{direction="inbound",peer="cluster",reason="connect_refused"'), / 1$/);
    t.match(line(text, 'weft_requests_total{direction="inbound",peer="cluster",method="OTHER",response_code="418"'), / 1$/, 'unknown methods fold to OTHER');
    t.match(line(text, 'weft_authz_decisions_total{direction="inbound",decision="deny",policy="shop/deny-all"'), / 1$/);
    t.match(line(text, 'weft_request_duration_seconds_bucket{direction="inbound",peer="cluster",le="0.0005"'), / 1$/);
    t.match(line(text, 'weft_request_duration_seconds_bucket{direction="inbound",peer="cluster",le="0.0025"'), / 3$/, 'buckets are cumulative');
    t.match(line(text, 'weft_request_duration_seconds_bucket{direction="inbound",peer="cluster",le="10"'), / 4$/);
    t.match(line(text, 'weft_request_duration_seconds_bucket{direction="inbound",peer="cluster",le="+Inf"'), / 5$/);
    t.match(line(text, 'weft_request_duration_seconds_sum{direction="inbound",peer="cluster"'), / 23\.0041$/);
    t.match(line(text, 'weft_request_duration_seconds_count{direction="inbound",peer="cluster"'), /namespace="shop".* 5$/);
    t.match(text, /# TYPE weft_request_duration_seconds histogram/);
  }
});
