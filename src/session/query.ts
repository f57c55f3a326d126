/**
 * The counters `Q` and `G` report, by their protocol names (docs/protocol.md 10.1 and 10.3), read from
 * the session model and the global statistics. Domain values only: numbers, and whether the
 * reference prints the value as a float; the reply text is the control layer's business.
 * After sippy/rtpproxy src/commands/rpcpv1_query.c and src/commands/rpcpv1_stats.c.
 */
import { otherSide, type Side } from '../base/side.ts';
import type { GlobalStats } from '../util/stats.ts';
import type { Session } from './session.ts';

/** A counter's value, and whether the reference prints it as a float (six decimals). */
export interface CounterValue {
  readonly value: number;
  readonly float: boolean;
}

type SessionReader = (s: Session, t1: Side) => number;

const int = (read: SessionReader) => ({ read, float: false }) as const;
const float = (read: SessionReader) => ({ read, float: true }) as const;

/** Per-session counters by their Q name, seen from the leg facing T1 (`t1`). */
const SESSION_COUNTERS: Readonly<Record<string, { read: SessionReader; float: boolean }>> = {
  ttl: int((s) => s.ttl()),
  npkts_ina: int((s, t1) => s.legs[t1].rtp.npktsIn),
  npkts_ino: int((s, t1) => s.legs[otherSide(t1)].rtp.npktsIn),
  nrelayed: int((s) => s.legs[0].rtp.nrelayed + s.legs[1].rtp.nrelayed),
  ndropped: int((s) => s.legs[0].rtp.ndropped + s.legs[1].rtp.ndropped),
  longest_ipi: float((s, t1) => s.legs[t1].rtp.rtpStats?.longestIpi ?? 0),
  rtpa_nsent: int((s, t1) => s.legs[t1].rtp.rtpStats?.nsent ?? 0),
  rtpa_nrcvd: int((s, t1) => s.legs[t1].rtp.rtpStats?.nrcvd ?? 0),
  rtpa_ndups: int((s, t1) => s.legs[t1].rtp.rtpStats?.ndups ?? 0),
  rtpa_nlost: int((s, t1) => s.legs[t1].rtp.rtpStats?.nlost ?? 0),
  rtpa_perrs: int((s, t1) => s.legs[t1].rtp.rtpStats?.perrs ?? 0),
  rtpa_jlast: float((s, t1) => s.legs[t1].rtp.rtpStats?.jlast ?? 0),
  rtpa_jmax: float((s, t1) => s.legs[t1].rtp.rtpStats?.jmax ?? 0),
  rtpa_javg: float((s, t1) => s.legs[t1].rtp.rtpStats?.javg ?? 0),
};

/**
 * The per-session counter `name` of `session`, seen from the leg `t1` (the leg facing the party
 * of the command's first tag); undefined when no counter has that name.
 */
export function sessionCounter(session: Session, t1: Side, name: string): CounterValue | undefined {
  if (!Object.hasOwn(SESSION_COUNTERS, name)) return undefined;
  const counter = SESSION_COUNTERS[name];
  if (counter === undefined) return undefined;
  return { value: counter.read(session, t1), float: counter.float };
}

type NumericStat = {
  [K in keyof GlobalStats]: GlobalStats[K] extends number ? K : never;
}[keyof GlobalStats];

/** Global counters by their G name; `true` marks the two floating ones. */
const GLOBAL_COUNTERS: Readonly<Record<string, readonly [NumericStat, boolean]>> = {
  nsess_created: ['nsessCreated', false],
  nsess_destroyed: ['nsessDestroyed', false],
  nsess_timeout: ['nsessTimeout', false],
  nsess_complete: ['nsessComplete', false],
  nsess_nortp: ['nsessNortp', false],
  nsess_owrtp: ['nsessOwrtp', false],
  nsess_nortcp: ['nsessNortcp', false],
  nsess_owrtcp: ['nsessOwrtcp', false],
  nplrs_created: ['nplrsCreated', false],
  nplrs_destroyed: ['nplrsDestroyed', false],
  npkts_rcvd: ['npktsRcvd', false],
  npkts_played: ['npktsPlayed', false],
  npkts_relayed: ['npktsRelayed', false],
  npkts_resizer_in: ['npktsResizerIn', false],
  npkts_resizer_out: ['npktsResizerOut', false],
  npkts_resizer_discard: ['npktsResizerDiscard', false],
  npkts_discard: ['npktsDiscard', false],
  total_duration: ['totalDuration', true],
  ncmds_rcvd: ['ncmdsRcvd', false],
  ncmds_rcvd_ndups: ['ncmdsRcvdNdups', false],
  ncmds_succd: ['ncmdsSuccd', false],
  ncmds_errs: ['ncmdsErrs', false],
  ncmds_repld: ['ncmdsRepld', false],
  rtpa_nsent: ['rtpaNsent', false],
  rtpa_nrcvd: ['rtpaNrcvd', false],
  rtpa_ndups: ['rtpaNdups', false],
  rtpa_nlost: ['rtpaNlost', false],
  rtpa_perrs: ['rtpaPerrs', false],
  pps_in: ['ppsIn', true],
};

/** Every global counter's G name, in the order docs/protocol.md 10.3 lists them. */
export const GLOBAL_COUNTER_NAMES: readonly string[] = Object.freeze(Object.keys(GLOBAL_COUNTERS));

/** The global counter `name`; undefined when no counter has that name. */
export function globalCounter(stats: GlobalStats, name: string): CounterValue | undefined {
  if (!Object.hasOwn(GLOBAL_COUNTERS, name)) return undefined;
  const entry = GLOBAL_COUNTERS[name];
  if (entry === undefined) return undefined;
  return { value: stats[entry[0]], float: entry[1] };
}
