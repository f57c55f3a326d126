/**
 * What the manager does with a closed session's figures (session.ts `SessionEnd`): the global
 * counters they add to (docs/protocol.md 10.1, sippy/rtpproxy src/rtpp_session.c at session end) and the
 * fields of the one `session ended` log line.
 */
import type { GlobalStats, SessionEndCause } from '../util/stats.ts';
import type { Session, SessionEnd } from './session.ts';

/** Why a session ended (util/stats.ts). */
export type EndReason = SessionEndCause;

/** Adds a closed session's figures to the global counters. */
export function foldSessionEnd(stats: GlobalStats, end: SessionEnd, reason: EndReason): void {
  stats.nsessDestroyed += 1;
  stats.totalDuration += end.duration;
  if (reason === 'timeout') stats.nsessTimeout += 1;
  stats.endedBy[reason] += 1;
  stats.endedBytesIn += end.streams.bytesIn;
  stats.endedIgnored += end.streams.ignored;
  stats.endedSendErrors += end.streams.sendErrors;
  if (end.complete) {
    if (end.rtpDirections === 0) stats.nsessNortp += 1;
    else if (end.rtpDirections === 1) stats.nsessOwrtp += 1;
    if (end.rtcpDirections === 0) stats.nsessNortcp += 1;
    else if (end.rtcpDirections === 1) stats.nsessOwrtcp += 1;
  }
  for (const a of end.rtpAnalysis) {
    stats.rtpaNsent += a.nsent;
    stats.rtpaNrcvd += a.nrcvd;
    stats.rtpaNdups += a.ndups;
    stats.rtpaNlost += a.nlost;
    stats.rtpaPerrs += a.perrs;
  }
}

/**
 * The fields of the `session ended` line; `notified`: the target told of the timeout, if any.
 * Durations are rounded to the millisecond for the log only.
 */
export function sessionEndFields(
  session: Session,
  end: SessionEnd,
  reason: EndReason,
  notified: string | undefined,
): Record<string, unknown> {
  return {
    callId: session.callId,
    tag: session.tag,
    reason,
    duration: Number(end.duration.toFixed(3)),
    complete: end.complete,
    // Seconds from the U to the command that connected both parties (20140617).
    ...(end.setup === undefined ? {} : { setup: Number(end.setup.toFixed(3)) }),
    // "caller" is leg 1 (faces the session-tag party), "callee" leg 0, as the reference logs.
    ...end.traffic,
    ...(notified === undefined ? {} : { notified }),
  };
}
