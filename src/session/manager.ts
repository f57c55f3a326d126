/**
 * The session manager: creates, finds, updates and destroys sessions, and runs the idle sweep
 * (protocol.md section 4). It speaks domain types only: no wire strings, no E-codes; refusals are
 * RelayErrors that dispatch maps to the wire.
 */
import type { Logger } from 'pino';
import type { OwnEndpoints } from '../media/own-endpoints.ts';
import type { MediaPlane } from '../media/plane.ts';
import { PromptTooLargeError } from '../play/prompts.ts';
import type { PlaybackService } from '../play/scheduler.ts';
import { parseCopyTarget, resolveCopyTarget } from '../record/copy-target.ts';
import type { RecorderFactory } from '../record/recorder.ts';
import { RemoteCopy } from '../record/remote-copy.ts';
import { SessionFork } from '../record/session-fork.ts';
import { makeRateLimiter } from '../util/logger.ts';
import type { Family, LocalChoice, RemoteSpec } from '../base/net.ts';
import { isWildcard, sameAddress } from '../util/net.ts';
import type { CommandOrigin } from '../base/net.ts';
import type { GlobalStats } from '../util/stats.ts';
import { RelayError } from './errors.ts';
import { matchSingle, prefixMatch } from './keys.ts';
import type { PacketMarker } from './mark-types.ts';
import type { SessionNotifier, SessionNotify } from './notify-types.ts';
import { IdleCounter, Leg, type LegLocal, Session } from './session.ts';
import { otherSide, type Side } from '../base/side.ts';

/**
 * Local addresses learnt from `l`/`r` that are remembered at most (the reference keeps every one;
 * a host has far fewer, and an `l` with a new address per command must not grow the list).
 */
export const MAX_LEARNT_ADDRESSES = 64;

/** A configured local address (`-l` / `-6`). */
export interface ConfiguredAddress extends LegLocal {
  readonly label?: string;
}

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
   * Timeout notifications (protocol.md 8); undefined without any `-n` target, and then a U with
   * a notify pair is refused (ERR_NOTIFY_DISABLED).
   */
  readonly notifier?: SessionNotifier;
  /** `--overload_prot`: true while the daemon is overloaded; new sessions are then refused. */
  readonly overloaded?: () => boolean;
  /** Applies legs' IP TOS to their packets; undefined when the daemon cannot (nft/tos.ts). */
  readonly marker?: PacketMarker;
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

export class SessionManager {
  readonly #opts: ManagerOptions;
  readonly #deps: ManagerDeps;
  readonly #byCall = new Map<string, Session[]>();
  /**
   * Local addresses first used by `l`/`r` that were not configured, newest first; at most
   * {@link MAX_LEARNT_ADDRESSES}, so that `l` with ever new addresses cannot grow it for good.
   */
  readonly #learnt: ConfiguredAddress[] = [];
  #count = 0;
  #draining = false;
  #closed = false;
  /** One warning per unknown notify socket name per minute. */
  readonly #unknownNotifyLog: (socket: string) => boolean;
  /** One warning per minute about remotes that name our own sockets, with their count. */
  readonly #ownRemoteLog: (key: string) => boolean;
  /** Remotes refused because they name one of our own sockets, since start. */
  ownRemotesRefused = 0;
  /** Recordings being flushed and moved after their session or recorder ended. */
  readonly #finishing = new Set<Promise<void>>();

  constructor(options: ManagerOptions, deps: ManagerDeps) {
    this.#opts = options;
    this.#deps = deps;
    this.#unknownNotifyLog = makeRateLimiter(60_000, deps.now);
    this.#ownRemoteLog = makeRateLimiter(60_000, deps.now);
  }

  /** Number of live sessions. */
  get size(): number {
    return this.#count;
  }

  /** Number of local addresses learnt from `l`/`r` and remembered. */
  get learntAddresses(): number {
    return this.#learnt.length;
  }

  /** Every live session. */
  *sessions(): IterableIterator<Session> {
    for (const list of this.#byCall.values()) yield* list;
  }

  /** Single-session rule lookup (P, S, Q, C). */
  find(callId: string, tag1: string, tag2: string | undefined): FoundSession | undefined {
    const match = matchSingle(this.#byCall.get(callId) ?? [], tag1, tag2);
    return match === undefined ? undefined : { session: match.session, legT1: otherSide(match.m) };
  }

  /** U: update or create a session (protocol.md 2.1). */
  async update(req: OfferRequest): Promise<LegAnswer> {
    if (req.notify !== undefined && this.#deps.notifier === undefined) {
      throw new RelayError('ERR_NOTIFY_DISABLED');
    }
    const match = matchSingle(this.#byCall.get(req.callId) ?? [], req.tag1, req.tag2);
    if (match === undefined) return this.#create(req);
    const { session, m } = match;
    const reply = session.legs[m];
    session.rearm();
    await this.#ensurePorts(session, reply, req);
    if (req.weak) reply.weak = true;
    else session.strong = true;
    session.notify = this.#notifyOf(req);
    const forward = otherSide(m);
    this.#applyParty(session.legs[forward], reply, req);
    return this.#answer(session, reply, forward);
  }

  /** L: look up a session (protocol.md 2.2); undefined when none matches (the wire says `0`). */
  async lookup(req: OfferRequest): Promise<LegAnswer | undefined> {
    const match = matchSingle(this.#byCall.get(req.callId) ?? [], req.tag1, req.tag2);
    if (match === undefined) return undefined;
    const { session, m } = match;
    const reply = session.legs[otherSide(m)];
    session.rearm();
    await this.#ensurePorts(session, reply, req);
    if (req.weak) reply.weak = true;
    this.#applyParty(session.legs[m], reply, req);
    return this.#answer(session, reply, m);
  }

  /**
   * D (and the D sub-command): prefix rule over the call's sessions; clears the strong flag, or a
   * weak flag with `w`, and destroys sessions left without references. True if any was handled.
   */
  delete(callId: string, tag1: string, tag2: string | undefined, weak: boolean): boolean {
    const list = this.#byCall.get(callId);
    if (list === undefined) return false;
    let handled = false;
    for (const session of [...list]) {
      let kind = prefixMatch(session.tag, tag1);
      let leg: Side = 1;
      if (kind === undefined && tag2 !== undefined) {
        kind = prefixMatch(session.tag, tag2);
        leg = 0;
      }
      if (kind === undefined) continue;
      handled = true;
      if (weak) session.legs[leg].weak = false;
      else session.strong = false;
      if (session.unreferenced) this.destroy(session, 'delete');
      if (kind === 'exact') break;
    }
    return handled;
  }

  /** X: destroy every session. */
  deleteAll(): void {
    for (const session of [...this.sessions()]) this.destroy(session, 'delete-all');
  }

  /**
   * `S ttl=N` sub-command (sippy/rtpproxy src/commands/rpcpv1_ul_subc_set.c): the leg keeps N as
   * the timeout it gets when the session completes, and its counter restarts from N. The other
   * leg takes N too when it shares the counter (the default; not with `-i`).
   */
  setLegTtl(session: Session, leg: Side, seconds: number): void {
    const target = session.legs[leg];
    const other = session.legs[otherSide(leg)];
    target.streamTtl = seconds;
    if (other.ttl === target.ttl) other.streamTtl = seconds;
    target.ttl.resetWith(seconds);
    target.active = false;
  }

  /**
   * `S tos=N` sub-command: the IP TOS of the packets the leg sends, RTP and RTCP. False for an
   * IPv6 leg, where the reference refuses it too (sippy/rtpproxy
   * src/commands/rpcpv1_ul_subc_set.c: TOS is IPv4 only). A leg not bound yet keeps the value for
   * its sockets.
   */
  setLegTos(session: Session, leg: Side, tos: number): boolean {
    const target = session.legs[leg];
    if (target.local.family !== 4) return false;
    target.tos = tos;
    this.#mark(target);
    return true;
  }

  /** Empties a leg's recorder slot; a remote copy's TOS marks go with it. */
  #stopRecorder(leg: Leg): Promise<void> {
    const recorder = leg.recorder;
    if (recorder !== undefined) this.#deps.marker?.unmark(recorder);
    return leg.stopRecording();
  }

  /** Has the leg's TOS applied to its bound IPv4 sockets. */
  #mark(leg: Leg): void {
    if (!leg.bound || leg.local.family !== 4) return;
    this.#deps.marker?.mark(leg, leg.local.address, leg.port, leg.tos);
  }

  /** Destroys a session: sockets closed, counters folded into the global ones, logged once. */
  destroy(session: Session, reason: 'delete' | 'delete-all' | 'timeout' | 'shutdown'): void {
    if (session.closed) return;
    this.#unregister(session);
    session.close();
    for (const leg of session.legs) this.#deps.marker?.unmark(leg);
    for (const leg of session.legs) this.#track(this.#stopRecorder(leg));
    for (const leg of session.legs) this.#deps.players?.stop(leg.rtp);
    const stats = this.#deps.stats;
    const now = this.#deps.now();
    const duration = (now - session.createdAt) / 1000;
    stats.nsessDestroyed += 1;
    stats.totalDuration += duration;
    if (reason === 'timeout') stats.nsessTimeout += 1;
    // Only an idle timeout is reported to the controller (protocol.md 8.4), not D, X or shutdown.
    const notify = reason === 'timeout' ? session.notify : undefined;
    if (notify !== undefined) this.#deps.notifier?.notify(notify.target, notify.tag);
    const [l0, l1] = session.legs;
    if (session.complete) {
      const rtpDirs = Number(l0.rtp.npktsIn > 0) + Number(l1.rtp.npktsIn > 0);
      const rtcpDirs = Number(l0.rtcp.npktsIn > 0) + Number(l1.rtcp.npktsIn > 0);
      if (rtpDirs === 0) stats.nsessNortp += 1;
      else if (rtpDirs === 1) stats.nsessOwrtp += 1;
      if (rtcpDirs === 0) stats.nsessNortcp += 1;
      else if (rtcpDirs === 1) stats.nsessOwrtcp += 1;
    }
    for (const leg of session.legs) {
      const a = leg.rtp.rtpStats;
      if (a === undefined) continue;
      stats.rtpaNsent += a.nsent;
      stats.rtpaNrcvd += a.nrcvd;
      stats.rtpaNdups += a.ndups;
      stats.rtpaNlost += a.nlost;
      stats.rtpaPerrs += a.perrs;
    }
    this.#deps.logger.info(
      {
        callId: session.callId,
        tag: session.tag,
        reason,
        duration: Number(duration.toFixed(3)),
        complete: session.complete,
        // Seconds from the U to the command that connected both parties (20140617).
        ...(session.connectedAt === undefined
          ? {}
          : { setup: Number(((session.connectedAt - session.createdAt) / 1000).toFixed(3)) }),
        // "caller" is leg 1 (faces the session-tag party), "callee" leg 0, as the reference logs.
        callerPkts: l1.rtp.npktsIn,
        calleePkts: l0.rtp.npktsIn,
        callerBytes: l1.rtp.nbytesIn,
        calleeBytes: l0.rtp.nbytesIn,
        relayed: l0.rtp.nrelayed + l1.rtp.nrelayed + l0.rtcp.nrelayed + l1.rtcp.nrelayed,
        dropped: l0.rtp.ndropped + l1.rtp.ndropped + l0.rtcp.ndropped + l1.rtcp.ndropped,
        ignored: l0.rtp.nignored + l1.rtp.nignored + l0.rtcp.nignored + l1.rtcp.nignored,
        ...(notify === undefined ? {} : { notified: notify.target.name }),
      },
      'session ended',
    );
    if (this.#draining && this.#count === 0) this.#deps.onDrained();
  }

  /**
   * One tick of the idle sweep (protocol.md 4.7), run once a second: counters of legs that saw
   * packets restart, sessions whose smallest counter is at 0 expire, the others count down.
   */
  sweep(): void {
    const expired: Session[] = [];
    for (const session of this.sessions()) if (session.tick()) expired.push(session);
    for (const session of expired) this.destroy(session, 'timeout');
  }

  /** Graceful shutdown: refuse new sessions; onDrained fires once none is left. */
  drain(): void {
    this.#draining = true;
    if (this.#count === 0) this.#deps.onDrained();
  }

  get draining(): boolean {
    return this.#draining;
  }

  /**
   * Destroys every session and refuses new ones afterwards; resolves once every recording is
   * flushed, closed and moved out of the spool directory.
   */
  async close(): Promise<void> {
    this.#closed = true;
    for (const session of [...this.sessions()]) this.destroy(session, 'shutdown');
    await Promise.all(this.#finishing);
    await this.#deps.recorders?.close();
  }

  /**
   * R: start recording the leg facing T1 of every session the prefix rule selects (protocol.md
   * 2.6, 6). Returns how many sessions record that leg now; a leg that already records counts in
   * separate-file mode, not in single-file mode.
   */
  record(callId: string, tag1: string, tag2: string | undefined, single: boolean): number {
    const factory = this.#deps.recorders;
    if (factory === undefined) return 0;
    const combined = single && this.#opts.pcap;
    let count = 0;
    for (const { session, leg } of this.#prefixLegs(callId, tag1, tag2)) {
      const target = session.legs[leg];
      if (target.recorder !== undefined) {
        if (!combined) count += 1;
        continue;
      }
      try {
        target.startRecording(factory.forLeg(session.callId, session.tag, leg, single));
        count += 1;
      } catch (error) {
        this.#deps.logger.warn({ err: error, callId, leg }, 'recording could not start');
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
   * C with a `udp:HOST:PORT` target (protocol.md 6.6): binds a fresh pair from the media range on
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
    if (this.#isOwn(resolved.address, resolved.port)) {
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
      this.#track(copy.close());
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
   * The `C CALLID T1 T2` sub-command of U (protocol.md 2.14; sippy/rtpproxy
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

  /** N: stop the recorder of the leg facing T1 (both legs with `a`); returns how many stopped. */
  stopRecording(callId: string, tag1: string, tag2: string | undefined, bothLegs: boolean): number {
    let count = 0;
    for (const { session, leg } of this.#prefixLegs(callId, tag1, tag2)) {
      for (const target of bothLegs ? session.legs : [session.legs[leg]]) {
        if (target.recorder === undefined) continue;
        this.#track(this.#stopRecorder(target));
        count += 1;
      }
    }
    return count;
  }

  /**
   * P (protocol.md 2.4, 7): stops what plays to the T1 party, then plays the first prompt file
   * `NAME.PT` found for the payload types (or, for `'session'`, the `c` list and packet time stored
   * on the leg facing T1) `count` times (negative: until stopped) out of that leg. Count 0 only
   * stops. The reference's order: stop first, then E35 for `session` without a stored list, then E60.
   */
  async play(
    found: FoundSession,
    prompt: string,
    codecs: readonly number[] | 'session',
    count: number,
  ): Promise<void> {
    const { session, legT1 } = found;
    const leg = session.legs[legT1];
    this.stopPlayback(found);
    let payloadTypes = codecs;
    let packetMs = -1;
    if (payloadTypes === 'session') {
      if (leg.codecs === undefined) throw new RelayError('ERR_NO_SESSION_CODECS');
      payloadTypes = leg.codecs;
      packetMs = leg.packetTimeMs;
    }
    if (count === 0) return;
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
        // Played packets pass the relay stage as if they came from the other leg (protocol.md 7.4).
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
  }

  /** S (protocol.md 2.5), and the first step of P: stops the player of the leg facing T1, if any. */
  stopPlayback(found: FoundSession): void {
    this.#deps.players?.stop(found.session.legs[found.legT1].rtp);
  }

  /** Sessions of the call selected by the prefix rule, with the leg facing T1 (1 via T1, 0 via T2). */
  *#prefixLegs(
    callId: string,
    tag1: string,
    tag2: string | undefined,
  ): Generator<{ session: Session; leg: Side }> {
    for (const session of [...(this.#byCall.get(callId) ?? [])]) {
      if (prefixMatch(session.tag, tag1) !== undefined) yield { session, leg: 1 };
      else if (tag2 !== undefined && prefixMatch(session.tag, tag2) !== undefined) {
        yield { session, leg: 0 };
      }
    }
  }

  /** `-a`: both legs, as if R (with `s` under `-P`) had been sent for each. */
  #recordBothLegs(session: Session): void {
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

  /**
   * The notification setting a U gives its session (protocol.md 2.1 step 5, 8.2): every U
   * replaces it; a notify socket that names no `-n` target leaves the session without one.
   */
  #notifyOf(req: OfferRequest): SessionNotify | undefined {
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

  #track(done: Promise<void>): void {
    this.#finishing.add(done);
    void done.finally(() => this.#finishing.delete(done));
  }

  async #create(req: OfferRequest): Promise<LegAnswer> {
    if (this.#draining || this.#closed) throw new RelayError('ERR_SHUTTING_DOWN');
    if (this.#deps.overloaded?.() === true) throw new RelayError('ERR_OVERLOADED');
    const [forwardLocal, replyLocal] = await this.#localsForNewSession(req.local);
    const now = req.receivedAt ?? this.#deps.now();
    const media = this.#deps.media;
    // Counters start at -W; one shared by both legs unless -i (sippy/rtpproxy src/rtpp_session.c).
    const shared = new IdleCounter(this.#opts.setupTtl);
    const counter = (): IdleCounter =>
      this.#opts.independentTtl ? new IdleCounter(this.#opts.setupTtl) : shared;
    // The streams exist before their session; it takes over as their activity sink below.
    const streams = media.createStreams({ touch: (): void => undefined });
    const makeLeg = (index: Side, local: LegLocal): Leg => {
      const leg = new Leg(
        index,
        streams[index].rtp,
        streams[index].rtcp,
        local,
        counter(),
        this.#opts.ttl,
      );
      leg.tos = this.#opts.tos ?? 0;
      return leg;
    };
    // Leg 1 faces T1 (the party that sent this offer); leg 0 is the reply leg.
    const legs = [makeLeg(0, replyLocal), makeLeg(1, forwardLocal)] as const;
    const session = new Session(req.callId, req.tag1, legs, !this.#opts.independentTtl, now);
    for (const leg of legs) {
      leg.rtp.activity = session;
      leg.rtcp.activity = session;
    }
    // Registered before the bind is awaited, so a second U for the same call finds it.
    this.#register(session);
    const bound = await media.bindPair(
      legs[0].local.address,
      legs[0].local.family,
      legs[0].rtp,
      legs[0].rtcp,
    );
    if (!bound || session.closed) {
      this.#unregister(session);
      session.close();
      // Destroyed while the bind was awaited: session.close() already ran, so the new pair is
      // released here.
      legs[0].release();
      throw new RelayError('ERR_NO_PORTS_NEW');
    }
    legs[0].bound = true;
    // The counters start when the session is answered: the reference's U runs in one go, so no
    // tick of the sweep falls between the session's creation and its answer, however long the
    // bind took here (a media worker still starting, a busy loop).
    session.rearm();
    this.#mark(legs[0]);
    this.#deps.stats.nsessCreated += 1;
    if (this.#opts.recordAll) this.#recordBothLegs(session);
    if (req.weak) legs[0].weak = true;
    else session.strong = true;
    session.notify = this.#notifyOf(req);
    this.#applyParty(legs[1], legs[0], req);
    return this.#answer(session, legs[0], 1);
  }

  /** Binds the reply leg if it has no pair yet or `n` asked for a fresh one; completes the session. */
  async #ensurePorts(session: Session, reply: Leg, req: OfferRequest): Promise<void> {
    if (reply.bound && !req.newPorts) return;
    const local = await this.#localForExistingLeg(reply, req.local, req.newPorts);
    const bound = await this.#deps.media.bindPair(
      local.address,
      local.family,
      reply.rtp,
      reply.rtcp,
    );
    if (!bound) throw new RelayError('ERR_NO_PORTS_EXISTING');
    if (session.closed) {
      reply.release();
      throw new RelayError('ERR_NO_PORTS_EXISTING');
    }
    reply.local = local;
    reply.bound = true;
    this.#mark(reply);
    if (!session.complete) {
      session.markComplete(req.receivedAt ?? this.#deps.now());
      this.#deps.stats.nsessComplete += 1;
    }
  }

  /** Per-party settings go to the leg facing the SDP owner (protocol.md 2.1 step 6). */
  #applyParty(forward: Leg, reply: Leg, req: OfferRequest): void {
    const remote = req.remote;
    if (remote.kind === 'hold') forward.onHold = true;
    else if (remote.kind === 'address') {
      forward.onHold = false;
      if (this.#isOwn(remote.address, remote.port)) {
        // Media must never reach our own sockets (a control socket would run it as commands):
        // the address counts as not given, and the leg learns its party from packets.
        this.ownRemotesRefused += 1;
        if (this.#ownRemoteLog('own')) {
          this.#deps.logger.warn(
            {
              callId: req.callId,
              remote: remote.address,
              port: remote.port,
              refused: this.ownRemotesRefused,
            },
            'remote media address names one of our own sockets: ignored',
          );
        }
      } else {
        forward.rtp.prefill(remote.address, remote.port);
        forward.rtcp.prefill(remote.address, remote.port + 1);
      }
    }
    const asymmetric = req.asymmetric ?? this.#opts.defaultAsymmetric;
    forward.rtp.asymmetric = asymmetric;
    forward.rtcp.asymmetric = asymmetric;
    forward.codecs = req.codecs;
    // Packets from the SDP owner are re-packetized (sippy/rtpproxy src/commands/rpcpv1_ul.c:
    // the resizer of the stream facing it); a U/L without `z` stops it.
    forward.rtp.repacketize(req.repacketizeMs);
    reply.packetTimeMs = req.repacketizeMs ?? -1;
  }

  /** RTP `port` or RTCP `port + 1` of `address` is where one of our own sockets listens. */
  #isOwn(address: string, port: number): boolean {
    const own = this.#deps.own;
    return own !== undefined && (own.isOwn(address, port) || own.isOwn(address, port + 1));
  }

  #answer(session: Session, reply: Leg, forwardLeg: Side): LegAnswer {
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

  #default(): ConfiguredAddress {
    const first = this.#opts.addresses[0];
    if (first === undefined) return { address: '0.0.0.0', family: 4 };
    return first;
  }

  /**
   * Whether a local address of this family is known: configured, or learnt from `l`/`r`. The
   * parser asks before answering E36 (the reference's `foraf()` check runs at parse time).
   */
  hasLocalFamily(family: Family): boolean {
    return this.#forFamily(family) !== undefined;
  }

  /**
   * The reference's `foraf()`: its address list is newest first, so this is the address of the
   * family learnt last by `l`/`r`, else the one configured last.
   */
  #forFamily(family: Family): ConfiguredAddress | undefined {
    const learnt = this.#learnt.find((a) => a.family === family);
    return learnt ?? this.#opts.addresses.findLast((a) => a.family === family);
  }

  /**
   * A numeric address named by `l` or found by `r`: the configured entry when there is one (so its
   * label and advertised address apply), otherwise it joins the live list, as `addr2bindaddr()`
   * adds it in the reference. Binding it may still fail later (E72/E71).
   */
  #known(address: string, family: Family): ConfiguredAddress {
    const configured = this.#opts.addresses.find((a) => sameAddress(a.address, address));
    if (configured !== undefined) return configured;
    const learnt = this.#learnt.find((a) => sameAddress(a.address, address));
    if (learnt !== undefined) return learnt;
    const added: ConfiguredAddress = { address, family };
    this.#learnt.unshift(added);
    // The oldest is forgotten; legs bound on it keep their own copy of the address.
    if (this.#learnt.length > MAX_LEARNT_ADDRESSES) this.#learnt.pop();
    return added;
  }

  async #resolveChoice(choice: LocalChoice): Promise<ConfiguredAddress> {
    switch (choice.kind) {
      case 'default':
      case 'interfaces':
        return this.#default();
      case 'family': {
        const found = this.#forFamily(choice.family);
        if (found === undefined) throw new RelayError('ERR_NO_LOCAL_ADDRESS');
        return found;
      }
      case 'label': {
        const labelled = this.#opts.addresses.find((a) => a.label === choice.label);
        if (labelled === undefined) throw new RelayError('ERR_NO_LOCAL_ADDRESS');
        return labelled;
      }
      case 'address':
        return this.#known(choice.address, choice.family);
      case 'route': {
        const source = await this.#deps.media.routeSource(choice.address, choice.family);
        if (source === undefined) throw new RelayError('ERR_NO_ROUTE');
        return this.#known(source, choice.family);
      }
    }
  }

  /** Bridge mode: `i` is the first (internal) address, `e` the second (external) one. */
  #interface(letter: 'i' | 'e'): ConfiguredAddress {
    const a = this.#opts.addresses[letter === 'i' ? 0 : 1];
    return a ?? this.#default();
  }

  /**
   * [leg facing T1, reply leg] local addresses of a new session. The first interface letter is
   * the leg facing T1, the second the reply leg; a reply leg without a letter gets the first
   * address, as in the reference (`lia[]` starts as `bindaddr[0]` for both legs).
   */
  async #localsForNewSession(choice: LocalChoice): Promise<[LegLocal, LegLocal]> {
    if (choice.kind === 'interfaces') {
      const forward = this.#interface(choice.first);
      return [
        forward,
        choice.second === undefined ? this.#default() : this.#interface(choice.second),
      ];
    }
    const local = await this.#resolveChoice(choice);
    return [local, local];
  }

  /**
   * Local address of an existing leg that gets a port pair now: `l`, `r` and the family choice
   * move it; interface letters move it only with `n` and both letters (the second names the reply
   * leg); otherwise it keeps the address it was given when the session was created.
   */
  async #localForExistingLeg(leg: Leg, choice: LocalChoice, fresh: boolean): Promise<LegLocal> {
    if (choice.kind === 'default') return leg.local;
    if (choice.kind === 'interfaces') {
      return fresh && choice.second !== undefined ? this.#interface(choice.second) : leg.local;
    }
    return this.#resolveChoice(choice);
  }

  #register(session: Session): void {
    const list = this.#byCall.get(session.callId);
    if (list === undefined) this.#byCall.set(session.callId, [session]);
    else list.push(session);
    this.#count += 1;
  }

  #unregister(session: Session): void {
    const list = this.#byCall.get(session.callId);
    if (list === undefined) return;
    const i = list.indexOf(session);
    if (i < 0) return;
    list.splice(i, 1);
    if (list.length === 0) this.#byCall.delete(session.callId);
    this.#count -= 1;
  }
}
