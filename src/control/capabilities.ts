import type { Config } from '../base/config.ts';

/** One `VF` capability date (docs/protocol.md 11). */
export interface Capability {
  /** The date string clients send with `VF`; compared exactly. */
  readonly date: string;
  /** The reference's description, printed by `rtpproxy -v` as `Extension DATE: text`. */
  readonly description: string;
  /**
   * Whether we answer `1` for it. Clients change what they send based on these answers, so only
   * what is really implemented may be true (docs/protocol.md 11, "Rule for us").
   */
  readonly supported: boolean | ((config: Config) => boolean);
  /** `rtpproxy -v` lists it even when `supported` depends on the configuration (20081224). */
  readonly listed?: boolean;
}

/** The base protocol version answered by `V` (Kamailio and OpenSIPS refuse anything else). */
export const BASE_VERSION = '20040107';

/**
 * Every capability date the reference knows, in its order (`proto_caps[]` in
 * `src/commands/rpcpv1_ver.c`, descriptions kept verbatim, typos included), then the newer ones
 * of docs/protocol.md 11. `supported: false` marks what is not implemented yet; flip it when it is.
 */
export const CAPABILITIES: readonly Capability[] = [
  { date: '20040107', description: 'Basic RTP proxy functionality', supported: true },
  // Several streams per call and music on hold (P/S) work. Kamailio and OpenSIPS disable a proxy
  // that answers 0 here, so this is the base requirement of every client.
  { date: '20050322', description: 'Support for multiple RTP streams and MOH', supported: true },
  {
    date: '20060704',
    description: 'Support for extra parameter in the V command',
    supported: true,
  },
  // The `z` modifier: packets from the SDP owner are re-packetized (src/media/resizer.ts).
  { date: '20071116', description: 'Support for RTP re-packetization', supported: true },
  // Not yet: C (copy/fork).
  { date: '20071218', description: 'Support for forking (copying) RTP stream', supported: true },
  { date: '20080403', description: 'Support for RTP statistics querying', supported: true },
  // The `c` list is parsed and stored on the leg for `P ... session`.
  {
    date: '20081102',
    description: 'Support for setting codecs in the update/lookup command',
    supported: true,
  },
  // Timeout notifications: like the reference, VF answers 1 only when at least one -n target is
  // configured (OpenSIPS sends its notify pair only after a 1 here); `-v` lists it regardless, as
  // the reference's does.
  {
    date: '20081224',
    description: 'Support for session timeout notifications',
    supported: (c) => c.notifyTargets.length > 0,
    listed: true,
  },
  // The `r` modifier (the local address that routes to the remote; OpenSIPS' rtpproxy_autobridge
  // sends it only after a 1 here) and the choice of a local address by the remote's family (`6`).
  { date: '20090810', description: 'Support for automatic bridging', supported: true },
  { date: '20140323', description: 'Support for tracking/reporting load', supported: true },
  // Session times are anchored to the arrival of the commands: a session's creation and connect
  // (completion) times are those of the U and of the command that completed it, whatever the
  // wait in the command queue; `total_duration` and the session-end log use them.
  { date: '20140617', description: 'Support for anchoring session connect time', supported: true },
  { date: '20141004', description: 'Support for extendable performance counters', supported: true },
  {
    date: '20150330',
    description: 'Support for allocating a new port ("Un"/"Ln" commands)',
    supported: true,
  },
  {
    date: '20150420',
    description: 'Support for SEQ tracking and new rtpa_ counters; Q command extended',
    supported: true,
  },
  // `-n tcp:%%CC_SELF%%:PORT`. Always 1, as in the reference: OpenSIPS strips `tcp:` from its
  // notify socket after a 0 here, and the stripped name would match no target.
  {
    date: '20150617',
    description: 'Support for the wildcard %%CC_SELF%% as a disconnect notify target',
    supported: true,
  },
  { date: '20191015', description: 'Support for the && sub-command specifier', supported: true },
  { date: '20200226', description: 'Support for the N command to stop recording', supported: true },
  {
    date: '20230205',
    description: 'Support for "rtpa_nlost" counter; extend catch_dtmf module with "h" modifier',
    supported: true,
  },
  { date: '20230314', description: 'Support for for "fusing" G and D commands', supported: true },
  {
    date: '20230424',
    description:
      'Support for for "longest_ipi", "rtpa_jlast", "rtpa_jmax" and "rtpa_javg" counters',
    supported: true,
  },
  // Newer dates of docs/protocol.md 11 (also in the reference's table now, descriptions verbatim).
  {
    date: '20250523',
    description: 'Support for the "P" modifier in the C command',
    supported: true,
  },
  // `S ttl=N` with the reference's counters (`tos=N` is answered as the reference does).
  {
    date: '20251015',
    description: "Support for changing session's ttl / IP tos via S subcommand",
    supported: true,
  },
  {
    date: '20260306',
    description: 'Support for address labels in the "Ul"/"Ll" commands',
    supported: true,
  },
  {
    date: '20260308',
    description: 'Support for single-shot dual-leg setup via "U ... && L ..."',
    supported: true,
  },
  {
    date: '20260309',
    description: 'Support for forking both streams via "C" sub-command',
    supported: true,
  },
];

/** Whether `VF date` answers 1 with this configuration (exact string match; unknown dates: false). */
export function isCapabilitySupported(date: string, config: Config): boolean {
  const cap = CAPABILITIES.find((c) => c.date === date);
  if (cap === undefined) return false;
  return typeof cap.supported === 'boolean' ? cap.supported : cap.supported(config);
}

/**
 * The capabilities to list (`rtpproxy -v`): the supported ones, and those marked `listed` (the
 * reference prints 20081224 whatever the options). Without a valid config (the command line had
 * errors), other capabilities that depend on the config are left out.
 */
export function supportedCapabilities(config?: Config): readonly Capability[] {
  return CAPABILITIES.filter((c) =>
    typeof c.supported === 'boolean'
      ? c.supported
      : c.listed === true || (config !== undefined && c.supported(config)),
  );
}
