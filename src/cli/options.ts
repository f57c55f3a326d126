import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { errorMessage } from '../util/error-message.ts';
import type { Family } from '../base/net.ts';

/**
 * The command line as typed, before any decision (protocol.md section 9). Values are syntactically
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
  /** `--kamailio_notify` (ours: read Kamailio's timeout_socket forms, protocol.md 10.1). */
  readonly kamailioNotify: boolean;
  /** `--workers N` (ours): media worker threads; 0 relays on the main thread. */
  readonly workers?: number;
  /** `--no_connect_media` (ours): media sockets are never connect()ed to the latched party. */
  readonly noConnectMedia: boolean;
  /** `--nft auto|on|off` (ours): the daemon's nftables table (TOS marking). */
  readonly nft?: string;
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

/** Short usage text printed after a command-line error (the reference's, plus the long options). */
export const USAGE = [
  'usage:\trtpproxy [-2fvFiPaRbD] [-l addr1[/addr2]] [-6 addr1[/addr2]] [-s path]',
  '\t  [-t tos] [-r rdir [-S sdir]] [-T ttl] [-L nfiles] [-m port_min]',
  '\t  [-M port_max] [-u uname[:gname]] [-w sock_mode] [-n timeout_socket]',
  '\t  [-d log_level[:log_facility]] [-p pid_file] [-c fifo|rr]',
  '\t  [-A addr1[/addr2]] [-W setup_ttl] [--nice N] [--force_asymmetric]',
  '\t  [--bridge_symmetric] [--no_resolve] [--no_redirect] [--overload_prot]',
  '\t  [--kamailio_notify] [--workers N] [--no_connect_media] [--config file]',
  '\t  [--no_strict_source] [--dso file] [--nft auto|on|off]',
  '\trtpproxy -v | -V | -C',
].join('\n');

/** Short options that take an argument (getopt string of the reference, minus the flags). */
const SHORT_WITH_ARGUMENT = new Set([
  'l',
  '6',
  's',
  'S',
  't',
  'r',
  'p',
  'T',
  'L',
  'm',
  'M',
  'u',
  'n',
  'd',
  'c',
  'A',
  'w',
  'W',
]);

/** Short options that print something and exit at once when getopt reaches them. */
const INFO_FLAGS = { v: 'capabilities', V: 'version', C: 'clock' } as const;

/** Long options and their argument kind (`longopts[]` of the reference). */
const LONG_OPTIONS = {
  dso: 'required',
  bridge_symmetric: 'none',
  nice: 'required',
  overload_prot: 'optional',
  config: 'required',
  force_asymmetric: 'none',
  no_resolve: 'none',
  no_redirect: 'none',
  kamailio_notify: 'none',
  workers: 'required',
  no_connect_media: 'none',
  nft: 'required',
  no_strict_source: 'none',
} as const satisfies Readonly<Record<string, 'none' | 'required' | 'optional'>>;

type LongName = keyof typeof LONG_OPTIONS;

function isLongName(name: string): name is LongName {
  return Object.hasOwn(LONG_OPTIONS, name);
}

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
      switch (LONG_OPTIONS[name]) {
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
        if (Object.hasOwn(INFO_FLAGS, ch)) {
          out.push(arg.slice(0, k + 1));
          return {
            ok: true,
            argv: out,
            operands: 0,
            info: INFO_FLAGS[ch as keyof typeof INFO_FLAGS],
          };
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
  | { readonly ok: true; readonly name: LongName | undefined }
  | { readonly ok: false; readonly message: string } {
  if (isLongName(typed)) return { ok: true, name: typed };
  if (typed === '') return { ok: true, name: undefined };
  const matches = Object.keys(LONG_OPTIONS).filter((n) => n.startsWith(typed));
  if (matches.length > 1) {
    return {
      ok: false,
      message: `option '--${typed}' is ambiguous; possibilities: ${matches.map((m) => `'--${m}'`).join(' ')}`,
    };
  }
  const only = matches[0];
  return { ok: true, name: only !== undefined && isLongName(only) ? only : undefined };
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

function buildProgram(listen: ListenArg[]): Command {
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
    .allowExcessArguments(false)
    .option('-f', 'stay in the foreground')
    .option('-s <socket>', 'control socket (repeatable)', collect, [])
    .option('-l <addr>', 'IPv4 media address (repeatable)', (v: string) => {
      listen.push({ family: 4, value: v });
      return v;
    })
    .option('-6 <addr>', 'IPv6 media address (repeatable)', (v: string) => {
      listen.push({ family: 6, value: v });
      return v;
    })
    .option('-A <adv>', 'advertised addresses in bridge mode: ADV1[/ADV2]')
    .option('-m <port>', 'lowest media port', decimal)
    .option('-M <port>', 'highest media port', decimal)
    .option('-b', 'allocate ports sequentially')
    .option('-T <seconds>', 'idle timeout of complete sessions', decimal)
    .option('-W <seconds>', 'idle timeout of incomplete sessions', decimal)
    .option('-i', 'independent idle timers per leg')
    .option('-t <tos>', 'IP TOS of IPv4 media sockets', decimal)
    .option('-2', 'send small packets twice')
    .option('-r <dir>', 'recording directory')
    .option('-S <dir>', 'spool directory')
    .option('-P', 'pcap recording format')
    .option('-a', 'record all sessions')
    .option('-R', 'do not record RTCP')
    .option('-n <target>', 'timeout notification target (repeatable)', collect, [])
    .option('-p <file>', 'pid file')
    .option('-u <user>', 'USER[:GROUP] or :GROUP to run as')
    .option('-w <mode>', 'mode of unix control sockets (decimal)', decimal)
    .option('-F', 'allow running as root without -u')
    .option('-L <n>', 'open-files limit', decimal)
    .option('-d <level>', 'LEVEL[:FACILITY]')
    .option('-D', 'do not chdir to / when daemonizing')
    .option('-c <policy>', 'real-time scheduling policy: fifo or rr')
    .option('-v', 'print the capabilities and exit')
    .option('-V', 'print the version and exit')
    .option('-C', 'print the clock name and exit')
    .option('--nice <n>', 'process priority', decimal)
    .option('--force_asymmetric', 'legs asymmetric by default')
    .option('--bridge_symmetric', 'legs symmetric in bridge mode')
    .option('--no_resolve', 'numeric addresses only')
    .option('--no_redirect', 'keep stdout/stderr when daemonizing')
    .option('--overload_prot', 'refuse new sessions (E98) while the event loop runs late')
    .option('--kamailio_notify', "read Kamailio's timeout_socket forms as a notify pair")
    .option('--workers <n>', 'media worker threads (0: relay on the main thread)', decimal)
    .option('--no_connect_media', 'never connect media sockets to the latched party')
    .option('--nft <mode>', "the daemon's nftables table (TOS marking): auto, on or off")
    .option('--no_strict_source', "latch media sources by the reference's rules")
    .option('--config <file>', 'configuration file')
    .option('--dso <file>', 'module to load (repeatable)', collect, []);
  return program;
}

function str(opts: Readonly<Record<string, unknown>>, key: string): string | undefined {
  const v = opts[key];
  return typeof v === 'string' ? v : undefined;
}

function num(opts: Readonly<Record<string, unknown>>, key: string): number | undefined {
  const v = opts[key];
  return typeof v === 'number' ? v : undefined;
}

function flag(opts: Readonly<Record<string, unknown>>, key: string): boolean {
  return opts[key] === true;
}

function list(opts: Readonly<Record<string, unknown>>, key: string): readonly string[] {
  const v = opts[key];
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
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
  const program = buildProgram(listen);
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
  const options = defined<RawOptions>({
    info: pre.info,
    foreground: flag(o, 'f'),
    sockets: list(o, 's'),
    listen,
    advertised: str(o, 'A'),
    portMin: num(o, 'm'),
    portMax: num(o, 'M'),
    sequentialPorts: flag(o, 'b'),
    ttl: num(o, 'T'),
    setupTtl: num(o, 'W'),
    independentTtl: flag(o, 'i'),
    tos: num(o, 't'),
    sendTwice: flag(o, '2'),
    recordDir: str(o, 'r'),
    spoolDir: str(o, 'S'),
    pcap: flag(o, 'P'),
    recordAll: flag(o, 'a'),
    noRtcpRecord: flag(o, 'R'),
    notify: list(o, 'n'),
    pidFile: str(o, 'p'),
    user: str(o, 'u'),
    socketMode: num(o, 'w'),
    allowRoot: flag(o, 'F'),
    fileLimit: num(o, 'L'),
    debug: str(o, 'd'),
    noChdir: flag(o, 'D'),
    schedPolicy: str(o, 'c'),
    nice: num(o, 'nice'),
    forceAsymmetric: flag(o, 'force_asymmetric'),
    bridgeSymmetric: flag(o, 'bridge_symmetric'),
    noResolve: flag(o, 'no_resolve'),
    noRedirect: flag(o, 'no_redirect'),
    overloadProt: flag(o, 'overload_prot'),
    kamailioNotify: flag(o, 'kamailio_notify'),
    workers: num(o, 'workers'),
    noConnectMedia: flag(o, 'no_connect_media'),
    nft: str(o, 'nft'),
    noStrictSource: flag(o, 'no_strict_source'),
    configFile: str(o, 'config'),
    dso: list(o, 'dso'),
  });
  return { ok: true, options };
}
