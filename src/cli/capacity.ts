import type { Config } from '../base/config.ts';

/**
 * Descriptors kept free for everything that is not a media socket: stdio, the event loop's own
 * descriptors, control sockets and their connections (up to 100 per stream listener are served),
 * log output and the pid file.
 */
export const RESERVED_FILES = 100;

/** How many calls the daemon can hold, by port range and by open-files limit (operations.md). */
export interface Capacity {
  /** RTP/RTCP port pairs in `-m`..`-M`. */
  readonly portPairs: number;
  /** Sessions the port range holds: two pairs per session, one per leg. */
  readonly sessionsByPorts: number;
  /** Descriptors one session uses: four sockets, plus its recording files under `-a`. */
  readonly filesPerSession: number;
  /** The soft open-files limit, when known. */
  readonly fileLimit?: number;
  /** Sessions the open-files limit allows, when it is known. */
  readonly sessionsByFiles?: number;
  /** The open-files limit that lets the whole port range be used. */
  readonly filesNeeded: number;
}

/**
 * Sizes the daemon from its configuration and the open-files limit. Pure. IPv4 and IPv6 each have
 * their own port table over the range; a session whose legs share a family takes two pairs from
 * one table, which is the figure reported (an IPv4<->IPv6 session takes one from each).
 */
export function computeCapacity(
  config: Pick<Config, 'portMin' | 'portMax' | 'recordAll' | 'pcap' | 'noRtcpRecord'>,
  fileLimit: number | undefined,
): Capacity {
  const portPairs = Math.max(0, (config.portMax - config.portMin) / 2 + 1);
  const sessionsByPorts = Math.floor(portPairs / 2);
  // -a records both legs from the start: one combined pcap file per session with -P, otherwise
  // an RTP file (and an RTCP file unless -R) per leg.
  const recordingFiles = config.recordAll ? (config.pcap ? 1 : config.noRtcpRecord ? 2 : 4) : 0;
  const filesPerSession = 4 + recordingFiles;
  const filesNeeded = sessionsByPorts * filesPerSession + RESERVED_FILES;
  if (fileLimit === undefined) return { portPairs, sessionsByPorts, filesPerSession, filesNeeded };
  const sessionsByFiles = Math.max(0, Math.floor((fileLimit - RESERVED_FILES) / filesPerSession));
  return { portPairs, sessionsByPorts, filesPerSession, fileLimit, sessionsByFiles, filesNeeded };
}
