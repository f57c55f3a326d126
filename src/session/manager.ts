/**
 * The session manager: creates, finds, updates and destroys sessions, and runs the idle sweep
 * (docs/protocol.md 4). It keeps the registry of sessions and runs U, L, D and X itself; its
 * helpers get the collaborators they need from it: local-address.ts (which address a leg binds
 * on), party.ts (what an offer sets on a leg), recording.ts (R, N, C, `-a`), playback.ts (P, S)
 * and session-end.ts (the figures of an ended session). It speaks domain types only: no wire
 * strings, no E-codes; refusals are RelayErrors that dispatch maps to the wire.
 */
import type { Family } from '../base/net.ts';
import { otherSide, type Side } from '../base/side.ts';
import { RelayError } from './errors.ts';
import { matchSingle, prefixMatch } from './keys.ts';
import { LocalAddresses } from './local-address.ts';
import type {
  FoundSession,
  LegAnswer,
  ManagerDeps,
  ManagerOptions,
  OfferRequest,
  PrefixSelected,
} from './manager-types.ts';
import { legAnswer, namesOwnSocket, PartySettings } from './party.ts';
import { SessionPlayback } from './playback.ts';
import { SessionRecording } from './recording.ts';
import { IdleCounter, Leg, type LegLocal, Session, type SessionEnd } from './session.ts';
import { type EndReason, foldSessionEnd, sessionEndFields } from './session-end.ts';
import { type Component, type OffloadFigures, type Placement, SessionOffload } from './offload.ts';

export { type ConfiguredAddress, MAX_LEARNT_ADDRESSES } from './local-address.ts';
export type { EndReason } from './session-end.ts';
export type {
  FoundSession,
  LegAnswer,
  ManagerDeps,
  ManagerOptions,
  OfferRequest,
} from './manager-types.ts';

export class SessionManager {
  readonly #opts: ManagerOptions;
  readonly #deps: ManagerDeps;
  readonly #byCall = new Map<string, Session[]>();
  readonly #locals: LocalAddresses;
  readonly #recording: SessionRecording;
  readonly #playback: SessionPlayback;
  readonly #party: PartySettings;
  readonly #offload: SessionOffload;
  /** Closed sessions whose figures wait for the kernel's last counters. */
  readonly #ending = new Set<Promise<void>>();
  #count = 0;
  #draining = false;
  #closed = false;

  constructor(options: ManagerOptions, deps: ManagerDeps) {
    this.#opts = options;
    this.#deps = deps;
    this.#party = new PartySettings({
      defaultAsymmetric: options.defaultAsymmetric,
      own: deps.own,
      notifier: deps.notifier,
      logger: deps.logger,
      now: deps.now,
    });
    this.#locals = new LocalAddresses(options.addresses, (address, family) =>
      deps.media.routeSource(address, family),
    );
    this.#recording = new SessionRecording(options, {
      recorders: deps.recorders,
      media: deps.media,
      logger: deps.logger,
      marker: deps.marker,
      isOwn: (address, port) => namesOwnSocket(deps.own, address, port),
    });
    this.#playback = new SessionPlayback({ players: deps.players, logger: deps.logger });
    this.#offload = new SessionOffload({
      forwarder: deps.forwarder,
      sendTwice: options.sendTwice === true,
      stats: deps.stats,
    });
  }

  /** The kernel fast path's figures, for `Iv`. */
  kernelFigures(): OffloadFigures {
    return this.#offload.figures();
  }

  /** Where each component of the session is relayed: `rtp=kernel rtcp=userspace(latching)`. */
  kernelPlacement(session: Session): string {
    return this.#offload.describe(session);
  }

  /** Where one component of the session is relayed (the admin API). */
  placement(session: Session, component: Component): Placement {
    return this.#offload.placement(session, component);
  }

  /** Brings the counters of kernel-forwarded streams up to date (before Q, G, I answer). */
  kernelCounts(): Promise<void> {
    return this.#offload.read();
  }

  /** Resolves once every session ended so far has its figures folded and logged. */
  async ended(): Promise<void> {
    // Bounded: each round waits for the endings known at its start.
    for (let round = 0; round < 10 && this.#ending.size > 0; round += 1) {
      await Promise.all([...this.#ending]);
    }
  }

  /**
   * Number of live sessions: in the registry, or closed and waiting for the kernel's last
   * counters before their figures are final.
   */
  get size(): number {
    return this.#count + this.#ending.size;
  }

  /** Remotes refused because they name one of our own sockets, since start. */
  get ownRemotesRefused(): number {
    return this.#party.ownRemotesRefused;
  }

  /** Number of local addresses learnt from `l`/`r` and remembered. */
  get learntAddresses(): number {
    return this.#locals.learntCount;
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

  /** U: update or create a session (docs/protocol.md 3.2). */
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
    session.notify = this.#party.notifyOf(req);
    const forward = otherSide(m);
    this.#party.apply(session.legs[forward], reply, req);
    // A re-INVITE's pre-fill opens the re-latch window: its streams leave the kernel now.
    this.#offload.review(session);
    return legAnswer(session, reply, forward);
  }

  /** L: look up a session (docs/protocol.md 3.3); undefined when none matches (the wire says `0`). */
  async lookup(req: OfferRequest): Promise<LegAnswer | undefined> {
    const match = matchSingle(this.#byCall.get(req.callId) ?? [], req.tag1, req.tag2);
    if (match === undefined) return undefined;
    const { session, m } = match;
    const reply = session.legs[otherSide(m)];
    session.rearm();
    await this.#ensurePorts(session, reply, req);
    if (req.weak) reply.weak = true;
    this.#party.apply(session.legs[m], reply, req);
    this.#offload.review(session);
    return legAnswer(session, reply, m);
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

  /**
   * The admin API's DELETE: destroys every session of the call, whatever its references (as X
   * does for all calls). Returns how many were destroyed.
   */
  deleteCall(callId: string): number {
    const list = this.#byCall.get(callId) ?? [];
    const sessions = [...list];
    for (const session of sessions) this.destroy(session, 'admin');
    return sessions.length;
  }

  /** The live sessions of one call, in creation order. */
  sessionsOf(callId: string): readonly Session[] {
    return this.#byCall.get(callId) ?? [];
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

  /** Has the leg's TOS applied to its bound IPv4 sockets. */
  #mark(leg: Leg): void {
    if (!leg.bound || leg.local.family !== 4) return;
    this.#deps.marker?.mark(leg, leg.local.address, leg.port, leg.tos);
  }

  /**
   * Destroys a session: it leaves the registry and its close cascade runs at once (its ports are
   * free when D answers); its figures go to the global stats, logged once. For a session with
   * streams in the kernel that happens once their removal committed and their last packets were
   * counted (ended() waits for it).
   */
  destroy(session: Session, reason: EndReason): void {
    if (session.closed || !this.#unregister(session)) return;
    const withdrawn = this.#offload.withdraw(session);
    const end = session.close();
    for (const done of end.recordings) this.#recording.track(done);
    if (withdrawn === undefined) {
      this.#report(session, end, reason);
      return;
    }
    const ending = withdrawn.then(() => {
      this.#report(session, session.refigure(end), reason);
      this.#ending.delete(ending);
      if (this.#draining && this.size === 0) this.#deps.onDrained();
    });
    this.#ending.add(ending);
  }

  /** A closed session's figures: the global counters, the notification, the log line. */
  #report(session: Session, end: SessionEnd, reason: EndReason): void {
    foldSessionEnd(this.#deps.stats, end, reason);
    // Only an idle timeout is reported to the controller (docs/protocol.md 8.4), not D, X or shutdown.
    const notify = reason === 'timeout' ? session.notify : undefined;
    if (notify !== undefined) this.#deps.notifier?.notify(notify.target, notify.tag);
    this.#deps.logger.info(
      sessionEndFields(session, end, reason, notify?.target.name),
      'session ended',
    );
    if (this.#draining && this.size === 0) this.#deps.onDrained();
  }

  /**
   * One tick of the idle sweep (docs/protocol.md 4.7), run once a second: counters of legs that saw
   * packets restart, sessions whose smallest counter is at 0 expire, the others count down.
   */
  sweep(): void {
    const expired: Session[] = [];
    const inKernel: Session[] = [];
    for (const session of this.sessions()) {
      // Streams move to the kernel once latched, and back when something needs their packets.
      this.#offload.review(session);
      if (!session.tick()) continue;
      if (this.#offload.holds(session)) inKernel.push(session);
      else expired.push(session);
    }
    for (const session of expired) this.destroy(session, 'timeout');
    if (inKernel.length > 0) this.#confirmIdle(inKernel);
  }

  /**
   * Sessions at 0 whose streams the kernel forwards: their packets are only known from the
   * kernel's counters, read now (one read for all of them); those that still saw none expire.
   */
  #confirmIdle(sessions: readonly Session[]): void {
    void this.#offload.read().then(() => {
      for (const session of sessions) {
        if (session.closed || !this.#registered(session)) continue;
        if (session.legs.some((leg) => !leg.active && leg.ttl.left <= 0)) {
          this.destroy(session, 'timeout');
        }
      }
    });
  }

  /** Graceful shutdown: refuse new sessions; onDrained fires once none is left. */
  drain(): void {
    this.#draining = true;
    if (this.size === 0) this.#deps.onDrained();
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
    await this.ended();
    await this.#recording.settle();
  }

  /** R: record the leg facing T1 of the sessions the prefix rule selects; how many record it now. */
  async record(
    callId: string,
    tag1: string,
    tag2: string | undefined,
    single: boolean,
  ): Promise<number> {
    const legs = [...this.#prefixLegs(callId, tag1, tag2)];
    const count = this.#recording.record(legs, single);
    await this.#toUserspace(legs.map((l) => l.session));
    return count;
  }

  /**
   * ng's `start recording` (docs/ng.md): both legs of every session of the call, one file per
   * leg; how many legs record now (0 without `-r`).
   */
  async recordCall(callId: string): Promise<number> {
    const sessions = [...this.sessionsOf(callId)];
    const legs = sessions.flatMap((session) => [
      { session, leg: 0 as const },
      { session, leg: 1 as const },
    ]);
    const count = this.#recording.record(legs, false);
    await this.#toUserspace(sessions);
    return count;
  }

  /** ng's `stop recording`: stops the recorders of both legs of every session of the call. */
  stopRecordingCall(callId: string): number {
    const selected = this.sessionsOf(callId).map((session) => ({ session, leg: 1 as const }));
    return this.#recording.stop(selected, true);
  }

  /** C with a file name: record the leg facing T1 into `name` under the recording directory. */
  async copyToFile(found: FoundSession, name: string, single: boolean): Promise<void> {
    this.#recording.copyToFile(found, name, single);
    await this.#toUserspace([found.session]);
  }

  /** C with a `udp:HOST:PORT` target (docs/protocol.md 6.6): port and address of the copy's pair. */
  async copyToRemote(
    found: FoundSession,
    target: string,
  ): Promise<{ port: number; address: string } | undefined> {
    const copy = await this.#recording.copyToRemote(found, target);
    await this.#toUserspace([found.session]);
    return copy;
  }

  /** The `C CALLID T1 T2` sub-command of U (docs/protocol.md 3.15): `source` forked into `target`. */
  async fork(source: FoundSession, target: Session, forwardLeg: Side): Promise<void> {
    this.#recording.fork(source, target, forwardLeg);
    await this.#toUserspace([source.session, target]);
  }

  /**
   * Something now needs the packets of these sessions (a recorder, a copy, a prompt): their
   * streams leave the kernel, and the command is answered once the removal committed, so that
   * every packet after the reply reaches userspace.
   */
  async #toUserspace(sessions: readonly Session[]): Promise<void> {
    let withdrew = false;
    for (const session of sessions) if (this.#offload.review(session)) withdrew = true;
    if (withdrew) await this.#offload.settled();
  }

  /** N: stop the recorder of the leg facing T1 (both legs with `a`); returns how many stopped. */
  stopRecording(callId: string, tag1: string, tag2: string | undefined, bothLegs: boolean): number {
    return this.#recording.stop(this.#prefixLegs(callId, tag1, tag2), bothLegs);
  }

  /**
   * P (docs/protocol.md 3.6, 7): plays a prompt to the T1 party `count` times (playback.ts);
   * resolves with the length of one play, ms.
   */
  async play(
    found: FoundSession,
    prompt: string,
    codecs: readonly number[] | 'session',
    count: number,
    packetMs?: number,
  ): Promise<number> {
    const duration = await this.#playback.play(found, prompt, codecs, count, packetMs);
    await this.#toUserspace([found.session]);
    return duration;
  }

  /**
   * S (docs/protocol.md 3.7), and the first step of P: stops the player of the leg facing T1, if
   * any; false when nothing played there.
   */
  stopPlayback(found: FoundSession): boolean {
    return this.#playback.stop(found);
  }

  /**
   * ng `block media` / `unblock media` (docs/ng.md): the RTP that the party facing each found leg
   * sends is dropped, or relayed again. Resolves once a blocked stream has left the kernel, so
   * that no packet after the reply passes; an unblocked one may go back to it.
   */
  async blockMedia(found: readonly FoundSession[], blocked: boolean): Promise<void> {
    for (const { session, legT1 } of found) session.legs[legT1].rtp.blocked = blocked;
    await this.#toUserspace(found.map((f) => f.session));
  }

  /** Sessions of the call selected by the prefix rule, with the leg facing T1 (1 via T1, 0 via T2). */
  *#prefixLegs(callId: string, tag1: string, tag2: string | undefined): Generator<PrefixSelected> {
    for (const session of [...(this.#byCall.get(callId) ?? [])]) {
      if (prefixMatch(session.tag, tag1) !== undefined) yield { session, leg: 1 };
      else if (tag2 !== undefined && prefixMatch(session.tag, tag2) !== undefined) {
        yield { session, leg: 0 };
      }
    }
  }

  async #create(req: OfferRequest): Promise<LegAnswer> {
    if (this.#draining || this.#closed) throw new RelayError('ERR_SHUTTING_DOWN');
    if (this.#deps.overloaded?.() === true) throw new RelayError('ERR_OVERLOADED');
    const [forwardLocal, replyLocal] = await this.#locals.forNewSession(req.local);
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
    const session = new Session(req.callId, req.tag1, legs, !this.#opts.independentTtl, now, {
      now: () => this.#deps.now(),
      unmark: (owner) => this.#deps.marker?.unmark(owner),
      stopPlayer: (stream) => this.#deps.players?.stop(stream),
    });
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
    if (this.#opts.recordAll) this.#recording.recordBothLegs(session);
    if (req.weak) legs[0].weak = true;
    else session.strong = true;
    session.notify = this.#party.notifyOf(req);
    this.#party.apply(legs[1], legs[0], req);
    return legAnswer(session, legs[0], 1);
  }

  /** Binds the reply leg if it has no pair yet or `n` asked for a fresh one; completes the session. */
  async #ensurePorts(session: Session, reply: Leg, req: OfferRequest): Promise<void> {
    if (reply.bound && !req.newPorts) return;
    const local = await this.#locals.forExistingLeg(reply, req.local, req.newPorts);
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

  /**
   * Whether a local address of this family is known: configured, or learnt from `l`/`r`. The
   * parser asks before answering E36 (the reference's `foraf()` check runs at parse time).
   */
  hasLocalFamily(family: Family): boolean {
    return this.#locals.hasFamily(family);
  }

  #register(session: Session): void {
    const list = this.#byCall.get(session.callId);
    if (list === undefined) this.#byCall.set(session.callId, [session]);
    else list.push(session);
    this.#count += 1;
  }

  /** Takes the session out of the registry; false when it was not in it. */
  #unregister(session: Session): boolean {
    const list = this.#byCall.get(session.callId);
    if (list === undefined) return false;
    const i = list.indexOf(session);
    if (i < 0) return false;
    list.splice(i, 1);
    if (list.length === 0) this.#byCall.delete(session.callId);
    this.#count -= 1;
    return true;
  }

  #registered(session: Session): boolean {
    return this.#byCall.get(session.callId)?.includes(session) === true;
  }
}
