/**
 * The recording commands of a session (docs/protocol.md 3.8, 3.15, 6): R starts and N stops a leg's
 * recorder, C records into a named file, copies to a remote UDP target or forks into another
 * session, and `-a` records every session from its creation (sippy/rtpproxy
 * src/commands/rpcpv1_record.c, src/commands/rpcpv1_ul_subc_copy.c, src/rtpp_record.c). It also
 * keeps the recordings still being flushed, so that shutdown can wait for them.
 */
import type { Logger } from 'pino';
import { otherSide, type Side } from '../base/side.ts';
import type { MediaPlane } from '../media/plane.ts';
import { parseCopyTarget, resolveCopyTarget } from '../record/copy-target.ts';
import type { RecorderFactory } from '../record/recorder.ts';
import { RemoteCopy } from '../record/remote-copy.ts';
import { SessionFork } from '../record/session-fork.ts';
import { sameAddress } from '../util/net.ts';
import { RelayError } from './errors.ts';
import type { ConfiguredAddress } from './local-address.ts';
import type { FoundSession, PrefixSelected } from './manager-types.ts';
import type { PacketMarker } from './mark-types.ts';
import type { Leg, Session } from './session.ts';

/** The daemon settings recording follows (a subset of the manager's options). */
export interface RecordingOptions {
  /** Configured local addresses: a remote copy answers with one's advertised address. */
  readonly addresses: readonly ConfiguredAddress[];
  /** `-P`: the `s` modifier (one file per session) is effective. */
  readonly pcap: boolean;
  /** `-R`: a remote copy leaves RTCP out. */
  readonly noRtcp?: boolean;
  /** `--no_resolve`: a remote copy target must be a dotted IPv4 address. */
  readonly noResolve?: boolean;
}

/** What recording needs from the daemon. */
export interface RecordingDeps {
  /** Opens recording files; undefined without `-r`. */
  readonly recorders: RecorderFactory | undefined;
  readonly media: MediaPlane;
  readonly logger: Logger;
  readonly marker: PacketMarker | undefined;
  /** RTP `port` or RTCP `port + 1` of `address` is one of the daemon's own sockets. */
  readonly isOwn: (address: string, port: number) => boolean;
}

/** R, N, C and `-a` over sessions the manager selected. */
export class SessionRecording {
  readonly #opts: RecordingOptions;
  readonly #deps: RecordingDeps;
  /** Recordings being flushed and moved after their session or recorder ended. */
  readonly #finishing = new Set<Promise<void>>();

  constructor(options: RecordingOptions, deps: RecordingDeps) {
    this.#opts = options;
    this.#deps = deps;
  }

  /**
   * R: start recording the leg facing T1 of every selected session (docs/protocol.md 3.8, 6). Returns
   * how many sessions record that leg now; a leg that already records counts in separate-file
   * mode, not in single-file mode.
   */
  record(selected: Iterable<PrefixSelected>, single: boolean): number {
    const factory = this.#deps.recorders;
    if (factory === undefined) return 0;
    const combined = single && this.#opts.pcap;
    let count = 0;
    for (const { session, leg } of selected) {
      const target = session.legs[leg];
      if (target.recorder !== undefined) {
        if (!combined) count += 1;
        continue;
      }
      try {
        target.startRecording(factory.forLeg(session.callId, session.tag, leg, single));
        count += 1;
      } catch (error) {
        this.#deps.logger.warn(
          { err: error, callId: session.callId, leg },
          'recording could not start',
        );
      }
    }
    return count;
  }

  /** `-a`: both legs, as if R (with `s` under `-P`) had been sent for each. */
  recordBothLegs(session: Session): void {
    const factory = this.#deps.recorders;
    if (factory === undefined) return;
    for (const leg of session.legs) {
      try {
        leg.startRecording(factory.forLeg(session.callId, session.tag, leg.index, true));
      } catch (error) {
        this.#deps.logger.warn(
          { err: error, callId: session.callId, leg: leg.index },
          'recording could not start',
        );
      }
    }
  }

  /** N: stop the recorder of the leg facing T1 (both legs with `a`); returns how many stopped. */
  stop(selected: Iterable<PrefixSelected>, bothLegs: boolean): number {
    let count = 0;
    for (const { session, leg } of selected) {
      for (const target of bothLegs ? session.legs : [session.legs[leg]]) {
        if (target.recorder === undefined) continue;
        this.track(this.#stopRecorder(target));
        count += 1;
      }
    }
    return count;
  }

  /** C with a file name: record the leg facing T1 into `name` under the recording directory. */
  copyToFile(found: FoundSession, name: string, single: boolean): void {
    const factory = this.#deps.recorders;
    if (factory === undefined) throw new RelayError('ERR_COPY', 'no recording directory (-r)');
    const leg = found.session.legs[found.legT1];
    if (leg.recorder !== undefined) {
      // One slot per leg: a second recorder is silently ignored, except in single-file mode.
      if (single && this.#opts.pcap) throw new RelayError('ERR_COPY', 'the leg already records');
      return;
    }
    try {
      leg.startRecording(factory.forName(name, single));
    } catch (error) {
      throw new RelayError('ERR_COPY', 'recording file could not be opened', { cause: error });
    }
  }

  /**
   * C with a `udp:HOST:PORT` target (docs/protocol.md 6.6): binds a fresh pair from the media range on
   * the local address that routes to HOST and forks the packets arriving on the leg facing T1
   * there. Resolves with the pair's port and address (advertised if configured), or undefined
   * when the leg already had a recorder (one slot per leg: nothing starts). Throws ERR_COPY for a
   * bad or unreachable target or when no pair can be bound.
   */
  async copyToRemote(
    found: FoundSession,
    target: string,
  ): Promise<{ port: number; address: string } | undefined> {
    const spec = parseCopyTarget(target);
    if (spec === undefined) throw new RelayError('ERR_COPY', `bad copy target ${target}`);
    const { session } = found;
    const leg = session.legs[found.legT1];
    if (leg.recorder !== undefined) return undefined;
    const resolved = await resolveCopyTarget(spec, this.#opts.noResolve === true);
    if (resolved === undefined) {
      throw new RelayError('ERR_COPY', `unusable copy target ${target}`);
    }
    if (this.#deps.isOwn(resolved.address, resolved.port)) {
      throw new RelayError('ERR_COPY', `copy target ${target} is one of our own sockets`);
    }
    const media = this.#deps.media;
    const local = await media.routeSource(resolved.address, 4);
    if (local === undefined) throw new RelayError('ERR_COPY', `no route to ${resolved.address}`);
    const pair = await media.bindSendPair?.(local, 4);
    if (pair === undefined) throw new RelayError('ERR_COPY', 'no port pair for the copy');
    const copy = new RemoteCopy({
      rtp: pair.rtp,
      rtcp: pair.rtcp,
      localAddress: pair.address,
      localPort: pair.port,
      address: resolved.address,
      port: resolved.port,
      noRtcp: this.#opts.noRtcp === true,
    });
    // The awaits above let the sweep in (and, in principle, another recorder): re-check before
    // taking the slot. Read through the array so the check is not narrowed away.
    if (session.closed || session.legs[found.legT1].recorder !== undefined) {
      this.track(copy.close());
      if (session.closed) throw new RelayError('ERR_SESSION_NOT_FOUND');
      return undefined;
    }
    leg.startRecording(copy);
    // The copy's packets carry the leg's TOS, as the reference binds its listener with it.
    this.#deps.marker?.mark(copy, pair.address, pair.port, leg.tos);
    const advertised = this.#opts.addresses.find((a) =>
      sameAddress(a.address, pair.address),
    )?.advertised;
    return { port: pair.port, address: advertised ?? pair.address };
  }

  /**
   * The `C CALLID T1 T2` sub-command of U (docs/protocol.md 3.15; sippy/rtpproxy
   * src/commands/rpcpv1_ul_subc_copy.c): both streams of `source`, RTP and RTCP, are forked into
   * `target`. What the T2 party of C sends leaves out of the target's forward leg (the one the U
   * gave an address), what the T1 party sends out of its other leg, each to the party that leg
   * faces; the copies restart the target's idle timer. The target's own parties are no longer
   * relayed (their packets are dropped, as towards a party hearing a prompt). The fork lasts until
   * either session ends. Refused (ERR_COPY) when source and target are the same session.
   */
  fork(source: FoundSession, target: Session, forwardLeg: Side): void {
    if (target.closed) throw new RelayError('ERR_SESSION_NOT_FOUND');
    if (source.session === target) {
      throw new RelayError('ERR_COPY', 'a session cannot be forked into itself');
    }
    const other = otherSide(forwardLeg);
    const legT2 = otherSide(source.legT1);
    const routes = [
      [source.session.legs[legT2], forwardLeg],
      [source.session.legs[source.legT1], other],
    ] as const;
    for (const [from, outIndex] of routes) {
      const inIndex = otherSide(outIndex);
      const fork = new SessionFork(target.legs[outIndex], () => {
        target.touch(inIndex);
      });
      from.addFork(fork);
      target.onClose(() => {
        from.removeFork(fork);
      });
    }
    for (const leg of target.legs) {
      leg.rtp.playing = true;
      leg.rtcp.playing = true;
    }
  }

  /** Keeps a recording's close until it settles: shutdown waits for it. */
  track(done: Promise<void>): void {
    this.#finishing.add(done);
    void done.finally(() => this.#finishing.delete(done));
  }

  /** Resolves once every tracked recording is flushed, closed and moved, and the factory closed. */
  async settle(): Promise<void> {
    await Promise.all(this.#finishing);
    await this.#deps.recorders?.close();
  }

  /** Empties a leg's recorder slot; a remote copy's TOS marks go with it. */
  #stopRecorder(leg: Leg): Promise<void> {
    const recorder = leg.recorder;
    if (recorder !== undefined) this.#deps.marker?.unmark(recorder);
    return leg.stopRecording();
  }
}
