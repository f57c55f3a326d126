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

/**
 * Doubles of the header: the worker's packet totals behind G's npkts_*, and, once a second, its
 * event loop's utilization and mean lateness over the last second (for `Il` and
 * `--overload_prot`).
 */
export const HEADER_FIELDS = 8;
export const H_RCVD = 0;
export const H_RELAYED = 1;
export const H_DISCARD = 2;
export const H_LOAD = 3;
export const H_LATE_MS = 4;

/** Doubles of one stream slot. */
export const STREAM_FIELDS = 16;
export const S_PKTS_IN = 0;
export const S_BYTES_IN = 1;
export const S_RELAYED = 2;
export const S_DROPPED = 3;
export const S_IGNORED = 4;
export const S_SEND_ERRORS = 5;
export const S_PERRS = 6;
export const S_NRCVD = 7;
export const S_NDUPS = 8;
export const S_NSENT = 9;
export const S_JLAST = 10;
export const S_JMAX = 11;
export const S_JAVG = 12;
export const S_LONGEST_IPI = 13;

/** What a worker is started with (workerData). */
export interface WorkerInit {
  readonly index: number;
  readonly counters: SharedArrayBuffer;
  readonly activity: SharedArrayBuffer;
  /**
   * One Int32 the main thread sets after posting a message. A busy worker checks it after every
   * packet and then reads its messages at once, instead of after the whole event-loop turn of
   * packets: a command waiting for the worker (a bind, a release) waits for one packet, not for
   * thousands.
   */
  readonly mailbox: SharedArrayBuffer;
  readonly slots: number;
  readonly sendTwice: boolean;
  /** Connect the sockets of latched symmetric RTP legs. */
  readonly connect: boolean;
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
export function slotBase(slot: number): number {
  return HEADER_FIELDS + slot * STREAM_FIELDS;
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
      readonly family: 4 | 6;
      readonly address: string;
      readonly port: number;
    }
  | {
      readonly op: 'set';
      readonly slot: number;
      readonly field: 'complete' | 'asymmetric' | 'playing' | 'tap';
      readonly value: boolean;
    }
  | {
      readonly op: 'prefill';
      readonly slot: number;
      readonly address: string;
      readonly port: number;
    }
  /** A prompt packet to send out of the stream's socket. */
  | {
      readonly op: 'send';
      readonly slot: number;
      readonly data: Uint8Array;
      readonly port: number;
      readonly address: string;
    }
  /** The stream is gone: close its socket, answer 'freed' once the slot is written no more. */
  | { readonly op: 'free'; readonly slot: number };

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
  | {
      readonly op: 'remote';
      readonly slot: number;
      readonly address: string | undefined;
      readonly port: number;
      readonly latched: boolean;
    }
  /** A packet accepted on a stream whose recorder runs. */
  | {
      readonly op: 'tap';
      readonly slot: number;
      readonly data: Uint8Array;
      readonly address: string;
      readonly port: number;
      readonly wallMs: number;
    }
  | { readonly op: 'freed'; readonly slot: number };
