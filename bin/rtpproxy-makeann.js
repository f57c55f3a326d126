#!/usr/bin/env node
// rtpproxy-makeann: WAV to prompt files for P (docs/playback.md). Runs the compiled tool, or its
// TypeScript source through tsx when there is no up-to-date build (bin/entry.js), and exits with
// its code.
import { loadCompiled } from './entry.js';

let module = loadCompiled('makeann.cjs');
if (module === undefined) {
  const { register } = await import('tsx/esm/api');
  register();
  module = await import('../src/tools/makeann.ts');
}
process.exitCode = await module.runMakeann(process.argv.slice(2));
