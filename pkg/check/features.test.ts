import t from 'tap';
import { FEATURE_IDS, renderTable, verdict, type FeatureId, type ProbeResult } from './features.js';

const allOk = Object.fromEntries(FEATURE_IDS.map((id) => [id, { ok: true, detail: `${id} found` }])) as Record<FeatureId, ProbeResult>;

t.test('everything present: ok for both modes', async (t) => {
  const r = verdict(allOk, ['tproxy', 'ebpf']);
  t.ok(r.ok);
  t.same(r.missing, []);
  t.match(renderTable(r), /^ok: this host has everything tproxy and ebpf mode needs$/m);
});

t.test('a missing feature is named, only for the modes that need it', async (t) => {
  const results = { ...allOk, 'sk-lookup': { ok: false, detail: 'kernel lacks sk_lookup programs' } };
  const both = verdict(results, ['tproxy', 'ebpf']);
  t.notOk(both.ok);
  t.same(both.missing, ['sk-lookup']);
  const table = renderTable(both);
  t.match(table, /^sk-lookup\s+MISSING\s+ebpf\s+kernel lacks sk_lookup programs$/m);
  t.match(table, /^missing for tproxy\/ebpf: sk-lookup$/m);
  t.ok(verdict(results, ['tproxy']).ok, 'tproxy does not need sk_lookup');
});

t.test('optional features never fail the check; simulated ones do when needed', async (t) => {
  const r = verdict({ ...allOk, connmark: { ok: false, detail: 'no' } }, ['tproxy'], ['tproxy-target']);
  t.same(r.missing, ['tproxy-target']);
  const tp = r.features.find((f) => f.id === 'tproxy-target');
  t.equal(tp?.detail, 'simulated missing (--simulate-missing)');
  t.match(renderTable(r), /^connmark\s+absent\s+-/m);
});
