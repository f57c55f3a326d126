/**
 * One playback as a pure packet generator (docs/protocol.md 7.2, 7.3; sippy/rtpproxy
 * src/rtpp_server.c): `next(nowMs)` hands out the next RTP packet once it is due, `'later'` before
 * that, `'eof'` when the prompt has been played `count` times. No I/O and no timers: the scheduler
 * owns the clock and the socket.
 *
 * Packet k is due at `startMs + k * packetMs`, computed from the start time, so pacing does not
 * drift however late the scheduler wakes up. One SSRC for the whole playback; the sequence number
 * grows by one and the timestamp by the packet's audio length (8 kHz clock) per packet, across
 * repetitions too; the marker bit is set on the first packet only.
 */
import { RTP_FIXED_HEADER, writeRtpHeader } from '../media/rtp.ts';
import type { PacketFraming } from './prompts.ts';

/** `next()` before the next packet is due. */
export const LATER = 'later';
/** `next()` once the prompt has been played as many times as asked. */
export const EOF = 'eof';

/** Everything a player is built from. */
export interface PlayerInit {
  /** The whole prompt file; packets are cut from it (a trailing partial packet is never sent). */
  readonly data: Buffer;
  readonly framing: PacketFraming;
  /** Times to play the file: > 0 that many times, < 0 until stopped (0 plays nothing). */
  readonly count: number;
  readonly ssrc: number;
  /** Sequence number of the first packet. */
  readonly sequence: number;
  /** Timestamp of the first packet. */
  readonly timestamp: number;
  /** Monotonic ms the first packet is due. */
  readonly startMs: number;
}

export class Player {
  readonly ssrc: number;
  readonly #data: Buffer;
  readonly #payloadType: number;
  readonly #payloadBytes: number;
  readonly #packetMs: number;
  readonly #timestampStep: number;
  /** Further passes over the file after the current one; negative: forever. */
  #passesLeft: number;
  #offset = 0;
  #sequence: number;
  #timestamp: number;
  #marker = true;
  #startMs: number;
  /** Packets handed out so far. */
  #sent = 0;
  #ended: boolean;

  constructor(init: PlayerInit) {
    this.ssrc = init.ssrc >>> 0;
    this.#data = init.data;
    this.#payloadType = init.framing.payloadType;
    this.#payloadBytes = init.framing.payloadBytes;
    this.#packetMs = init.framing.packetMs;
    this.#timestampStep = init.framing.timestampStep;
    this.#passesLeft = init.count > 0 ? init.count - 1 : init.count;
    this.#sequence = init.sequence & 0xffff;
    this.#timestamp = init.timestamp >>> 0;
    this.#startMs = init.startMs;
    this.#ended =
      init.count === 0 || this.#payloadBytes <= 0 || init.data.length < this.#payloadBytes;
  }

  /** Monotonic ms the next packet is due. */
  get dueMs(): number {
    return this.#startMs + this.#sent * this.#packetMs;
  }

  /** Packets handed out so far. */
  get sent(): number {
    return this.#sent;
  }

  /** The next packet if it is due at `nowMs`; `'later'` if not yet; `'eof'` when done. */
  next(nowMs: number): Buffer | typeof LATER | typeof EOF {
    if (this.#ended) return EOF;
    if (this.dueMs > nowMs) return LATER;
    if (this.#offset + this.#payloadBytes > this.#data.length) {
      if (this.#passesLeft === 0) {
        this.#ended = true;
        return EOF;
      }
      if (this.#passesLeft > 0) this.#passesLeft -= 1;
      this.#offset = 0;
    }
    const packet = Buffer.allocUnsafe(RTP_FIXED_HEADER + this.#payloadBytes);
    writeRtpHeader(packet, 0, {
      marker: this.#marker,
      payloadType: this.#payloadType,
      sequence: this.#sequence,
      timestamp: this.#timestamp,
      ssrc: this.ssrc,
    });
    this.#data.copy(packet, RTP_FIXED_HEADER, this.#offset, this.#offset + this.#payloadBytes);
    this.#offset += this.#payloadBytes;
    this.#sequence = (this.#sequence + 1) & 0xffff;
    this.#timestamp = (this.#timestamp + this.#timestampStep) >>> 0;
    this.#marker = false;
    this.#sent += 1;
    return packet;
  }

  /**
   * Moves the schedule so that the next packet is due at `nowMs`, skipping no audio: used while the
   * target has no address yet and after a long stall, so that neither turns into a burst.
   */
  defer(nowMs: number): void {
    this.#startMs = nowMs - this.#sent * this.#packetMs;
  }
}
