/**
 * The frame rules of the codecs the re-packetizer (resizer.ts) handles, after sippy/rtpproxy
 * src/rtp.c (`rtp_calc_samples`, `rtp_packet_first_chunk_find`): how many 8 kHz samples a payload
 * holds, the smallest unit an output packet is made of, and where the head of a held packet
 * splits in whole frames. Pure.
 */

/** A payload the resizer cannot count (another codec, a reserved G.723 frame type). */
export const UNKNOWN = -1;

const PT_PCMU = 0;
const PT_GSM = 3;
const PT_G723 = 4;
const PT_PCMA = 8;
const PT_G722 = 9;
/** G.729, whose trailing comfort-noise frame makes a packet non-appendable. */
export const PT_G729 = 18;

/** Bytes of a G.729 speech frame. */
export const G729_FRAME_BYTES = 10;
const G729_FRAME_SAMPLES = 80;
const GSM_FRAME_BYTES = 33;
const GSM_FRAME_SAMPLES = 160;
const G723_FRAME_SAMPLES = 240;

/** Bytes of the G.723 frame that starts with `byte`, or UNKNOWN for the reserved type. */
function g723FrameBytes(byte: number): number {
  switch (byte & 3) {
    case 0:
      return 24; // 6.3 kbit/s
    case 1:
      return 20; // 5.3 kbit/s
    case 2:
      return 4; // silence insertion descriptor
    default:
      return UNKNOWN;
  }
}

/** Samples of a payload of a codec the resizer handles, or UNKNOWN. */
export function samplesOf(pt: number, buf: Buffer, start: number, end: number): number {
  const bytes = end - start;
  switch (pt) {
    case PT_PCMU:
    case PT_PCMA:
    case PT_G722:
      return bytes;
    case PT_G729:
      return (
        Math.floor(bytes / G729_FRAME_BYTES) * G729_FRAME_SAMPLES +
        (bytes % G729_FRAME_BYTES === 0 ? 0 : G729_FRAME_SAMPLES)
      );
    case PT_GSM:
      return GSM_FRAME_SAMPLES * Math.floor(bytes / GSM_FRAME_BYTES);
    case PT_G723: {
      let samples = 0;
      for (let pos = start; pos < end;) {
        const n = g723FrameBytes(buf[pos] ?? 3);
        if (n === UNKNOWN) return UNKNOWN;
        samples += G723_FRAME_SAMPLES;
        pos += n;
      }
      return samples;
    }
    default:
      return UNKNOWN;
  }
}

/** The smallest unit an output packet of this payload type is made of, in samples. */
export function minSamples(pt: number): number {
  if (pt === PT_GSM) return GSM_FRAME_SAMPLES;
  if (pt === PT_G723) return G723_FRAME_SAMPLES;
  return G729_FRAME_SAMPLES;
}

/** One held packet, or what is left of it once pieces were split off its head. */
export interface Piece {
  readonly buf: Buffer;
  readonly headerLength: number;
  /** Payload bytes not yet sent: [start, end), padding excluded. */
  start: number;
  readonly end: number;
  ts: number;
  readonly seq: number;
  readonly pt: number;
  nsamples: number;
  readonly appendable: boolean;
  marker: boolean;
  /** Nothing was split off: the packet can leave as received, with its sequence rewritten. */
  whole: boolean;
}

/** Where the head of a piece splits (`rtp_packet_first_chunk_find`); reused, not allocated. */
export const chunk = { nsamples: 0, bytes: 0 };

/**
 * Finds the head of `p` of at least `want` samples (p holds more than that) in whole frames.
 * False when that head is the whole piece.
 */
export function firstChunk(p: Piece, want: number): boolean {
  switch (p.pt) {
    case PT_PCMU:
    case PT_PCMA:
    case PT_G722:
      chunk.nsamples = want;
      chunk.bytes = want;
      return true;
    case PT_G729:
      return framesChunk(p, want, G729_FRAME_SAMPLES, G729_FRAME_BYTES);
    case PT_GSM:
      return framesChunk(p, want, GSM_FRAME_SAMPLES, GSM_FRAME_BYTES);
    case PT_G723: {
      const samples = Math.ceil(want / G723_FRAME_SAMPLES) * G723_FRAME_SAMPLES;
      if (samples >= p.nsamples) return false;
      let pos = p.start;
      let found = 0;
      while (pos < p.end && samples > found) {
        const n = g723FrameBytes(p.buf[pos] ?? 3);
        // Cannot happen (enqueue walked the same frames); sent whole rather than cut blind.
        if (n === UNKNOWN) return false;
        found += G723_FRAME_SAMPLES;
        pos += n;
      }
      const bytes = Math.min(pos, p.end) - p.start;
      if (bytes >= p.end - p.start) return false;
      chunk.nsamples = found;
      chunk.bytes = bytes;
      return true;
    }
    default:
      return false;
  }
}

function framesChunk(p: Piece, want: number, frameSamples: number, frameBytes: number): boolean {
  const frames = Math.ceil(want / frameSamples);
  const samples = frames * frameSamples;
  if (samples >= p.nsamples) return false;
  chunk.nsamples = samples;
  chunk.bytes = frames * frameBytes;
  return true;
}
