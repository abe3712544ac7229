// One version everywhere it is written down: package.json is the source (weft version and
// the weft.dev/injected marker read it); the chart's appVersion is the default image tag
// of the controller and every injected sidecar; the Dockerfile labels the image with it.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { chartDir, repoRoot } from './helm.js';

const read = (...p: string[]) => readFileSync(join(repoRoot, ...p), 'utf8');
const pkg = JSON.parse(read('package.json')) as { version: string };
const SEMVER = /^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/;

t.test('package.json, package-lock.json, Chart.yaml appVersion and the Dockerfile agree', async (t) => {
  t.match(pkg.version, SEMVER, 'package.json version is semver');
  const lock = JSON.parse(read('package-lock.json')) as { version: string; packages: Record<string, { version?: string }> };
  t.equal(lock.version, pkg.version, 'package-lock.json');
  t.equal(lock.packages['']?.version, pkg.version, 'package-lock.json root package');
  const chart = parseYaml(readFileSync(join(chartDir, 'Chart.yaml'), 'utf8')) as { version: string; appVersion: string };
  t.equal(chart.appVersion, pkg.version, 'Chart.yaml appVersion (the default image tag)');
  t.match(chart.version, SEMVER, 'Chart.yaml version is semver (the chart may be released on its own)');
  const arg = /^ARG VERSION=(\S+)$/m.exec(read('Dockerfile'))?.[1];
  t.equal(arg, pkg.version, 'Dockerfile ARG VERSION (org.opencontainers.image.version)');
  const tag = /docker build -t ghcr\.io\/weft-dev\/weft:(\S+)/.exec(read('docs', 'install.md'))?.[1];
  t.equal(tag, pkg.version, 'the docker build example in docs/install.md');
});
