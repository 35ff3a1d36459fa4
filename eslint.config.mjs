// Lint: typescript-eslint's type-aware rules over the product, the test bed, the tests and the benches. The rules that
// catch what tests miss come first: a promise nobody awaits (a step that runs after its activity ended, a rejection
// nobody sees) and a promise handed to something that expects a plain callback.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'dist-testbed/', 'node_modules/', 'coverage/'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' },
      ],
      // Plain closures are declared with method syntax in our interfaces (close(), stop()) and destructured freely.
      '@typescript-eslint/unbound-method': 'off',
      // An async function without await is how a function meets an interface that returns a promise.
      '@typescript-eslint/require-await': 'off',
    },
  },
  {
    // The house reads top-down: the layers below never call back up into activities or workflows.
    files: ['src/**/*.ts'],
    ignores: ['src/cli/**', 'src/schedules/**', 'src/alerts/**', 'src/temporal/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['**/activities', '**/activities/**', '**/workflows', '**/workflows/**'],
              message: 'src/ is below activities and workflows: pass what you need down instead',
            },
          ],
        },
      ],
    },
  },
  {
    // Storage is a generic object store; backups are built on it, not the other way round.
    files: ['src/storage/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['**/backup', '**/backup/**', '**/recovery/**', '**/activities/**', '**/workflows/**'],
              message: 'src/storage knows nothing of backups',
            },
          ],
        },
      ],
    },
  },
  {
    // jest's asymmetric matchers (expect.any, expect.stringMatching) are typed any; tests assert on shapes freely.
    files: ['test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
    },
  },
  {
    // The build and render scripts are plain CommonJS run by node.
    files: ['**/*.js', '**/*.mjs', '**/*.cjs'],
    extends: [tseslint.configs.disableTypeChecked],
    languageOptions: {
      sourceType: 'commonjs',
      globals: { require: 'readonly', module: 'writable', __dirname: 'readonly', process: 'readonly', console: 'readonly' },
    },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
);
