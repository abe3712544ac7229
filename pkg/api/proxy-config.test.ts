// `weft proxy` flags and env: defaults, env vs flag precedence, errors naming the flag.
import t from 'tap';
import { parseProxyConfig, publicConfig } from './proxy-config.js';

t.test('defaults follow docs/flags.md', async (t) => {
  const c = parseProxyConfig([], {})!;
  t.match(c, { mode: 'tproxy', inboundPort: 15006, outboundPort: 15001, adminPort: 15020, proxyMark: 0, connectTimeoutMs: 5000, idleTimeoutMs: 3_600_000, detectTimeoutMs: 100, defaultInboundPolicy: 'allow', logLevel: 'info', accessLog: false, drainGraceMs: 20000, relay: 'native' });
  t.same(c.opaquePorts, [25, 587, 3306, 4444, 5432, 6379, 9300, 11211]);
  t.ok(Object.isFrozen(c));
});

t.test('flags win over WEFT_* env; downward-API env becomes pod info', async (t) => {
  const c = parseProxyConfig(['--mode', 'ebpf', '--opaque-ports', '1234, 5678', '--proxy-mark', '0x539', '--access-log'], {
    WEFT_MODE: 'none',
    WEFT_RELAY: 'js',
    WEFT_POD_IPS: '10.0.0.5,fd00::5',
    WEFT_POD_NAMESPACE: 'shop',
    WEFT_APP_PROBES: '{"web/livez":{"tcpSocket":{"port":8080}}}',
  })!;
  t.match(c, { mode: 'ebpf', relay: 'js', proxyMark: 1337, accessLog: true, pod: { namespace: 'shop', ips: ['10.0.0.5', 'fd00::5'] } });
  t.same(c.opaquePorts, [1234, 5678]);
  t.same(c.appProbes, { 'web/livez': { tcpSocket: { port: 8080 } } });
  t.ok(c.opaquePortSet.has(5678));
  t.same(parseProxyConfig([], { WEFT_POD_LABELS: '{"app":"web","tier":"front"}' })!.podLabels, { app: 'web', tier: 'front' }, 'WEFT_POD_LABELS from the injector');
  t.same(parseProxyConfig([], {})!.podLabels, {}, 'no labels given: none');
});

t.test('bad values fail with the flag named and what is allowed', async (t) => {
  const bad = (argv: string[], env: Record<string, string> = {}) => () => parseProxyConfig(argv, env);
  t.throws(bad(['--mode', 'nft']), { code: 'WEFT_ERR_BAD_FLAG', message: /--mode \(WEFT_MODE\): allowed: tproxy, ebpf, none/ });
  t.throws(bad(['--inbound-port', '70000']), { message: /--inbound-port .*1-65535/ });
  t.throws(bad(['--opaque-ports', '25,x']), { message: /--opaque-ports .*"x" is not a port/ });
  t.throws(bad([], { WEFT_RELAY: 'splice' }), { message: /--relay \(WEFT_RELAY\): allowed: native, js/ });
  t.throws(bad(['--app-probes', '{"web/livez":{"exec":{}}}']), { message: /--app-probes/ });
  t.throws(bad(['--app-probes', 'not json']), { message: /--app-probes .*not JSON/ });
  t.throws(bad(['--pod-labels', '["app"]']), { code: 'WEFT_ERR_BAD_FLAG', message: /--pod-labels \(WEFT_POD_LABELS\): must be a JSON object/ });
  t.throws(bad([], { WEFT_POD_LABELS: '{"app":1}' }), { message: /--pod-labels .*label "app": value must be a string/ });
  t.throws(bad(['--pod-labels', '{app: web}']), { message: /--pod-labels .*not JSON/ });
  t.throws(bad(['--admin-port', '15001']), { message: /--admin-port .*must differ/ });
  t.throws(bad(['--bogus']), { code: 'WEFT_ERR_BAD_FLAG' });
});

t.test('publicConfig hides probe header values and controller credentials', async (t) => {
  const c = parseProxyConfig(['--controller', 'https://u:pw@ctl:8443/p?token=x', '--app-probes', '{"web/readyz":{"httpGet":{"port":80,"httpHeaders":[{"name":"Authorization","value":"Bearer x"}]}}}'], {})!;
  const s = JSON.stringify(publicConfig(c));
  t.notMatch(s, /pw|token=x|Bearer/);
  t.match(s, /ctl:8443/);
});

t.test('controller CA flags: the injector env, a file, and the combinations refused', async (t) => {
  const pem = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
  const c = parseProxyConfig(['--controller', 'https://weft-controller.weft-system.svc:443'], { WEFT_CONTROLLER_CA_PEM: pem })!;
  t.equal(c.controllerCaPem, pem, 'WEFT_CONTROLLER_CA_PEM, as the injector sets it');
  t.equal(publicConfig(c).controllerCaPem, '(PEM, 1 certificate(s))', 'GET /config summarizes the bundle');
  t.equal(parseProxyConfig(['--controller', 'https://c', '--controller-ca', '/etc/ca.crt'], {})!.controllerCa, '/etc/ca.crt');
  t.throws(() => parseProxyConfig(['--controller', 'http://c:80', '--controller-ca', '/etc/ca.crt'], {}), { message: /--controller-ca \(WEFT_CONTROLLER_CA\): needs an https:\/\/ --controller URL/ });
  t.throws(() => parseProxyConfig([], { WEFT_CONTROLLER_CA_PEM: pem }), { message: /--controller-ca-pem .*needs an https:\/\//, code: 'WEFT_ERR_BAD_FLAG' });
  t.throws(() => parseProxyConfig(['--controller', 'https://c', '--controller-ca', '/a', `--controller-ca-pem=${pem}`], {}), { message: /not both/ });
  t.throws(() => parseProxyConfig(['--controller', 'https://c'], { WEFT_CONTROLLER_CA_PEM: 'not a pem' }), { message: /--controller-ca-pem .*BEGIN CERTIFICATE/ });
  t.throws(() => parseProxyConfig(['--controller', 'ftp://c'], {}), { message: /--controller .*must be an http:\/\/ or https:\/\/ URL/ });
});
