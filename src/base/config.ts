/**
 * The daemon's configuration as every layer reads it: built and validated from the command line by
 * cli/config.ts, frozen, and handed down by the composition root (src/daemon.ts).
 */
import type { LogLevel } from '../util/logger.ts';
import type { Family } from './net.ts';

/** A control socket as given with `-s` (docs/protocol.md 2.1). */
export type ControlSocketSpec =
  | { readonly kind: 'unix' | 'cunix'; readonly path: string }
  | { readonly kind: 'udp' | 'udp6'; readonly host: string; readonly port: number }
  /** The ng protocol's (rtpengine's) `ng:udp:` and `ng:udp6:` sockets (docs/ng.md). */
  | { readonly kind: 'ng-udp' | 'ng-udp6'; readonly host: string; readonly port: number }
  | { readonly kind: 'tcp' | 'tcp6'; readonly host: string; readonly port: number }
  | { readonly kind: 'stdio' | 'stdioc' };

/** One local media address (`-l` / `-6`, docs/protocol.md 4.6 and 13). */
export interface LocalAddress {
  /** Numeric address; `0.0.0.0` or `::` for the wildcard. */
  readonly address: string;
  readonly family: Family;
  /** `label@ADDR`, selectable with the `l{label}` modifier. */
  readonly label?: string;
  /** `=ADV` or `-A`: the address written into replies instead of `address`. */
  readonly advertised?: string;
}

/** The validated, frozen daemon configuration built from the command line. */
export interface Config {
  readonly foreground: boolean;
  readonly controlSockets: readonly ControlSocketSpec[];
  /**
   * Local media addresses. The first is the default for new sessions. In bridge mode the first two
   * are the internal (`i`) and external (`e`) addresses.
   */
  readonly addresses: readonly LocalAddress[];
  readonly bridge: boolean;
  /** Lowest RTP port (even). */
  readonly portMin: number;
  /** Highest RTP port (even; its RTCP port is portMax + 1). */
  readonly portMax: number;
  /** `-b`: hand out ports in order instead of at random. */
  readonly sequentialPorts: boolean;
  /** `-T`: idle timeout of complete sessions, seconds. */
  readonly ttl: number;
  /** `-W`: idle timeout of sessions waiting for their second leg, seconds. */
  readonly setupTtl: number;
  /** `-i`: one idle counter per leg instead of one per session. */
  readonly independentTtl: boolean;
  /** `-t`: IP TOS for IPv4 media sockets. */
  readonly tos: number;
  /** `-2`: send relayed packets shorter than 128 bytes twice. */
  readonly sendTwice: boolean;
  readonly recordDir?: string;
  readonly spoolDir?: string;
  /** `-P`: pcap recording format. */
  readonly pcap: boolean;
  /** `-a`: record every session. */
  readonly recordAll: boolean;
  /** `-R`: do not record RTCP. */
  readonly noRtcpRecord: boolean;
  /** `-n`: timeout notification targets, as given (validated; docs/protocol.md 8.1). */
  readonly notifyTargets: readonly string[];
  /**
   * `--kamailio_notify`: also read the notify forms Kamailio's `timeout_socket` sends (docs/protocol.md
   * 14.1) as a notify pair. Needs a `-n` target.
   */
  readonly kamailioNotify: boolean;
  /** `-p`: pid file, or undefined when disabled with /dev/null. */
  readonly pidFile?: string;
  /** `-u USER[:GROUP]`. */
  readonly user?: string;
  readonly group?: string;
  /**
   * Numeric ids of `-u`, filled in by cli/privileges.ts before the daemon starts (user and group names
   * are looked up there, never here): `uid` with a user, `gid` with a group or the user's primary
   * group. Owner of unix control sockets, and what the process switches to.
   */
  readonly uid?: number;
  readonly gid?: number;
  /** `-w`: mode of unix control sockets (default 0660; undefined: left owner-only as created). */
  readonly socketMode?: number;
  /** `-F`: allow running as root without `-u`. */
  readonly allowRoot: boolean;
  /** `-L`: wanted open-files limit. */
  readonly fileLimit?: number;
  readonly logLevel: LogLevel;
  /** `-d LEVEL:FACILITY`: the syslog facility, accepted for compatibility. */
  readonly logFacility: string;
  /** `-D`: do not chdir to / when going to the background. */
  readonly noChdir: boolean;
  /** `--no_redirect`: keep stdout/stderr when going to the background. */
  readonly noRedirect: boolean;
  readonly forceAsymmetric: boolean;
  readonly bridgeSymmetric: boolean;
  readonly noResolve: boolean;
  /** `--overload_prot`: refuse new sessions (E98) while the event loop runs late. */
  readonly overloadProt: boolean;
  readonly nice?: number;
  /** `--workers`: media worker threads; 0 relays on the main thread (docs/architecture.md). */
  readonly workers: number;
  /**
   * Connect the socket of a latched symmetric RTP leg to its party (docs/architecture.md,
   * "Connected sockets"); false with `--no_connect_media`.
   */
  readonly connectMedia: boolean;
  /**
   * `--nft`: the daemon's nftables table, which applies `-t`/`S tos=N` (docs/operations.md):
   * `auto` when the process can, `on` or refuse to start, `off` never.
   */
  readonly nft: NftMode;
  /**
   * `--kernel`: the kernel fast path in that table (docs/kernel.md): `auto` when the host allows
   * it, `on` or refuse to start, `off` never; always `off` with `--nft off`.
   */
  readonly kernel: NftMode;
  /** `--http`: where the admin API and the metrics listen (docs/admin-api.md); none by default. */
  readonly http?: HttpListen;
  /**
   * Strict media sources (docs/architecture.md, "Strict sources"); false with
   * `--no_strict_source`, the reference's latching rules.
   */
  readonly strictSource: boolean;
}

/** `--nft` values. */
type NftMode = 'auto' | 'on' | 'off';

/** An HTTP listening address: numeric host (IPv6 without brackets) and port (0: any free one). */
export interface HttpListen {
  readonly host: string;
  readonly port: number;
}
