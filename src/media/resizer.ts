/**
 * RTP re-packetization, the `z<ms>` modifier of U/L (docs/protocol.md 5):
 * packets of one stream are merged or split so that they leave with the requested packet time.
 * This is sippy/rtpproxy src/rtp_resizer.c with the frame rules of its src/rtp.c
 * (`rtp_calc_samples`, `rtp_packet_first_chunk_find`):
 *
 * - Samples are counted at the 8 kHz RTP clock of the codecs it handles: PCMU (0), PCMA (8) and
 *   G.722 (9) one byte per sample tick, G.729 (18) 10-byte frames of 80 samples (a trailing
 *   2-byte comfort-noise frame counts 80 and makes the packet non-appendable: it leaves as it
 *   is), GSM (3) 33-byte frames of 160, G.723 (4) frames of 240 whose length (24, 20 or 4 bytes)
 *   the frame's first byte tells. Any other payload type, a payload-less or malformed packet, or
 *   a G.723 payload with a reserved frame type is not taken: the caller passes it on unchanged.
 * - The output size is the requested time rounded up to whole frames (10 ms for G.711/G.722/
 *   G.729, 20 ms for GSM, 30 ms for G.723). A packet is emitted once enough samples are held,
 *   or once the oldest held packet has waited `max(2 * ptime, 40 ms)` minus 5 ms of the
 *   stream's own timeline (the arrival clock mapped onto RTP timestamps, re-synchronised when
 *   the sender runs ahead or falls behind).
 * - Pieces are joined only while their timestamps are contiguous and the payload type is the
 *   same: a timestamp gap or a codec change ends the output packet early. Held packets are kept
 *   sorted by timestamp; a packet older than what was already sent is dropped (late).
 * - An output packet carries the header of its first piece (SSRC, CSRCs, extension, marker) and
 *   that piece's timestamp; a piece split off the rest of a packet has its timestamp advanced by
 *   the samples taken and its marker cleared. Output sequence numbers are the resizer's own:
 *   contiguous from the first packet's number, wrapping at 16 bits.
 * - A new SSRC restarts the timeline and the late-packet check; held packets stay queued.
 * - Ours only: past {@link MAX_HELD_BYTES} of held packets it sends without waiting.
 *
 * Deliberate difference: the reference splits G.722 at half the bytes of the samples it takes,
 * which loses audio; here a G.722 piece takes one byte per sample tick, as its sample count does.
 *
 * Pure: no I/O and no timers. The relay feeds it packets as they arrive ({@link RtpResizer.enqueue})
 * and drains it ({@link RtpResizer.get}) after every packet and on its owner's tick.
 */
import { rtpPayloadOffset } from './rtp.ts';
import {
  chunk,
  firstChunk,
  G729_FRAME_BYTES,
  minSamples,
  type Piece,
  PT_G729,
  samplesOf,
  UNKNOWN,
} from './resizer-frames.ts';

/** Samples per millisecond at the 8 kHz clock every re-packetized codec uses. */
const SAMPLES_PER_MS = 8;
/** The largest packet the resizer builds (the reference's MAX_RPKT_LEN). */
const MAX_PACKET = 8192;
/**
 * Bytes of received packets a resizer may hold before it stops waiting and sends what it has:
 * a party sending tiny or sample-less packets (a GSM payload shorter than a frame counts no
 * samples) with large headers could otherwise make it hold without bound. A legitimate stream
 * holds less than one output packet plus one input packet (about 9 KB at z999).
 */
const MAX_HELD_BYTES = 64 * 1024;
/** The shortest wait, in samples (40 ms). */
const MIN_BUFFER_SAMPLES = 320;
/** How far ahead of its arrival a packet's timestamp is placed on the stream's timeline. */
const TIMELINE_LEAD = 40;
/** Slack before the timeline is pulled back towards a sender that falls behind. */
const TIMELINE_SLACK = 160;
const P_BIT = 0x20;
const M_BIT = 0x80;
const PT_MASK = 0x7f;

/** `a` is before `b` on the 32-bit timestamp circle (the reference's `ts_less`). */
function tsLess(a: number, b: number): boolean {
  return (a - b) >>> 0 > 0x80000000;
}

/** An output packet being assembled. */
interface Output {
  readonly first: Piece;
  readonly ts: number;
  readonly marker: boolean;
  readonly parts: Buffer[];
  bytes: number;
  nsamples: number;
  appendable: boolean;
  /** Still exactly the first piece's packet as received. */
  whole: boolean;
}

/** Outcome of {@link RtpResizer.enqueue}. */
export type ResizerIntake =
  /** Held: the resizer owns the packet now. */
  | 'held'
  /** Not a packet it can re-packetize: relay it unchanged. */
  | 'pass'
  /** Older than what was already sent: drop it. */
  | 'late';

export class RtpResizer {
  #outputSamples = 0;
  #maxBufferSamples = 0;
  readonly #queue: Piece[] = [];
  #heldSamples = 0;
  /** Bytes of the received packets the queue references. */
  #heldBytes = 0;
  #seqInited = false;
  #seq = 0;
  #ssrcInited = false;
  #ssrc = 0;
  #lastSentInited = false;
  #lastSentTs = 0;
  #deltaInited = false;
  #tsDelta = 0;

  constructor(ptimeMs: number) {
    this.ptimeMs = ptimeMs;
  }

  /** The requested packet time, milliseconds. */
  get ptimeMs(): number {
    return this.#outputSamples / SAMPLES_PER_MS;
  }
  set ptimeMs(ms: number) {
    this.#outputSamples = ms * SAMPLES_PER_MS;
    this.#maxBufferSamples = Math.max(this.#outputSamples * 2, MIN_BUFFER_SAMPLES);
  }

  /** Packets (or rests of packets) held. */
  get held(): number {
    return this.#queue.length;
  }

  /** Drops every held packet; returns how many there were. */
  clear(): number {
    const n = this.#queue.length;
    this.#queue.length = 0;
    this.#heldSamples = 0;
    this.#heldBytes = 0;
    return n;
  }

  /** Offers a received packet, `nowMs` its monotonic arrival time. */
  enqueue(buf: Buffer, nowMs: number): ResizerIntake {
    const headerLength = rtpPayloadOffset(buf);
    if (headerLength < 0) return 'pass';
    const b0 = buf[0] ?? 0;
    const end = (b0 & P_BIT) !== 0 ? buf.length - (buf[buf.length - 1] ?? 0) : buf.length;
    if (end <= headerLength) return 'pass';
    const b1 = buf[1] ?? 0;
    const pt = b1 & PT_MASK;
    const nsamples = samplesOf(pt, buf, headerLength, end);
    if (nsamples === UNKNOWN) return 'pass';
    const ts = buf.readUInt32BE(4);
    const ssrc = buf.readUInt32BE(8);
    if (!this.#ssrcInited) {
      this.#ssrc = ssrc;
      this.#ssrcInited = true;
    } else if (ssrc !== this.#ssrc) {
      // A new source: its timestamps and sequence numbers have nothing to do with the old ones.
      this.#ssrc = ssrc;
      this.#lastSentInited = false;
      this.#deltaInited = false;
    }
    if (this.#lastSentInited && tsLess(ts, this.#lastSentTs)) return 'late';
    const internal = (nowMs * SAMPLES_PER_MS) >>> 0;
    if (!this.#deltaInited) {
      this.#tsDelta = (ts - internal + TIMELINE_LEAD) >>> 0;
      this.#deltaInited = true;
    } else {
      const ref = (internal + this.#tsDelta) >>> 0;
      const behind = (ts + this.#outputSamples + TIMELINE_SLACK) >>> 0;
      if (tsLess(ref, ts)) {
        this.#tsDelta = (ts - internal + TIMELINE_LEAD) >>> 0;
      } else if (tsLess(behind, ref)) {
        this.#tsDelta = (this.#tsDelta - (((ref - behind) >>> 0) >>> 1)) >>> 0;
      }
    }
    const piece: Piece = {
      buf,
      headerLength,
      start: headerLength,
      end,
      ts,
      seq: buf.readUInt16BE(2),
      pt,
      nsamples,
      // A G.729 packet ending in a comfort-noise frame is sent as it is.
      appendable: !(pt === PT_G729 && (end - headerLength) % G729_FRAME_BYTES !== 0),
      marker: (b1 & M_BIT) !== 0,
      whole: true,
    };
    const queue = this.#queue;
    let i = queue.length;
    while (i > 0 && tsLess(ts, queue[i - 1]?.ts ?? ts)) i -= 1;
    if (i === queue.length) queue.push(piece);
    else queue.splice(i, 0, piece);
    this.#heldSamples += nsamples;
    this.#heldBytes += buf.length;
    return 'held';
  }

  /** The next packet due at `nowMs` (monotonic), or undefined while it should wait. */
  get(nowMs: number): Buffer | undefined {
    const queue = this.#queue;
    const head = queue[0];
    if (head === undefined) return undefined;
    const ref = ((nowMs * SAMPLES_PER_MS) >>> 0) + this.#tsDelta;
    if (
      this.#heldSamples < this.#outputSamples &&
      this.#heldBytes <= MAX_HELD_BYTES &&
      tsLess(ref >>> 0, (head.ts + this.#maxBufferSamples) >>> 0)
    ) {
      return undefined;
    }
    let want = this.#outputSamples;
    const min = minSamples(head.pt);
    if (want < min) want = min;
    else if (want % min !== 0) want += min - (want % min);

    let out: Output | undefined;
    while ((out === undefined || out.nsamples < want) && queue.length > 0) {
      const p = queue[0];
      if (p === undefined) break;
      if (out === undefined) {
        if (p.nsamples > want) {
          if (firstChunk(p, want)) {
            out = this.#begin(p, p.start + chunk.bytes, chunk.nsamples);
            this.#cut(p);
          } else {
            this.#shift();
            out = this.#begin(p, p.end, p.nsamples);
          }
          break;
        }
      } else {
        // A hole in the timestamps or another codec ends the packet.
        if ((out.ts + out.nsamples) >>> 0 !== p.ts || out.first.pt !== p.pt) break;
        const left = want - out.nsamples;
        if (left > 0 && left < p.nsamples) {
          if (firstChunk(p, left)) {
            if (out.first.headerLength + out.bytes + chunk.bytes > MAX_PACKET) break;
            this.#append(out, p, p.start + chunk.bytes, chunk.nsamples);
            this.#cut(p);
          } else {
            if (out.first.headerLength + out.bytes + (p.end - p.start) > MAX_PACKET) break;
            this.#shift();
            this.#append(out, p, p.end, p.nsamples);
            out.appendable = p.appendable;
          }
          break;
        }
        if (out.first.headerLength + out.bytes + (p.end - p.start) > MAX_PACKET) break;
      }
      this.#shift();
      if (out === undefined) {
        out = this.#begin(p, p.end, p.nsamples);
      } else {
        this.#append(out, p, p.end, p.nsamples);
        out.appendable = p.appendable;
      }
      if (!out.appendable) break;
    }
    if (out === undefined) return undefined;
    this.#heldSamples -= out.nsamples;
    if (!this.#seqInited) {
      this.#seq = out.first.seq;
      this.#seqInited = true;
    }
    const seq = this.#seq;
    this.#seq = (seq + 1) & 0xffff;
    this.#lastSentInited = true;
    this.#lastSentTs = (out.ts + out.nsamples) >>> 0;
    return build(out, seq);
  }

  /** Drops the head piece, which the output took whole. */
  #shift(): void {
    const p = this.#queue.shift();
    if (p !== undefined) this.#heldBytes -= p.buf.length;
  }

  /** Starts an output packet with the head of `p` up to `end`. */
  #begin(p: Piece, end: number, nsamples: number): Output {
    return {
      first: p,
      ts: p.ts,
      marker: p.marker,
      parts: [p.buf.subarray(p.start, end)],
      bytes: end - p.start,
      nsamples,
      appendable: p.appendable,
      whole: p.whole && end === p.end,
    };
  }

  #append(out: Output, p: Piece, end: number, nsamples: number): void {
    out.parts.push(p.buf.subarray(p.start, end));
    out.bytes += end - p.start;
    out.nsamples += nsamples;
    out.whole = false;
  }

  /** Removes the chunk just taken from the head of `p`: what is left starts later, unmarked. */
  #cut(p: Piece): void {
    p.start += chunk.bytes;
    p.nsamples -= chunk.nsamples;
    p.ts = (p.ts + chunk.nsamples) >>> 0;
    p.marker = false;
    p.whole = false;
  }
}

/** The wire bytes of an output packet with sequence number `seq`. */
function build(out: Output, seq: number): Buffer {
  const first = out.first;
  if (out.whole) {
    // The packet as received (padding included): only its sequence number changes.
    first.buf.writeUInt16BE(seq, 2);
    return first.buf;
  }
  const header = first.headerLength;
  const buf = Buffer.allocUnsafe(header + out.bytes);
  first.buf.copy(buf, 0, 0, header);
  // No padding: the payload is rebuilt from the pieces.
  buf[0] = (first.buf[0] ?? 0) & ~P_BIT;
  buf[1] = (out.marker ? M_BIT : 0) | first.pt;
  buf.writeUInt16BE(seq, 2);
  buf.writeUInt32BE(out.ts, 4);
  let pos = header;
  for (const part of out.parts) {
    part.copy(buf, pos);
    pos += part.length;
  }
  return buf;
}
