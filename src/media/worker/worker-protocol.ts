/**
 * What the main thread and a media worker say to each other, and the shared memory they both see.
 *
 * Messages carry everything that changes rarely (binds, signalling state, latching, recorded
 * packets, prompt packets). Counters change with every packet, so the worker writes them into a
 * SharedArrayBuffer the main thread reads at any time: a header of the worker's packet totals,
 * then one slot of STREAM_FIELDS numbers per stream. A second buffer holds one activity flag per
 * stream, set by the worker for every packet that reaches the relay stage and taken (swapped to 0)
 * by the main thread's idle sweep.
 */

import type { MessagePort } from 'node:worker_threads';
import type { PacketTap, RtpStatsView, StreamCounters } from '../stream.ts';
import type { Endpoint, Family } from '../../base/net.ts';

/**
 * Doubles of the header: the worker's packet totals behind G's npkts_*, and, once a second, its
 * event loop's utilization and mean lateness over the last second (for `Il` and
 * `--overload_prot`).
 */
const HEADER_FIELDS = 8;
const H_RCVD = 0;
const H_RELAYED = 1;
const H_DISCARD = 2;
export const H_LOAD = 3;
export const H_LATE_MS = 4;
const H_RESIZER_IN = 5;
const H_RESIZER_OUT = 6;
const H_RESIZER_DISCARD = 7;

/** Doubles of one stream slot (the layout is private to this file: write and read below). */
const STREAM_FIELDS = 16;
const S_PKTS_IN = 0;
const S_BYTES_IN = 1;
const S_RELAYED = 2;
const S_DROPPED = 3;
const S_IGNORED = 4;
const S_SEND_ERRORS = 5;
const S_PERRS = 6;
const S_NRCVD = 7;
const S_NDUPS = 8;
const S_NSENT = 9;
const S_JLAST = 10;
const S_JMAX = 11;
const S_JAVG = 12;
const S_LONGEST_IPI = 13;

/** The worker's packet totals behind G's npkts_* (its RelaySettings.stats). */
export interface PacketTotals {
  readonly npktsRcvd: number;
  readonly npktsRelayed: number;
  readonly npktsDiscard: number;
  readonly npktsResizerIn: number;
  readonly npktsResizerOut: number;
  readonly npktsResizerDiscard: number;
}

/**
 * Worker side, on the packet path: writes a stream's counters into its slot and the worker's
 * totals into the header. Plain stores, no allocation.
 */
export function writeCounters(
  counters: Float64Array,
  slot: number,
  s: StreamCounters,
  totals: PacketTotals,
): void {
  const b = slotBase(slot);
  counters[b + S_PKTS_IN] = s.npktsIn;
  counters[b + S_BYTES_IN] = s.nbytesIn;
  counters[b + S_RELAYED] = s.nrelayed;
  counters[b + S_DROPPED] = s.ndropped;
  counters[b + S_IGNORED] = s.nignored;
  counters[b + S_SEND_ERRORS] = s.nsendErrors;
  const a = s.rtpStats;
  if (a !== undefined) {
    counters[b + S_PERRS] = a.perrs;
    counters[b + S_NRCVD] = a.nrcvd;
    counters[b + S_NDUPS] = a.ndups;
    counters[b + S_NSENT] = a.nsent;
    counters[b + S_JLAST] = a.jlast;
    counters[b + S_JMAX] = a.jmax;
    counters[b + S_JAVG] = a.javg;
    counters[b + S_LONGEST_IPI] = a.longestIpi;
  }
  counters[H_RCVD] = totals.npktsRcvd;
  counters[H_RELAYED] = totals.npktsRelayed;
  counters[H_DISCARD] = totals.npktsDiscard;
  counters[H_RESIZER_IN] = totals.npktsResizerIn;
  counters[H_RESIZER_OUT] = totals.npktsResizerOut;
  counters[H_RESIZER_DISCARD] = totals.npktsResizerDiscard;
}

/** Worker side: a new stream's slot starts from zero. */
export function clearCounters(counters: Float64Array, slot: number): void {
  counters.fill(0, slotBase(slot), slotBase(slot) + STREAM_FIELDS);
}

/** Main-thread side: one stream's counters, read from its slot whenever asked. */
export class SlotCounters implements StreamCounters {
  readonly rtpStats: RtpStatsView | undefined;
  readonly #counters: Float64Array;
  readonly #base: number;

  constructor(counters: Float64Array, slot: number, isRtp: boolean) {
    this.#counters = counters;
    this.#base = slotBase(slot);
    this.rtpStats = isRtp ? new SlotRtpStats(this) : undefined;
  }

  get(field: number): number {
    return this.#counters[this.#base + field] ?? 0;
  }

  get npktsIn(): number {
    return this.get(S_PKTS_IN);
  }
  get nbytesIn(): number {
    return this.get(S_BYTES_IN);
  }
  get nrelayed(): number {
    return this.get(S_RELAYED);
  }
  get ndropped(): number {
    return this.get(S_DROPPED);
  }
  get nignored(): number {
    return this.get(S_IGNORED);
  }
  get nsendErrors(): number {
    return this.get(S_SEND_ERRORS);
  }
}

/** Main-thread side: the RTP analysis figures the worker computed for a stream. */
class SlotRtpStats implements RtpStatsView {
  readonly #slot: SlotCounters;

  constructor(slot: SlotCounters) {
    this.#slot = slot;
  }

  get perrs(): number {
    return this.#slot.get(S_PERRS);
  }
  get nrcvd(): number {
    return this.#slot.get(S_NRCVD);
  }
  get ndups(): number {
    return this.#slot.get(S_NDUPS);
  }
  get nsent(): number {
    return this.#slot.get(S_NSENT);
  }
  get nlost(): number {
    const lost = this.nsent - this.nrcvd;
    return lost > 0 ? lost : 0;
  }
  get jlast(): number {
    return this.#slot.get(S_JLAST);
  }
  get jmax(): number {
    return this.#slot.get(S_JMAX);
  }
  get javg(): number {
    return this.#slot.get(S_JAVG);
  }
  get longestIpi(): number {
    return this.#slot.get(S_LONGEST_IPI);
  }
}

/** Main-thread side: the packet totals of a worker. */
export function readTotals(counters: Float64Array): PacketTotals {
  return {
    npktsRcvd: counters[H_RCVD] ?? 0,
    npktsRelayed: counters[H_RELAYED] ?? 0,
    npktsDiscard: counters[H_DISCARD] ?? 0,
    npktsResizerIn: counters[H_RESIZER_IN] ?? 0,
    npktsResizerOut: counters[H_RESIZER_OUT] ?? 0,
    npktsResizerDiscard: counters[H_RESIZER_DISCARD] ?? 0,
  };
}

/** What a worker is started with (workerData). */
export interface WorkerInit {
  readonly counters: SharedArrayBuffer;
  readonly activity: SharedArrayBuffer;
  /**
   * One Int32 the main thread sets after posting a message. A busy worker checks it after every
   * packet and then reads its messages at once, instead of after the whole event-loop turn of
   * packets: a command waiting for the worker (a bind, a release) waits for one packet, not for
   * thousands.
   */
  readonly mailbox: SharedArrayBuffer;
  readonly sendTwice: boolean;
  /** Connect the sockets of latched symmetric RTP legs. */
  readonly connect: boolean;
  /** Strict media sources (relay.ts); false with `--no_strict_source`. */
  readonly strictSource: boolean;
  /** The daemon's own endpoints (own-endpoints.ts): the shared port table and local addresses. */
  readonly own?: SharedArrayBuffer;
  readonly locals?: readonly string[];
  readonly mediaAddresses?: readonly string[];
  readonly port: MessagePort;
}

/** Bytes of the two shared buffers for `slots` streams. */
export function sharedSizes(slots: number): { counters: number; activity: number } {
  return {
    counters: (HEADER_FIELDS + slots * STREAM_FIELDS) * Float64Array.BYTES_PER_ELEMENT,
    activity: slots * Int32Array.BYTES_PER_ELEMENT,
  };
}

/** Offset of a stream's slot in the counters array. */
function slotBase(slot: number): number {
  return HEADER_FIELDS + slot * STREAM_FIELDS;
}

/**
 * The flags of a stream that the main thread sets (signalling, recorder, player) and the worker's
 * stream mirrors: MediaStream's flags, with the recorder reduced to whether one runs.
 */
interface StreamFlags {
  readonly complete: boolean;
  readonly asymmetric: boolean;
  readonly playing: boolean;
  readonly blocked: boolean;
  /** A recorder runs: the worker posts every accepted packet back ('tap'). */
  readonly tap: boolean;
}

/**
 * One change the main thread makes to a worker stream: any of its flags, `z` of its leg in ms (0
 * stops it; docs/protocol.md 5), or a pre-fill of its remote from signalling.
 */
export type StreamChange = Partial<StreamFlags> & {
  readonly resizeMs?: number;
  readonly prefill?: Endpoint;
};

/** A stream's remote as the worker learnt it (pre-fill, latching), mirrored on the main thread. */
export interface StreamRemote {
  readonly address: string | undefined;
  readonly port: number;
  readonly latched: boolean;
}

/** What a worker's stream takes a {@link StreamChange} on (a RelayStream). */
export interface MirroredStream {
  complete: boolean;
  asymmetric: boolean;
  playing: boolean;
  blocked: boolean;
  tap: PacketTap | undefined;
  prefill(address: string, port: number): void;
  repacketize(ms: number | undefined): void;
}

/**
 * Worker side: applies a change to the worker's stream. `tap` makes the recorder that posts the
 * stream's packets back. Not on the packet path: a change comes with a command.
 */
export function applyStreamChange(
  stream: MirroredStream,
  change: StreamChange,
  tap: () => PacketTap,
): void {
  if (change.complete !== undefined) stream.complete = change.complete;
  if (change.asymmetric !== undefined) stream.asymmetric = change.asymmetric;
  if (change.playing !== undefined) stream.playing = change.playing;
  if (change.blocked !== undefined) stream.blocked = change.blocked;
  if (change.tap !== undefined) stream.tap = change.tap ? tap() : undefined;
  if (change.prefill !== undefined) stream.prefill(change.prefill.address, change.prefill.port);
  if (change.resizeMs !== undefined) {
    stream.repacketize(change.resizeMs > 0 ? change.resizeMs : undefined);
  }
}

/** Main thread to worker. Streams are named by their slot. */
export type ToWorker =
  /** The four streams of a session: [rtp0, rtcp0, rtp1, rtcp1]. */
  | { readonly op: 'create'; readonly slots: readonly [number, number, number, number] }
  | {
      readonly op: 'bind';
      readonly req: number;
      readonly rtp: number;
      readonly rtcp: number;
      readonly family: Family;
      readonly address: string;
      readonly port: number;
    }
  /** The main thread changed what the stream's worker mirrors of it (see StreamChange). */
  | { readonly op: 'stream'; readonly slot: number; readonly change: StreamChange }
  /** A prompt packet to send out of the stream's socket. */
  | {
      readonly op: 'send';
      readonly slot: number;
      readonly data: Uint8Array;
      readonly port: number;
      readonly address: string;
    }
  /** The stream is gone: close its socket, answer 'freed' once the slot is written no more. */
  | { readonly op: 'free'; readonly slot: number }
  /**
   * Shutdown: close every socket of the worker and answer 'stopped'. Whatever the worker posted
   * before that answer (recorded packets above all) reaches the main thread before it.
   */
  | { readonly op: 'stop' }
  /** Diagnostics: answer 'memory' with the worker's stream table and heap figures. */
  | { readonly op: 'memory'; readonly req: number };

/** What a worker holds: its stream table and its V8 heap (see WorkerMediaPlane.memory()). */
export interface WorkerMemory {
  /** Live streams (created and not freed). */
  readonly streams: number;
  /** Length of the stream table, indexed by slot: the highest slot ever used, plus one. */
  readonly table: number;
  readonly heapUsed: number;
  readonly heapTotal: number;
  readonly external: number;
  readonly arrayBuffers: number;
}

/** Worker to main thread. */
export type FromWorker =
  /** The worker's module is loaded and it listens. */
  | { readonly op: 'ready' }
  | {
      readonly op: 'bound';
      readonly req: number;
      readonly outcome: 'ok' | 'busy' | 'fatal';
      readonly error?: string;
    }
  /** The remote address or the latch state of a stream changed. */
  | ({ readonly op: 'remote'; readonly slot: number } & StreamRemote)
  /** A packet accepted on a stream whose recorder runs. */
  | {
      readonly op: 'tap';
      readonly slot: number;
      readonly data: Uint8Array;
      readonly address: string;
      readonly port: number;
      readonly wallMs: number;
    }
  | { readonly op: 'freed'; readonly slot: number }
  /** Every socket of the worker is closed: no packet is received or recorded any more. */
  | { readonly op: 'stopped' }
  | ({ readonly op: 'memory'; readonly req: number } & WorkerMemory);
