#!/usr/bin/env node
// rtpproxyctl: query and manage a running daemon (docs/operations.md, "rtpproxyctl"). Runs the
// compiled tool, or its TypeScript source through tsx when there is no up-to-date build
// (bin/entry.js), and exits with its code.
import { loadCompiled } from './entry.js';

let module = loadCompiled('ctl.cjs');
if (module === undefined) {
  const { register } = await import('tsx/esm/api');
  register();
  module = await import('../src/tools/ctl.ts');
}
process.exitCode = await module.runCtl(process.argv.slice(2));
