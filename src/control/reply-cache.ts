/** How long a datagram reply stays cached, from the command's receive time (docs/protocol.md 2.7). */
export const REPLY_CACHE_TTL_MS = 35_000;

/** Interval of the cache sweep; with the TTL this makes entries live 35 to 38 s, as in the reference. */
const REPLY_CACHE_SWEEP_MS = 3_000;

/**
 * Bytes the cache may hold (cookies, replies and a per-entry overhead estimate). At 5,000
 * commands/s with typical Kamailio cookies and replies, 38 s of entries take about 40 MB; past
 * the bound the oldest completed entries go first, so only a flood loses retransmission answers.
 */
const REPLY_CACHE_MAX_BYTES = 64 * 1024 * 1024;

/** Estimated bytes of one entry besides its cookie and reply (Map slot, objects, Buffer header). */
export const REPLY_CACHE_ENTRY_OVERHEAD = 200;

/** Outcome of {@link ReplyCache.claim}. */
export type ReplyCacheClaim =
  /** New cookie: the caller must run the command and then call `complete()`. */
  | { readonly kind: 'miss' }
  /** A reply was cached: resend these bytes, do not execute. */
  | { readonly kind: 'hit'; readonly reply: Buffer }
  /** The first copy is still executing: resend its reply once this resolves, do not execute. */
  | { readonly kind: 'pending'; readonly reply: Promise<Buffer> };

/** Options of {@link ReplyCache}; all optional, tests inject `now`. */
export interface ReplyCacheOptions {
  /** Monotonic clock in milliseconds. */
  readonly now?: () => number;
  readonly ttlMs?: number;
  readonly sweepIntervalMs?: number;
  /** Bound of {@link ReplyCache.bytes}; {@link REPLY_CACHE_MAX_BYTES} by default. */
  readonly maxBytes?: number;
}

interface Entry {
  readonly receivedAt: number;
  reply: Buffer | undefined;
  // Set only while the command is in flight; retransmissions wait on it.
  waiting: Promise<Buffer> | undefined;
  resolve: ((reply: Buffer) => void) | undefined;
}

/**
 * Datagram reply cache, keyed by cookie text only and shared by all datagram sockets. It also
 * records cookies in flight, so a retransmission that arrives while the command still runs is
 * neither executed twice nor left unanswered.
 */
export class ReplyCache {
  readonly #now: () => number;
  readonly #ttlMs: number;
  readonly #maxBytes: number;
  readonly #entries = new Map<string, Entry>();
  #bytes = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: ReplyCacheOptions = {}) {
    this.#now = options.now ?? (() => performance.now());
    this.#ttlMs = options.ttlMs ?? REPLY_CACHE_TTL_MS;
    this.#maxBytes = options.maxBytes ?? REPLY_CACHE_MAX_BYTES;
    const interval = options.sweepIntervalMs ?? REPLY_CACHE_SWEEP_MS;
    this.#timer = setInterval(() => {
      this.sweep();
    }, interval);
    // Housekeeping must not keep the process (or a test) alive.
    this.#timer.unref();
  }

  /** Number of entries, in flight or completed. */
  get size(): number {
    return this.#entries.size;
  }

  /** Estimated bytes held: cookies, replies and {@link REPLY_CACHE_ENTRY_OVERHEAD} per entry. */
  get bytes(): number {
    return this.#bytes;
  }

  /**
   * Looks the cookie up; on a miss, records it as in flight with the current time as the
   * receive time. Check and record happen in one synchronous step, so two copies of one
   * datagram can never both get `miss`.
   */
  claim(cookie: string): ReplyCacheClaim {
    const entry = this.#entries.get(cookie);
    if (entry === undefined) {
      this.#entries.set(cookie, {
        receivedAt: this.#now(),
        reply: undefined,
        waiting: undefined,
        resolve: undefined,
      });
      this.#bytes += cookie.length + REPLY_CACHE_ENTRY_OVERHEAD;
      this.#trim();
      return { kind: 'miss' };
    }
    if (entry.reply !== undefined) return { kind: 'hit', reply: entry.reply };
    entry.waiting ??= new Promise<Buffer>((resolve) => {
      entry.resolve = resolve;
    });
    return { kind: 'pending', reply: entry.waiting };
  }

  /** Stores the full reply bytes (cookie included) of a claimed cookie and wakes its waiters. */
  complete(cookie: string, reply: Buffer): void {
    let entry = this.#entries.get(cookie);
    if (entry === undefined) {
      // complete() without claim(): cache it anyway so a retransmission is still answered.
      entry = { receivedAt: this.#now(), reply: undefined, waiting: undefined, resolve: undefined };
      this.#entries.set(cookie, entry);
      this.#bytes += cookie.length + REPLY_CACHE_ENTRY_OVERHEAD;
    }
    this.#bytes += reply.length - (entry.reply?.length ?? 0);
    entry.reply = reply;
    entry.resolve?.(reply);
    entry.waiting = undefined;
    entry.resolve = undefined;
    this.#trim();
  }

  /** Over the byte bound: drops the oldest completed entries (in-flight ones must stay). */
  #trim(): void {
    if (this.#bytes <= this.#maxBytes) return;
    for (const [cookie, entry] of this.#entries) {
      if (this.#bytes <= this.#maxBytes) return;
      if (entry.reply !== undefined) this.#delete(cookie, entry);
    }
  }

  #delete(cookie: string, entry: Entry): void {
    this.#entries.delete(cookie);
    this.#bytes -= cookie.length + REPLY_CACHE_ENTRY_OVERHEAD + (entry.reply?.length ?? 0);
  }

  /** Drops completed entries received at least the TTL before `now`. Called by the timer. */
  sweep(now: number = this.#now()): void {
    for (const [cookie, entry] of this.#entries) {
      // An in-flight entry stays: dropping it would let a retransmission run the command again.
      if (entry.reply !== undefined && now - entry.receivedAt >= this.#ttlMs) {
        this.#delete(cookie, entry);
      }
    }
  }

  /** Stops the sweep timer. Idempotent; pending waiters are still woken by `complete()`. */
  close(): void {
    if (this.#timer === undefined) return;
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
