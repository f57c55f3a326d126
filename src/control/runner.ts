import type { Logger } from 'pino';
import type { CommandOrigin } from '../util/origin-types.ts';
import type { GlobalStats } from '../util/stats.ts';
import type { CommandHandler } from './socket-types.ts';

/** Reply used when the handler breaks its never-rejects contract: E89 is NOMEM_9, "internal error". */
export const INTERNAL_ERROR_REPLY = 'E89\n';

/** What the composition root needs from every control listener. */
export interface ControlListener {
  /** Binds (or starts reading); rejects with an Error naming the socket spec. */
  listen(): Promise<void>;
  /** Stops serving; idempotent. */
  close(): Promise<void>;
}

const ERROR_REPLY = /^E[0-9]/;

/**
 * Runs commands from every control socket one at a time, in arrival order, and keeps the command
 * counters. The reference holds a global lock around command execution (protocol.md 1.8); the
 * queue gives the same ordering even when a handler awaits a socket bind.
 */
export class CommandRunner {
  readonly #handler: CommandHandler;
  readonly #stats: GlobalStats;
  readonly #log: Logger;
  #tail: Promise<void> = Promise.resolve();

  constructor(handler: CommandHandler, stats: GlobalStats, log: Logger) {
    this.#handler = handler;
    this.#stats = stats;
    this.#log = log;
  }

  /**
   * Queues one command line (no cookie, no framing LF) and resolves with its reply. Never rejects.
   * `origin`: where it came from, handed to the handler.
   */
  run(line: string, origin?: CommandOrigin): Promise<string> {
    const result = this.#tail.then(() => this.#execute(line, origin));
    this.#tail = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }

  /** Counts a retransmission answered from the reply cache (`ncmds_rcvd_ndups`). */
  noteDuplicate(): void {
    this.#stats.ncmdsRcvdNdups++;
  }

  /** Resolves once every command queued so far has been answered (for an orderly shutdown). */
  drain(): Promise<void> {
    return this.#tail;
  }

  async #execute(line: string, origin: CommandOrigin | undefined): Promise<string> {
    // Counted before running, so `G ncmds_rcvd` includes itself but not its own reply (5.3).
    this.#stats.ncmdsRcvd++;
    this.#log.debug({ line }, 'received command');
    let reply: string;
    try {
      const value: unknown = await this.#handler(line, origin);
      if (typeof value !== 'string') throw new TypeError(`handler resolved with ${typeof value}`);
      reply = value;
    } catch (err) {
      this.#log.error({ err, line }, 'command handler failed');
      reply = INTERNAL_ERROR_REPLY;
    }
    this.#stats.ncmdsRepld++;
    if (ERROR_REPLY.test(reply)) {
      this.#stats.ncmdsErrs++;
    } else {
      this.#stats.ncmdsSuccd++;
    }
    this.#log.debug({ reply }, 'sending reply');
    return reply;
  }
}
