import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { CommandOrigin } from '../base/net.ts';
import type { GlobalStats } from '../util/stats.ts';
import type { CommandHandler, CountedReply } from './socket-types.ts';

/** Reply used when the handler breaks its never-rejects contract: E89 is NOMEM_9, "internal error". */
export const INTERNAL_ERROR_REPLY = 'E89\n';

/** What {@link CommandRunner.run} resolves with for a command left unanswered (CountedReply). */
export const NO_ANSWER = '';

/** What the composition root needs from every control listener. */
export interface ControlListener {
  /** Binds (or starts reading); rejects with an Error naming the socket spec. */
  listen(): Promise<void>;
  /** Stops serving; idempotent. */
  close(): Promise<void>;
}

const ERROR_REPLY = /^E[0-9]/;

/**
 * Told of every command: its line, its reply (the one it would have had when left unanswered)
 * and the seconds from its arrival to its outcome (queueing included).
 */
export type CommandObserver = (line: string, reply: string, seconds: number) => void;

function isCountedReply(value: unknown): value is CountedReply {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { text?: unknown }).text === 'string' &&
    typeof (value as { failed?: unknown }).failed === 'boolean'
  );
}

/**
 * Runs commands from every control socket one at a time, in arrival order, and keeps the command
 * counters. The reference holds a global lock around command execution (docs/protocol.md 2.9); the
 * queue gives the same ordering even when a handler awaits a socket bind.
 */
export class CommandRunner {
  readonly #handler: CommandHandler;
  readonly #stats: GlobalStats;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #observer: CommandObserver | undefined;
  #tail: Promise<void> = Promise.resolve();

  /**
   * `now`: the monotonic clock that stamps each command's arrival; `observer`: told of every
   * answered command (the metrics).
   */
  constructor(
    handler: CommandHandler,
    stats: GlobalStats,
    log: Logger,
    now: () => number = () => performance.now(),
    observer?: CommandObserver,
  ) {
    this.#handler = handler;
    this.#stats = stats;
    this.#log = log;
    this.#now = now;
    this.#observer = observer;
  }

  /**
   * Queues one command line (no cookie, no framing LF) and resolves with its reply. Never rejects.
   * `origin`: where it came from, handed to the handler. `mayLeaveUnanswered`: the socket can leave
   * a command unanswered, and then resolves with {@link NO_ANSWER} for an `unanswered` reply.
   */
  run(line: string, origin?: CommandOrigin, mayLeaveUnanswered = false): Promise<string> {
    const receivedAt = this.#now();
    return this.#enqueue(() => this.#execute(line, origin, receivedAt, mayLeaveUnanswered));
  }

  /**
   * Queues a command of another protocol (ng) behind the same queue, so that it runs one at a
   * time with every other command, and counts it like one. `task` gets the command's arrival time
   * and resolves with its reply and whether it failed; it must not reject (a rejection is logged,
   * counted as an error and answered with `onCrash()`).
   */
  runTask<T>(
    task: (receivedAt: number) => Promise<{ readonly reply: T; readonly failed: boolean }>,
    onCrash: () => T,
  ): Promise<T> {
    const receivedAt = this.#now();
    return this.#enqueue(async () => {
      this.#stats.ncmdsRcvd++;
      let result: { readonly reply: T; readonly failed: boolean };
      try {
        result = await task(receivedAt);
      } catch (err) {
        this.#log.error({ err }, 'command task failed');
        result = { reply: onCrash(), failed: true };
      }
      this.#count(result.failed);
      return result.reply;
    });
  }

  #enqueue<T>(work: () => Promise<T>): Promise<T> {
    const result = this.#tail.then(work);
    this.#tail = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }

  /** The command counters of one command: replied to, and succeeded or failed. */
  #count(failed: boolean, replied = true): void {
    if (replied) this.#stats.ncmdsRepld++;
    if (failed) {
      this.#stats.ncmdsErrs++;
    } else {
      this.#stats.ncmdsSuccd++;
    }
  }

  /** Counts a retransmission answered from the reply cache (`ncmds_rcvd_ndups`). */
  noteDuplicate(): void {
    this.#stats.ncmdsRcvdNdups++;
  }

  /** Resolves once every command queued so far has been answered (for an orderly shutdown). */
  drain(): Promise<void> {
    return this.#tail;
  }

  async #execute(
    line: string,
    origin: CommandOrigin | undefined,
    receivedAt: number,
    mayLeaveUnanswered: boolean,
  ): Promise<string> {
    // Counted before running, so `G ncmds_rcvd` includes itself but not its own reply (5.3).
    this.#stats.ncmdsRcvd++;
    this.#log.debug({ line }, 'received command');
    let reply: string;
    let failed: boolean;
    /** What the command's outcome was, even when it is left unanswered (the metrics). */
    let outcome: string;
    try {
      const value: unknown = await this.#handler(line, origin, receivedAt);
      if (typeof value === 'string') {
        reply = value;
        outcome = value;
        failed = ERROR_REPLY.test(reply);
      } else if (isCountedReply(value)) {
        reply = value.unanswered === true && mayLeaveUnanswered ? NO_ANSWER : value.text;
        outcome = value.text;
        failed = value.failed;
      } else throw new TypeError(`handler resolved with ${typeof value}`);
    } catch (err) {
      this.#log.error({ err, line }, 'command handler failed');
      reply = INTERNAL_ERROR_REPLY;
      outcome = reply;
      failed = true;
    }
    this.#observer?.(line, outcome, (this.#now() - receivedAt) / 1000);
    if (reply === NO_ANSWER) {
      this.#count(failed, false);
      this.#log.debug('leaving the command unanswered');
      return reply;
    }
    this.#count(failed);
    this.#log.debug({ reply }, 'sending reply');
    return reply;
  }
}
