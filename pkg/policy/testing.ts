// Test helpers for policy: a private CA and a server certificate it signed (openssl CLI),
// the way the chart's Helm-made CA signs the controller's serving certificate.
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export { haveOpenssl } from '../webhook/test-helpers.js';

export interface TestPki {
  ca: string;
  cert: string;
  key: string;
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/** A CA named `name` and a server certificate signed by it, for 127.0.0.1, localhost and `ips`. */
export function makePki(dir: string, name: string, ips: readonly string[] = []): TestPki {
  const f = (x: string) => join(dir, `${name}-${x}`);
  const run = (args: string[]) => execFileSync('openssl', args, { stdio: 'ignore' });
  run(['req', '-x509', ...EC, '-keyout', f('ca.key'), '-out', f('ca.crt'), '-days', '1', '-subj', `/CN=${name}-ca`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  run(['req', ...EC, '-keyout', f('tls.key'), '-out', f('tls.csr'), '-subj', '/CN=weft-controller']);
  const sans = ['IP:127.0.0.1', 'DNS:localhost', ...ips.map((ip) => `IP:${ip}`)].join(',');
  writeFileSync(f('ext'), `subjectAltName=${sans}\nextendedKeyUsage=serverAuth\n`);
  run(['x509', '-req', '-in', f('tls.csr'), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f('tls.crt'), '-days', '1', '-extfile', f('ext')]);
  return { ca: readFileSync(f('ca.crt'), 'utf8'), cert: readFileSync(f('tls.crt'), 'utf8'), key: readFileSync(f('tls.key'), 'utf8') };
}

/** A writable that keeps pino's JSON lines, for asserting on what was logged. */
export function logSink(): { stream: NodeJS.WritableStream; lines: () => Record<string, unknown>[] } {
  const chunks: string[] = [];
  const stream = {
    write(c: string | Buffer) {
      chunks.push(String(c));
      return true;
    },
  } as unknown as NodeJS.WritableStream;
  return {
    stream,
    lines: () =>
      chunks
        .join('')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}
