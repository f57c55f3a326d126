/**
 * The session manager's vocabulary: its options and collaborators (given by the daemon), and the
 * domain requests and answers dispatch exchanges with it. Kept apart so that the manager's helpers
 * (local addresses, recording, playback) can name them without importing the manager.
 */
import type { KernelForwarder } from '../base/forward.ts';
import type { Logger } from 'pino';
import type { CommandOrigin, Family, LocalChoice, RemoteSpec } from '../base/net.ts';
import type { Side } from '../base/side.ts';
import type { OwnEndpoints } from '../media/own-endpoints.ts';
import type { MediaPlane } from '../media/plane.ts';
import type { PlaybackService } from '../play/scheduler.ts';
import type { RecorderFactory } from '../record/recorder.ts';
import type { GlobalStats } from '../util/stats.ts';
import type { ConfiguredAddress } from './local-address.ts';
import type { PacketMarker } from './mark-types.ts';
import type { SessionNotifier } from './notify-types.ts';
import type { Session } from './session.ts';

export interface ManagerOptions {
  /** Local addresses; the first is the default, the first two are `i` and `e` in bridge mode. */
  readonly addresses: readonly ConfiguredAddress[];
  readonly bridge: boolean;
  /** `-T`, seconds. */
  readonly ttl: number;
  /** `-W`, seconds. */
  readonly setupTtl: number;
  /** `-i`: one idle timer per leg. */
  readonly independentTtl: boolean;
  /** Legs are asymmetric unless `s` says otherwise (bridge mode, `--force_asymmetric`). */
  readonly defaultAsymmetric: boolean;
  /** `-a`: record both legs of every session from its creation. */
  readonly recordAll: boolean;
  /** `-P`: pcap files; makes the `s` modifier (one file per session) effective. */
  readonly pcap: boolean;
  /** `-R`: RTCP is neither recorded nor copied (remote copy); default false. */
  readonly noRtcp?: boolean;
  /** `--no_resolve`: a remote copy target must be a dotted IPv4 address; default false. */
  readonly noResolve?: boolean;
  /** `-t`: IP TOS of every new IPv4 leg's packets; default 0. */
  readonly tos?: number;
  /** `-2`: short packets are relayed twice, which keeps streams out of the kernel fast path. */
  readonly sendTwice?: boolean;
}

export interface ManagerDeps {
  readonly media: MediaPlane;
  /**
   * Where the daemon's own sockets listen: a remote naming one is taken as no address at all
   * (docs/architecture.md, "Own endpoints").
   */
  readonly own?: OwnEndpoints;
  readonly stats: GlobalStats;
  readonly now: () => number;
  readonly logger: Logger;
  /** Opens recording files; undefined without `-r`. */
  readonly recorders: RecorderFactory | undefined;
  /** After drain() began, the last session is gone. */
  readonly onDrained: () => void;
  /** Prompt playback (P/S); without it P answers E60. */
  readonly players?: PlaybackService;
  /**
   * Timeout notifications (docs/protocol.md 8); undefined without any `-n` target, and then a U with
   * a notify pair is refused (ERR_NOTIFY_DISABLED).
   */
  readonly notifier?: SessionNotifier;
  /** `--overload_prot`: true while the daemon is overloaded; new sessions are then refused. */
  readonly overloaded?: () => boolean;
  /** Applies legs' IP TOS to their packets; undefined when the daemon cannot (nft/tos.ts). */
  readonly marker?: PacketMarker;
  /** The kernel fast path (docs/kernel.md); without it every stream is relayed in userspace. */
  readonly forwarder?: KernelForwarder;
}

/** A U or L request (and the L sub-command), in domain terms. */
export interface OfferRequest {
  readonly callId: string;
  readonly tag1: string;
  readonly tag2?: string;
  readonly remote: RemoteSpec;
  /** undefined: the daemon's default. */
  readonly asymmetric?: boolean;
  readonly weak: boolean;
  readonly local: LocalChoice;
  readonly codecs?: readonly number[];
  readonly repacketizeMs?: number;
  readonly newPorts: boolean;
  /** NOTIFY_SOCKET and the URL-decoded NOTIFY_TAG of a U. */
  readonly notify?: { readonly socket: string; readonly tag: string };
  /** Where the command came from: the `%%CC_SELF%%` notify target connects back to it. */
  readonly origin?: CommandOrigin;
  /**
   * When the command arrived (monotonic ms, the deps' clock): a session created or completed by
   * it is stamped with this time, not with the time the queue reached it (20140617).
   */
  readonly receivedAt?: number;
}

/** The reply leg of a U or L: where the other party must send. */
export interface LegAnswer {
  readonly session: Session;
  /** The leg that received the remote address (U: facing T1; L: facing T2). */
  readonly forwardLeg: Side;
  readonly port: number;
  readonly address: string;
  readonly family: Family;
  readonly advertised?: string;
  readonly wildcard: boolean;
}

/** A session found by the single-session rule, with the leg facing T1. */
export interface FoundSession {
  readonly session: Session;
  readonly legT1: Side;
}

/** A session selected by the prefix rule (R, N), with the leg facing T1 (1 via T1, 0 via T2). */
export interface PrefixSelected {
  readonly session: Session;
  readonly leg: Side;
}
