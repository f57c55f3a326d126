// ESLint flat config (docs/style.md §5). Run with `npm run lint` (--max-warnings 0).
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';

// §3 layering: who may import whom. Kept in one place so the overrides below stay readable.
const PURE_IO = ['node:dgram', 'node:net', 'node:fs', 'node:fs/promises', 'dgram', 'net', 'fs'];

export default defineConfig(
  {
    ignores: ['node_modules/**', '.tap/**', 'coverage/**', 'dist/**', 'test/fixtures/**'],
  },
  js.configs.recommended,
  tseslint.configs.strictTypeChecked,
  tseslint.configs.stylisticTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        projectService: true,
        tsconfigRootDir: import.meta.dirname,
      },
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      curly: ['error', 'multi-line'],
      eqeqeq: 'error',
      'no-console': 'error',
      '@typescript-eslint/switch-exhaustiveness-check': 'error',
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      // Numbers in messages (ports, codes, counts) are the common case; objects and unions still fail.
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true }],
      // Off: it treats `undefined`-typed calls as void, which flags the deliberate `return fail(...)`
      // idiom of cli/config.ts, and arrow shorthands like `(err) => reject(err)`. Style only, not safety.
      '@typescript-eslint/no-confusing-void-expression': 'off',
      // A `let` that a closure declared earlier reads (signal handlers, sinks) cannot become a const
      // without a temporal-dead-zone ReferenceError if the closure runs first.
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
      // A leading underscore marks a parameter that an interface requires but this implementation
      // does not use (`(_resolve, reject) =>`, a recorder that ignores the addresses).
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_' },
      ],
    },
  },
  // §3: the pure control, media and record files do no I/O and know nothing of sessions or sockets.
  {
    files: [
      'src/control/{tokenize,parse,modifiers,reply,ecodes,commands}.ts',
      'src/media/{rtp,rtcp,latch,resizer}.ts',
      'src/record/pcap.ts',
    ],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: PURE_IO.map((name) => ({ name, message: 'pure module: no I/O' })),
          patterns: [
            {
              group: ['**/session/**', '**/media/udp-*', '**/daemon*'],
              message: 'see docs/architecture.md',
            },
          ],
        },
      ],
    },
  },
  // §3: session/ never imports control/ (no E-codes, no wire strings).
  {
    files: ['src/session/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['**/control/**'], message: 'session must not know the wire format' },
          ],
        },
      ],
    },
  },
  // §3: media/, record/ and play/ report upwards through callbacks; they never import session/ or control/.
  {
    files: ['src/media/**', 'src/record/**', 'src/play/**'],
    ignores: ['src/media/{rtp,rtcp,latch,resizer}.ts', 'src/record/pcap.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['**/session/**', '**/control/**', '**/daemon*'],
              message: 'media/record/play report upwards through callbacks (docs/architecture.md)',
            },
          ],
        },
      ],
    },
  },
  // The bin shims, the build script and this config are plain JS: no type information. The build
  // script reports on the console.
  {
    files: ['**/*.js', '**/*.mjs'],
    extends: [tseslint.configs.disableTypeChecked],
    languageOptions: { globals: { process: 'readonly', console: 'readonly' } },
  },
  {
    files: ['scripts/**'],
    rules: { 'no-console': 'off' },
  },
  // tap tracks each t.test, and an async callback is how a subtest ends. suite.ts holds the
  // interop suite's subtests for the two kamailio-*.test.ts files.
  {
    files: ['test/**/*.test.ts', 'test/interop/suite.ts'],
    rules: {
      '@typescript-eslint/no-floating-promises': 'off',
      '@typescript-eslint/require-await': 'off',
    },
  },
  // Tests have no pino logger; they print TAP comments ("# skipping ...") to stdout.
  {
    files: ['test/**'],
    rules: { 'no-console': 'off' },
  },
);
