#!/usr/bin/env node
// rtpproxy-extract: recordings of G.711 calls to WAV files (docs/recording.md). Loads TypeScript
// through tsx, as bin/rtpproxy.js does, then runs the tool and exits with its code.
import { register } from 'tsx/esm/api';

register();
const { runExtract } = await import('../src/tools/extract.ts');
process.exitCode = await runExtract(process.argv.slice(2));
