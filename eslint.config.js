// ESLint (flat config): typescript-eslint's type-aware rules for what the code assumes — every promise is awaited,
// returned or explicitly voided (an unhandled rejection in the request path ends a worker), no promise where a
// callback's return is ignored — plus one import order. Formatting is Prettier's job (npm run format:check).
import js from '@eslint/js';
import importX from 'eslint-plugin-import-x';
import tseslint from 'typescript-eslint';

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
      'no-constant-condition': ['error', { checkLoops: false }],
      // Initialise-then-assign is how this code keeps variables monomorphic and declared at the top of a scope.
      'no-useless-assignment': 'off',
      // Hot-path listeners share one function per session and read the stream from `this`, the owner from a local.
      '@typescript-eslint/no-this-alias': 'off',
    },
  },
);
