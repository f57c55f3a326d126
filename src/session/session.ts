/**
 * A session: one relayed media stream pair of a call, with its two legs (docs/protocol.md 1, 4). Leg 1
 * faces the party whose tag is the session tag (the caller), leg 0 the other party. Each leg owns
 * an RTP and an RTCP relay stream; the session owns the legs, and its close() ends everything they
 * hold (sockets, TOS marks, recorders, players) and hands back its figures.
 */
import type { ActivitySink, MediaStream, PacketTap, RtpStatsView } from '../media/stream.ts';
import type { Recorder } from '../record/recorder.ts';
import type { SessionNotify } from './notify-types.ts';
import type { Family } from '../base/net.ts';
import type { Side } from '../base/side.ts';

/**
 * An idle counter in whole seconds (sippy/rtpproxy src/rtpp_ttl.c): `left` counts down once per
 * sweep tick; the session expires at the tick that finds it at 0. In the default ("unified") mode
 * both legs share one counter; with `-i` each leg has its own.
 */
export class IdleCounter {
  /** The value `reset()` restores. */
  max: number;
  left: number;

  constructor(max: number) {
    this.max = max;
    this.left = max;
  }

  reset(): void {
    this.left = this.max;
  }

  /** New maximum, and the counter restarts from it. */
  resetWith(max: number): void {
    this.max = max;
    this.left = max;
  }
}

/** A local media address a leg binds on. */
export interface LegLocal {
  readonly address: string;
  readonly family: Family;
  readonly advertised?: string;
}

/** One side of a session. */
export class Leg {
  readonly index: Side;
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
  /** The leg's idle counter; the same object for both legs unless `-i`. */
  readonly ttl: IdleCounter;
  /**
   * The timeout this leg gets when the session completes: `-T`, or what `S ttl=N` set (the
   * reference's `stream_ttl`).
   */
  streamTtl: number;
  /** IP TOS of the packets this leg's sockets send (`-t`, `S tos=N`); IPv4 legs only. */
  tos = 0;
  /** A packet reached the relay stage since the last sweep tick: the counter restarts there. */
  active = false;
  /** The leg's one recorder slot, shared by R, C and -a (docs/protocol.md 6.1). */
  #recorder: Recorder | undefined;
  /** Forks into other sessions (the `C` sub-command); apart from the recorder slot. */
  readonly #forks = new Set<PacketTap>();

  constructor(
    index: Side,
    rtp: MediaStream,
    rtcp: MediaStream,
    local: LegLocal,
    ttl: IdleCounter,
    streamTtl: number,
  ) {
    this.index = index;
    this.rtp = rtp;
    this.rtcp = rtcp;
    this.local = local;
    this.ttl = ttl;
    this.streamTtl = streamTtl;
  }

  /** Local RTP port, 0 when no pair is bound. */
  get port(): number {
    return this.bound ? this.rtp.localPort : 0;
  }

  /** Whole seconds left on the leg's counter, as Q sees it: a packet not yet swept counts as a reset. */
  remaining(): number {
    return this.active ? this.ttl.max : this.ttl.left;
  }

  get recorder(): Recorder | undefined {
    return this.#recorder;
  }

  /** Puts a recorder in the slot: packets arriving on the leg are handed to it. */
  startRecording(recorder: Recorder): void {
    this.#recorder = recorder;
    this.#applyTaps();
  }

  /** Empties the slot; resolves when the files are flushed, closed and moved. */
  stopRecording(): Promise<void> {
    const recorder = this.#recorder;
    if (recorder === undefined) return Promise.resolve();
    this.#recorder = undefined;
    this.#applyTaps();
    return recorder.close();
  }

  /** Hands the packets arriving on the leg to `fork` too, until removeFork(). */
  addFork(fork: PacketTap): void {
    this.#forks.add(fork);
    this.#applyTaps();
  }

  removeFork(fork: PacketTap): void {
    if (this.#forks.delete(fork)) this.#applyTaps();
  }

  /** The streams' one tap: the recorder, a fork, or both in turn (set only when they change). */
  #applyTaps(): void {
    const taps: PacketTap[] = [...this.#forks];
    if (this.#recorder !== undefined) taps.unshift(this.#recorder);
    let tap: PacketTap | undefined;
    if (taps.length === 1) tap = taps[0];
    else if (taps.length > 1) {
      tap = {
        record: (packet, isRtp, from, to, family, wallMs) => {
          for (const each of taps) each.record(packet, isRtp, from, to, family, wallMs);
        },
      };
    }
    this.rtp.tap = tap;
    this.rtcp.tap = tap;
  }

  /** Closes both sockets. */
  release(): void {
    this.rtp.detach();
    this.rtcp.detach();
    this.bound = false;
  }
}

/**
 * What a session's close releases besides its sockets, handed over by the manager: the TOS marks
 * of its legs and recorders, its legs' players, and the clock its duration is read from.
 */
export interface SessionCloseHooks {
  /** Monotonic ms, the clock `createdAt` comes from. */
  readonly now: () => number;
  /** Takes the TOS marks of a leg or a recorder off (session/mark-types.ts). */
  readonly unmark?: (owner: object) => void;
  /** Stops what plays out of a leg's RTP stream, if anything does. */
  readonly stopPlayer?: (stream: MediaStream) => void;
}

/** A closed session's traffic, as the session-end log reports it. */
interface SessionTraffic {
  /** RTP packets in from the caller (leg 1, facing the session-tag party). */
  readonly callerPkts: number;
  /** RTP packets in from the callee (leg 0). */
  readonly calleePkts: number;
  readonly callerBytes: number;
  readonly calleeBytes: number;
  /** RTP and RTCP packets relayed, dropped and ignored, both legs. */
  readonly relayed: number;
  readonly dropped: number;
  readonly ignored: number;
}

/** Counters summed over a session's four streams (util/stats.ts `ended*`). */
interface StreamTotals {
  /** Bytes (UDP payload) accepted from both parties, RTP and RTCP. */
  readonly bytesIn: number;
  readonly ignored: number;
  readonly sendErrors: number;
}

/** What `Session.close()` hands back: folded into the global stats and the session-end log. */
export interface SessionEnd {
  /** Seconds from creation to close. */
  readonly duration: number;
  readonly complete: boolean;
  /** Seconds from creation to the command that completed it; undefined if it never did. */
  readonly setup: number | undefined;
  /** Legs that received RTP (0, 1 or 2). */
  readonly rtpDirections: number;
  /** Legs that received RTCP (0, 1 or 2). */
  readonly rtcpDirections: number;
  /** RTP analysis of each leg that has one, leg 0 first. */
  readonly rtpAnalysis: readonly RtpStatsView[];
  readonly traffic: SessionTraffic;
  /** Sums over the four streams, for the metrics. */
  readonly streams: StreamTotals;
  /** One per leg: resolves when its recording is flushed, closed and moved. */
  readonly recordings: readonly Promise<void>[];
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
  /**
   * When the session became complete (both parties have a port): the arrival time of the command
   * that completed it, monotonic ms; undefined until then.
   */
  connectedAt: number | undefined;
  strong = false;
  complete = false;
  /** Where to send the tag when the session expires (docs/protocol.md 8); replaced by every U. */
  notify: SessionNotify | undefined;
  readonly #hooks: SessionCloseHooks;
  #closed = false;
  /** Set by the first close(); what every later one returns. */
  #end: SessionEnd | undefined;
  /** Run once when the session closes (forks into it are taken off their source legs). */
  readonly #onClose: (() => void)[] = [];

  constructor(
    callId: string,
    tag: string,
    legs: readonly [Leg, Leg],
    unifiedTtl: boolean,
    now: number,
    hooks: SessionCloseHooks,
  ) {
    this.callId = callId;
    this.tag = tag;
    this.legs = legs;
    this.unifiedTtl = unifiedTtl;
    this.createdAt = now;
    this.#hooks = hooks;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Packet path: a packet reached the relay stage on `leg`. Re-armed at the next sweep. */
  touch(leg: Side): void {
    if (this.unifiedTtl) {
      this.legs[0].active = true;
      this.legs[1].active = true;
    } else this.legs[leg].active = true;
  }

  /** Restarts both counters from their maximum (every U/L that finds the session). */
  rearm(): void {
    for (const leg of this.legs) {
      leg.ttl.reset();
      leg.active = false;
    }
  }

  /** Smallest whole seconds left of the legs' idle counters, as Q reports it (never below 0). */
  ttl(): number {
    return Math.max(0, Math.min(this.legs[0].remaining(), this.legs[1].remaining()));
  }

  /**
   * One tick of the once-a-second sweep (sippy/rtpproxy src/rtpp_proc_ttl.c): counters of legs
   * that saw packets restart; then the session expires if the smallest counter is at 0 (true),
   * otherwise every counter goes down by one. A counter of N thus expires between N and N + 1
   * seconds after its last restart, as in the reference.
   */
  tick(): boolean {
    const [l0, l1] = this.legs;
    for (const leg of this.legs) {
      if (!leg.active) continue;
      leg.ttl.reset();
      leg.active = false;
    }
    if (Math.min(l0.ttl.left, l1.ttl.left) <= 0) return true;
    l0.ttl.left -= 1;
    if (l1.ttl !== l0.ttl) l1.ttl.left -= 1;
    return false;
  }

  /** No strong or weak reference is left: D may destroy the session. */
  get unreferenced(): boolean {
    return !this.strong && !this.legs[0].weak && !this.legs[1].weak;
  }

  /**
   * Marks the session complete: packets are relayed from now on, and each counter restarts from
   * its leg's `streamTtl` (-T unless `S ttl=N` changed it). `now`: arrival of the command.
   */
  markComplete(now: number): void {
    this.complete = true;
    this.connectedAt = now;
    for (const leg of this.legs) {
      leg.ttl.resetWith(leg.streamTtl);
      leg.active = false;
    }
    for (const leg of this.legs) {
      leg.rtp.complete = true;
      leg.rtcp.complete = true;
    }
  }

  /** Registers `fn` to run when the session closes. */
  onClose(fn: () => void): void {
    this.#onClose.push(fn);
  }

  /**
   * Ends the session, children first: forks into it come off their source legs, the legs' sockets
   * close and lose their TOS marks, their recorders are emptied (each recorder's marks taken off
   * before it closes), then their players stop. Returns the session's figures, read after all of
   * that; idempotent: a second call changes nothing and returns the same result.
   */
  /** When close() ran, monotonic ms. */
  #closedAt: number | undefined;

  close(): SessionEnd {
    const { now, unmark, stopPlayer } = this.#hooks;
    // A call from inside the cascade (a hook) gets the figures as they stand.
    if (this.#closed) return this.#end ?? this.#figures(now(), []);
    this.#closed = true;
    for (const fn of this.#onClose.splice(0)) fn();
    this.legs[0].release();
    this.legs[1].release();
    for (const leg of this.legs) unmark?.(leg);
    const recordings = this.legs.map((leg) => {
      const recorder = leg.recorder;
      if (recorder !== undefined) unmark?.(recorder);
      return leg.stopRecording();
    });
    for (const leg of this.legs) stopPlayer?.(leg.rtp);
    this.#closedAt = now();
    this.#end = this.#figures(this.#closedAt, recordings);
    return this.#end;
  }

  /**
   * The figures of the closed session again, with its counters as they stand now: the kernel
   * fast path hands over a stream's last packets after the session closed (manager.ts).
   */
  refigure(end: SessionEnd): SessionEnd {
    return this.#figures(this.#closedAt ?? this.#hooks.now(), end.recordings);
  }

  /** The figures of a session that just closed. */
  #figures(now: number, recordings: readonly Promise<void>[]): SessionEnd {
    const [l0, l1] = this.legs;
    const streams = [l0.rtp, l1.rtp, l0.rtcp, l1.rtcp];
    const sum = (count: (s: MediaStream) => number): number =>
      streams.reduce((total, s) => total + count(s), 0);
    const rtpAnalysis: RtpStatsView[] = [];
    for (const leg of this.legs) {
      const analysis = leg.rtp.rtpStats;
      if (analysis !== undefined) rtpAnalysis.push(analysis);
    }
    return {
      duration: (now - this.createdAt) / 1000,
      complete: this.complete,
      setup:
        this.connectedAt === undefined ? undefined : (this.connectedAt - this.createdAt) / 1000,
      rtpDirections: Number(l0.rtp.npktsIn > 0) + Number(l1.rtp.npktsIn > 0),
      rtcpDirections: Number(l0.rtcp.npktsIn > 0) + Number(l1.rtcp.npktsIn > 0),
      rtpAnalysis,
      traffic: {
        callerPkts: l1.rtp.npktsIn,
        calleePkts: l0.rtp.npktsIn,
        callerBytes: l1.rtp.nbytesIn,
        calleeBytes: l0.rtp.nbytesIn,
        relayed: sum((s) => s.nrelayed),
        dropped: sum((s) => s.ndropped),
        ignored: sum((s) => s.nignored),
      },
      streams: {
        bytesIn: sum((s) => s.nbytesIn),
        ignored: sum((s) => s.nignored),
        sendErrors: sum((s) => s.nsendErrors),
      },
      recordings,
    };
  }
}
