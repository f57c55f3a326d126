/**
 * A session: one relayed media stream pair of a call, with its two legs (protocol.md 0, 4). Leg 1
 * faces the party whose tag is the session tag (the caller), leg 0 the other party. Each leg owns
 * an RTP and an RTCP relay stream; the session owns the legs and closes them.
 */
import type { ActivitySink, MediaStream } from '../media/stream.ts';
import type { Recorder } from '../record/recorder.ts';
import type { SessionNotify } from './notify-types.ts';

/** A local media address a leg binds on. */
export interface LegLocal {
  readonly address: string;
  readonly family: 4 | 6;
  readonly advertised?: string;
}

/** One side of a session. */
export class Leg {
  readonly index: 0 | 1;
  readonly rtp: MediaStream;
  readonly rtcp: MediaStream;
  local: LegLocal;
  /** A port pair is bound. */
  bound = false;
  weak = false;
  onHold = false;
  /** `c` list of the party this leg faces, for `P ... session`. */
  codecs: readonly number[] | undefined;
  /** `z` value stored for `P ... session`; -1 when none. */
  packetTimeMs = -1;
  /** Idle timeout of this leg, seconds. */
  ttlMax: number;
  /** IP TOS of the packets this leg's sockets send (`-t`, `S tos=N`); IPv4 legs only. */
  tos = 0;
  /** Monotonic ms of the last re-arm. */
  armedAt: number;
  /** A packet arrived since the last sweep: re-arm at the next one. */
  active = false;
  /** The leg's one recorder slot, shared by R, C and -a (protocol.md 6.1). */
  #recorder: Recorder | undefined;

  constructor(
    index: 0 | 1,
    rtp: MediaStream,
    rtcp: MediaStream,
    local: LegLocal,
    ttl: number,
    now: number,
  ) {
    this.index = index;
    this.rtp = rtp;
    this.rtcp = rtcp;
    this.local = local;
    this.ttlMax = ttl;
    this.armedAt = now;
  }

  /** Local RTP port, 0 when no pair is bound. */
  get port(): number {
    return this.bound ? this.rtp.localPort : 0;
  }

  /** Whole seconds left before this leg counts as idle (may be negative once overdue). */
  remaining(now: number): number {
    return this.ttlMax - Math.floor((now - this.armedAt) / 1000);
  }

  /** Re-arms the idle timer to its maximum. */
  rearm(now: number): void {
    this.armedAt = now;
    this.active = false;
  }

  get recorder(): Recorder | undefined {
    return this.#recorder;
  }

  /** Puts a recorder in the slot: packets arriving on the leg are handed to it. */
  startRecording(recorder: Recorder): void {
    this.#recorder = recorder;
    this.rtp.tap = recorder;
    this.rtcp.tap = recorder;
  }

  /** Empties the slot; resolves when the files are flushed, closed and moved. */
  stopRecording(): Promise<void> {
    const recorder = this.#recorder;
    if (recorder === undefined) return Promise.resolve();
    this.#recorder = undefined;
    this.rtp.tap = undefined;
    this.rtcp.tap = undefined;
    return recorder.close();
  }

  /** Closes both sockets. */
  release(): void {
    this.rtp.detach();
    this.rtcp.detach();
    this.bound = false;
  }
}

/** One relayed media stream pair. */
export class Session implements ActivitySink {
  readonly callId: string;
  /** T1 of the U that created the session, verbatim. */
  readonly tag: string;
  readonly legs: readonly [Leg, Leg];
  readonly createdAt: number;
  /** One idle counter for both legs (default) or one per leg (`-i`). */
  readonly unifiedTtl: boolean;
  strong = false;
  complete = false;
  /** Where to send the tag when the session expires (protocol.md 8); replaced by every U. */
  notify: SessionNotify | undefined;
  #closed = false;

  constructor(
    callId: string,
    tag: string,
    legs: readonly [Leg, Leg],
    unifiedTtl: boolean,
    now: number,
  ) {
    this.callId = callId;
    this.tag = tag;
    this.legs = legs;
    this.unifiedTtl = unifiedTtl;
    this.createdAt = now;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Packet path: a packet reached the relay stage on `leg`. Re-armed at the next sweep. */
  touch(leg: 0 | 1): void {
    if (this.unifiedTtl) {
      this.legs[0].active = true;
      this.legs[1].active = true;
    } else this.legs[leg].active = true;
  }

  /** Re-arms both legs (every U/L that finds the session). */
  rearm(now: number): void {
    this.legs[0].rearm(now);
    this.legs[1].rearm(now);
  }

  /** Smallest whole seconds left of the legs' idle timers, as Q reports it (never below 0). */
  ttl(now: number): number {
    return Math.max(0, Math.min(this.legs[0].remaining(now), this.legs[1].remaining(now)));
  }

  /** No strong or weak reference is left: D may destroy the session. */
  get unreferenced(): boolean {
    return !this.strong && !this.legs[0].weak && !this.legs[1].weak;
  }

  /** Marks the session complete: packets are relayed from now on. */
  markComplete(): void {
    this.complete = true;
    for (const leg of this.legs) {
      leg.rtp.complete = true;
      leg.rtcp.complete = true;
    }
  }

  /** Closes every socket. Idempotent; the manager does the bookkeeping. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.legs[0].release();
    this.legs[1].release();
  }
}
