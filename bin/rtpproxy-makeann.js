#!/usr/bin/env node
// rtpproxy-makeann: WAV to prompt files for P (docs/playback.md). Loads TypeScript through tsx, as
// bin/rtpproxy.js does, then runs the tool and exits with its code.
import { register } from 'tsx/esm/api';

register();
const { runMakeann } = await import('../src/tools/makeann.ts');
process.exitCode = await runMakeann(process.argv.slice(2));
