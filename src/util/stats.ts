/**
 * Why a session ended, as the session-end log says: D, X, the admin API's DELETE, its idle
 * timeout, or the daemon's stop.
 */
export type SessionEndCause = 'delete' | 'delete-all' | 'admin' | 'timeout' | 'shutdown';

/**
 * Global counters behind G, I and Q (docs/protocol.md 10.2, 10.3). Plain numbers on one object, so the
 * packet path pays a property increment and nothing else.
 */
export class GlobalStats {
  nsessCreated = 0;
  nsessDestroyed = 0;
  nsessTimeout = 0;
  nsessComplete = 0;
  nsessNortp = 0;
  nsessOwrtp = 0;
  nsessNortcp = 0;
  nsessOwrtcp = 0;
  nplrsCreated = 0;
  nplrsDestroyed = 0;
  /** RTP + RTCP packets received on media sockets. */
  npktsRcvd = 0;
  npktsPlayed = 0;
  /** RTP + RTCP packets relayed. */
  npktsRelayed = 0;
  npktsResizerIn = 0;
  npktsResizerOut = 0;
  npktsResizerDiscard = 0;
  npktsDiscard = 0;
  /** Sum of the lifetimes of destroyed sessions, in seconds. */
  totalDuration = 0;
  ncmdsRcvd = 0;
  ncmdsRcvdNdups = 0;
  ncmdsSuccd = 0;
  ncmdsErrs = 0;
  ncmdsRepld = 0;
  rtpaNsent = 0;
  rtpaNrcvd = 0;
  rtpaNdups = 0;
  rtpaNlost = 0;
  rtpaPerrs = 0;
  /** Packets received per second, recomputed once a second from npktsRcvd. */
  ppsIn = 0;
  // Not G counters: what ended sessions' streams counted, for the metrics (docs/metrics.md),
  // which add the live sessions' counters to them.
  /** Bytes (UDP payload) accepted from the parties. */
  endedBytesIn = 0;
  /** Packets refused by the source check. */
  endedIgnored = 0;
  /** Send errors on the media sockets. */
  endedSendErrors = 0;
  /** Sessions ended, by why they ended. */
  readonly endedBy: Record<SessionEndCause, number> = {
    delete: 0,
    'delete-all': 0,
    admin: 0,
    timeout: 0,
    shutdown: 0,
  };
}
