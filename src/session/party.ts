/**
 * What a U or L writes into a session from the offer of the SDP owner (docs/protocol.md 3.2 steps 5-6;
 * sippy/rtpproxy src/commands/rpcpv1_ul.c): the remote address, asymmetry, codecs and packet time
 * of the leg facing that party, the notify setting of a U, and the answer the reply leg gives.
 */
import type { Logger } from 'pino';
import type { Side } from '../base/side.ts';
import type { OwnEndpoints } from '../media/own-endpoints.ts';
import { makeRateLimiter } from '../util/logger.ts';
import { isWildcard } from '../util/net.ts';
import type { LegAnswer, OfferRequest } from './manager-types.ts';
import type { SessionNotifier, SessionNotify } from './notify-types.ts';
import type { Leg, Session } from './session.ts';

/** RTP `port` or RTCP `port + 1` of `address` is where one of the daemon's own sockets listens. */
export function namesOwnSocket(
  own: OwnEndpoints | undefined,
  address: string,
  port: number,
): boolean {
  return own !== undefined && (own.isOwn(address, port) || own.isOwn(address, port + 1));
}

/** The reply of a U or L: the reply leg's port and local address. */
export function legAnswer(session: Session, reply: Leg, forwardLeg: Side): LegAnswer {
  const local = reply.local;
  return {
    session,
    forwardLeg,
    port: reply.port,
    address: local.address,
    family: local.family,
    ...(local.advertised === undefined ? {} : { advertised: local.advertised }),
    wildcard: isWildcard(local.address),
  };
}

/** What the party settings need from the daemon. */
export interface PartyDeps {
  /** Legs are asymmetric unless the offer says otherwise. */
  readonly defaultAsymmetric: boolean;
  readonly own: OwnEndpoints | undefined;
  readonly notifier: SessionNotifier | undefined;
  readonly logger: Logger;
  readonly now: () => number;
}

/** Applies offers to legs; counts and logs (rate-limited) the remotes it refuses. */
export class PartySettings {
  readonly #deps: PartyDeps;
  /** One warning per unknown notify socket name per minute. */
  readonly #unknownNotifyLog: (socket: string) => boolean;
  /** One warning per minute about remotes that name our own sockets, with their count. */
  readonly #ownRemoteLog: (key: string) => boolean;
  #ownRemotesRefused = 0;

  constructor(deps: PartyDeps) {
    this.#deps = deps;
    this.#unknownNotifyLog = makeRateLimiter(60_000, deps.now);
    this.#ownRemoteLog = makeRateLimiter(60_000, deps.now);
  }

  /** Remotes refused because they name one of our own sockets, since start. */
  get ownRemotesRefused(): number {
    return this.#ownRemotesRefused;
  }

  /** Per-party settings go to the leg facing the SDP owner (docs/protocol.md 3.2 step 6). */
  apply(forward: Leg, reply: Leg, req: OfferRequest): void {
    const remote = req.remote;
    if (remote.kind === 'hold') forward.onHold = true;
    else if (remote.kind === 'address') {
      forward.onHold = false;
      if (namesOwnSocket(this.#deps.own, remote.address, remote.port)) {
        // Media must never reach our own sockets (a control socket would run it as commands):
        // the address counts as not given, and the leg learns its party from packets.
        this.#ownRemotesRefused += 1;
        if (this.#ownRemoteLog('own')) {
          this.#deps.logger.warn(
            {
              callId: req.callId,
              remote: remote.address,
              port: remote.port,
              refused: this.#ownRemotesRefused,
            },
            'remote media address names one of our own sockets: ignored',
          );
        }
      } else {
        forward.rtp.prefill(remote.address, remote.port);
        forward.rtcp.prefill(remote.address, remote.port + 1);
      }
    }
    const asymmetric = req.asymmetric ?? this.#deps.defaultAsymmetric;
    forward.rtp.asymmetric = asymmetric;
    forward.rtcp.asymmetric = asymmetric;
    forward.codecs = req.codecs;
    // Packets from the SDP owner are re-packetized (sippy/rtpproxy src/commands/rpcpv1_ul.c:
    // the resizer of the stream facing it); a U/L without `z` stops it.
    forward.rtp.repacketize(req.repacketizeMs);
    reply.packetTimeMs = req.repacketizeMs ?? -1;
  }

  /**
   * The notification setting a U gives its session (docs/protocol.md 3.2 step 5, 8.2): every U
   * replaces it; a notify socket that names no `-n` target leaves the session without one.
   */
  notifyOf(req: OfferRequest): SessionNotify | undefined {
    const notifier = this.#deps.notifier;
    if (req.notify === undefined || notifier === undefined) return undefined;
    const target = notifier.resolve(req.notify.socket, req.origin);
    if (target === undefined) {
      if (this.#unknownNotifyLog(req.notify.socket)) {
        this.#deps.logger.warn(
          { callId: req.callId, socket: req.notify.socket },
          'notify socket matches no -n target: no timeout notification for this session',
        );
      }
      return undefined;
    }
    return { target, tag: req.notify.tag };
  }
}
