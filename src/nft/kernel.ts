/**
 * The kernel fast path over the daemon's nftables table (docs/kernel.md): streams whose parties
 * have latched are forwarded by stock nftables, statelessly. Each direction of a stream gets one
 * mark id and five map elements; the chains below are fixed when the table is created, and calls
 * only add and remove elements.
 *
 * - prerouting (and output, for parties on this host), priority raw: a UDP packet whose source,
 *   source port, destination and destination port are a direction's key in `kfwd4`/`kfwd6` takes
 *   the direction's id as its mark, skips conntrack (`notrack`: no conntrack entry to fill or to
 *   flush when a port is freed), and its destination is rewritten to the other party. Routing then
 *   forwards it (or delivers it to a party on this host).
 * - postrouting (and input, for parties on this host): a packet whose mark, destination and
 *   destination port name a direction gets our other socket as its source, and its mark is
 *   cleared; an IPv4 packet then takes the TOS of that socket (`-t`, `S tos=N`) from the TOS map.
 *
 * The source is rewritten after routing, not before: a forwarded packet whose source is one of
 * our addresses would be dropped as martian. The mark carries the id from the one hook to the
 * other; the id range is our own (KERNEL_MARK_BASE), and the postrouting key includes the
 * destination, so a packet marked by someone else is not rewritten.
 *
 * Element counters of `kfwd4`/`kfwd6` count each direction's packets and bytes. They are read
 * with `nft -j` in the same transaction as the changes (listings run before the commit), so the
 * last packets of a removed direction are counted too. Nothing here is on the packet path: the
 * session layer asks, and the transactions run in an `nft` child beside the event loop, one at a
 * time, with whatever was asked meanwhile batched into the next.
 */
import type { Logger } from 'pino';
import type {
  ForwardDirection,
  ForwardHandle,
  ForwardTraffic,
  KernelForwarder,
} from '../base/forward.ts';
import type { Family } from '../base/net.ts';
import { makeRateLimiter } from '../util/logger.ts';
import type { NftJsonRun } from './runner.ts';

/** The first mark id; ids run from here up, KERNEL_MARK_IDS of them. */
export const KERNEL_MARK_BASE = 0x72700000;
/** Mark ids available: two per stream, far more than a port range holds. */
const KERNEL_MARK_IDS = 0xfffff;
/** IP and UDP header bytes the element counters count beyond the UDP payload. */
const HEADER_BYTES: Readonly<Record<Family, number>> = { 4: 28, 6: 48 };
/** After a failed transaction, the next one (a rebuild) waits this long. */
const RETRY_MS = 1000;
/** One failure line per this window. */
const FAILURE_LOG_MS = 60_000;

/** The maps of the kernel path, by role and family. */
const MAPS = {
  fwd: { 4: 'kfwd4', 6: 'kfwd6' },
  daddr: { 4: 'kdaddr4', 6: 'kdaddr6' },
  saddr: { 4: 'ksaddr4', 6: 'ksaddr6' },
  sport: { 4: 'ksport4', 6: 'ksport6' },
} as const;
/** The destination port map serves both families: its key is the mark alone. */
const DPORT_MAP = 'kdport';
/** Every map of the kernel path. */
const ALL_MAPS = [
  MAPS.fwd[4],
  MAPS.fwd[6],
  MAPS.daddr[4],
  MAPS.daddr[6],
  DPORT_MAP,
  MAPS.saddr[4],
  MAPS.saddr[6],
  MAPS.sport[4],
  MAPS.sport[6],
];

/**
 * The maps, chains and rules of the kernel path, inside `table inet NAME { ... }`. `tosMap`: the
 * TOS feature's source address . port map (nft/tos.ts), applied to the packets it forwards.
 */
export function kernelDefinition(tosMap: string): string[] {
  const addr = { 4: 'ipv4_addr', 6: 'ipv6_addr' } as const;
  const ip = { 4: 'ip', 6: 'ip6' } as const;
  const lines: string[] = [];
  for (const f of [4, 6] as const) {
    lines.push(
      `map ${MAPS.fwd[f]} { type ${addr[f]} . inet_service . ${addr[f]} . inet_service : mark; counter; }`,
      `map ${MAPS.daddr[f]} { type mark : ${addr[f]}; }`,
      `map ${MAPS.saddr[f]} { type mark . ${addr[f]} . inet_service : ${addr[f]}; }`,
      `map ${MAPS.sport[f]} { type mark . ${addr[f]} . inet_service : inet_service; }`,
    );
  }
  lines.push(`map ${DPORT_MAP} { type mark : inet_service; }`);
  const toParty = (f: Family): string =>
    `meta nfproto ipv${String(f)} meta l4proto udp ` +
    `meta mark set ${ip[f]} saddr . udp sport . ${ip[f]} daddr . udp dport map @${MAPS.fwd[f]} ` +
    `notrack ${ip[f]} daddr set meta mark map @${MAPS.daddr[f]} udp dport set meta mark map @${DPORT_MAP}`;
  const fromUs = (f: Family): string =>
    `meta mark != 0 meta nfproto ipv${String(f)} meta l4proto udp ` +
    `${ip[f]} saddr set meta mark . ${ip[f]} daddr . udp dport map @${MAPS.saddr[f]} ` +
    `udp sport set meta mark . ${ip[f]} daddr . udp dport map @${MAPS.sport[f]} meta mark set 0` +
    (f === 4 ? ` ip saddr . udp sport vmap @${tosMap}` : '');
  const chain = (name: string, hook: string, rules: readonly string[]): string[] => [
    `chain ${name} {`,
    `  ${hook}; policy accept;`,
    ...rules.map((rule) => `  ${rule}`),
    '}',
  ];
  lines.push(
    ...chain('kpre', 'type filter hook prerouting priority raw', [toParty(4), toParty(6)]),
    ...chain('kout', 'type route hook output priority raw', [toParty(4), toParty(6)]),
    ...chain('kpost', 'type filter hook postrouting priority 100', [fromUs(4), fromUs(6)]),
    ...chain('kin', 'type filter hook input priority 100', [fromUs(4), fromUs(6)]),
  );
  return lines;
}

/**
 * Where a direction is: `adding` waits for a change transaction to add its five elements; `in`
 * is forwarded; `unhooking` waits for a read transaction to count its last packets and delete its
 * forwarding element (the packets reach our socket again from then on); `unhooked` waits for a
 * change transaction to delete its other four elements, after which its id is free.
 */
type FlowState = 'adding' | 'in' | 'unhooking' | 'unhooked';

/** One direction. */
class Flow implements ForwardHandle {
  readonly direction: ForwardDirection;
  readonly id: number;
  readonly traffic: ForwardTraffic;
  /** Counter values already reported. */
  packets = 0;
  bytes = 0;
  state: FlowState = 'adding';

  constructor(direction: ForwardDirection, id: number, traffic: ForwardTraffic) {
    this.direction = direction;
    this.id = id;
    this.traffic = traffic;
  }
}

/** A concatenated key or value of the JSON schema. */
function concat(...parts: readonly (string | number)[]): { concat: (string | number)[] } {
  return { concat: [...parts] };
}

/** The forwarding element of a direction: [map, key, value]. */
function hookOf(flow: Flow): [string, unknown, unknown] {
  const d = flow.direction;
  return [
    MAPS.fwd[d.family],
    concat(d.from.address, d.from.port, d.via.address, d.via.port),
    flow.id,
  ];
}

/** The four rewrite elements of a direction, map by map: [map, key, value]. */
function rewritesOf(flow: Flow): [string, unknown, unknown][] {
  const d = flow.direction;
  const f = d.family;
  const id = flow.id;
  return [
    [MAPS.daddr[f], id, d.to.address],
    [DPORT_MAP, id, d.to.port],
    [MAPS.saddr[f], concat(id, d.to.address, d.to.port), d.out.address],
    [MAPS.sport[f], concat(id, d.to.address, d.to.port), d.out.port],
  ];
}

/** Figures of the kernel path, for `Iv` and the logs. */
export interface KernelFlowStats {
  readonly directions: number;
  readonly committed: number;
  readonly failed: number;
  readonly reads: number;
}

export interface KernelFlowsOptions {
  /** The table (family inet) the maps are in. */
  readonly table: string;
  /** The families the host forwards. */
  readonly families: readonly Family[];
  readonly run: NftJsonRun;
  readonly logger: Logger;
  readonly now: () => number;
}

/** The element counters a listing reported: mark id -> packets, bytes. */
type Counters = Map<number, { packets: number; bytes: number }>;

/** Groups [map, key, value] triples into one element command per map. */
function byMap(
  verb: 'add' | 'delete',
  table: string,
  elements: readonly [string, unknown, unknown][],
): unknown[] {
  const maps = new Map<string, unknown[]>();
  for (const [map, key, value] of elements) {
    const list = maps.get(map) ?? [];
    list.push(verb === 'add' ? [key, value] : key);
    maps.set(map, list);
  }
  return [...maps].map(([name, elem]) => ({
    [verb]: { element: { family: 'inet', table, name, elem } },
  }));
}

/**
 * The directions of the kernel path, installed and removed in batched transactions of two kinds,
 * one at a time:
 *
 * - a read transaction lists the forwarding map of one family (with its counters) and deletes the
 *   forwarding elements of that family's directions leaving the kernel, so their last packets are
 *   counted: nft runs the listing before it commits. It touches no other map: nft 1.0's cache,
 *   filtered to the listed map, cannot resolve others in the same run.
 * - a change transaction deletes the rewrite elements of directions that left, and adds the five
 *   elements of new ones (rewrites first, the forwarding element last, in one commit).
 */
export class KernelFlows implements KernelForwarder {
  readonly #opts: KernelFlowsOptions;
  readonly #flows = new Map<number, Flow>();
  readonly #free: number[] = [];
  #nextId = 1;
  /** The transaction in flight, and the directions it adds. */
  #busy: Promise<void> | undefined;
  #inFlight = new Set<Flow>();
  #scheduled = false;
  /** Families whose counters a caller of read() waits for. */
  readonly #readWanted = new Set<Family>();
  /** Waiting for the next transaction to end. */
  #waiters: (() => void)[] = [];
  /** A transaction failed: the next one rebuilds the maps from the flows. */
  #resync = false;
  #retryTimer: NodeJS.Timeout | undefined;
  #closed = false;
  #ready = false;
  readonly #failureLog: (key: string) => boolean;
  committed = 0;
  failed = 0;
  reads = 0;

  constructor(options: KernelFlowsOptions) {
    this.#opts = options;
    this.#failureLog = makeRateLimiter(FAILURE_LOG_MS, options.now);
  }

  /** The table with the kernel path's rules exists. */
  get ready(): boolean {
    return this.#ready && !this.#closed;
  }

  get families(): readonly Family[] {
    return this.#opts.families;
  }

  /** The table was created with the kernel path's maps and chains: directions may go in. */
  start(): void {
    this.#ready = true;
    this.#schedule();
  }

  /** Directions forwarded, or on their way in. */
  get size(): number {
    let n = 0;
    for (const flow of this.#flows.values()) {
      if (flow.state === 'adding' || flow.state === 'in') n++;
    }
    return n;
  }

  stats(): KernelFlowStats {
    return {
      directions: this.size,
      committed: this.committed,
      failed: this.failed,
      reads: this.reads,
    };
  }

  install(direction: ForwardDirection, traffic: ForwardTraffic): ForwardHandle {
    const id = this.#allocate();
    const flow = new Flow(direction, id, traffic);
    this.#flows.set(id, flow);
    this.#schedule();
    return flow;
  }

  remove(handle: ForwardHandle): void {
    if (!(handle instanceof Flow) || this.#flows.get(handle.id) !== handle) return;
    if (handle.state === 'adding' && !this.#inFlight.has(handle)) {
      // Never sent to the kernel: nothing to remove, nothing to count.
      this.#forget(handle);
      return;
    }
    if (handle.state === 'unhooking' || handle.state === 'unhooked') return;
    handle.state = 'unhooking';
    this.#schedule();
  }

  settled(): Promise<void> {
    if (!this.ready) return Promise.resolve();
    if (!this.#pending() && this.#busy === undefined) return Promise.resolve();
    if (!this.#pending() && this.#busy !== undefined) return this.#busy;
    return this.#settledLater();
  }

  async read(): Promise<void> {
    if (!this.ready) return;
    for (const flow of this.#flows.values()) this.#readWanted.add(flow.direction.family);
    if (this.#readWanted.size === 0) return;
    this.#schedule();
    // One read transaction per family; bounded rounds.
    for (let round = 0; round < 10 && this.#readWanted.size > 0; round += 1) {
      await this.#nextTransaction();
    }
  }

  /** Stops: no transaction after the one in flight (the table goes with the daemon). */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#retryTimer);
    this.#readWanted.clear();
    await this.#busy;
    for (const wake of this.#waiters.splice(0)) wake();
  }

  /** Resolves once nothing is pending (each transaction's end re-checks; bounded). */
  async #settledLater(): Promise<void> {
    for (let round = 0; round < 20 && this.#pending(); round += 1) {
      await this.#nextTransaction();
    }
  }

  #allocate(): number {
    const id = this.#free.pop() ?? this.#nextId++;
    if (id > KERNEL_MARK_IDS) throw new RangeError('no mark id left for the kernel path');
    return KERNEL_MARK_BASE + id;
  }

  /** The direction is out of the kernel (or never reached it): its id is free again. */
  #forget(flow: Flow): void {
    this.#flows.delete(flow.id);
    this.#free.push(flow.id - KERNEL_MARK_BASE);
  }

  /** The family the next read transaction lists, if one is needed. */
  #needsRead(): Family | undefined {
    for (const family of this.#readWanted) return family;
    for (const flow of this.#flows.values()) {
      if (flow.state === 'unhooking') return flow.direction.family;
    }
    return undefined;
  }

  #pending(): boolean {
    if (!this.ready) return false;
    if (this.#readWanted.size > 0 || this.#resync) return true;
    for (const flow of this.#flows.values()) if (flow.state !== 'in') return true;
    return false;
  }

  /** Resolves when the next transaction ends; at once when none will run. */
  #nextTransaction(): Promise<void> {
    if (!this.ready) return Promise.resolve();
    return new Promise((resolve) => {
      this.#waiters.push(resolve);
    });
  }

  #schedule(): void {
    if (!this.ready || this.#scheduled || this.#busy !== undefined) return;
    if (this.#retryTimer !== undefined) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      this.#flush();
    });
  }

  #flush(): void {
    if (!this.ready || !this.#pending()) {
      for (const wake of this.#waiters.splice(0)) wake();
      return;
    }
    const waiters = this.#waiters;
    this.#waiters = [];
    const family = this.#needsRead();
    const run = this.#resync
      ? this.#rebuild()
      : family === undefined
        ? this.#changeTransaction()
        : this.#readTransaction(family);
    const done = run.then(() => {
      this.#busy = undefined;
      this.#inFlight = new Set();
      if (this.#pending()) this.#schedule();
      for (const wake of waiters) wake();
    });
    this.#busy = done;
  }

  #ref(name: string): { family: string; table: string; name: string } {
    return { family: 'inet', table: this.#opts.table, name };
  }

  /**
   * Lists the counters of one family and unhooks its directions leaving the kernel. One family a
   * transaction: nft 1.0 fails a run that lists two maps.
   */
  async #readTransaction(family: Family): Promise<void> {
    this.#readWanted.delete(family);
    const leaving = [...this.#flows.values()].filter(
      (f) => f.state === 'unhooking' && f.direction.family === family,
    );
    const commands: unknown[] = [
      { list: { map: this.#ref(MAPS.fwd[family]) } },
      ...byMap('delete', this.#opts.table, leaving.map(hookOf)),
    ];
    const result = await this.#opts.run(commands);
    if (!result.ok) {
      this.#failedWith(result.message);
      return;
    }
    this.committed += 1;
    this.reads += 1;
    this.#report(parseCounters(result.output));
    for (const flow of leaving) flow.state = 'unhooked';
  }

  /** Deletes the rewrites of directions that left, adds the elements of new ones. */
  async #changeTransaction(): Promise<void> {
    const left = [...this.#flows.values()].filter((f) => f.state === 'unhooked');
    const adding = [...this.#flows.values()].filter((f) => f.state === 'adding');
    this.#inFlight = new Set(adding);
    const table = this.#opts.table;
    const commands = [
      ...byMap('delete', table, left.flatMap(rewritesOf)),
      ...byMap('add', table, adding.flatMap(rewritesOf)),
      ...byMap('add', table, adding.map(hookOf)),
    ];
    const result = await this.#opts.run(commands);
    if (!result.ok) {
      this.#failedWith(result.message);
      return;
    }
    this.committed += 1;
    for (const flow of left) this.#forget(flow);
    // A direction removed while its elements were on their way in is unhooked by the next read.
    for (const flow of adding) if (flow.state === 'adding') flow.state = 'in';
  }

  /**
   * After a failure: empties every map and adds the directions that should be in. Their counters
   * start again from 0; directions that were leaving are left out (their last packets since the
   * previous read are not counted).
   */
  async #rebuild(): Promise<void> {
    this.#readWanted.clear();
    for (const flow of [...this.#flows.values()]) {
      if (flow.state === 'unhooking' || flow.state === 'unhooked') this.#forget(flow);
    }
    const keep = [...this.#flows.values()];
    this.#inFlight = new Set(keep);
    const table = this.#opts.table;
    const commands = [
      ...ALL_MAPS.map((name) => ({ flush: { map: this.#ref(name) } })),
      ...byMap('add', table, keep.flatMap(rewritesOf)),
      ...byMap('add', table, keep.map(hookOf)),
    ];
    const result = await this.#opts.run(commands);
    if (!result.ok) {
      this.#failedWith(result.message);
      return;
    }
    this.committed += 1;
    this.#resync = false;
    for (const flow of keep) {
      flow.packets = 0;
      flow.bytes = 0;
      if (flow.state === 'adding') flow.state = 'in';
    }
  }

  /** Hands each direction the packets counted since the previous report. */
  #report(counters: Counters): void {
    for (const [id, counted] of counters) {
      const flow = this.#flows.get(id);
      if (flow === undefined) continue;
      const packets = counted.packets - flow.packets;
      const bytes = counted.bytes - flow.bytes;
      if (packets <= 0) continue;
      flow.packets = counted.packets;
      flow.bytes = counted.bytes;
      const payload = Math.max(0, bytes - packets * HEADER_BYTES[flow.direction.family]);
      flow.traffic(packets, payload);
    }
  }

  /**
   * The transaction changed nothing; what the maps hold is in doubt (someone else may have
   * changed the table), so the next one rebuilds them, after a pause.
   */
  #failedWith(message: string): void {
    this.failed += 1;
    this.#resync = true;
    if (this.#failureLog('batch')) {
      this.#opts.logger.warn(
        { table: this.#opts.table, reason: message, failed: this.failed },
        'kernel path update failed; rebuilding its maps',
      );
    }
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      this.#schedule();
    }, RETRY_MS);
    this.#retryTimer.unref();
  }
}

/**
 * The element counters in `nft -j` listings of the forwarding maps: each element is
 * `[{"elem": {"val": KEY, "counter": {"packets": P, "bytes": B}}}, MARK]`. Anything else is
 * skipped; unparseable output gives no counters.
 */
export function parseCounters(output: string): Counters {
  const counters: Counters = new Map();
  let doc: unknown;
  try {
    doc = JSON.parse(output);
  } catch {
    return counters;
  }
  const items = (doc as { nftables?: unknown }).nftables;
  if (!Array.isArray(items)) return counters;
  for (const item of items as unknown[]) {
    const elems = (item as { map?: { elem?: unknown } }).map?.elem;
    if (!Array.isArray(elems)) continue;
    for (const entry of elems as unknown[]) {
      if (!Array.isArray(entry) || entry.length !== 2) continue;
      const [key, value] = entry as [unknown, unknown];
      const counter = (key as { elem?: { counter?: { packets?: unknown; bytes?: unknown } } }).elem
        ?.counter;
      if (typeof value !== 'number' || counter === undefined) continue;
      const { packets, bytes } = counter;
      if (typeof packets !== 'number' || typeof bytes !== 'number') continue;
      counters.set(value, { packets, bytes });
    }
  }
  return counters;
}
