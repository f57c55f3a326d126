#!/usr/bin/env node
// rtpproxy-makeann: WAV to prompt files for P (docs/playback.md). Runs the compiled tool, or its
// TypeScript source through tsx when there is no up-to-date build (bin/entry.js), and exits with
// its code.
import { compiledEntry } from './entry.js';

const compiled = compiledEntry('tools/makeann.js');
let module;
if (compiled !== undefined) {
  module = await import(compiled.href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  module = await import('../src/tools/makeann.ts');
}
process.exitCode = await module.runMakeann(process.argv.slice(2));
