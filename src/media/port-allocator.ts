/**
 * Hands out even RTP ports (RTCP on the port above) from the configured range (docs/architecture.md
 * "Port allocation"). The candidate order is the reference's (sippy/rtpproxy
 * src/rtpp_port_table.c): random by default, ascending with `-b`. Unlike the reference, which walks
 * its whole table and lets the bind decide, the daemon keeps a free list per local address: a pair
 * that bound is in use until its owner says both sockets are closed, so an allocation takes a free
 * pair in O(1) and a full range is refused at once, without a single bind.
 *
 * A pair that fails to bind because another process holds one of its ports is not lost: it sits
 * out for {@link BUSY_RETRY_MS} and then rejoins the free list. One allocation tries at most
 * {@link MAX_BIND_ATTEMPTS} pairs, so ports held elsewhere cannot make a command probe the range.
 */

/** What one bind attempt says about a candidate port. */
export type BindOutcome = 'ok' | 'busy' | 'fatal';

/** Bind attempts of one allocation at most; then it fails (`E72`/`E71`). */
export const MAX_BIND_ATTEMPTS = 64;

/** How long a pair that another process held stays out of the free list, milliseconds. */
export const BUSY_RETRY_MS = 5_000;

/** A pair handed out by {@link PortAllocator.allocate}. */
export interface PortLease {
  readonly port: number;
  /** Both sockets of the pair are closed: the pair is free again. Idempotent. */
  release(): void;
}

/** Options of a {@link PortAllocator}; `random` and `now` are for tests. */
export interface PortAllocatorOptions {
  /** Lowest RTP port (even). */
  readonly min: number;
  /** Highest RTP port (even; its RTCP port is `max + 1`). */
  readonly max: number;
  /** `-b`: ascending order instead of random. */
  readonly sequential: boolean;
  /** Uniform in [0, 1). */
  readonly random?: () => number;
  /** Monotonic milliseconds. */
  readonly now?: () => number;
}

const FREE = 0;
const USED = 1;
const PARKED = 2;

/** How much of the port range is in use (the metrics). */
export interface PortUsage {
  /** Pairs in the range, on each local address. */
  readonly capacity: number;
  /** Pairs in use, all local addresses together. */
  readonly inUse: number;
  /** Free pairs on the local address that has the fewest. */
  readonly leastFree: number;
}

/**
 * The pairs of the range on one local address. Every pair is in one state: free (in the free
 * list), in use, or parked (it failed to bind; back in the free list once its time has come).
 */
export class PortTable {
  readonly #min: number;
  readonly #size: number;
  readonly #sequential: boolean;
  readonly #random: () => number;
  readonly #now: () => number;
  readonly #state: Uint8Array;
  /** Free ports: random order uses [0, count) as a bag; sequential order a ring from #head. */
  readonly #free: Uint16Array;
  #head = 0;
  #count = 0;
  /** Parked ports, oldest first: a ring from #parkedHead, with the time each may return. */
  readonly #parked: Uint16Array;
  readonly #parkedAt: Float64Array;
  #parkedHead = 0;
  #parkedCount = 0;

  constructor(options: PortAllocatorOptions) {
    this.#min = options.min;
    this.#size = Math.max(0, Math.floor((options.max - options.min) / 2) + 1);
    this.#sequential = options.sequential;
    this.#random = options.random ?? Math.random;
    this.#now = options.now ?? (() => performance.now());
    this.#state = new Uint8Array(this.#size);
    this.#free = new Uint16Array(this.#size);
    this.#parked = new Uint16Array(this.#size);
    this.#parkedAt = new Float64Array(this.#size);
    for (let i = 0; i < this.#size; i += 1) this.#free[i] = options.min + 2 * i;
    this.#count = this.#size;
  }

  /** Pairs in the range. */
  get capacity(): number {
    return this.#size;
  }

  /** Pairs free now (parked ones whose time has come included). */
  get free(): number {
    this.#unpark();
    return this.#count;
  }

  /** Pairs handed out and not released. */
  get inUse(): number {
    return this.#size - this.#count - this.#parkedCount;
  }

  /** Pairs waiting after a failed bind. */
  get parked(): number {
    return this.#parkedCount;
  }

  /** Takes a free pair (now in use), or undefined when none is free. O(1) amortized. */
  take(): number | undefined {
    this.#unpark();
    if (this.#count === 0) return undefined;
    let port: number;
    if (this.#sequential) {
      port = this.#free[this.#head] ?? 0;
      this.#head = (this.#head + 1) % this.#size;
    } else {
      const last = this.#count - 1;
      const j = Math.min(last, Math.floor(this.#random() * this.#count));
      port = this.#free[j] ?? 0;
      this.#free[j] = this.#free[last] ?? 0;
    }
    this.#count -= 1;
    this.#state[this.#index(port)] = USED;
    return port;
  }

  /** A pair in use is free again: it joins the end of the free list. Ignores any other port. */
  release(port: number): void {
    const i = this.#index(port);
    if (i < 0 || this.#state[i] !== USED) return;
    this.#state[i] = FREE;
    this.#push(port);
  }

  /**
   * A pair just taken could not be tried (the bind failed for a reason that is not the port's):
   * it goes back where it was taken from, so the order is as if it had not been taken.
   */
  untake(port: number): void {
    const i = this.#index(port);
    if (i < 0 || this.#state[i] !== USED) return;
    this.#state[i] = FREE;
    if (this.#sequential) {
      this.#head = (this.#head - 1 + this.#size) % this.#size;
      this.#free[this.#head] = port;
      this.#count += 1;
    } else this.#push(port);
  }

  /** A pair in use failed to bind (held by another process): it rejoins the free list later. */
  park(port: number): void {
    const i = this.#index(port);
    if (i < 0 || this.#state[i] !== USED) return;
    this.#state[i] = PARKED;
    const at = (this.#parkedHead + this.#parkedCount) % this.#size;
    this.#parked[at] = port;
    this.#parkedAt[at] = this.#now() + BUSY_RETRY_MS;
    this.#parkedCount += 1;
  }

  #push(port: number): void {
    this.#free[this.#sequential ? (this.#head + this.#count) % this.#size : this.#count] = port;
    this.#count += 1;
  }

  /** Parked pairs whose time has come rejoin the free list (oldest first). */
  #unpark(): void {
    if (this.#parkedCount === 0) return;
    const now = this.#now();
    while (this.#parkedCount > 0 && (this.#parkedAt[this.#parkedHead] ?? 0) <= now) {
      const port = this.#parked[this.#parkedHead] ?? 0;
      this.#parkedHead = (this.#parkedHead + 1) % this.#size;
      this.#parkedCount -= 1;
      this.#state[this.#index(port)] = FREE;
      this.#push(port);
    }
  }

  #index(port: number): number {
    const offset = port - this.#min;
    if (offset < 0 || offset % 2 !== 0 || offset / 2 >= this.#size) return -1;
    return offset / 2;
  }
}

/**
 * The port tables of one address family: one {@link PortTable} per local address, made when a
 * pair is first asked for on it. A table that never bound anything (an address that is not
 * local) is dropped again, so bad addresses do not accumulate tables.
 */
export class PortAllocator {
  readonly #options: PortAllocatorOptions;
  readonly #tables = new Map<string, PortTable>();
  readonly #capacity: number;

  constructor(options: PortAllocatorOptions) {
    this.#options = options;
    this.#capacity = Math.max(0, Math.floor((options.max - options.min) / 2) + 1);
  }

  /** Pairs in the range (on each local address). */
  get capacity(): number {
    return this.#capacity;
  }

  /** The table of `address`, if one exists (tests and statistics). */
  table(address: string): PortTable | undefined {
    return this.#tables.get(address);
  }

  /** Local addresses with a table. */
  get addresses(): number {
    return this.#tables.size;
  }

  /** Pairs in use on every local address together, and the fewest free on any one of them. */
  usage(): PortUsage {
    let inUse = 0;
    let leastFree = this.#capacity;
    for (const table of this.#tables.values()) {
      inUse += table.inUse;
      leastFree = Math.min(leastFree, table.free);
    }
    return { capacity: this.#capacity, inUse, leastFree };
  }

  /**
   * Takes free pairs on `address` and calls `tryBind` with the lease of each, until one binds, a
   * bind fails fatally or {@link MAX_BIND_ATTEMPTS} were tried. Resolves with the lease of the pair
   * that bound (its owner releases it once both sockets are closed), or undefined (at once when no
   * pair is free). A busy pair is parked; the pair of a fatal failure goes back to the free list.
   * The lease of a pair that did not bind is void: releasing it does nothing.
   */
  async allocate(
    address: string,
    tryBind: (lease: PortLease) => Promise<BindOutcome>,
  ): Promise<PortLease | undefined> {
    let table = this.#tables.get(address);
    if (table === undefined) {
      table = new PortTable(this.#options);
      this.#tables.set(address, table);
    }
    try {
      for (let attempt = 0; attempt < MAX_BIND_ATTEMPTS; attempt += 1) {
        const port = table.take();
        if (port === undefined) return undefined;
        const lease = new Lease(table, port);
        let outcome: BindOutcome = 'fatal';
        try {
          outcome = await tryBind(lease);
        } finally {
          if (outcome !== 'ok') lease.void();
          if (outcome === 'busy') table.park(port);
          else if (outcome === 'fatal') table.untake(port);
        }
        if (outcome === 'ok') return lease;
        if (outcome === 'fatal') return undefined;
      }
      return undefined;
    } finally {
      if (table.inUse === 0 && table.parked === 0) this.#tables.delete(address);
    }
  }
}

class Lease implements PortLease {
  readonly port: number;
  #table: PortTable | undefined;

  constructor(table: PortTable, port: number) {
    this.#table = table;
    this.port = port;
  }

  release(): void {
    const table = this.#table;
    this.#table = undefined;
    table?.release(this.port);
  }

  /** The pair did not bind: the allocator decides what becomes of it, not the lease. */
  void(): void {
    this.#table = undefined;
  }
}
