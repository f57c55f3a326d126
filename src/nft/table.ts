/**
 * The daemon's own nftables table (docs/architecture.md, "The nftables table"): one `inet` table
 * named after the instance, created at start (replacing a table of the same name that a crashed
 * instance left), removed at exit. Its chains and rules are fixed when it is created; afterwards
 * only map elements change, in batched transactions (batcher.ts): whatever was set while a
 * transaction ran goes into the next one, so there is at most one `nft` child at a time, and a
 * burst of calls costs one transaction, not one per call. The exit status of each transaction is
 * its acknowledgement.
 *
 * Nothing here is on the packet path: set() only records the wish and returns.
 */
import type { Logger } from 'pino';
import { type BatchOutcome, Batcher } from './batcher.ts';
import type { NftResult, NftRun } from './runner.ts';

/** The address family of the table: IPv4 and IPv6 rules can share it. */
const NFT_FAMILY = 'inet';

/** Lines of one transaction at most; the rest waits for the next. */
const BATCH_MAX_LINES = 4000;
/** settled() waits for this many transactions at most. */
const SETTLE_ROUNDS = 100;

/** The table's contents: definition lines, and the maps whose elements it manages. */
export interface NftTableOptions {
  /** A table name nft accepts as an identifier: letters, digits and `_`, at most 64. */
  readonly name: string;
  /** The lines inside `table inet NAME { ... }`: maps, sets, chains with their fixed rules. */
  readonly definition: readonly string[];
  /** Maps (declared in the definition) whose elements {@link NftTable.set} changes. */
  readonly maps: readonly string[];
  readonly run: NftRun;
  readonly logger: Logger;
  readonly now: () => number;
}

interface MapState {
  /** What the daemon wants: key -> value, both in nft syntax. */
  readonly desired: Map<string, string>;
  /** What the last successful transactions committed. */
  committed: Map<string, string>;
  /** Keys whose desired value may differ from the committed one. */
  readonly dirty: Set<string>;
}

/** One change of a transaction, applied to `committed` when it succeeds. */
interface Change {
  readonly map: MapState;
  readonly key: string;
  readonly value: string | undefined;
}

type TableState = 'new' | 'opening' | 'open' | 'failed' | 'closed';

/** True when `name` can name a table (see {@link NftTableOptions.name}). */
function isTableName(name: string): boolean {
  return /^[A-Za-z_][A-Za-z0-9_]{0,63}$/.test(name);
}

/**
 * The table name of an instance: `rtpproxy_` and its first control socket, every character that
 * is not a letter or digit turned into `_` (`udp:127.0.0.1:22222` gives
 * `rtpproxy_udp_127_0_0_1_22222`). Two instances on one host cannot share a control socket, so
 * they get different tables; the same instance restarted gets the same one.
 */
export function instanceTableName(controlSocket: string): string {
  const tail = controlSocket.replace(/[^A-Za-z0-9]+/g, '_').replace(/^_+|_+$/g, '');
  return `rtpproxy_${tail}`.slice(0, 64).replace(/_+$/, '');
}

export class NftTable {
  readonly name: string;
  readonly #opts: NftTableOptions;
  readonly #maps = new Map<string, MapState>();
  readonly #batcher: Batcher;
  #state: TableState = 'new';
  /** The creating transaction, while it runs: close() waits for it. */
  #creating: Promise<unknown> | undefined;
  /** A transaction failed: the next one flushes the maps and adds every desired element. */
  #resync = false;

  constructor(options: NftTableOptions) {
    if (!isTableName(options.name)) throw new TypeError(`bad nftables table name ${options.name}`);
    this.name = options.name;
    this.#opts = options;
    for (const map of options.maps) {
      this.#maps.set(map, { desired: new Map(), committed: new Map(), dirty: new Set() });
    }
    this.#batcher = new Batcher(
      { pending: () => this.#pending(), run: () => this.#transaction() },
      {
        logger: options.logger,
        now: options.now,
        table: options.name,
        warning: 'nftables update failed; retrying with the whole maps',
      },
    );
  }

  /** Element transactions committed since start. */
  get committedBatches(): number {
    return this.#batcher.committed;
  }

  /** Element transactions nft refused since start. */
  get failedBatches(): number {
    return this.#batcher.failed;
  }

  /** The table exists and element changes reach it. */
  get open(): boolean {
    return this.#state === 'open';
  }

  /**
   * Creates the table in one transaction: a table of the same name (a crashed instance's) is
   * removed first, so its rules and elements never mix with ours. `variants`: definitions to try
   * in turn when the kernel refuses one (the first that nft accepts is kept); by default the one
   * of the options. Resolves with nft's answer to the last one tried, and which one was kept.
   */
  async create(
    variants: readonly (readonly string[])[] = [this.#opts.definition],
  ): Promise<NftResult & { readonly variant: number; readonly refused?: string }> {
    if (this.#state !== 'new') {
      return { ok: false, message: 'the table was created already', variant: -1 };
    }
    this.#state = 'opening';
    const t = `${NFT_FAMILY} ${this.name}`;
    let result: NftResult = { ok: false, message: 'no table definition' };
    let variant = 0;
    /** Why the first variant was refused, when a later one was kept. */
    let refused: string | undefined;
    for (; variant < variants.length; variant += 1) {
      const script = [
        `add table ${t}`,
        `delete table ${t}`,
        `table ${t} {`,
        ...(variants[variant] ?? []).map((line) => `  ${line}`),
        '}',
        '',
      ].join('\n');
      const pending = this.#opts.run(script);
      // close() waits for it before it removes the table.
      this.#creating = pending;
      result = await pending;
      this.#creating = undefined;
      if (result.ok || this.#isClosed()) break;
      refused ??= result.message;
    }
    if (this.#isClosed()) return { ...result, variant };
    this.#state = result.ok ? 'open' : 'failed';
    if (result.ok) this.#batcher.schedule();
    else for (const map of this.#maps.values()) map.desired.clear();
    return { ...result, variant, ...(result.ok && refused !== undefined ? { refused } : {}) };
  }

  /**
   * Sets (`value`) or removes (undefined) one element of `map`, in nft syntax (`10.0.0.1 . 35000`,
   * `goto dscp_46`). Returns at once; the change goes out with the next transaction. Ignored when
   * the table could not be created or is closed.
   */
  set(map: string, key: string, value: string | undefined): void {
    if (this.#state === 'failed' || this.#state === 'closed') return;
    const state = this.#maps.get(map);
    if (state === undefined) throw new TypeError(`no map ${map} in table ${this.name}`);
    if (value === undefined) state.desired.delete(key);
    else state.desired.set(key, value);
    state.dirty.add(key);
    this.#batcher.schedule();
  }

  /**
   * Resolves once every change set so far is committed, or its transaction failed; bounded, as a
   * transaction carries {@link BATCH_MAX_LINES} lines at most.
   */
  settled(): Promise<void> {
    return this.#batcher.settled(SETTLE_ROUNDS);
  }

  /** Removes the table (after the transaction in flight). Idempotent. */
  async close(): Promise<void> {
    const was = this.#state;
    if (was === 'closed') return;
    this.#state = 'closed';
    await this.#creating;
    await this.#batcher.stop();
    if (was === 'new' || was === 'failed') return;
    const result = await this.#opts.run(`delete table ${NFT_FAMILY} ${this.name}\n`);
    if (!result.ok) {
      this.#opts.logger.warn(
        { table: this.name, reason: result.message },
        'cannot remove the nftables table',
      );
    }
  }

  /** A separate read, so that the state after an await is not narrowed to the one before it. */
  #isClosed(): boolean {
    return this.#state === 'closed';
  }

  #pending(): boolean {
    if (this.#state !== 'open') return false;
    return this.#resync || [...this.#maps.values()].some((m) => m.dirty.size > 0);
  }

  /** One transaction: the changed elements (at most {@link BATCH_MAX_LINES} lines), or all. */
  async #transaction(): Promise<BatchOutcome | undefined> {
    const t = `${NFT_FAMILY} ${this.name}`;
    const lines: string[] = [];
    const changes: Change[] = [];
    const resync = this.#resync;
    if (resync) {
      for (const [name, map] of this.#maps) {
        lines.push(`flush map ${t} ${name}`);
        map.dirty.clear();
        for (const [key, value] of map.desired) {
          lines.push(`add element ${t} ${name} { ${key} : ${value} }`);
          changes.push({ map, key, value });
        }
      }
    } else {
      for (const [name, map] of this.#maps) {
        for (const key of map.dirty) {
          if (lines.length >= BATCH_MAX_LINES) break;
          map.dirty.delete(key);
          const now = map.committed.get(key);
          const want = map.desired.get(key);
          if (now === want) continue;
          if (now !== undefined) lines.push(`delete element ${t} ${name} { ${key} }`);
          if (want !== undefined) lines.push(`add element ${t} ${name} { ${key} : ${want} }`);
          changes.push({ map, key, value: want });
        }
      }
    }
    if (lines.length === 0) return undefined;
    const result = await this.#opts.run(`${lines.join('\n')}\n`);
    this.#settle(result, changes, resync);
    return result;
  }

  #settle(result: NftResult, changes: readonly Change[], resync: boolean): void {
    if (!result.ok) {
      // The transaction left the kernel as it was; what the table holds is now in doubt (someone
      // else may have changed it), so the next transaction rebuilds the maps from what we want.
      this.#resync = true;
      return;
    }
    if (resync) {
      this.#resync = false;
      for (const map of this.#maps.values()) map.committed = new Map();
    }
    for (const { map, key, value } of changes) {
      if (value === undefined) map.committed.delete(key);
      else map.committed.set(key, value);
    }
  }
}
