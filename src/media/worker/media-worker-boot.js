// A media worker's entry point when the daemon runs from the TypeScript sources (the compiled
// daemon in dist/ loads media-worker.js directly). Worker threads do not inherit the TypeScript
// loader the main thread registered (bin/rtpproxy.js), so the worker registers it too before
// loading its module.
import { register } from 'tsx/esm/api';

register();
await import('./media-worker.ts');
