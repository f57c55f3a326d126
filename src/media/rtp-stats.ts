import { clockRateOf, rtpPayloadOffset } from './rtp.ts';

/*
 * Per-direction RTP analysis behind the Q counters rtpa_* and longest_ipi (docs/protocol.md 10.1).
 * `update` runs once per received RTP packet: O(1) and allocation-free (fields are read straight
 * from the Buffer after `rtpPayloadOffset` has bounds-checked the header).
 *
 * Sequence tracking follows RFC 3550 appendix A.1 without probation. Packets are counted in
 * "stretches": runs of one SSRC with continuous sequence numbers. A stretch keeps the extended
 * (cycle-counted) highest sequence number and the lowest one seen; nsent sums
 * `max - min + 1` over all stretches, like rtpproxy's update_rtpp_totals(). A new stretch starts
 *  - when the SSRC changes (the old stretch's counts are kept, its sequence state is dropped);
 *  - when two consecutive packets confirm a sequence jump (A.1 `bad_seq`), e.g. a re-INVITE
 *    that restarted the sender's sequence numbers with the same SSRC.
 * A lone packet outside the A.1 window (more than MAX_DROPOUT ahead or MAX_MISORDER behind) is a
 * "stray": it counts as one packet sent and received and leaves the stretch alone.
 *
 * Duplicates are found in a 128-entry bitmap of the sequence numbers at or below the extended
 * maximum. Since MAX_MISORDER < 128, every late packet A.1 accepts falls inside the bitmap.
 */

const SEQ_MOD = 0x10000;
/** RFC 3550 A.1: largest forward jump still taken as the same stream (packets lost). */
const MAX_DROPOUT = 3000;
/** RFC 3550 A.1: largest backward distance still taken as a late (reordered) packet. */
const MAX_MISORDER = 100;
/** Bitmap size in sequence numbers: four 32-bit words. */
const WINDOW = 128;
const WINDOW_MASK = WINDOW - 1;
const WORD_BITS = 32;
/** RFC 3550 A.8: the jitter estimator's gain is 1/16. */
const JITTER_GAIN = 16;

const OFF_B1 = 1;
const OFF_SEQUENCE = 2;
const OFF_TIMESTAMP = 4;
const OFF_SSRC = 8;
const PT_MASK = 0x7f;

/** Per-direction RTP sequence, loss, duplicate, jitter and inter-packet-gap statistics. */
export class RtpStats {
  #perrs = 0;
  #nrcvd = 0;
  #ndups = 0;
  /** nsent of finished stretches. */
  #closedSent = 0;
  /** Packets outside every stretch; each counts once in nsent (and once in nrcvd). */
  #strays = 0;

  /** SSRC of the current stretch, -1 before the first packet. */
  #ssrc = -1;
  /** Extended highest sequence number: A.1's `cycles + max_seq`. */
  #maxExt = 0;
  /** Lowest extended sequence number received in the current stretch. */
  #baseExt = 0;
  /** A.1 `bad_seq`: the sequence number that would confirm a jump, -1 when none is pending. */
  #badSeq = -1;
  /** Bit `ext & 127` is set when extended sequence `ext` (within 128 of #maxExt) was received. */
  readonly #seen = new Uint32Array(WINDOW / WORD_BITS);

  #lastArrivalMs = -1;
  #longestIpiMs = 0;

  /** Clock rate of the jitter baseline packet, 0 when there is no baseline. */
  #jRate = 0;
  #jPrevArrivalMs = 0;
  #jPrevTs = 0;
  #jlast = 0;
  #jmax = 0;
  #jsum = 0;
  #jcount = 0;

  /** Packets that failed RTP parsing (too short, version not 2, bad CSRC/extension/padding). */
  get perrs(): number {
    return this.#perrs;
  }

  /** Unique packets received (duplicates excluded). */
  get nrcvd(): number {
    return this.#nrcvd;
  }

  /** Packets whose sequence number had already been received. */
  get ndups(): number {
    return this.#ndups;
  }

  /** Packets the sender sent according to sequence numbers, summed over SSRC changes. */
  get nsent(): number {
    const current = this.#ssrc < 0 ? 0 : this.#maxExt - this.#baseExt + 1;
    return this.#closedSent + current + this.#strays;
  }

  /** Packets lost: nsent - nrcvd, never negative. */
  get nlost(): number {
    const lost = this.nsent - this.#nrcvd;
    return lost > 0 ? lost : 0;
  }

  /** Current interarrival jitter estimate (RFC 3550 A.8), in RTP timestamp units. */
  get jlast(): number {
    return this.#jlast;
  }

  /** Highest jitter estimate seen, in RTP timestamp units. */
  get jmax(): number {
    return this.#jmax;
  }

  /** Mean of the jitter estimates taken after each packet from a source's second packet on. */
  get javg(): number {
    return this.#jcount === 0 ? 0 : this.#jsum / this.#jcount;
  }

  /** Longest gap between two consecutive RTP packets, in seconds. */
  get longestIpi(): number {
    return this.#longestIpiMs / 1000;
  }

  /** Accounts for one received RTP packet; `arrivalMs` comes from a monotonic clock. */
  update(buf: Buffer, arrivalMs: number): void {
    if (rtpPayloadOffset(buf) < 0) {
      this.#perrs++;
      return;
    }
    const rate = clockRateOf(buf.readUInt8(OFF_B1) & PT_MASK);
    const seq = buf.readUInt16BE(OFF_SEQUENCE);
    const ts = buf.readUInt32BE(OFF_TIMESTAMP);
    const ssrc = buf.readUInt32BE(OFF_SSRC);

    if (this.#lastArrivalMs >= 0) {
      const gap = arrivalMs - this.#lastArrivalMs;
      if (gap > this.#longestIpiMs) this.#longestIpiMs = gap;
    }
    this.#lastArrivalMs = arrivalMs;

    if (ssrc !== this.#ssrc) {
      if (this.#ssrc >= 0) this.#closedSent += this.#maxExt - this.#baseExt + 1;
      this.#ssrc = ssrc;
      this.#startStretch(seq, seq);
      this.#nrcvd++;
      // A new source has its own timestamp base and its own jitter (RFC 3550 6.4.1).
      this.#jlast = 0;
      this.#jitterBaseline(arrivalMs, ts, rate);
      return;
    }

    const maxExt = this.#maxExt;
    const udelta = (seq - maxExt) & 0xffff;
    let ext: number;
    if (udelta === 0) {
      ext = maxExt;
    } else if (udelta < MAX_DROPOUT) {
      ext = maxExt + udelta;
      this.#advance(ext);
    } else if (udelta >= SEQ_MOD - MAX_MISORDER) {
      ext = maxExt - (SEQ_MOD - udelta);
    } else {
      this.#nrcvd++;
      if (seq === this.#badSeq) {
        // Second packet of the jump: its predecessor was counted as a stray, fold it into the
        // new stretch. rtpproxy keeps jlast across a sequence reset but takes no sample here.
        this.#strays--;
        this.#closedSent += maxExt - this.#baseExt + 1;
        this.#startStretch(seq - 1, seq);
        this.#jitterBaseline(arrivalMs, ts, rate);
      } else {
        this.#strays++;
        this.#badSeq = (seq + 1) & 0xffff;
      }
      return;
    }

    const word = (ext & WINDOW_MASK) >>> 5;
    const bit = 1 << (ext & (WORD_BITS - 1));
    const bits = this.#seen[word] ?? 0;
    if ((bits & bit) !== 0) {
      // A duplicate repeats an earlier timestamp; it says nothing about network jitter.
      this.#ndups++;
      return;
    }
    this.#seen[word] = bits | bit;
    this.#nrcvd++;
    if (ext < this.#baseExt) this.#baseExt = ext;
    this.#jitterSample(arrivalMs, ts, rate);
  }

  /** Starts a stretch spanning extended sequence numbers base..max, both marked received. */
  #startStretch(base: number, max: number): void {
    this.#seen.fill(0);
    this.#baseExt = base;
    this.#maxExt = max;
    this.#badSeq = -1;
    for (let ext = base; ext <= max; ext++) {
      const word = (ext & WINDOW_MASK) >>> 5;
      this.#seen[word] = (this.#seen[word] ?? 0) | (1 << (ext & (WORD_BITS - 1)));
    }
  }

  /** Moves the extended maximum forward, clearing the bitmap slots it slides over. */
  #advance(newMax: number): void {
    if (newMax - this.#maxExt >= WINDOW) {
      this.#seen.fill(0);
    } else {
      for (let ext = this.#maxExt + 1; ext <= newMax; ext++) {
        const word = (ext & WINDOW_MASK) >>> 5;
        this.#seen[word] = (this.#seen[word] ?? 0) & ~(1 << (ext & (WORD_BITS - 1)));
      }
    }
    this.#maxExt = newMax;
  }

  #jitterBaseline(arrivalMs: number, ts: number, rate: number): void {
    this.#jRate = rate;
    this.#jPrevArrivalMs = arrivalMs;
    this.#jPrevTs = ts;
  }

  /*
   * RFC 3550 A.8: D(i-1,i) = (R_i - R_{i-1}) - (S_i - S_{i-1}) in timestamp units,
   * J += (|D| - J) / 16. The timestamp difference is taken modulo 2^32 as a signed number, so
   * wrap-around needs no special case.
   */
  #jitterSample(arrivalMs: number, ts: number, rate: number): void {
    if (rate !== this.#jRate) {
      // Another clock (a payload type switch): the transit times are not comparable.
      this.#jitterBaseline(arrivalMs, ts, rate);
      return;
    }
    // RFC 4733 events repeat the event's start timestamp in every packet; like rtpproxy's
    // ts_dedup, skip them and keep the baseline on the first one.
    if (ts === this.#jPrevTs) return;
    const d = ((arrivalMs - this.#jPrevArrivalMs) * rate) / 1000 - ((ts - this.#jPrevTs) | 0);
    const jitter = this.#jlast + (Math.abs(d) - this.#jlast) / JITTER_GAIN;
    this.#jlast = jitter;
    if (jitter > this.#jmax) this.#jmax = jitter;
    this.#jsum += jitter;
    this.#jcount++;
    this.#jitterBaseline(arrivalMs, ts, rate);
  }
}
