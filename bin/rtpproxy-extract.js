#!/usr/bin/env node
// rtpproxy-extract: recordings of G.711 calls to WAV files (docs/recording.md). Runs the compiled
// tool, or its TypeScript source through tsx when there is no up-to-date build (bin/entry.js), and
// exits with its code.
import { loadCompiled } from './entry.js';

let module = loadCompiled('extract.cjs');
if (module === undefined) {
  const { register } = await import('tsx/esm/api');
  register();
  module = await import('../src/tools/extract.ts');
}
process.exitCode = await module.runExtract(process.argv.slice(2));
