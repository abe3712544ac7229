// Lint: typescript-eslint's recommended rules plus the import boundaries of
// shared/conventions.md, so a layer cannot quietly reach past another:
//   - only pkg/k8s imports @kubernetes/client-node (any sub-path);
//   - only pkg/metrics imports prom-client;
//   - only pkg/native loads the addon (createRequire, process.dlopen, a *.node path);
//   - the planners, injection and policy evaluation stay pure: no file, network or process
//     I/O, no dynamic import() and no createRequire.
// A later config object replaces a rule set by an earlier one, so every group states its
// whole list (built by `boundaries`). scripts/eslint-boundaries.test.ts lints snippets
// against this file and checks each rule fires.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const clientNode = 'Only pkg/k8s talks to the Kubernetes API.';
const promClient = 'Only pkg/metrics creates metrics; import from pkg/metrics.';
const addon = 'Only pkg/native loads the addon.';
const pure = 'Planners, injection and policy evaluation are pure: do I/O at the edge (cmd/ or an executor).';

// Node modules that do I/O, with and without the node: prefix. net's address predicates
// (isIP, isIPv4, isIPv6) are pure string checks and stay allowed.
const IO_MODULES = ['fs', 'fs/promises', 'http', 'https', 'http2', 'child_process', 'net', 'dgram', 'tls', 'dns', 'dns/promises', 'worker_threads', 'cluster'];
const ioPaths = IO_MODULES.flatMap((m) => [m, `node:${m}`]).map((name) =>
  name.endsWith('net') ? { name, allowImportNames: ['isIP', 'isIPv4', 'isIPv6'], message: `${pure} (only isIP/isIPv4/isIPv6 of ${name})` } : { name, message: pure },
);
const NODE_FILE = /\.node$/.source;

/**
 * The boundary rules for one group of files. `owns` lifts the ban on what the group is the
 * one home of; `pure` adds the I/O bans.
 */
function boundaries({ owns = [], isPure = false } = {}) {
  const paths = [];
  const patterns = [];
  const syntax = [];
  if (!owns.includes('k8s')) {
    paths.push({ name: '@kubernetes/client-node', message: clientNode });
    patterns.push({ group: ['@kubernetes/client-node/*'], message: clientNode });
  }
  if (!owns.includes('metrics')) {
    paths.push({ name: 'prom-client', message: promClient });
    patterns.push({ group: ['prom-client/*'], message: promClient });
  }
  const properties = [];
  if (!owns.includes('native')) {
    for (const name of ['node:module', 'module']) paths.push({ name, importNames: ['createRequire'], message: `${addon} (createRequire)` });
    patterns.push({ group: ['**/*.node', '**/addon/build/**'], message: addon });
    properties.push({ object: 'process', property: 'dlopen', message: addon });
    // A require() needs createRequire (banned above), so import() is the remaining route.
    syntax.push({ selector: `ImportExpression > Literal[value=/${NODE_FILE}/]`, message: addon });
  }
  if (isPure) {
    paths.push(...ioPaths);
    for (const name of ['node:module', 'module']) paths.push({ name, importNames: ['createRequire'], message: `${pure} (createRequire)` });
    syntax.push({ selector: 'ImportExpression', message: `${pure} (dynamic import())` });
  }
  return {
    'no-restricted-imports': ['error', { paths: dedupe(paths), patterns }],
    'no-restricted-properties': properties.length ? ['error', ...properties] : 'off',
    'no-restricted-syntax': syntax.length ? ['error', ...syntax] : 'off',
  };
}

/** One entry per module name: two entries for the same path would hide one message. */
function dedupe(paths) {
  const byName = new Map();
  for (const p of paths) if (!byName.has(p.name)) byName.set(p.name, p);
  return [...byName.values()];
}

/** The modules that must stay pure (their tests may read golden files). */
export const PURE_FILES = [
  'pkg/inject/**/*.ts',
  'pkg/intercept/*/plan*.ts',
  'pkg/intercept/common.ts',
  'pkg/intercept/ebpf/maps.ts',
  'pkg/policy/eval*.ts',
  'pkg/policy/cidr.ts',
  'pkg/policy/check.ts',
  'pkg/check/features.ts',
];

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', '.toolchain/**', 'addon/build/**', 'bpf/**', 'charts/**', 'manifests/**', 'coverage/**', '.tap/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      ...boundaries(),
    },
  },
  { files: ['pkg/k8s/**/*.ts'], rules: boundaries({ owns: ['k8s'] }) },
  { files: ['pkg/metrics/**/*.ts'], rules: boundaries({ owns: ['metrics'] }) },
  { files: ['pkg/native/**/*.ts'], rules: boundaries({ owns: ['native'] }) },
  { files: PURE_FILES, ignores: ['**/*.test.ts'], rules: boundaries({ isPure: true }) },
  { files: ['**/*.js', '**/*.mjs'], languageOptions: { globals: { process: 'readonly', console: 'readonly', URL: 'readonly' } } },
);
