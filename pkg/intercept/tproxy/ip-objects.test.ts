import t from 'tap';
import { addArgv, diffIpObjects, keyOf, parseListing, parseRoutes, parseRules, plannedIpObjects, WEFT_RT_PROTO } from './ip-objects.js';

// `ip -N -j -4 rule show` with an untagged twin, weft's rule, and an older weft's masked one.
const RULES = JSON.stringify([
  { priority: 0, src: 'all', table: '255' },
  { priority: 32763, src: 'all', fwmark: '0x539', table: '133' },
  { priority: 32764, src: 'all', fwmark: '0x539', fwmask: '0x539', table: '133', protocol: '87' },
  { priority: 32765, src: 'all', fwmark: '0x539', table: '133', protocol: '87' },
  { priority: 32766, src: 'all', table: '254' },
]);
const ROUTES = JSON.stringify([
  // `ip -N` prints types as numbers: 2 is local.
  { type: '2', dst: 'default', dev: 'lo', table: '133', protocol: '87', scope: '254', flags: [] },
  { type: 'local', dst: 'default', dev: 'lo', table: '134', scope: 'host', flags: [] },
  { type: 'local', dst: '127.0.0.0/8', dev: 'lo', table: '255', protocol: '2', scope: 'host', prefsrc: '127.0.0.1', flags: [] },
]);

t.test('only objects tagged with weft’s protocol are weft’s', async (t) => {
  t.equal(WEFT_RT_PROTO, 87);
  const rules = parseRules(RULES, 4);
  t.same(rules.map((r) => r.key), ['4 rule fwmark 0x539/0x539 lookup 133', '4 rule fwmark 0x539 lookup 133']);
  t.same(rules[1]?.del, ['ip', '-4', 'rule', 'del', 'priority', '32765', 'fwmark', '0x539', 'lookup', '133', 'protocol', '87']);
  t.same(rules[1]?.add, ['ip', '-4', 'rule', 'add', 'priority', '32765', 'fwmark', '0x539', 'lookup', '133', 'protocol', '87'], 'put back where it was');
  const routes = parseRoutes(ROUTES, 4);
  t.same(routes.map((r) => r.del), [['ip', '-4', 'route', 'del', 'local', 'default', 'dev', 'lo', 'table', '133', 'proto', '87']]);
  t.equal(parseRules(RULES, 4, false).length, 5, 'untagged too, when asked');
  t.same(parseListing(`${RULES}\n${ROUTES}\n`, 4).length, 3);
  t.same(parseListing('', 6), [], 'nothing listed');
});

t.test('a rule with another selector is not the planned rule', async (t) => {
  const other = JSON.stringify([{ priority: 100, src: '10.0.0.0/8', fwmark: '0x539', table: '133', protocol: '87' }]);
  const [found] = parseRules(other, 4);
  t.not(found?.key, keyOf(plannedIpObjects(4, 0x539, 133)[0]!));
});

t.test('the plan adds what is missing and removes tagged objects it does not have', async (t) => {
  const planned = plannedIpObjects(4, 0x539, 133);
  t.same(planned.map(addArgv), [
    ['ip', '-4', 'rule', 'add', 'fwmark', '0x539', 'lookup', '133', 'protocol', '87'],
    ['ip', '-4', 'route', 'add', 'local', '0.0.0.0/0', 'dev', 'lo', 'table', '133', 'proto', '87'],
  ]);
  const d = diffIpObjects(planned, parseListing(`${RULES}\n${ROUTES}`, 4));
  t.same(d.add, [], 'both are there, tagged');
  t.same(d.remove.map((r) => r.key), ['4 rule fwmark 0x539/0x539 lookup 133'], 'the older weft’s masked rule goes');

  const moved = diffIpObjects(plannedIpObjects(4, 0x10, 200), parseListing(`${RULES}\n${ROUTES}`, 4));
  t.same(moved.add.map(keyOf), ['4 rule fwmark 0x10 lookup 200', '4 route local default dev lo table 200']);
  t.equal(moved.remove.length, 3, 'every tagged object of the old mark and table goes; the untagged twin and table 134 stay');

  const dup = JSON.stringify([
    { priority: 32764, src: 'all', fwmark: '0x539', table: '133', protocol: '87' },
    { priority: 32765, src: 'all', fwmark: '0x539', table: '133', protocol: '87' },
  ]);
  t.same(diffIpObjects(planned, parseListing(`${dup}\n[]`, 4)).remove.map((r) => r.del[5]), ['32765'], 'a duplicate goes, one stays');
  t.same(plannedIpObjects(6, 0x539, 133).map(addArgv)[1], ['ip', '-6', 'route', 'add', 'local', '::/0', 'dev', 'lo', 'table', '133', 'proto', '87']);
});
