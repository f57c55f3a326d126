// A media worker's entry point. Worker threads do not inherit the TypeScript loader the main
// thread registered (bin/rtpproxy.js), so the worker registers it too before loading its module.
import { register } from 'tsx/esm/api';

register();
await import('./media-worker.ts');
