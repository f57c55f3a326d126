#!/usr/bin/env node
// The only JavaScript source: load TypeScript through tsx, then run the entry point, which starts
// itself when it sees that this file is the program (src/cli/main.ts, isEntryPoint). A background
// re-spawn runs this same file again with the same node options, so it loads tsx the same way.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/main.ts');
