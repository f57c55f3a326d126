/**
 * The kernel fast path over the daemon's nftables table (docs/kernel.md): streams whose parties
 * have latched are forwarded by stock nftables, statelessly. Each direction of a stream gets one
 * mark id, a named counter and six map elements; the chains below are fixed when the table is
 * created, and calls only add and remove elements (and the counters the elements name).
 *
 * - prerouting (and output, for parties on this host), priority raw: a UDP packet whose source,
 *   source port, destination and destination port are a direction's key in `kfwd4`/`kfwd6` takes
 *   the direction's id as its mark, is counted in the direction's counter, skips conntrack
 *   (`notrack`: no conntrack entry to fill or to flush when a port is freed), and its destination
 *   is rewritten to the other party. Routing then forwards it (or delivers it to a party on this
 *   host).
 * - postrouting (and input, for parties on this host): a packet whose mark, destination and
 *   destination port name a direction gets our other socket as its source, and its mark is
 *   cleared; an IPv4 packet then takes the TOS of that socket (`-t`, `S tos=N`) from the TOS map.
 *
 * The source is rewritten after routing, not before: a forwarded packet whose source is one of
 * our addresses would be dropped as martian. The mark carries the id from the one hook to the
 * other; the id range is our own (KERNEL_MARK_BASE), and the postrouting key includes the
 * destination, so a packet marked by someone else is not rewritten.
 *
 * The counters are named objects, not element counters: nft 1.0 reads an element's counter only
 * by listing its whole map, while `reset counter NAME` reads (and zeroes) one counter at the cost
 * of one, and `reset counters table` all of them in one go. Resets run before the transaction's
 * changes commit, so the last packets of a direction that leaves are counted. Nothing here is on
 * the packet path: the session layer asks, and one transaction at a time runs beside the event
 * loop, with whatever was asked meanwhile batched into the next.
 */
import type { Logger } from 'pino';
import type {
  ForwardDirection,
  ForwardHandle,
  ForwardTraffic,
  KernelForwarder,
} from '../base/forward.ts';
import type { Family } from '../base/net.ts';
import { type BatchOutcome, Batcher } from './batcher.ts';
import type { NftJsonRun } from './runner.ts';

/** The first mark id; ids run from here up, KERNEL_MARK_IDS of them. */
export const KERNEL_MARK_BASE = 0x72700000;
/** Mark ids available: two per stream, far more than a port range holds. */
const KERNEL_MARK_IDS = 0xfffff;
/** IP and UDP header bytes the counters count beyond the UDP payload. */
const HEADER_BYTES: Readonly<Record<Family, number>> = { 4: 28, 6: 48 };

/** The maps of the kernel path, by role and family. */
const MAPS = {
  fwd: { 4: 'kfwd4', 6: 'kfwd6' },
  daddr: { 4: 'kdaddr4', 6: 'kdaddr6' },
  saddr: { 4: 'ksaddr4', 6: 'ksaddr6' },
  sport: { 4: 'ksport4', 6: 'ksport6' },
} as const;
/** The destination port map serves both families: its key is the mark alone. */
const DPORT_MAP = 'kdport';
/** Mark -> the direction's named counter. */
const COUNTER_MAP = 'kcnt';
/** Every map of the kernel path. */
const ALL_MAPS = [
  MAPS.fwd[4],
  MAPS.fwd[6],
  MAPS.daddr[4],
  MAPS.daddr[6],
  DPORT_MAP,
  COUNTER_MAP,
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
      `map ${MAPS.fwd[f]} { type ${addr[f]} . inet_service . ${addr[f]} . inet_service : mark; }`,
      `map ${MAPS.daddr[f]} { type mark : ${addr[f]}; }`,
      `map ${MAPS.saddr[f]} { type mark . ${addr[f]} . inet_service : ${addr[f]}; }`,
      `map ${MAPS.sport[f]} { type mark . ${addr[f]} . inet_service : inet_service; }`,
    );
  }
  lines.push(
    `map ${DPORT_MAP} { type mark : inet_service; }`,
    `map ${COUNTER_MAP} { type mark : counter; }`,
  );
  const toParty = (f: Family): string =>
    `meta nfproto ipv${String(f)} meta l4proto udp ` +
    `meta mark set ${ip[f]} saddr . udp sport . ${ip[f]} daddr . udp dport map @${MAPS.fwd[f]} ` +
    `counter name meta mark map @${COUNTER_MAP} notrack ${ip[f]} daddr set meta mark map @${MAPS.daddr[f]} udp dport set meta mark map @${DPORT_MAP}`;
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
 * Where a direction is: `adding` waits for the next transaction to create its counter and its
 * elements; `in` is forwarded; `leaving` waits for the next transaction to read its counter and
 * delete it all, after which its id is free.
 */
type FlowState = 'adding' | 'in' | 'leaving';

/** One direction. */
class Flow implements ForwardHandle {
  readonly direction: ForwardDirection;
  readonly id: number;
  readonly traffic: ForwardTraffic;
  state: FlowState = 'adding';

  constructor(direction: ForwardDirection, id: number, traffic: ForwardTraffic) {
    this.direction = direction;
    this.id = id;
    this.traffic = traffic;
  }

  /** The name of its counter: `k` and the mark in hex. */
  get counter(): string {
    return counterName(this.id);
  }
}

/** The counter of mark `id`. */
function counterName(id: number): string {
  return `k${id.toString(16)}`;
}

/** The mark of a counter name; undefined for a name that is not one of ours. */
function idOfCounter(name: string): number | undefined {
  const m = /^k([0-9a-f]{1,8})$/.exec(name);
  return m?.[1] === undefined ? undefined : Number.parseInt(m[1], 16);
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

/** The elements a forwarded packet of the direction is looked up in: [map, key, value]. */
function rewritesOf(flow: Flow): [string, unknown, unknown][] {
  const d = flow.direction;
  const f = d.family;
  const id = flow.id;
  return [
    [COUNTER_MAP, id, flow.counter],
    [MAPS.daddr[f], id, d.to.address],
    [DPORT_MAP, id, d.to.port],
    [MAPS.saddr[f], concat(id, d.to.address, d.to.port), d.out.address],
    [MAPS.sport[f], concat(id, d.to.address, d.to.port), d.out.port],
  ];
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

/** The counters a transaction read (and zeroed): mark id -> packets, bytes. */
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
 * The directions of the kernel path. One transaction at a time carries everything asked for
 * since the previous one, in this order: the counter resets (every counter when a read was asked
 * for, else those of the directions leaving), which nft runs before it commits; the deletions of
 * the leaving directions, forwarding element first; the new directions, counter and rewrites
 * first, forwarding element last.
 */
export class KernelFlows implements KernelForwarder {
  readonly #opts: KernelFlowsOptions;
  readonly #flows = new Map<number, Flow>();
  /** The flows not `in`: what the next transaction has to do (kept apart: no scan of them all). */
  readonly #unsettled = new Set<Flow>();
  readonly #free: number[] = [];
  #nextId = 1;
  readonly #batcher: Batcher;
  /** The directions the transaction in flight adds. */
  #inFlight = new Set<Flow>();
  /** A caller of read() waits for every counter. */
  #readWanted = false;
  /** A transaction failed: the next one rebuilds the maps from the flows. */
  #resync = false;
  #closed = false;
  #ready = false;
  /** Transactions that read every counter, since start. */
  reads = 0;

  constructor(options: KernelFlowsOptions) {
    this.#opts = options;
    this.#batcher = new Batcher(
      { pending: () => this.#pending(), run: () => this.#run() },
      {
        logger: options.logger,
        now: options.now,
        table: options.table,
        warning: 'kernel path update failed; rebuilding its maps',
      },
    );
  }

  /** Transactions committed since start. */
  get committed(): number {
    return this.#batcher.committed;
  }

  /** Transactions nft refused since start. */
  get failed(): number {
    return this.#batcher.failed;
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
    this.#batcher.schedule();
  }

  /** Directions forwarded, or on their way in. */
  get size(): number {
    let leaving = 0;
    for (const flow of this.#unsettled) if (flow.state === 'leaving') leaving++;
    return this.#flows.size - leaving;
  }

  install(direction: ForwardDirection, traffic: ForwardTraffic): ForwardHandle {
    const id = this.#allocate();
    const flow = new Flow(direction, id, traffic);
    this.#flows.set(id, flow);
    this.#unsettled.add(flow);
    this.#batcher.schedule();
    return flow;
  }

  remove(handle: ForwardHandle): void {
    if (!(handle instanceof Flow) || this.#flows.get(handle.id) !== handle) return;
    if (handle.state === 'adding' && !this.#inFlight.has(handle)) {
      // Never sent to the kernel: nothing to remove, nothing to count.
      this.#forget(handle);
      return;
    }
    if (handle.state === 'leaving') return;
    handle.state = 'leaving';
    this.#unsettled.add(handle);
    this.#batcher.schedule();
  }

  settled(): Promise<void> {
    if (!this.ready) return Promise.resolve();
    return this.#batcher.settled();
  }

  read(): Promise<void> {
    if (!this.ready || this.#flows.size === 0) return Promise.resolve();
    this.#readWanted = true;
    this.#batcher.schedule();
    return this.#batcher.nextTransaction();
  }

  /** Stops: no transaction after the one in flight (the table goes with the daemon). */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#batcher.stop();
  }

  #allocate(): number {
    const id = this.#free.pop() ?? this.#nextId++;
    if (id > KERNEL_MARK_IDS) throw new RangeError('no mark id left for the kernel path');
    return KERNEL_MARK_BASE + id;
  }

  /** The direction is out of the kernel (or never reached it): its id is free again. */
  #forget(flow: Flow): void {
    this.#flows.delete(flow.id);
    this.#unsettled.delete(flow);
    this.#free.push(flow.id - KERNEL_MARK_BASE);
  }

  #pending(): boolean {
    if (!this.ready) return false;
    return this.#readWanted || this.#resync || this.#unsettled.size > 0;
  }

  /** One transaction: a rebuild after a failure, else what was asked since the last one. */
  async #run(): Promise<BatchOutcome> {
    try {
      return await (this.#resync ? this.#rebuild() : this.#transaction());
    } finally {
      this.#inFlight = new Set();
    }
  }

  #ref(): { family: string; table: string } {
    return { family: 'inet', table: this.#opts.table };
  }

  /** Reads what was asked for, removes the leaving directions, adds the new ones. */
  async #transaction(): Promise<BatchOutcome> {
    const table = this.#opts.table;
    const unsettled = [...this.#unsettled];
    const leaving = unsettled.filter((f) => f.state === 'leaving');
    const adding = unsettled.filter((f) => f.state === 'adding');
    // Counters to read: every one, unless none is in the kernel yet.
    const readAll = this.#readWanted && this.#flows.size > adding.length;
    this.#readWanted = false;
    this.#inFlight = new Set(adding);
    const counter = (verb: string, flow: Flow): unknown => ({
      [verb]: { counter: { ...this.#ref(), name: flow.counter } },
    });
    const commands = [
      ...(readAll
        ? [{ reset: { counters: this.#ref() } }]
        : leaving.map((flow) => counter('reset', flow))),
      ...byMap('delete', table, leaving.map(hookOf)),
      ...byMap('delete', table, leaving.flatMap(rewritesOf)),
      ...leaving.map((flow) => counter('delete', flow)),
      ...adding.map((flow) => counter('add', flow)),
      ...byMap('add', table, adding.flatMap(rewritesOf)),
      ...byMap('add', table, adding.map(hookOf)),
    ];
    const result = await this.#opts.run(commands);
    if (!result.ok) return this.#failedWith(result.message);
    if (readAll) this.reads += 1;
    this.#report(parseCounters(result.output));
    for (const flow of leaving) this.#forget(flow);
    // A direction removed while its elements were on their way in leaves with the next one.
    for (const flow of adding) this.#settle(flow);
    return { ok: true };
  }

  /** A flow's elements are in: nothing left to do for it, unless it was removed meanwhile. */
  #settle(flow: Flow): void {
    if (flow.state !== 'adding') return;
    flow.state = 'in';
    this.#unsettled.delete(flow);
  }

  /**
   * After a failure: every counter is read (so no packet goes uncounted), every map emptied, and
   * the directions that should be in are added again (their counters are kept, or created).
   * Directions that were leaving are left out; their counters stay until the table goes.
   */
  async #rebuild(): Promise<BatchOutcome> {
    this.#readWanted = false;
    for (const flow of [...this.#flows.values()]) if (flow.state === 'leaving') this.#forget(flow);
    const keep = [...this.#flows.values()];
    this.#inFlight = new Set(keep);
    const table = this.#opts.table;
    const commands = [
      { reset: { counters: this.#ref() } },
      ...ALL_MAPS.map((name) => ({ flush: { map: { ...this.#ref(), name } } })),
      ...keep.map((flow) => ({ add: { counter: { ...this.#ref(), name: flow.counter } } })),
      ...byMap('add', table, keep.flatMap(rewritesOf)),
      ...byMap('add', table, keep.map(hookOf)),
    ];
    const result = await this.#opts.run(commands);
    if (!result.ok) return this.#failedWith(result.message);
    this.#resync = false;
    this.#report(parseCounters(result.output));
    for (const flow of keep) this.#settle(flow);
    return { ok: true };
  }

  /** Hands each direction the packets its counter counted since the previous reset. */
  #report(counters: Counters): void {
    for (const [id, counted] of counters) {
      const flow = this.#flows.get(id);
      if (flow === undefined || counted.packets <= 0) continue;
      const header = counted.packets * HEADER_BYTES[flow.direction.family];
      flow.traffic(counted.packets, Math.max(0, counted.bytes - header));
    }
  }

  /**
   * The transaction changed nothing; what the maps hold is in doubt (someone else may have
   * changed the table), so the next one rebuilds them, after the batcher's pause.
   */
  #failedWith(message: string): BatchOutcome {
    this.#resync = true;
    return { ok: false, message };
  }
}

/**
 * The counters in nft's JSON output: one document per line (a reset of one counter prints one),
 * each `{"nftables": [..., {"counter": {"name": "k72700001", "packets": P, "bytes": B}}]}`.
 * Anything else is skipped; unparseable lines give nothing.
 */
export function parseCounters(output: string): Counters {
  const counters: Counters = new Map();
  for (const line of output.split('\n')) {
    if (line.trim() === '') continue;
    let doc: unknown;
    try {
      doc = JSON.parse(line);
    } catch {
      continue;
    }
    const items = (doc as { nftables?: unknown }).nftables;
    if (!Array.isArray(items)) continue;
    for (const item of items as unknown[]) {
      const counter = (item as { counter?: { name?: unknown; packets?: unknown; bytes?: unknown } })
        .counter;
      if (counter === undefined) continue;
      const { name, packets, bytes } = counter;
      if (typeof name !== 'string' || typeof packets !== 'number' || typeof bytes !== 'number') {
        continue;
      }
      const id = idOfCounter(name);
      if (id === undefined) continue;
      const seen = counters.get(id);
      counters.set(id, {
        packets: packets + (seen?.packets ?? 0),
        bytes: bytes + (seen?.bytes ?? 0),
      });
    }
  }
  return counters;
}
