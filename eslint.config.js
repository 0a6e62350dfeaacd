// ESLint (flat config): typescript-eslint's type-aware rules for what the code assumes — every promise is awaited,
// returned or explicitly voided (an unhandled rejection in the request path ends a worker), no promise where a
// callback's return is ignored — plus one import order and the layer rules of docs/architecture.md. Formatting is
// Prettier's job (npm run format:check).
import js from '@eslint/js';
import importX, { createNodeResolver } from 'eslint-plugin-import-x';
import tseslint from 'typescript-eslint';

/** The lower layer: the only part of core/ that variants may import. */
const LOWER = ['./core/base', './core/contracts'];
/** The planes under the control plane. */
const PLANES = ['./core/admin', './core/alerts', './core/config', './core/data', './core/observe', './core/plugins', './core/proxy'];
/** Every folder of core/ above the lower layer. */
const CORE_ABOVE_BASE = [...PLANES, './core/control'];

/**
 * The import rules of docs/architecture.md, one zone each (`target` may not import `from`): an import against
 * them fails `npm run lint`, so CI.
 */
const LAYER_ZONES = [
  {
    target: './variants',
    from: './core',
    except: ['./contracts', './base'],
    message: 'variants implement core/contracts/ and may use core/base/ only (docs/architecture.md).',
  },
  {
    target: [...LOWER, ...CORE_ABOVE_BASE, './core/cli.ts'],
    from: './variants',
    message: 'only core/variants.ts (the composition root) imports variants/; take the factory as a parameter (docs/architecture.md).',
  },
  {
    target: LOWER,
    from: CORE_ABOVE_BASE.filter((d) => d !== './core/config'),
    message: 'core/base/ and core/contracts/ are the lower layer: they import nothing above them (docs/architecture.md).',
  },
  {
    target: LOWER,
    from: './core/config',
    except: ['./types.ts'],
    message: 'the lower layer reads config types (core/config/types.ts) only (docs/architecture.md).',
  },
  {
    target: [...LOWER, ...PLANES],
    from: './core/control',
    // the plugins' channel to services in the primary process (a rate limit counted over all workers)
    except: ['./primary-rpc.ts'],
    message: 'the control plane starts and reloads the rest; nothing below it imports it (docs/architecture.md).',
  },
  {
    target: [...LOWER, ...CORE_ABOVE_BASE],
    from: './core/cli.ts',
    message: 'core/cli.ts is the entry point; nothing imports it (docs/architecture.md).',
  },
  {
    target: [...LOWER, ...PLANES.filter((d) => d !== './core/config'), './core/config/!(validator).ts'],
    from: './core/variants.ts',
    message: 'variant factories are resolved by the control plane (resolveVariants) and handed down (docs/architecture.md).',
  },
];

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'reports/**', '**/*.mjs', 'test/support/fixtures/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    // The dashboard's page script runs in the browser, as served (no bundler): browser globals, a script not a module.
    files: ['core/dashboard/static/**/*.js'],
    languageOptions: {
      sourceType: 'script',
      globals: { document: 'readonly', EventSource: 'readonly', Chart: 'readonly', fetch: 'readonly', setInterval: 'readonly' },
    },
  },
  {
    files: ['**/*.ts'],
    languageOptions: {
      parserOptions: { project: ['./tsconfig.check.json'], tsconfigRootDir: import.meta.dirname },
    },
    plugins: { 'import-x': importX },
    // resolves the NodeNext '.js' specifiers to their '.ts' sources, so the zone and cycle rules see real files
    settings: {
      'import-x/resolver-next': [createNodeResolver({ extensions: ['.ts', '.js', '.mjs', '.json', '.node'], extensionAlias: { '.js': ['.ts', '.js'] } })],
      'import-x/parsers': { '@typescript-eslint/parser': ['.ts'] },
      'import-x/extensions': ['.ts', '.js'],
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/only-throw-error': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      '@typescript-eslint/no-explicit-any': 'error',
      'import-x/order': [
        'error',
        { groups: ['builtin', 'external', 'internal', 'parent', 'sibling', 'index'], 'newlines-between': 'never', alphabetize: { order: 'asc' } },
      ],
      'import-x/no-duplicates': 'error',
      'import-x/no-restricted-paths': ['error', { zones: LAYER_ZONES }],
      'import-x/no-cycle': ['error', { ignoreExternal: true }],
      'no-constant-condition': ['error', { checkLoops: false }],
      // Initialise-then-assign is how this code keeps variables monomorphic and declared at the top of a scope.
      'no-useless-assignment': 'off',
      // Hot-path listeners share one function per session and read the stream from `this`, the owner from a local.
      '@typescript-eslint/no-this-alias': 'off',
    },
  },
);
