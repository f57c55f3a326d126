#!/usr/bin/env node
// The only JavaScript source: load TypeScript through tsx, then run the entry point, which starts
// itself when it sees that this file is the program (src/cli/main.ts, isEntryPoint). A background
// re-spawn runs this same file again with the same node options, so it loads tsx the same way.
import { setFlagsFromString } from 'node:v8';
import { register } from 'tsx/esm/api';

// tsx compiles modules on a thread of its own, idle once the daemon has loaded. V8's memory
// reducer would then compact that thread's heap, about 8 s after start: 10 to 20 ms of CPU that,
// on a daemon confined to one core, stall the relay. V8 reads the flag when it creates a heap, so
// it is off for that thread only and back on for the threads created later (media workers).
setFlagsFromString('--no-memory-reducer');
register();
setFlagsFromString('--memory-reducer');
await import('../src/cli/main.ts');
