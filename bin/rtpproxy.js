#!/usr/bin/env node
// The daemon's program: runs the bundled daemon (dist/rtpproxy.cjs), or the TypeScript entry point
// (src/cli/main.ts) through tsx when there is no up-to-date build (bin/entry.js). A background
// re-spawn runs this same file again with the same node options and environment, so it makes the
// same choice.
import { loadCompiled } from './entry.js';

let main = loadCompiled('rtpproxy.cjs');
if (main === undefined) {
  const { setFlagsFromString } = await import('node:v8');
  const { register } = await import('tsx/esm/api');
  // tsx compiles modules on a thread of its own, idle once the daemon has loaded. V8's memory
  // reducer would then compact that thread's heap, about 8 s after start: 10 to 20 ms of CPU that,
  // on a daemon confined to one core, stall the relay. V8 reads the flag when it creates a heap,
  // so it is off for that thread only and back on for the threads created later (media workers).
  setFlagsFromString('--no-memory-reducer');
  register();
  setFlagsFromString('--memory-reducer');
  main = await import('../src/cli/main.ts');
}
await main.run();
