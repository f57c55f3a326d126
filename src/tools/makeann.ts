/**
 * `rtpproxy-makeann`: turns a WAV file (8000 Hz, mono, 16-bit PCM) into prompt files for `P`
 * (docs/protocol.md 7.1, 7.5): `TEMPLATE.0` (PCMU) and `TEMPLATE.8` (PCMA), raw encoded frames back to
 * back with no header, exactly what the reference's `makeann` writes and its player reads.
 *
 *     rtpproxy-makeann [-l LIMIT [-L]] [-c 0,8] [--raw] INFILE [TEMPLATE]
 *
 * Like the reference: `-l` uses at most LIMIT samples, `-L` repeats the input until LIMIT samples,
 * TEMPLATE defaults to the input name (here without a `.wav` extension). `--raw` reads headerless
 * signed 16-bit little-endian mono 8000 Hz PCM, the reference's input format. Only PCMU and PCMA
 * have encoders: npm has no maintained G.729, G.722 or GSM encoder (docs/playback.md).
 *
 * Output files are written under a temporary name and renamed into place, so a running daemon
 * never reads half a prompt (its prompt cache notices the new file on the next `P`).
 */
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { encodeSamples, linearToAlaw, linearToUlaw } from './g711.ts';
import { CONVERT_HINT, pcm16le, readWav, REQUIRED_RATE } from './wav.ts';
import { processIo, type ToolIo } from './io.ts';
import { errorMessage } from '../util/error-message.ts';

/** The encoders makeann has, by payload type. */
export const MAKEANN_ENCODERS = {
  0: { name: 'PCMU', encode: linearToUlaw },
  8: { name: 'PCMA', encode: linearToAlaw },
} as const satisfies Readonly<
  Record<number, { readonly name: string; readonly encode: (sample: number) => number }>
>;

/** Payload types written when `-c` is not given. */
const DEFAULT_CODECS = [0, 8] as const;

/** Names of payload types makeann cannot encode, for the error message. */
const KNOWN_NAMES: Readonly<Record<number, string>> = {
  3: 'GSM',
  4: 'G.723',
  9: 'G.722',
  18: 'G.729',
};

/** What the command line asks for. */
export interface MakeannOptions {
  readonly input: string;
  readonly template: string;
  readonly limit?: number;
  readonly loop: boolean;
  readonly raw: boolean;
  readonly codecs: readonly number[];
}

/** The file system and output streams the tool uses (injected by tests). */
export type MakeannIo = ToolIo;

const USAGE = 'usage: rtpproxy-makeann [-l LIMIT [-L]] [-c 0,8] [--raw] INFILE [TEMPLATE]';

const defaultIo = processIo;

/** The default template: the input name without a `.wav` extension. */
export function templateFor(input: string): string {
  return input.replace(/\.wav$/i, '');
}

/**
 * The samples to encode: at most `limit` of them; with `loop`, the input repeated until there are
 * `limit` (the reference's `-l`/`-L`).
 */
export function limitSamples(
  samples: Int16Array,
  limit: number | undefined,
  loop: boolean,
): Int16Array {
  if (limit === undefined) return samples;
  if (!loop || samples.length === 0 || limit <= samples.length) {
    return samples.subarray(0, Math.min(limit, samples.length));
  }
  const out = new Int16Array(limit);
  for (let i = 0; i < limit; i += samples.length) {
    out.set(samples.subarray(0, Math.min(samples.length, limit - i)), i);
  }
  return out;
}

/** One prompt file's contents per payload type. */
export function encodePrompts(samples: Int16Array, codecs: readonly number[]): Map<number, Buffer> {
  const files = new Map<number, Buffer>();
  for (const pt of codecs) {
    const encoder = (
      MAKEANN_ENCODERS as Readonly<Record<number, { readonly encode: (s: number) => number }>>
    )[pt];
    if (encoder !== undefined) files.set(pt, encodeSamples(samples, encoder.encode));
  }
  return files;
}

/** `--help` was asked for: the text to print. */
export interface MakeannHelp {
  readonly help: string;
}

/** Parses the command line; a string is the usage error. */
export function parseMakeannArgs(argv: readonly string[]): MakeannOptions | MakeannHelp | string {
  const program = new Command('rtpproxy-makeann')
    .exitOverride()
    .configureOutput({
      writeOut: () => undefined,
      writeErr: () => undefined,
      outputError: () => undefined,
    })
    .option('-l, --limit <samples>', 'use at most this many input samples', positiveInt)
    .option('-L, --loop', 'repeat the input until the -l limit is reached')
    .option(
      '-c, --codecs <list>',
      'payload types to write, comma-separated (0 = PCMU, 8 = PCMA)',
      codecList,
    )
    .option('--raw', 'INFILE is raw signed 16-bit little-endian mono 8000 Hz PCM, not WAV')
    .argument('<infile>', 'WAV file: 8000 Hz, mono, 16-bit PCM')
    .argument('[template]', 'output name: TEMPLATE.0, TEMPLATE.8 (default: INFILE without .wav)')
    .allowExcessArguments(false);
  try {
    program.parse([...argv], { from: 'user' });
  } catch (error) {
    if (error instanceof CommanderError && error.code === 'commander.helpDisplayed') {
      return { help: program.helpInformation() };
    }
    if (error instanceof CommanderError) return error.message.replace(/^error: /, '');
    throw error;
  }
  const opts = program.opts<{ limit?: number; loop?: boolean; codecs?: number[]; raw?: boolean }>();
  const [input, template] = program.processedArgs as [string, string | undefined];
  if (opts.loop === true && opts.limit === undefined) {
    return '-L needs -l LIMIT (how many samples to write)';
  }
  const codecs = opts.codecs ?? [...DEFAULT_CODECS];
  for (const pt of codecs) {
    if (!(pt in MAKEANN_ENCODERS)) {
      const name = KNOWN_NAMES[pt];
      return `no encoder for payload type ${String(pt)}${name === undefined ? '' : ` (${name})`}: only 0 (PCMU) and 8 (PCMA) are available (see docs/playback.md)`;
    }
  }
  return {
    input,
    template: template ?? templateFor(input),
    ...(opts.limit === undefined ? {} : { limit: opts.limit }),
    loop: opts.loop === true,
    raw: opts.raw === true,
    codecs,
  };
}

/** Runs the tool; resolves with the exit code (0 done, 1 input or output failure, 2 usage). */
export async function runMakeann(
  argv: readonly string[],
  io: MakeannIo = defaultIo,
): Promise<number> {
  const parsed = parseMakeannArgs(argv);
  if (typeof parsed === 'string') {
    io.err(`rtpproxy-makeann: ${parsed}`);
    io.err(USAGE);
    return 2;
  }
  if ('help' in parsed) {
    io.out(parsed.help.trimEnd());
    return 0;
  }
  let bytes: Buffer;
  try {
    bytes = await io.readFile(parsed.input);
  } catch (error) {
    io.err(`rtpproxy-makeann: ${parsed.input}: cannot read: ${errorMessage(error)}`);
    return 1;
  }
  let samples: Int16Array;
  if (parsed.raw) samples = pcm16le(bytes);
  else {
    const wav = readWav(bytes);
    if (!wav.ok) {
      for (const problem of wav.errors) io.err(`rtpproxy-makeann: ${parsed.input}: ${problem}`);
      io.err(`rtpproxy-makeann: ${CONVERT_HINT}`);
      return 1;
    }
    samples = wav.samples;
  }
  samples = limitSamples(samples, parsed.limit, parsed.loop);
  if (samples.length === 0) {
    io.err(`rtpproxy-makeann: ${parsed.input}: no audio samples`);
    return 1;
  }
  for (const [pt, data] of encodePrompts(samples, parsed.codecs)) {
    const path = `${parsed.template}.${String(pt)}`;
    const temporary = `${path}.tmp-${String(process.pid)}`;
    try {
      await io.writeFile(temporary, data);
      await io.rename(temporary, path);
    } catch (error) {
      await io.unlink(temporary).catch(() => undefined);
      io.err(`rtpproxy-makeann: ${path}: cannot write: ${errorMessage(error)}`);
      return 1;
    }
    const seconds = (samples.length / REQUIRED_RATE).toFixed(3);
    io.out(`${path}: ${String(data.length)} bytes, ${seconds} s`);
  }
  return 0;
}

function positiveInt(value: string): number {
  if (!/^[0-9]+$/.test(value) || Number(value) < 1) {
    throw new InvalidArgumentError('expected a positive number of samples');
  }
  return Number(value);
}

function codecList(value: string): number[] {
  if (!/^[0-9]+(,[0-9]+)*$/.test(value)) {
    throw new InvalidArgumentError('expected payload type numbers separated by commas');
  }
  return value.split(',').map(Number);
}
