// Lint: typescript-eslint's recommended rules plus the import boundaries of
// shared/conventions.md, so a layer cannot quietly reach past another.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const restrict = (paths, patterns = []) => ({
  'no-restricted-imports': ['error', { paths, patterns }],
});
const clientNode = { name: '@kubernetes/client-node', message: 'Only pkg/k8s talks to the Kubernetes API.' };
const promClient = { name: 'prom-client', message: 'Only pkg/metrics creates metrics; import from pkg/metrics.' };
const addonFile = { group: ['**/*.node', '**/addon/build/**'], message: 'Only pkg/native loads the addon.' };
const io = ['node:fs', 'node:fs/promises', 'node:child_process', 'node:net', 'node:http', 'node:https', 'fs', 'child_process', 'net'].map(
  (name) => ({ name, message: 'Planners and policy evaluation are pure: do I/O at the edge (cmd/ or an executor).' }),
);

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', '.toolchain/**', 'addon/build/**', 'bpf/**', 'charts/**', 'manifests/**', 'coverage/**', '.tap/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      ...restrict([clientNode, promClient], [addonFile]),
    },
  },
  { files: ['pkg/k8s/**/*.ts'], rules: restrict([promClient], [addonFile]) },
  { files: ['pkg/metrics/**/*.ts'], rules: restrict([clientNode], [addonFile]) },
  { files: ['pkg/native/**/*.ts'], rules: restrict([clientNode, promClient]) },
  {
    files: ['pkg/inject/**/*.ts', 'pkg/policy/eval*.ts', 'pkg/intercept/*/plan*.ts'],
    ignores: ['**/*.test.ts'],
    rules: restrict([clientNode, promClient, ...io], [addonFile]),
  },
  { files: ['**/*.js', '**/*.mjs'], languageOptions: { globals: { process: 'readonly', console: 'readonly', URL: 'readonly' } } },
);
