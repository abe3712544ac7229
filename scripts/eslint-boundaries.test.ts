// The import boundaries in eslint.config.js, checked by linting small snippets as if they
// sat at a given path: each forbidden reach is reported where it is forbidden, and the same
// code is accepted where it belongs.
import t from 'tap';
import { ESLint } from 'eslint';
import { join } from 'node:path';
import { repoRoot } from './helm.js';

const eslint = new ESLint({ cwd: repoRoot, overrideConfigFile: join(repoRoot, 'eslint.config.js') });

/** The boundary messages ESLint reports for `code` placed at `file` (other rules left out). */
async function boundaryErrors(file: string, code: string): Promise<string[]> {
  const [res] = await eslint.lintText(code, { filePath: join(repoRoot, file) });
  return (res?.messages ?? []).filter((m) => m.ruleId?.startsWith('no-restricted-') || m.fatal).map((m) => `${m.ruleId ?? 'fatal'}: ${m.message}`);
}

const PURE = ['pkg/inject/new.ts', 'pkg/intercept/tproxy/plan-new.ts', 'pkg/intercept/ebpf/plan.ts', 'pkg/intercept/common.ts', 'pkg/intercept/ebpf/maps.ts', 'pkg/policy/eval.ts', 'pkg/policy/cidr.ts', 'pkg/policy/check.ts', 'pkg/check/features.ts'];
const IO_IMPORTS = ["import { readFileSync } from 'fs';", "import { readFile } from 'fs/promises';", "import { readFile } from 'node:fs/promises';", "import http from 'http';", "import https from 'node:https';", "import { spawn } from 'child_process';", "import { connect } from 'net';", "import { createConnection } from 'node:net';"];

t.test('pure modules: no I/O imports, no dynamic import(), no createRequire', async (t) => {
  for (const file of PURE) {
    for (const line of IO_IMPORTS) t.match((await boundaryErrors(file, `${line}\nexport const x = 1;\n`)).join('\n'), /pure/, `${file}: ${line}`);
    t.match((await boundaryErrors(file, "export const m = await import('./x.js');\n")).join('\n'), /dynamic import/, `${file}: import()`);
    t.match((await boundaryErrors(file, "import { createRequire } from 'node:module';\nexport const r = createRequire(import.meta.url);\n")).join('\n'), /createRequire/, `${file}: createRequire`);
  }
  t.same(await boundaryErrors('pkg/intercept/common.ts', "import { isIP, isIPv4, isIPv6 } from 'node:net';\nexport const f = [isIP, isIPv4, isIPv6];\n"), [], "net's address predicates stay allowed");
  t.same(await boundaryErrors('pkg/inject/new.ts', "import { createHash } from 'node:crypto';\nexport const h = createHash('sha256');\n"), [], 'hashing is not I/O');
});

t.test('the same I/O is fine at the edge and in tests of pure modules', async (t) => {
  for (const file of ['cmd/init/index.ts', 'pkg/intercept/tproxy/exec.ts', 'pkg/inject/inject.test.ts', 'pkg/policy/load.ts']) {
    t.same(await boundaryErrors(file, "import { readFileSync } from 'node:fs';\nimport { spawn } from 'child_process';\nexport const x = [readFileSync, spawn];\n"), [], file);
  }
});

t.test('only pkg/k8s imports @kubernetes/client-node, sub-paths included', async (t) => {
  const code = ["import { KubeConfig } from '@kubernetes/client-node';", "import * as w from '@kubernetes/client-node/dist/watch.js';", "export * from '@kubernetes/client-node';"];
  for (const file of ['pkg/webhook/server.ts', 'cmd/controller/index.ts', 'pkg/inject/x.ts', 'pkg/metrics/x.ts', 'e2e/x.test.ts']) {
    for (const line of code) t.match((await boundaryErrors(file, `${line}\n`)).join('\n'), /Only pkg\/k8s/, `${file}: ${line}`);
  }
  for (const line of code) t.same(await boundaryErrors('pkg/k8s/client.ts', `${line}\n`), [], `pkg/k8s: ${line}`);
});

t.test('only pkg/metrics imports prom-client', async (t) => {
  for (const line of ["import { Counter } from 'prom-client';", "import x from 'prom-client/lib/registry.js';"]) {
    for (const file of ['pkg/proxy/x.ts', 'pkg/k8s/x.ts', 'pkg/native/x.ts']) t.match((await boundaryErrors(file, `${line}\n`)).join('\n'), /Only pkg\/metrics/, `${file}: ${line}`);
    t.same(await boundaryErrors('pkg/metrics/x.ts', `${line}\n`), [], `pkg/metrics: ${line}`);
  }
});

t.test('only pkg/native loads the addon', async (t) => {
  const code = [
    "import { createRequire } from 'node:module';\nexport const r = createRequire(import.meta.url);",
    "import { createRequire } from 'module';\nexport const r = createRequire(import.meta.url);",
    'process.dlopen({ exports: {} }, "/x/weft_native.node");',
    "import addon from '../../addon/build/Release/weft_native.node';\nexport default addon;",
    "export const a = await import('/opt/weft/addon/build/Release/weft_native.node');",
  ];
  for (const file of ['pkg/proxy/x.ts', 'cmd/proxy/index.ts', 'e2e/native/x.test.ts', 'scripts/x.ts']) {
    for (const line of code) t.match((await boundaryErrors(file, `${line}\n`)).join('\n'), /Only pkg\/native loads the addon/, `${file}: ${line.split('\n')[0]}`);
  }
  for (const line of code) t.same(await boundaryErrors('pkg/native/load.ts', `${line}\n`), [], `pkg/native: ${line.split('\n')[0]}`);
});
