/**
 * The playback commands of a session (docs/protocol.md 3.6, 3.7, 7): P plays a prompt out of the leg
 * facing T1, S stops it (sippy/rtpproxy src/commands/rpcpv1_play.c, src/rtpp_server.c).
 */
import type { Logger } from 'pino';
import { otherSide } from '../base/side.ts';
import { PromptTooLargeError } from '../play/prompts.ts';
import type { PlaybackService } from '../play/scheduler.ts';
import { RelayError } from './errors.ts';
import type { FoundSession } from './manager-types.ts';

/** What playback needs from the daemon: the playback service (none: P answers E60) and a logger. */
export interface PlaybackDeps {
  readonly players: PlaybackService | undefined;
  readonly logger: Logger;
}

/** P and S on found sessions. */
export class SessionPlayback {
  readonly #deps: PlaybackDeps;

  constructor(deps: PlaybackDeps) {
    this.#deps = deps;
  }

  /**
   * P (docs/protocol.md 3.6, 7): stops what plays to the T1 party, then plays the first prompt file
   * `NAME.PT` found for the payload types (or, for `'session'`, the `c` list and packet time stored
   * on the leg facing T1) `count` times (negative: until stopped) out of that leg. Count 0 only
   * stops. The reference's order: stop first, then E35 for `session` without a stored list, then E60.
   * `packetMs` is the packet time for a list of payload types (<= 0: the player's default). Resolves
   * with the length of one play of the prompt, ms (0 when nothing plays).
   */
  async play(
    found: FoundSession,
    prompt: string,
    codecs: readonly number[] | 'session',
    count: number,
    packetMs = -1,
  ): Promise<number> {
    const { session, legT1 } = found;
    const leg = session.legs[legT1];
    this.stop(found);
    let payloadTypes = codecs;
    if (payloadTypes === 'session') {
      if (leg.codecs === undefined) throw new RelayError('ERR_NO_SESSION_CODECS');
      payloadTypes = leg.codecs;
      packetMs = leg.packetTimeMs;
    }
    if (count === 0) return 0;
    const players = this.#deps.players;
    if (players === undefined) throw new RelayError('ERR_PLAYBACK', 'playback is not available');
    let source: Awaited<ReturnType<typeof players.findPrompt>>;
    try {
      source = await players.findPrompt(prompt, payloadTypes, packetMs);
    } catch (err) {
      if (!(err instanceof PromptTooLargeError)) throw err;
      this.#deps.logger.warn(
        { callId: session.callId, prompt: err.path, size: err.size, limit: err.limit },
        'prompt file over the size limit: not played',
      );
      throw new RelayError('ERR_PROMPT_TOO_LARGE', err.message, { cause: err });
    }
    if (source === undefined) throw new RelayError('ERR_PLAYBACK', 'no playable prompt file');
    // The session may have ended while the file was read; a P that raced it started nothing.
    if (session.closed) throw new RelayError('ERR_PLAYBACK', 'the session ended');
    const other = otherSide(legT1);
    const log = this.#deps.logger;
    const info = players.start(leg.rtp, source, count, {
      onPacket: () => {
        // Played packets pass the relay stage as if they came from the other leg (docs/protocol.md 7.4).
        session.touch(other);
      },
      onEnd: (reason) => {
        log.info({ callId: session.callId, tag: session.tag, leg: legT1, reason }, 'prompt ended');
      },
    });
    log.info(
      {
        callId: session.callId,
        tag: session.tag,
        leg: legT1,
        prompt: source.path,
        payloadType: source.framing.payloadType,
        count,
        ssrc: info.ssrc,
        seq: info.sequence,
      },
      'prompt playing',
    );
    const { payloadBytes, packetMs: ms } = source.framing;
    return Math.ceil(source.data.length / payloadBytes) * ms;
  }

  /**
   * S (docs/protocol.md 3.7), and the first step of P: stops the player of the leg facing T1, if
   * any; false when nothing played there.
   */
  stop(found: FoundSession): boolean {
    return this.#deps.players?.stop(found.session.legs[found.legT1].rtp) ?? false;
  }
}
