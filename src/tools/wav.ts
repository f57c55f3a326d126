/**
 * Reads the samples of a RIFF/WAVE file for `rtpproxy-makeann`. Pure: bytes in, samples or a list
 * of readable problems out; never throws on input.
 *
 * RIFF layout (little-endian): "RIFF" size "WAVE", then chunks `id(4) size(4) data[size]` padded
 * to an even length. `fmt ` holds format tag (1 = integer PCM, 3 = float, 0xFFFE = extensible,
 * whose sub-format GUID starts with the real tag), channels, sample rate, byte rate, block align
 * and bits per sample; `data` holds the interleaved samples.
 */

/** What prompts need: the rate, channel count and sample size of G.711 audio. */
export const REQUIRED_RATE = 8000;
const REQUIRED_CHANNELS = 1;
const REQUIRED_BITS = 16;

const RIFF_HEADER = 12;
const CHUNK_HEADER = 8;
const FMT_MIN = 16;
const FMT_EXTENSIBLE_MIN = 40;
/** Offset of the sub-format GUID in an extensible `fmt ` chunk. */
const FMT_SUBFORMAT = 24;
const FORMAT_PCM = 1;
const FORMAT_FLOAT = 3;
const FORMAT_ALAW = 6;
const FORMAT_ULAW = 7;
const FORMAT_EXTENSIBLE = 0xfffe;

const FORMAT_NAMES: Readonly<Record<number, string>> = {
  [FORMAT_PCM]: 'integer PCM',
  [FORMAT_FLOAT]: 'IEEE float',
  [FORMAT_ALAW]: 'A-law',
  [FORMAT_ULAW]: 'mu-law',
};

/** The command that turns any audio file into what makeann reads. */
export const CONVERT_HINT =
  'convert it first, e.g. `sox in.wav -r 8000 -c 1 -b 16 -e signed-integer out.wav` or `ffmpeg -i in.wav -ar 8000 -ac 1 -c:a pcm_s16le out.wav`';

/** The format fields of a WAV file. */
interface WavFormat {
  readonly formatTag: number;
  readonly channels: number;
  readonly sampleRate: number;
  readonly bitsPerSample: number;
}

export type WavResult =
  | { readonly ok: true; readonly format: WavFormat; readonly samples: Int16Array }
  | { readonly ok: false; readonly errors: readonly string[] };

/** Parses a WAV file and checks that it is 8000 Hz mono 16-bit integer PCM. */
export function readWav(bytes: Buffer): WavResult {
  if (
    bytes.length < RIFF_HEADER ||
    bytes.toString('latin1', 0, 4) !== 'RIFF' ||
    bytes.toString('latin1', 8, 12) !== 'WAVE'
  ) {
    return { ok: false, errors: ['not a WAV file (no RIFF/WAVE header)'] };
  }
  let format: WavFormat | undefined;
  let data: { start: number; end: number } | undefined;
  let offset = RIFF_HEADER;
  while (offset + CHUNK_HEADER <= bytes.length) {
    const id = bytes.toString('latin1', offset, offset + 4);
    const size = bytes.readUInt32LE(offset + 4);
    const start = offset + CHUNK_HEADER;
    // Streaming writers leave the size at 0 or 0xFFFFFFFF; a short file cuts the last chunk.
    const end =
      id === 'data' && (size === 0 || size === 0xffffffff)
        ? bytes.length
        : Math.min(bytes.length, start + size);
    if (id === 'fmt ') {
      if (end - start < FMT_MIN) return { ok: false, errors: ['the fmt chunk is too short'] };
      let formatTag = bytes.readUInt16LE(start);
      if (formatTag === FORMAT_EXTENSIBLE && end - start >= FMT_EXTENSIBLE_MIN) {
        formatTag = bytes.readUInt16LE(start + FMT_SUBFORMAT);
      }
      format = {
        formatTag,
        channels: bytes.readUInt16LE(start + 2),
        sampleRate: bytes.readUInt32LE(start + 4),
        bitsPerSample: bytes.readUInt16LE(start + 14),
      };
    } else if (id === 'data' && data === undefined) {
      data = { start, end };
    }
    offset = start + size + (size % 2);
    if (end >= bytes.length) break;
  }
  if (format === undefined) return { ok: false, errors: ['the WAV file has no fmt chunk'] };
  const errors: string[] = [];
  if (format.formatTag !== FORMAT_PCM) {
    const name = FORMAT_NAMES[format.formatTag] ?? `format tag ${String(format.formatTag)}`;
    errors.push(`sample format is ${name}; 16-bit integer PCM is needed`);
  } else if (format.bitsPerSample !== REQUIRED_BITS) {
    errors.push(`samples are ${String(format.bitsPerSample)}-bit; 16-bit integer PCM is needed`);
  }
  if (format.sampleRate !== REQUIRED_RATE) {
    errors.push(
      `sample rate is ${String(format.sampleRate)} Hz; ${String(REQUIRED_RATE)} Hz is needed`,
    );
  }
  if (format.channels !== REQUIRED_CHANNELS) {
    errors.push(`the file has ${String(format.channels)} channels; mono (1 channel) is needed`);
  }
  if (data === undefined) errors.push('the WAV file has no data chunk');
  if (errors.length > 0 || data === undefined) return { ok: false, errors };
  return { ok: true, format, samples: pcm16le(bytes.subarray(data.start, data.end)) };
}

/** Signed 16-bit little-endian samples (a trailing odd byte is ignored). */
export function pcm16le(bytes: Buffer): Int16Array {
  const count = Math.floor(bytes.length / 2);
  const samples = new Int16Array(count);
  for (let i = 0; i < count; i++) samples[i] = bytes.readInt16LE(i * 2);
  return samples;
}

/** A WAV file of 16-bit mono PCM at `sampleRate` (tests and examples). */
export function writeWav(samples: Int16Array, sampleRate = REQUIRED_RATE): Buffer {
  const dataBytes = samples.length * 2;
  const out = Buffer.alloc(RIFF_HEADER + CHUNK_HEADER + FMT_MIN + CHUNK_HEADER + dataBytes);
  out.write('RIFF', 0, 'latin1');
  out.writeUInt32LE(out.length - 8, 4);
  out.write('WAVE', 8, 'latin1');
  out.write('fmt ', 12, 'latin1');
  out.writeUInt32LE(FMT_MIN, 16);
  out.writeUInt16LE(FORMAT_PCM, 20);
  out.writeUInt16LE(1, 22);
  out.writeUInt32LE(sampleRate, 24);
  out.writeUInt32LE(sampleRate * 2, 28);
  out.writeUInt16LE(2, 32);
  out.writeUInt16LE(16, 34);
  out.write('data', 36, 'latin1');
  out.writeUInt32LE(dataBytes, 40);
  for (let i = 0; i < samples.length; i++) out.writeInt16LE(samples[i] ?? 0, 44 + i * 2);
  return out;
}
