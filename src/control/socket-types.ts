import type { CommandOrigin } from '../base/net.ts';

/**
 * A reply whose text does not tell whether the command failed: an L that finds no session
 * answers `0` and counts in `ncmds_errs` (sippy/rtpproxy src/commands/rpcpv1_ul.c delivers it
 * as an error).
 */
export interface CountedReply {
  readonly text: string;
  readonly failed: boolean;
  /**
   * Left unanswered where the socket allows it: a draining daemon's refusal of a new session. A
   * datagram socket sends an empty datagram and a stream socket closes the connection instead of
   * replying, so that Kamailio and OpenSIPS, which fail the call on an error reply, take the daemon
   * out of their set and offer the call to another (docs/protocol.md 2.10). `text` is the reply
   * where the socket cannot (stdio).
   */
  readonly unanswered?: boolean;
}

/**
 * Runs one command line (without cookie) and resolves with the full reply text, ending in LF
 * (a plain string fails when it starts with `E<digit>`). Never rejects: every input gets exactly
 * one reply. `origin` says where the command came from (for the `%%CC_SELF%%` notify target);
 * absent for unix and stdio sockets. `receivedAt`: when the command arrived (monotonic ms), before
 * any wait in the command queue.
 */
export type CommandHandler = (
  line: string,
  origin?: CommandOrigin,
  receivedAt?: number,
) => Promise<string | CountedReply>;
