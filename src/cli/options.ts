import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { errorMessage } from '../util/error-message.ts';
import type { Family } from '../base/net.ts';
import {
  INFO_FLAGS,
  LONG_OPTIONS,
  OPTIONS,
  SHORT_WITH_ARGUMENT,
  type OptionSpec,
} from './option-table.ts';

export { USAGE } from './option-table.ts';

/**
 * The command line as typed, before any decision (docs/protocol.md 13). Values are syntactically
 * checked only (decimal integers are numbers); defaults, ranges and cross-option rules live in
 * `config.ts`.
 */
export interface RawOptions {
  /** `-v`, `-V` or `-C`: print something and exit; the first one on the command line wins. */
  readonly info?: 'capabilities' | 'version' | 'clock';
  /** `-f` */
  readonly foreground: boolean;
  /** `-s`, in command-line order. */
  readonly sockets: readonly string[];
  /** `-l` (family 4) and `-6` (family 6) values, in command-line order across both options. */
  readonly listen: readonly ListenArg[];
  /** `-A`; the last one wins. */
  readonly advertised?: string;
  /** `-m` */
  readonly portMin?: number;
  /** `-M` */
  readonly portMax?: number;
  /** `-b` */
  readonly sequentialPorts: boolean;
  /** `-T` */
  readonly ttl?: number;
  /** `-W` */
  readonly setupTtl?: number;
  /** `-i` */
  readonly independentTtl: boolean;
  /** `-t` */
  readonly tos?: number;
  /** `-2` */
  readonly sendTwice: boolean;
  /** `-r` */
  readonly recordDir?: string;
  /** `-S` */
  readonly spoolDir?: string;
  /** `-P` */
  readonly pcap: boolean;
  /** `-a` */
  readonly recordAll: boolean;
  /** `-R` */
  readonly noRtcpRecord: boolean;
  /** `-n`, in command-line order. */
  readonly notify: readonly string[];
  /** `-p` */
  readonly pidFile?: string;
  /** `-u` */
  readonly user?: string;
  /** `-w` */
  readonly socketMode?: number;
  /** `-F` */
  readonly allowRoot: boolean;
  /** `-L` */
  readonly fileLimit?: number;
  /** `-d` */
  readonly debug?: string;
  /** `-D` */
  readonly noChdir: boolean;
  /** `-c` */
  readonly schedPolicy?: string;
  /** `--nice` */
  readonly nice?: number;
  /** `--force_asymmetric` */
  readonly forceAsymmetric: boolean;
  /** `--bridge_symmetric` */
  readonly bridgeSymmetric: boolean;
  /** `--no_resolve` */
  readonly noResolve: boolean;
  /** `--no_redirect` */
  readonly noRedirect: boolean;
  /** `--overload_prot[=value]` (the value is ignored, as in the reference). */
  readonly overloadProt: boolean;
  /** `--kamailio_notify` (ours: read Kamailio's timeout_socket forms, docs/protocol.md 14.1). */
  readonly kamailioNotify: boolean;
  /** `--workers N` (ours): media worker threads; 0 relays on the main thread. */
  readonly workers?: number;
  /** `--no_connect_media` (ours): media sockets are never connect()ed to the latched party. */
  readonly noConnectMedia: boolean;
  /** `--nft auto|on|off` (ours): the daemon's nftables table (TOS marking). */
  readonly nft?: string;
  /** `--kernel auto|on|off` (ours): the kernel fast path (docs/kernel.md). */
  readonly kernel?: string;
  /** `--http ADDR:PORT` (ours): the admin API and metrics listener (docs/admin-api.md). */
  readonly http?: string;
  /** `--no_strict_source` (ours): the reference's latching rules instead of strict sources. */
  readonly noStrictSource: boolean;
  /** `--config` */
  readonly configFile?: string;
  /** `--dso`, in command-line order. */
  readonly dso: readonly string[];
}

/** One `-l` or `-6` argument. */
export interface ListenArg {
  readonly family: Family;
  readonly value: string;
}

/** Result of {@link parseOptions}: the raw options, or a usage error to print with {@link USAGE}. */
export type ParseOutcome =
  | { readonly ok: true; readonly options: RawOptions }
  | { readonly ok: false; readonly message: string };

type Prescan =
  | {
      readonly ok: true;
      readonly argv: readonly string[];
      readonly operands: number;
      readonly info?: RawOptions['info'];
    }
  | { readonly ok: false; readonly message: string };

/**
 * Rewrites argv into what commander understands while keeping getopt_long's behaviour:
 * unambiguous abbreviations of long options are expanded (`--no_res` is `--no_resolve`), the value
 * of the optional-argument `--overload_prot=X` is dropped (a separate word after it is NOT its
 * value, as with getopt), and `-v`/`-V`/`-C` end the parse where they stand, since the reference
 * prints and exits as soon as getopt returns them (so `-v -x` prints and exits 0, and so does
 * `extra -v`, because GNU getopt permutes operands to the end).
 */
function prescan(argv: readonly string[]): Prescan {
  const out: string[] = [];
  const operands: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === '--') {
      operands.push(...argv.slice(i + 1));
      break;
    }
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      const typed = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
      const value = eq === -1 ? undefined : arg.slice(eq + 1);
      const resolved = resolveLongName(typed);
      if (!resolved.ok) return resolved;
      if (resolved.name === undefined) {
        out.push(arg); // unknown: commander reports it (with a suggestion)
        continue;
      }
      const name = resolved.name;
      // A resolved name is always in the map.
      switch (LONG_OPTIONS.get(name) ?? 'none') {
        case 'none':
          if (value !== undefined) {
            return { ok: false, message: `option '--${name}' doesn't allow an argument` };
          }
          out.push(`--${name}`);
          break;
        case 'optional':
          out.push(`--${name}`);
          break;
        case 'required':
          if (value !== undefined) {
            out.push(`--${name}=${value}`);
          } else {
            out.push(`--${name}`);
            if (i + 1 < argv.length) out.push(argv[++i] ?? '');
          }
          break;
      }
      continue;
    }
    if (arg.startsWith('-') && arg.length > 1) {
      for (let k = 1; k < arg.length; k++) {
        const ch = arg.charAt(k);
        const info = INFO_FLAGS.get(ch);
        if (info !== undefined) {
          out.push(arg.slice(0, k + 1));
          return { ok: true, argv: out, operands: 0, info };
        }
        if (SHORT_WITH_ARGUMENT.has(ch)) {
          out.push(arg);
          if (k + 1 === arg.length && i + 1 < argv.length) out.push(argv[++i] ?? '');
          break;
        }
        if (k + 1 === arg.length) out.push(arg);
      }
      continue;
    }
    operands.push(arg);
  }
  if (operands.length > 0) out.push('--', ...operands);
  return { ok: true, argv: out, operands: operands.length };
}

function resolveLongName(
  typed: string,
):
  | { readonly ok: true; readonly name: string | undefined }
  | { readonly ok: false; readonly message: string } {
  if (LONG_OPTIONS.has(typed)) return { ok: true, name: typed };
  if (typed === '') return { ok: true, name: undefined };
  const matches = [...LONG_OPTIONS.keys()].filter((n) => n.startsWith(typed));
  if (matches.length > 1) {
    return {
      ok: false,
      message: `option '--${typed}' is ambiguous; possibilities: ${matches.map((m) => `'--${m}'`).join(' ')}`,
    };
  }
  return { ok: true, name: matches[0] };
}

/** Coercer for decimal integers (`atoi_saferange` in the reference): no hex, no exponent, not empty. */
function decimal(value: string): number {
  if (!/^[+-]?[0-9]+$/.test(value)) {
    throw new InvalidArgumentError('It must be a decimal integer.');
  }
  const n = Number(value);
  if (!Number.isSafeInteger(n)) throw new InvalidArgumentError('The number is too large.');
  return n;
}

function collect(value: string, previous: readonly string[]): readonly string[] {
  return [...previous, value];
}

/** The commander program for the table's options; `-l`/`-6` values are pushed onto `listen`. */
function buildProgram(listen: ListenArg[]): { program: Command; options: readonly Option[] } {
  const program = new Command('rtpproxy');
  program
    .exitOverride()
    .configureOutput({
      writeOut: () => undefined,
      writeErr: () => undefined,
      outputError: () => undefined,
    })
    .helpOption(false)
    .allowUnknownOption(false)
    .allowExcessArguments(false);
  const options = OPTIONS.map((spec: OptionSpec) => {
    const option = new Option(
      spec.arg === undefined ? spec.flag : `${spec.flag} <${spec.arg}>`,
      spec.description,
    );
    const into = spec.into;
    switch (into.as) {
      case 'decimal':
        option.argParser(decimal);
        break;
      case 'list':
        option.default([]).argParser(collect);
        break;
      case 'listen':
        option.argParser((v: string) => {
          listen.push({ family: into.family, value: v });
          return v;
        });
        break;
      case 'flag':
      case 'text':
      case 'info':
        break;
    }
    program.addOption(option);
    return option;
  });
  return { program, options };
}

/** One option's value from commander's result, as its RawOptions field holds it. */
function valueOf(spec: OptionSpec, value: unknown): unknown {
  switch (spec.into.as) {
    case 'flag':
      return value === true;
    case 'text':
      return typeof value === 'string' ? value : undefined;
    case 'decimal':
      return typeof value === 'number' ? value : undefined;
    case 'list':
      return Array.isArray(value) ? value.filter((x): x is string => typeof x === 'string') : [];
    case 'listen':
    case 'info':
      return undefined; // filled from the prescan and the -l/-6 callback
  }
}

/** Drops the keys whose value is undefined (exactOptionalPropertyTypes). */
function defined<T extends object>(o: { [K in keyof T]: T[K] | undefined }): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

/**
 * Parses the arguments after the program name, getopt_long style (`-T60` and `-T 60`, `--name value`
 * and `--name=value`, clustered flags). Never throws and never exits: a usage error is returned.
 */
export function parseOptions(argv: readonly string[]): ParseOutcome {
  const pre = prescan(argv);
  if (!pre.ok) return pre;
  const listen: ListenArg[] = [];
  const { program, options } = buildProgram(listen);
  try {
    program.parse([...pre.argv], { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError && err.code === 'commander.excessArguments') {
      const n = pre.operands;
      return {
        ok: false,
        message: `${String(n)} extra unhandled argument${n > 1 ? 's' : ''} at the end of the command line`,
      };
    }
    if (err instanceof CommanderError) {
      return { ok: false, message: err.message.replace(/^error: /, '') };
    }
    return { ok: false, message: errorMessage(err) };
  }
  const o: Readonly<Record<string, unknown>> = program.opts();
  const fields: Record<string, unknown> = { info: pre.info, listen };
  OPTIONS.forEach((spec: OptionSpec, i) => {
    const option = options[i];
    if (option === undefined || spec.into.field === 'info' || spec.into.field === 'listen') return;
    fields[spec.into.field] = valueOf(spec, o[option.attributeName()]);
  });
  const parsedOptions = defined<RawOptions>(fields as { [K in keyof RawOptions]: RawOptions[K] });
  return { ok: true, options: parsedOptions };
}
