/**
 * Every command-line option in one table: its flag, its argument, what it means, where it shows
 * in the usage text and which RawOptions field it fills. The commander program (options.ts), the
 * getopt emulation, the usage text and the README check (test/unit/cli/option-table.test.ts) are
 * all made from it, so a new option is one row here plus its field in RawOptions and Config.
 * The flags are the reference's (sippy/rtpproxy src/main.c: `getopt_long` and `usage()`).
 */
import type { Family } from '../base/net.ts';
import type { RawOptions } from './options.ts';

/** The RawOptions fields whose value (when given) is exactly of type T. */
type FieldOf<T> = {
  [K in keyof RawOptions]-?: [Exclude<RawOptions[K], undefined>] extends [T]
    ? [T] extends [Exclude<RawOptions[K], undefined>]
      ? K
      : never
    : never;
}[keyof RawOptions];

/** How an option's value goes into RawOptions. */
type OptionTarget =
  /** A flag: true when given. */
  | { readonly as: 'flag'; readonly field: FieldOf<boolean> }
  /** The argument as typed; the last one wins. */
  | { readonly as: 'text'; readonly field: FieldOf<string> }
  /** The argument as a decimal integer (a usage error otherwise); the last one wins. */
  | { readonly as: 'decimal'; readonly field: FieldOf<number> }
  /** Repeatable: every argument, in command-line order. */
  | { readonly as: 'list'; readonly field: FieldOf<readonly string[]> }
  /** `-l`/`-6`: one list across both options, in command-line order, with the family. */
  | { readonly as: 'listen'; readonly field: 'listen'; readonly family: Family }
  /** Print something and exit (`-v`, `-V`, `-C`): getopt stops where it stands. */
  | {
      readonly as: 'info';
      readonly field: 'info';
      readonly value: NonNullable<RawOptions['info']>;
    };

/** One command-line option. */
export interface OptionSpec {
  /** `-x` or `--name`, as typed. */
  readonly flag: string;
  /** The argument's name (commander's `<name>`, also in its error messages); none for a flag. */
  readonly arg?: string;
  /** getopt's optional_argument: `--name=value` is accepted and the value ignored. */
  readonly optionalArg?: true;
  /** What it does, in a few words. */
  readonly description: string;
  /**
   * Where it shows in the usage text: in the cluster of flags (`[-2fv...]`), as its own bracketed
   * words, or (absent) not on its own: `-S` is inside `-r`'s words, and the info options are on
   * the last line.
   */
  readonly usage?: 'cluster' | `[${string}]`;
  readonly into: OptionTarget;
}

/** The options, in the order of the usage text. */
// One row per option, so that the table reads as one.
// prettier-ignore
export const OPTIONS = [
  { flag: '-2', description: 'send small packets twice', usage: 'cluster', into: { as: 'flag', field: 'sendTwice' } },
  { flag: '-f', description: 'stay in the foreground', usage: 'cluster', into: { as: 'flag', field: 'foreground' } },
  { flag: '-v', description: 'print the capabilities and exit', usage: 'cluster', into: { as: 'info', field: 'info', value: 'capabilities' } },
  { flag: '-F', description: 'allow running as root without -u', usage: 'cluster', into: { as: 'flag', field: 'allowRoot' } },
  { flag: '-i', description: 'independent idle timers per leg', usage: 'cluster', into: { as: 'flag', field: 'independentTtl' } },
  { flag: '-P', description: 'pcap recording format', usage: 'cluster', into: { as: 'flag', field: 'pcap' } },
  { flag: '-a', description: 'record all sessions', usage: 'cluster', into: { as: 'flag', field: 'recordAll' } },
  { flag: '-R', description: 'do not record RTCP', usage: 'cluster', into: { as: 'flag', field: 'noRtcpRecord' } },
  { flag: '-b', description: 'allocate ports sequentially', usage: 'cluster', into: { as: 'flag', field: 'sequentialPorts' } },
  { flag: '-D', description: 'do not chdir to / when daemonizing', usage: 'cluster', into: { as: 'flag', field: 'noChdir' } },
  { flag: '-l', arg: 'addr', description: 'IPv4 media address (repeatable)', usage: '[-l addr1[/addr2]]', into: { as: 'listen', field: 'listen', family: 4 } },
  { flag: '-6', arg: 'addr', description: 'IPv6 media address (repeatable)', usage: '[-6 addr1[/addr2]]', into: { as: 'listen', field: 'listen', family: 6 } },
  { flag: '-s', arg: 'socket', description: 'control socket (repeatable)', usage: '[-s path]', into: { as: 'list', field: 'sockets' } },
  { flag: '-t', arg: 'tos', description: 'IP TOS of IPv4 media sockets', usage: '[-t tos]', into: { as: 'decimal', field: 'tos' } },
  { flag: '-r', arg: 'dir', description: 'recording directory', usage: '[-r rdir [-S sdir]]', into: { as: 'text', field: 'recordDir' } },
  { flag: '-S', arg: 'dir', description: 'spool directory', into: { as: 'text', field: 'spoolDir' } },
  { flag: '-T', arg: 'seconds', description: 'idle timeout of complete sessions', usage: '[-T ttl]', into: { as: 'decimal', field: 'ttl' } },
  { flag: '-L', arg: 'n', description: 'open-files limit', usage: '[-L nfiles]', into: { as: 'decimal', field: 'fileLimit' } },
  { flag: '-m', arg: 'port', description: 'lowest media port', usage: '[-m port_min]', into: { as: 'decimal', field: 'portMin' } },
  { flag: '-M', arg: 'port', description: 'highest media port', usage: '[-M port_max]', into: { as: 'decimal', field: 'portMax' } },
  { flag: '-u', arg: 'user', description: 'USER[:GROUP] or :GROUP to run as', usage: '[-u uname[:gname]]', into: { as: 'text', field: 'user' } },
  { flag: '-w', arg: 'mode', description: 'mode of unix control sockets (decimal)', usage: '[-w sock_mode]', into: { as: 'decimal', field: 'socketMode' } },
  { flag: '-n', arg: 'target', description: 'timeout notification target (repeatable)', usage: '[-n timeout_socket]', into: { as: 'list', field: 'notify' } },
  { flag: '-d', arg: 'level', description: 'LEVEL[:FACILITY]', usage: '[-d log_level[:log_facility]]', into: { as: 'text', field: 'debug' } },
  { flag: '-p', arg: 'file', description: 'pid file', usage: '[-p pid_file]', into: { as: 'text', field: 'pidFile' } },
  { flag: '-c', arg: 'policy', description: 'real-time scheduling policy: fifo or rr', usage: '[-c fifo|rr]', into: { as: 'text', field: 'schedPolicy' } },
  { flag: '-A', arg: 'adv', description: 'advertised addresses in bridge mode: ADV1[/ADV2]', usage: '[-A addr1[/addr2]]', into: { as: 'text', field: 'advertised' } },
  { flag: '-W', arg: 'seconds', description: 'idle timeout of incomplete sessions', usage: '[-W setup_ttl]', into: { as: 'decimal', field: 'setupTtl' } },
  { flag: '-V', description: 'print the version and exit', into: { as: 'info', field: 'info', value: 'version' } },
  { flag: '-C', description: 'print the clock name and exit', into: { as: 'info', field: 'info', value: 'clock' } },
  { flag: '--nice', arg: 'n', description: 'process priority', usage: '[--nice N]', into: { as: 'decimal', field: 'nice' } },
  { flag: '--force_asymmetric', description: 'legs asymmetric by default', usage: '[--force_asymmetric]', into: { as: 'flag', field: 'forceAsymmetric' } },
  { flag: '--bridge_symmetric', description: 'legs symmetric in bridge mode', usage: '[--bridge_symmetric]', into: { as: 'flag', field: 'bridgeSymmetric' } },
  { flag: '--no_resolve', description: 'numeric addresses only', usage: '[--no_resolve]', into: { as: 'flag', field: 'noResolve' } },
  { flag: '--no_redirect', description: 'keep stdout/stderr when daemonizing', usage: '[--no_redirect]', into: { as: 'flag', field: 'noRedirect' } },
  { flag: '--overload_prot', optionalArg: true, description: 'refuse new sessions (E98) while the event loop runs late', usage: '[--overload_prot]', into: { as: 'flag', field: 'overloadProt' } },
  { flag: '--kamailio_notify', description: "read Kamailio's timeout_socket forms as a notify pair", usage: '[--kamailio_notify]', into: { as: 'flag', field: 'kamailioNotify' } },
  { flag: '--workers', arg: 'n', description: 'media worker threads (0: relay on the main thread)', usage: '[--workers N]', into: { as: 'decimal', field: 'workers' } },
  { flag: '--no_connect_media', description: 'never connect media sockets to the latched party', usage: '[--no_connect_media]', into: { as: 'flag', field: 'noConnectMedia' } },
  { flag: '--config', arg: 'file', description: 'configuration file', usage: '[--config file]', into: { as: 'text', field: 'configFile' } },
  { flag: '--no_strict_source', description: "latch media sources by the reference's rules", usage: '[--no_strict_source]', into: { as: 'flag', field: 'noStrictSource' } },
  { flag: '--dso', arg: 'file', description: 'module to load (repeatable)', usage: '[--dso file]', into: { as: 'list', field: 'dso' } },
  { flag: '--nft', arg: 'mode', description: "the daemon's nftables table (TOS marking, kernel path): auto, on or off", usage: '[--nft auto|on|off]', into: { as: 'text', field: 'nft' } },
  { flag: '--kernel', arg: 'mode', description: 'forward latched streams in the kernel (nftables): auto, on or off', usage: '[--kernel auto|on|off]', into: { as: 'text', field: 'kernel' } },
  { flag: '--http', arg: 'addr:port', description: 'admin API and Prometheus metrics on this HTTP address (off unless given)', usage: '[--http ADDR:PORT]', into: { as: 'text', field: 'http' } },
] as const satisfies readonly OptionSpec[];

type Unfilled = Exclude<keyof RawOptions, (typeof OPTIONS)[number]['into']['field']>;
type IsTrue<T extends true> = T;
/**
 * Fails to compile while a RawOptions field has no option filling it.
 * @public a compile-time check: nothing imports it.
 */
export type EveryFieldFilled = IsTrue<[Unfilled] extends [never] ? true : false>;

/**
 * The order getopt_long lists the candidates of an ambiguous abbreviation in: the reference's
 * `longopts[]` (sippy/rtpproxy src/main.c), then ours in the order they came. Long options not
 * listed follow in table order.
 */
const LONGOPTS_ORDER = [
  'dso',
  'bridge_symmetric',
  'nice',
  'overload_prot',
  'config',
  'force_asymmetric',
  'no_resolve',
  'no_redirect',
  'kamailio_notify',
  'workers',
  'no_connect_media',
  'nft',
  'no_strict_source',
  'kernel',
  'http',
];

/** How a long option takes its argument (getopt's no/required/optional_argument). */
export type ArgumentKind = 'none' | 'required' | 'optional';

function argumentKind(o: OptionSpec): ArgumentKind {
  if (o.optionalArg === true) return 'optional';
  return o.arg === undefined ? 'none' : 'required';
}

function longOptions(): ReadonlyMap<string, ArgumentKind> {
  const longs = OPTIONS.filter((o: OptionSpec) => o.flag.startsWith('--'));
  const rank = (o: OptionSpec): number => {
    const i = LONGOPTS_ORDER.indexOf(o.flag.slice(2));
    return i === -1 ? LONGOPTS_ORDER.length : i;
  };
  // Array.prototype.sort is stable: unlisted options keep their table order.
  const sorted = [...longs].sort((a, b) => rank(a) - rank(b));
  return new Map(sorted.map((o) => [o.flag.slice(2), argumentKind(o)]));
}

/** Long options by name (without `--`), in `longopts[]` order, with their argument kind. */
export const LONG_OPTIONS: ReadonlyMap<string, ArgumentKind> = longOptions();

/** Short options (the letter) that take an argument. */
export const SHORT_WITH_ARGUMENT: ReadonlySet<string> = new Set(
  OPTIONS.filter((o: OptionSpec) => !o.flag.startsWith('--') && o.arg !== undefined).map((o) =>
    o.flag.slice(1),
  ),
);

/** Short options (the letter) that print something and exit, and what they print. */
export const INFO_FLAGS: ReadonlyMap<string, NonNullable<RawOptions['info']>> = new Map(
  OPTIONS.flatMap((o) => (o.into.as === 'info' ? [[o.flag.slice(1), o.into.value] as const] : [])),
);

/** Lines of the usage text are filled up to this many characters (the tab counts as one). */
const USAGE_WIDTH = 77;

function usageText(): string {
  const options: readonly OptionSpec[] = OPTIONS;
  const cluster = options
    .filter((o) => o.usage === 'cluster')
    .map((o) => o.flag.slice(1))
    .join('');
  const words = [
    `[-${cluster}]`,
    ...options.flatMap((o) => (o.usage === undefined || o.usage === 'cluster' ? [] : [o.usage])),
  ];
  const lines: string[] = [];
  let line = 'usage:\trtpproxy';
  for (const word of words) {
    if (line.length + 1 + word.length > USAGE_WIDTH) {
      lines.push(line);
      line = `\t  ${word}`;
    } else {
      line += ` ${word}`;
    }
  }
  lines.push(line);
  const info = options.filter((o) => o.into.as === 'info').map((o) => o.flag);
  lines.push(`\trtpproxy ${info.join(' | ')}`);
  return lines.join('\n');
}

/** Short usage text printed after a command-line error (the reference's, plus the long options). */
export const USAGE: string = usageText();
