/**
 * The ng protocol's parts the composition root loads when an `ng:` socket is configured
 * (docs/ng.md); one module, so that the daemon loads them with one import.
 */
export { encodeBencode } from './ng/bencode.ts';
export { NgDispatcher } from './ng/dispatch-ng.ts';
export { ngFraming } from './ng/framing.ts';
