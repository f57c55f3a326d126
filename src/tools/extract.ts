/**
 * `rtpproxy-extract`: turns a recording of a G.711 call into WAV files an operator can listen to,
 * one per direction, 8000 Hz mono 16-bit (docs/recording.md).
 *
 *     rtpproxy-extract [-o DIR] FILE [FILE...]
 *
 * FILE is a recording in the ad-hoc format or pcap (`-P`), for example `CALLID=TAG.o.rtp` and
 * `CALLID=TAG.a.rtp`, or a combined `CALLID=TAG.pcap`. An ad-hoc file holds one direction; in a
 * pcap file the packets are grouped by their destination (the relay port that received them, so
 * one leg each). Output: `BASE.wav` when a file holds one direction, else `BASE.1.wav`,
 * `BASE.2.wav`, ... in the order the directions start, where BASE is FILE without its `.rtp`,
 * `.pcap` or `.rtcp` extension (in DIR with `-o`).
 *
 * RTP packets of payload type 0 (PCMU) and 8 (PCMA) are decoded; RTCP and other payload types
 * (comfort noise, DTMF events) are skipped. Packets are put in RTP sequence order and placed by
 * their RTP timestamp; missing packets become silence. A new SSRC (a re-INVITE) starts a new
 * segment at its arrival time.
 */
import path from 'node:path';
import { Command, CommanderError } from 'commander';
import { readRtpHeader } from '../media/rtp.ts';
import { alawToLinear, decodeSamples, ulawToLinear } from './g711.ts';
import { readRecording, type RecordedPacket } from './recording-reader.ts';
import { REQUIRED_RATE, writeWav } from './wav.ts';
import { processIo, type ToolIo } from './io.ts';
import { errorMessage } from '../util/error-message.ts';

/** G.711 decoders by payload type (PCMU 0, PCMA 8). */
const DECODER_BY_PT: Readonly<Record<number, ((byte: number) => number) | undefined>> = {
  0: ulawToLinear,
  8: alawToLinear,
};

/** Second byte of RTCP packets (RFC 5761 section 4: payload types 64-95 with the marker). */
const RTCP_B1_MIN = 192;
const RTCP_B1_MAX = 223;
/** A timestamp jump larger than this is a discontinuity, not a gap to fill with silence. */
const MAX_GAP_SAMPLES = 60 * REQUIRED_RATE;
/** Longest output per direction (a bogus file must not allocate gigabytes): 12 hours. */
const MAX_SAMPLES = 12 * 3600 * REQUIRED_RATE;

/** One decodable RTP packet of a direction. */
interface AudioPacket {
  readonly arrival: number;
  readonly ssrc: number;
  readonly sequence: number;
  readonly timestamp: number;
  readonly samples: Int16Array;
}

/** One direction's packets, in arrival order. */
export interface Direction {
  readonly label: string;
  readonly packets: AudioPacket[];
  /** RTP packets skipped for their payload type, by type. */
  readonly skippedTypes: Map<number, number>;
}

/** What one direction became. */
export interface DirectionAudio {
  readonly label: string;
  readonly samples: Int16Array;
  readonly packets: number;
  /** Packets lost (sequence gaps), duplicates dropped. */
  readonly lost: number;
  readonly duplicates: number;
  readonly skippedTypes: ReadonlyMap<number, number>;
}

/**
 * Groups a recording's RTP packets into directions: one for an ad-hoc file, one per destination
 * in a pcap file. RTCP and malformed packets are left out.
 */
export function directionsOf(
  packets: readonly RecordedPacket[],
  format: 'adhoc' | 'pcap',
): Direction[] {
  const byKey = new Map<string, Direction>();
  for (const p of packets) {
    const b1 = p.payload.length > 1 ? (p.payload[1] ?? 0) : 0;
    if (b1 >= RTCP_B1_MIN && b1 <= RTCP_B1_MAX) continue;
    const h = readRtpHeader(p.payload);
    if (h === undefined) continue;
    const key = format === 'adhoc' ? '' : p.destination;
    let dir = byKey.get(key);
    if (dir === undefined) {
      const label = format === 'adhoc' ? `from ${p.source}` : `from ${p.source} to ${key}`;
      dir = { label, packets: [], skippedTypes: new Map() };
      byKey.set(key, dir);
    }
    const decoder = DECODER_BY_PT[h.payloadType];
    if (decoder === undefined) {
      dir.skippedTypes.set(h.payloadType, (dir.skippedTypes.get(h.payloadType) ?? 0) + 1);
      continue;
    }
    const payload = p.payload.subarray(h.payloadOffset, h.payloadOffset + h.payloadLength);
    const samples = decodeSamples(payload, decoder);
    dir.packets.push({
      arrival: p.time,
      ssrc: h.ssrc,
      sequence: h.sequence,
      timestamp: h.timestamp,
      samples,
    });
  }
  return [...byKey.values()];
}

/** A placed packet: its first sample's position in the output. */
interface Placed {
  readonly at: number;
  readonly samples: Int16Array;
}

/**
 * Lays a direction's packets out on one timeline: per SSRC segment (in arrival order), sorted by
 * the unwrapped sequence number (duplicates dropped), placed by the unwrapped timestamp; a later
 * segment starts at its arrival time, never before the end of the previous one.
 */
export function renderDirection(dir: Direction): DirectionAudio {
  const segments: AudioPacket[][] = [];
  for (const p of dir.packets) {
    const last = segments.at(-1);
    if (last !== undefined && last[0]?.ssrc === p.ssrc) last.push(p);
    else segments.push([p]);
  }
  const placed: Placed[] = [];
  let end = 0;
  let lost = 0;
  let duplicates = 0;
  const start = dir.packets[0]?.arrival ?? 0;
  for (const segment of segments) {
    // Unwrap sequence numbers relative to the previous packet in arrival order.
    let ext = 0;
    let prevSeq = segment[0]?.sequence ?? 0;
    const ordered = segment.map((p) => {
      ext += ((p.sequence - prevSeq + 0x8000) & 0xffff) - 0x8000;
      prevSeq = p.sequence;
      return { p, ext };
    });
    ordered.sort((a, b) => a.ext - b.ext);
    const arrivalAt = Math.round(((segment[0]?.arrival ?? start) - start) * REQUIRED_RATE);
    const base = arrivalAt > end && arrivalAt - end <= MAX_GAP_SAMPLES ? arrivalAt : end;
    let prevExt: number | undefined;
    let prevTs = 0;
    let pos = base;
    let segEnd = base;
    for (const { p, ext: e } of ordered) {
      if (prevExt !== undefined && e === prevExt) {
        duplicates += 1;
        continue;
      }
      if (prevExt === undefined) pos = base;
      else {
        lost += e - prevExt - 1;
        const delta = (p.timestamp - prevTs) | 0;
        // Timestamps going backwards or jumping far are a discontinuity: play on without a gap.
        pos = delta <= 0 || delta > MAX_GAP_SAMPLES ? segEnd : pos + delta;
      }
      prevExt = e;
      prevTs = p.timestamp;
      if (pos + p.samples.length > MAX_SAMPLES) break;
      placed.push({ at: pos, samples: p.samples });
      segEnd = Math.max(segEnd, pos + p.samples.length);
    }
    end = Math.max(end, segEnd);
  }
  const samples = new Int16Array(end);
  for (const p of placed) samples.set(p.samples, p.at);
  return {
    label: dir.label,
    samples,
    packets: placed.length,
    lost,
    duplicates,
    skippedTypes: dir.skippedTypes,
  };
}

/** What the command line asks for. */
export interface ExtractOptions {
  readonly inputs: readonly string[];
  readonly outDir?: string;
}

/** The file system and output streams the tool uses (injected by tests). */
export type ExtractIo = ToolIo;

const USAGE = 'usage: rtpproxy-extract [-o DIR] FILE [FILE...]';

const defaultIo = processIo;

/** `BASE` of an input: without a `.rtp`, `.rtcp` or `.pcap` extension, in `outDir` if given. */
export function outputBase(input: string, outDir?: string): string {
  const base = input.replace(/\.(rtp|rtcp|pcap)$/i, '');
  return outDir === undefined ? base : path.join(outDir, path.basename(base));
}

/** Parses the command line; a string is the usage error, `{ help }` the help text. */
export function parseExtractArgs(
  argv: readonly string[],
): ExtractOptions | { help: string } | string {
  const program = new Command('rtpproxy-extract')
    .exitOverride()
    .configureOutput({
      writeOut: () => undefined,
      writeErr: () => undefined,
      outputError: () => undefined,
    })
    .option('-o, --outdir <dir>', 'write the WAV files into this directory')
    .argument('<file...>', 'recording files: ad-hoc or pcap, one or both directions');
  try {
    program.parse([...argv], { from: 'user' });
  } catch (error) {
    if (error instanceof CommanderError && error.code === 'commander.helpDisplayed') {
      return { help: program.helpInformation() };
    }
    if (error instanceof CommanderError) return error.message.replace(/^error: /, '');
    throw error;
  }
  const opts = program.opts<{ outdir?: string }>();
  const [inputs] = program.processedArgs as [string[]];
  return { inputs, ...(opts.outdir === undefined ? {} : { outDir: opts.outdir }) };
}

/** Runs the tool; resolves with the exit code (0 done, 1 input or output failure, 2 usage). */
export async function runExtract(
  argv: readonly string[],
  io: ExtractIo = defaultIo,
): Promise<number> {
  const parsed = parseExtractArgs(argv);
  if (typeof parsed === 'string') {
    io.err(`rtpproxy-extract: ${parsed}`);
    io.err(USAGE);
    return 2;
  }
  if ('help' in parsed) {
    io.out(parsed.help.trimEnd());
    return 0;
  }
  let failed = false;
  for (const input of parsed.inputs) {
    if (!(await extractOne(input, parsed.outDir, io))) failed = true;
  }
  return failed ? 1 : 0;
}

/** Extracts one input file; false (after an error line) when it could not. */
async function extractOne(input: string, outDir: string | undefined, io: ExtractIo) {
  const fail = (problem: string): false => {
    io.err(`rtpproxy-extract: ${input}: ${problem}`);
    return false;
  };
  let bytes: Buffer;
  try {
    bytes = await io.readFile(input);
  } catch (error) {
    return fail(`cannot read: ${errorMessage(error)}`);
  }
  const read = readRecording(bytes);
  if (!read.ok) return fail(read.error);
  for (const warning of read.warnings) io.err(`rtpproxy-extract: ${input}: warning: ${warning}`);
  const audio = directionsOf(read.packets, read.format)
    .map(renderDirection)
    .filter((d) => {
      for (const [pt, n] of d.skippedTypes) {
        io.err(
          `rtpproxy-extract: ${input}: ${d.label}: skipped ${String(n)} packets of payload type ${String(pt)} (only 0 PCMU and 8 PCMA are decoded)`,
        );
      }
      return d.packets > 0;
    });
  if (audio.length === 0) {
    return fail('no G.711 (PCMU or PCMA) RTP packets in this recording');
  }
  const base = outputBase(input, outDir);
  for (const [i, d] of audio.entries()) {
    const out = audio.length === 1 ? `${base}.wav` : `${base}.${String(i + 1)}.wav`;
    const temporary = `${out}.tmp-${String(process.pid)}`;
    try {
      await io.writeFile(temporary, writeWav(d.samples));
      await io.rename(temporary, out);
    } catch (error) {
      await io.unlink(temporary).catch(() => undefined);
      return fail(`cannot write ${out}: ${errorMessage(error)}`);
    }
    const seconds = (d.samples.length / REQUIRED_RATE).toFixed(3);
    io.out(
      `${out}: ${d.label}, ${String(d.packets)} packets, ${seconds} s, ${String(d.lost)} lost, ${String(d.duplicates)} duplicates`,
    );
  }
  return true;
}
