/**
 * The transaction loop that the table's map elements (table.ts) and the kernel path's directions
 * (kernel.ts) share: at most one `nft` child at a time; whatever is asked while a transaction runs
 * goes into the next one, started on a later turn of the event loop, so a burst of calls costs one
 * transaction, not one per call. After a failed transaction the next waits {@link RETRY_MS}, and
 * one warning a minute says so. The owner says whether there is work, and runs one transaction
 * with all of it.
 *
 * Nothing here is on the packet path.
 */
import type { Logger } from 'pino';
import { makeRateLimiter } from '../util/logger.ts';

/** After a failed transaction, the next one waits this long (the table may be gone). */
const RETRY_MS = 1000;
/** One failure line per this window. */
const FAILURE_LOG_MS = 60_000;

/** What one transaction did: committed, refused by nft (with its message), or nothing to send. */
export type BatchOutcome = { readonly ok: true } | { readonly ok: false; readonly message: string };

export interface BatchWork {
  /** Something waits for a transaction. */
  pending(): boolean;
  /**
   * Runs one transaction with what is pending; undefined when there was nothing to send after
   * all. On a refusal the owner has already marked its state for a rebuild.
   */
  run(): Promise<BatchOutcome | undefined>;
}

export interface BatcherOptions {
  readonly logger: Logger;
  readonly now: () => number;
  /** The table, for the warning's fields. */
  readonly table: string;
  /** The warning after a refused transaction: what happens next. */
  readonly warning: string;
}

export class Batcher {
  readonly #work: BatchWork;
  readonly #opts: BatcherOptions;
  readonly #failureLog: (key: string) => boolean;
  /** The transaction in flight. */
  #busy: Promise<void> | undefined;
  #scheduled = false;
  #retryTimer: NodeJS.Timeout | undefined;
  /** Waiting for the next transaction to end. */
  #waiters: (() => void)[] = [];
  #stopped = false;
  /** Transactions committed / refused since start. */
  committed = 0;
  failed = 0;

  constructor(work: BatchWork, options: BatcherOptions) {
    this.#work = work;
    this.#opts = options;
    this.#failureLog = makeRateLimiter(FAILURE_LOG_MS, options.now);
  }

  /**
   * Asks for a transaction on the next turn. None starts while one runs or a retry waits: what
   * is pending then goes with the one that follows.
   */
  schedule(): void {
    if (this.#stopped || this.#scheduled || this.#busy !== undefined) return;
    if (this.#retryTimer !== undefined) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      this.#flush();
    });
  }

  /** Resolves when the next transaction ends; at once when none will run. */
  nextTransaction(): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    return new Promise((resolve) => {
      this.#waiters.push(resolve);
    });
  }

  /**
   * Resolves once what is pending now has been through a transaction, committed or refused (after
   * a refusal, the retry's transaction is the one waited for). With `rounds` above 1 it waits for
   * more while work remains, for an owner whose transactions carry a bounded share of it.
   */
  async settled(rounds = 1): Promise<void> {
    for (let round = 0; round < rounds; round += 1) {
      if (this.#stopped) return;
      if (!this.#work.pending()) {
        await this.#busy;
        return;
      }
      const failed = this.failed;
      await this.nextTransaction();
      if (this.failed > failed) return;
    }
  }

  /** No transaction after the one in flight, which it waits for; waiters are released. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    await this.#busy;
    for (const wake of this.#waiters.splice(0)) wake();
  }

  #flush(): void {
    if (this.#stopped || !this.#work.pending()) {
      for (const wake of this.#waiters.splice(0)) wake();
      return;
    }
    const waiters = this.#waiters;
    this.#waiters = [];
    this.#busy = this.#work.run().then((outcome) => {
      this.#busy = undefined;
      if (outcome?.ok === false) this.#refused(outcome.message);
      else {
        if (outcome !== undefined) this.committed += 1;
        if (this.#work.pending()) this.schedule();
      }
      for (const wake of waiters) wake();
    });
  }

  #refused(message: string): void {
    this.failed += 1;
    if (this.#failureLog('batch')) {
      this.#opts.logger.warn(
        { table: this.#opts.table, reason: message, failed: this.failed },
        this.#opts.warning,
      );
    }
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      this.schedule();
    }, RETRY_MS);
    this.#retryTimer.unref();
  }
}
