/**
 * G.711 companding (ITU-T G.711, the segment/quantization form of the classic public-domain Sun
 * Microsystems implementation that the reference's makeann also uses): 16-bit linear PCM to
 * mu-law (PCMU, payload type 0) and A-law (PCMA, payload type 8), and back. Pure.
 */

const SIGN_BIT = 0x80;
const QUANT_MASK = 0x0f;
const SEG_SHIFT = 4;
const SEG_MASK = 0x70;
/** mu-law bias added before segment search (on the 14-bit magnitude: 0x84 >> 2). */
const ULAW_BIAS = 0x84;
/** Largest 14-bit magnitude mu-law encodes; louder samples clip. */
const ULAW_CLIP = 8159;

/** Upper ends of the A-law segments, on the 13-bit magnitude. */
const ALAW_SEG_END = [0x1f, 0x3f, 0x7f, 0xff, 0x1ff, 0x3ff, 0x7ff, 0xfff] as const;
/** Upper ends of the mu-law segments, on the biased 14-bit magnitude. */
const ULAW_SEG_END = [0x3f, 0x7f, 0xff, 0x1ff, 0x3ff, 0x7ff, 0xfff, 0x1fff] as const;

function segment(value: number, ends: readonly number[]): number {
  for (let i = 0; i < ends.length; i++) if (value <= (ends[i] ?? 0)) return i;
  return ends.length;
}

/** One 16-bit signed sample to an A-law byte. */
export function linearToAlaw(sample: number): number {
  let pcm = sample >> 3;
  let mask: number;
  if (pcm >= 0) mask = 0xd5;
  else {
    mask = 0x55;
    pcm = -pcm - 1;
  }
  const seg = segment(pcm, ALAW_SEG_END);
  if (seg >= 8) return 0x7f ^ mask;
  let aval = seg << SEG_SHIFT;
  aval |= seg < 2 ? (pcm >> 1) & QUANT_MASK : (pcm >> seg) & QUANT_MASK;
  return aval ^ mask;
}

/** One A-law byte to a 16-bit signed sample. */
export function alawToLinear(byte: number): number {
  const a = (byte ^ 0x55) & 0xff;
  let t = (a & QUANT_MASK) << 4;
  const seg = (a & SEG_MASK) >> SEG_SHIFT;
  if (seg === 0) t += 8;
  else if (seg === 1) t += 0x108;
  else {
    t += 0x108;
    t <<= seg - 1;
  }
  return (a & SIGN_BIT) !== 0 ? t : -t;
}

/** One 16-bit signed sample to a mu-law byte. */
export function linearToUlaw(sample: number): number {
  let pcm = sample >> 2;
  let mask: number;
  if (pcm < 0) {
    pcm = -pcm;
    mask = 0x7f;
  } else mask = 0xff;
  if (pcm > ULAW_CLIP) pcm = ULAW_CLIP;
  pcm += ULAW_BIAS >> 2;
  const seg = segment(pcm, ULAW_SEG_END);
  if (seg >= 8) return 0x7f ^ mask;
  const uval = (seg << 4) | ((pcm >> (seg + 1)) & QUANT_MASK);
  return uval ^ mask;
}

/** One mu-law byte to a 16-bit signed sample. */
export function ulawToLinear(byte: number): number {
  const u = ~byte & 0xff;
  let t = ((u & QUANT_MASK) << 3) + ULAW_BIAS;
  t <<= (u & SEG_MASK) >> SEG_SHIFT;
  return (u & SIGN_BIT) !== 0 ? ULAW_BIAS - t : t - ULAW_BIAS;
}

/** Encodes samples with `encode`, one byte per sample. */
export function encodeSamples(samples: Int16Array, encode: (sample: number) => number): Buffer {
  const out = Buffer.alloc(samples.length);
  for (let i = 0; i < samples.length; i++) out[i] = encode(samples[i] ?? 0);
  return out;
}

/** Decodes G.711 bytes with `decode`, one sample per byte. */
export function decodeSamples(bytes: Uint8Array, decode: (byte: number) => number): Int16Array {
  const out = new Int16Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) out[i] = decode(bytes[i] ?? 0);
  return out;
}
