import type { CommandOrigin } from '../util/origin-types.ts';

/** A control socket as given with `-s` (protocol.md 1.1). */
export type ControlSocketSpec =
  | { readonly kind: 'unix' | 'cunix'; readonly path: string }
  | { readonly kind: 'udp' | 'udp6'; readonly host: string; readonly port: number }
  | { readonly kind: 'tcp' | 'tcp6'; readonly host: string; readonly port: number }
  | { readonly kind: 'stdio' | 'stdioc' };

/**
 * Runs one command line (without cookie) and resolves with the full reply text, ending in LF.
 * Never rejects: every input gets exactly one reply. `origin` says where the command came from
 * (for the `%%CC_SELF%%` notify target); absent for unix and stdio sockets.
 */
export type CommandHandler = (line: string, origin?: CommandOrigin) => Promise<string>;
