// ESLint flat config (docs/style.md §5). Run with `npm run lint` (--max-warnings 0).
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';

// Layers (docs/architecture.md, "Layers"): each folder of src/ may import only the folders named
// here, all of them below it; util/ imports nothing of src/. Kept in one table so that the rules
// below name every real folder and catch every upward import.
const LAYERS = {
  util: [],
  base: ['util'],
  media: ['base', 'util'],
  nft: ['base', 'util'],
  notify: ['base', 'util'],
  record: ['media', 'base', 'util'],
  play: ['media', 'base', 'util'],
  tools: ['control', 'session', 'record', 'media', 'base', 'util'],
  session: ['record', 'play', 'media', 'base', 'util'],
  control: ['session', 'media', 'notify', 'base', 'util'],
  ng: ['control', 'session', 'media', 'base', 'util'],
};
/** The places above every folder of LAYERS: the composition root and the command line. */
const TOP = { daemon: ['**/daemon.ts', '**/daemon-types.ts'], cli: ['**/cli/**'] };
const FOLDERS = Object.keys(LAYERS);

/** Import patterns that a file of `folder` must not use: every folder it may not import. */
function forbiddenFor(folder) {
  const allowed = new Set([folder, ...LAYERS[folder]]);
  return [
    ...FOLDERS.filter((f) => !allowed.has(f)).map((f) => `**/${f}/**`),
    ...TOP.daemon,
    ...TOP.cli,
  ];
}

/** The no-restricted-imports rule of `folder`, with `paths` (node modules) forbidden too. */
function layerRule(folder, paths = []) {
  return [
    'error',
    {
      paths,
      patterns: [
        {
          group: forbiddenFor(folder),
          message: `${folder}/ imports only ${LAYERS[folder].join(', ') || 'nothing of src/'} (docs/architecture.md, "Layers")`,
        },
      ],
    },
  ];
}

// The pure files of the protocol core, the packet code and the pcap encoder do no I/O.
const PURE_IO = ['node:dgram', 'node:net', 'node:fs', 'node:fs/promises', 'dgram', 'net', 'fs'].map(
  (name) => ({ name, message: 'pure module: no I/O' }),
);
const PURE_FILES = {
  control: ['src/control/{tokenize,parse,modifiers,reply,ecodes,commands}.ts'],
  media: ['src/media/{rtp,rtp-stats,resizer}.ts'],
  record: ['src/record/pcap.ts'],
  ng: ['src/ng/{bencode,message,sdp,remote}.ts'],
};

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
  // Layers: one block per folder of src/ (the daemon and cli/ sit above them all).
  ...FOLDERS.map((folder) => ({
    files: [`src/${folder}/**`],
    ignores: PURE_FILES[folder] ?? [],
    rules: { 'no-restricted-imports': layerRule(folder) },
  })),
  ...Object.entries(PURE_FILES).map(([folder, files]) => ({
    files,
    rules: { 'no-restricted-imports': layerRule(folder, PURE_IO) },
  })),
  {
    files: ['src/daemon.ts', 'src/daemon-types.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ group: TOP.cli, message: 'the daemon sits below the command line' }] },
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
