/**
 * The bridge between the ng protocol and the session manager (docs/ng.md), as control/dispatch.ts
 * is for the rtpproxy protocol: a decoded request goes in, the manager is called with domain types,
 * and the reply dictionary comes back. One SDP media section is one session of the manager, tagged
 * `FROMTAG;N` as Kamailio's rtpproxy module tags them, so ng calls are sessions like any other
 * (ports, latching, expiry, counters, the kernel path, `G`/`I`).
 */
import type { Logger } from 'pino';
import type { CommandOrigin, Family, LocalChoice, RemoteSpec } from '../base/net.ts';
import type { Side } from '../base/side.ts';
import { RelayError, type RelayErrorCode } from '../session/errors.ts';
import type { LegAnswer, OfferRequest, SessionManager } from '../session/manager.ts';
import type { Session } from '../session/session.ts';
import type { FoundSession } from '../session/manager-types.ts';
import type { MediaStream } from '../media/stream.ts';
import type { GlobalStats } from '../util/stats.ts';
import { isWildcard } from '../util/net.ts';
import { decodeBencode, encodeBencode, type NgOut } from './bencode.ts';
import { PendingDeletes } from './delete-delay.ts';
import { playPlan, promptPayloadTypes } from './media-ng.ts';
import { type NgRequest, parseNgRequest } from './message.ts';
import { remoteFor } from './remote.ts';
import {
  type ParsedSdp,
  parseSdp,
  rewriteSdp,
  type SdpStream,
  type StreamAnswer,
  unsupportedTransport,
} from './sdp.ts';

/** A reply and whether it counts as a failed command. */
export interface NgReply {
  readonly reply: Buffer;
  readonly failed: boolean;
  /** The request's command, normalized (`start recording`); empty when it had none. */
  readonly command: string;
}

type Dict = Record<string, NgOut>;

/** The part of the session manager the ng commands call. */
type NgManager = Pick<
  SessionManager,
  | 'update'
  | 'lookup'
  | 'destroy'
  | 'deleteCall'
  | 'sessionsOf'
  | 'sessions'
  | 'size'
  | 'hasLocalFamily'
  | 'kernelCounts'
  | 'ended'
  | 'recordCall'
  | 'stopRecordingCall'
  | 'play'
  | 'stopPlayback'
  | 'blockMedia'
>;

export interface NgDispatcherDeps {
  readonly manager: NgManager;
  readonly stats: GlobalStats;
  /** Bridge mode (`-l A/B`): `direction` picks the interfaces. */
  readonly bridge: boolean;
  /** Family of the default local address. */
  readonly defaultFamily: Family;
  /** Monotonic ms (the clock of Session.createdAt). */
  readonly now: () => number;
  /** Wall-clock ms. */
  readonly wallNow: () => number;
  readonly logger: Logger;
}

/** The refusals of the manager in rtpengine's words; Kamailio tries its next proxy on the first two. */
const RELAY_REASONS: Readonly<Record<RelayErrorCode, string>> = {
  ERR_NO_PORTS_NEW: 'Ran out of ports',
  ERR_NO_PORTS_EXISTING: 'Ran out of ports',
  ERR_SHUTTING_DOWN: 'Parallel session limit reached',
  ERR_OVERLOADED: 'Parallel session limit reached',
  ERR_SESSION_NOT_FOUND: 'Unknown call-id',
  ERR_NOTIFY_DISABLED: 'timeout notifications are not available over ng',
  ERR_NO_ROUTE: 'no local address routes to the media address',
  ERR_NO_LOCAL_ADDRESS: 'no local address of the media address family',
  ERR_PLAYBACK: 'playback failed',
  ERR_PROMPT_TOO_LARGE: 'playback failed',
  ERR_NO_SESSION_CODECS: 'playback failed',
  ERR_RECORDING: 'recording failed',
  ERR_COPY: 'recording failed',
};

/** Commands of rtpengine that the relay does not carry out, with the reason it answers. */
const UNSUPPORTED_COMMANDS: Readonly<Record<string, string>> = {
  'pause recording': 'pausing a recording is not supported: stop recording, then start it again',
  'silence media': 'silencing media is not supported',
  'unsilence media': 'silencing media is not supported',
  'block dtmf': 'DTMF handling is not supported',
  'unblock dtmf': 'DTMF handling is not supported',
  'play dtmf': 'DTMF handling is not supported',
  'start forwarding': 'media forwarding over ng is not supported',
  'stop forwarding': 'media forwarding over ng is not supported',
  publish: 'publish/subscribe is not supported',
  'subscribe request': 'publish/subscribe is not supported',
  'subscribe answer': 'publish/subscribe is not supported',
  unsubscribe: 'publish/subscribe is not supported',
};

/** What the relay remembers of an ng session for `query`. */
interface SessionMeta {
  readonly type: string;
  readonly protocol: string;
  /** The tag of the party the session's tag does not name, once an offer or answer gave it. */
  otherTag: string | undefined;
  /** Each party's payload types and packet time, from the SDP it sent (for `play media`). */
  readonly media: Map<string, { payloadTypes: readonly number[]; ptime: number | undefined }>;
}

/** ICE handling the relay gives: the candidates go, it is no ICE agent. */
const ICE_REMOVED: ReadonlySet<string> = new Set(['remove', 'default']);
const RTCP_MUX_OK: ReadonlySet<string> = new Set(['accept', 'reject']);

const NO_RECORDING = 'recording is not available: start the relay with a recording directory (-r)';

const BOTH_SIDES: readonly Side[] = [0, 1];

class NgError extends Error {}

/** Runs ng requests; `handle` never rejects. */
export class NgDispatcher {
  readonly #d: NgDispatcherDeps;
  readonly #meta = new WeakMap<Session, SessionMeta>();
  readonly #startedAt: number;
  readonly #pendingDeletes: PendingDeletes;

  constructor(deps: NgDispatcherDeps) {
    this.#d = deps;
    this.#startedAt = deps.wallNow();
    this.#pendingDeletes = new PendingDeletes((session) => deps.manager.destroy(session, 'delete'));
  }

  /** One request (the datagram after its cookie); resolves with the encoded reply. */
  readonly handle = async (
    body: Buffer,
    origin?: CommandOrigin,
    receivedAt?: number,
  ): Promise<NgReply> => {
    const decoded = decodeBencode(body);
    const parsed = decoded.ok
      ? parseNgRequest(decoded.value)
      : ({ ok: false, error: 'Could not decode bencode dictionary' } as const);
    const reply = parsed.ok
      ? await this.#reply(parsed.request, origin, receivedAt ?? this.#d.now())
      : errorDict(parsed.error);
    return {
      reply: encodeBencode(reply),
      failed: reply['result'] === 'error',
      command: parsed.ok ? parsed.request.command : '',
    };
  };

  async #reply(
    request: NgRequest,
    origin: CommandOrigin | undefined,
    receivedAt: number,
  ): Promise<Dict> {
    try {
      return await this.#execute(request, origin, receivedAt);
    } catch (error) {
      if (error instanceof NgError) return errorDict(error.message);
      if (error instanceof RelayError) return errorDict(RELAY_REASONS[error.code]);
      this.#d.logger.error(
        { err: error, command: request.command },
        'ng command failed unexpectedly',
      );
      return errorDict('internal error');
    }
  }

  async #execute(
    request: NgRequest,
    origin: CommandOrigin | undefined,
    receivedAt: number,
  ): Promise<Dict> {
    switch (request.command) {
      case 'ping':
        return { result: 'pong' };
      case 'offer':
      case 'answer':
        return this.#offerAnswer(request, request.command, origin, receivedAt);
      case 'delete':
        return this.#delete(request);
      case 'query':
        return this.#query(request);
      case 'list':
        return this.#list(request);
      case 'statistics':
        return this.#statistics();
      case 'start recording':
      case 'stop recording':
        return this.#recording(request, request.command === 'start recording');
      case 'play media':
        return this.#playMedia(request);
      case 'stop media':
        return this.#stopMedia(request);
      case 'block media':
      case 'unblock media':
        return this.#blockMedia(request, request.command === 'block media');
      default: {
        const reason = UNSUPPORTED_COMMANDS[request.command];
        return errorDict(reason ?? 'Unrecognized command');
      }
    }
  }

  async #offerAnswer(
    request: NgRequest,
    op: 'offer' | 'answer',
    origin: CommandOrigin | undefined,
    receivedAt: number,
  ): Promise<Dict> {
    const { manager } = this.#d;
    if (request.sdp === undefined) return errorDict('No SDP body in message');
    const callId = request.callId;
    if (callId === undefined) return errorDict('No call-id in message');
    const fromTag = request.fromTag;
    if (fromTag === undefined) return errorDict('No from-tag in message');
    const toTag = request.toTag;
    if (op === 'answer' && toTag === undefined) return errorDict('No to-tag in message');
    const parsed = parseSdp(request.sdp);
    if (!parsed.ok) return errorDict(parsed.error);
    const sdp = parsed.sdp;
    const refusal = unsupportedRequest(request, sdp) ?? unsupportedTransport(sdp);
    if (refusal !== undefined) return errorDict(refusal);
    const existed = manager.sessionsOf(callId).length > 0;
    if (op === 'answer' && !existed) return errorDict('Unknown call-id');
    // An offer or answer keeps a call whose delete is pending (delete-delay.ts).
    this.#pendingDeletes.cancel(callId);
    const answers: StreamAnswer[] = [];
    try {
      for (const stream of sdp.streams) {
        if (stream.disabled) continue;
        const remote = remoteFor(stream, request);
        const offer: OfferRequest = {
          receivedAt,
          callId,
          tag1: `${fromTag};${String(stream.index)}`,
          ...(toTag === undefined ? {} : { tag2: `${toTag};${String(stream.index)}` }),
          remote,
          ...asymmetry(request),
          weak: false,
          local: this.#localChoice(request, remote, stream.remote.family),
          newPorts: false,
        };
        const answer = op === 'offer' ? await manager.update(offer) : await manager.lookup(offer);
        if (answer === undefined) {
          throw new NgError(`media ${String(stream.index)} of the answer was not offered`);
        }
        this.#remember(answer.session, stream, [fromTag, toTag], op === 'offer' ? fromTag : toTag);
        answers.push(streamAnswer(answer, stream.index, origin));
      }
    } catch (error) {
      // A new call that could not be set up whole is not left half-made.
      if (op === 'offer' && !existed) manager.deleteCall(callId);
      throw error;
    }
    const text = rewriteSdp(sdp, answers, {
      replaceOrigin: request.replace.has('origin'),
      rejectRtcpMux: request.rtcpMux.includes('reject'),
    });
    const warning = await this.#recordCall(request.recordCall, callId);
    return { result: 'ok', sdp: Buffer.from(text, 'latin1'), ...(warning ? { warning } : {}) };
  }

  /**
   * The local address choice of a stream: bridge-mode interfaces from `direction`, else the family
   * of the stream's address when it is not the default one (as the rtpproxy protocol's `6` does).
   */
  #localChoice(request: NgRequest, remote: RemoteSpec, sdpFamily: Family | undefined): LocalChoice {
    if (this.#d.bridge && request.direction.length > 0) {
      const [first, second] = request.direction.map(interfaceLetter);
      if (first === undefined) return { kind: 'interfaces', first: 'i' };
      return second === undefined
        ? { kind: 'interfaces', first }
        : { kind: 'interfaces', first, second };
    }
    const family = remote.kind === 'address' ? remote.family : sdpFamily;
    const wanted =
      request.addressFamily === 'IP6' ? 6 : request.addressFamily === 'IP4' ? 4 : undefined;
    const converted = sdpFamily !== undefined && family !== sdpFamily; // a `media address`
    if (converted || (wanted !== undefined && family !== undefined && wanted !== family)) {
      throw new NgError(
        'address family conversion (IPv4 to IPv6 or back) is not supported over ng: run in bridge mode with one address of each family and use direction',
      );
    }
    const chosen = wanted ?? family ?? this.#d.defaultFamily;
    if (chosen === this.#d.defaultFamily) return { kind: 'default' };
    if (!this.#d.manager.hasLocalFamily(chosen)) {
      throw new NgError(`no local IPv${String(chosen)} address to relay on`);
    }
    return { kind: 'family', family: chosen };
  }

  /**
   * What `query`, `delete` and `play media` need of a session: its media, the other party's tag,
   * and what the party that sent this SDP (`owner`) receives.
   */
  #remember(
    session: Session,
    stream: SdpStream,
    tags: readonly (string | undefined)[],
    owner: string | undefined,
  ): void {
    const base = splitTag(session.tag).base;
    const otherTag = tags.find((tag) => tag !== undefined && tag !== base);
    let meta = this.#meta.get(session);
    if (meta === undefined) {
      meta = { type: stream.type, protocol: stream.protocol, otherTag, media: new Map() };
      this.#meta.set(session, meta);
    } else if (otherTag !== undefined) meta.otherTag = otherTag;
    if (owner !== undefined) {
      meta.media.set(owner, { payloadTypes: stream.payloadTypes, ptime: stream.ptime });
    }
  }

  /**
   * The sessions of a call that belong to the party with this tag, as rtpengine finds a
   * monologue: the session's own tag (with its `;N`), or the other party's tag an offer or
   * answer gave.
   */
  #partySessions(sessions: readonly Session[], tag: string): Session[] {
    return sessions.filter(
      (s) => splitTag(s.tag).base === tag || s.tag === tag || this.#meta.get(s)?.otherTag === tag,
    );
  }

  async #delete(request: NgRequest): Promise<Dict> {
    const { manager } = this.#d;
    const callId = request.callId;
    if (callId === undefined) return errorDict('No call-id in message');
    const sessions = manager.sessionsOf(callId);
    let stats: Dict = {};
    if (sessions.length > 0) {
      await manager.kernelCounts();
      stats = this.#callStats(sessions, request);
    }
    // rtpengine's order: the to-tag's party when given, else (or failing that) the from-tag's;
    // deleting one party's sessions ends the call with the other party too. Kamailio's module
    // sends no to-tag unless asked, and the from-tag of a BYE may be either party's.
    let selected: readonly Session[] = sessions;
    if (request.fromTag !== undefined) {
      selected = request.toTag === undefined ? [] : this.#partySessions(sessions, request.toTag);
      if (selected.length === 0) selected = this.#partySessions(sessions, request.fromTag);
    }
    const found = selected.length > 0;
    const delay = request.deleteDelay ?? 0;
    if (found && delay > 0) this.#pendingDeletes.schedule(callId, selected, delay);
    else for (const session of [...selected]) manager.destroy(session, 'delete');
    const notFound = "Call-ID not found or tags didn't match";
    if (!found) {
      // rtpengine answers ok with a warning unless asked to fail (`fatal`).
      return request.flags.has('fatal') ? errorDict(notFound) : { result: 'ok', warning: notFound };
    }
    return { result: 'ok', ...stats };
  }

  /**
   * `start recording`: both legs of every session of the call, one file per leg in the recording
   * directory (`-r`, docs/recording.md), as `R` does; `stop recording` stops them.
   */
  async #recording(request: NgRequest, start: boolean): Promise<Dict> {
    const { manager } = this.#d;
    const callId = request.callId;
    if (callId === undefined) return errorDict('No call-id in message');
    if (manager.sessionsOf(callId).length === 0) return errorDict('Unknown call-id');
    if (!start) {
      manager.stopRecordingCall(callId);
      return { result: 'ok' };
    }
    const count = await manager.recordCall(callId);
    return count > 0 ? { result: 'ok' } : errorDict(NO_RECORDING);
  }

  /**
   * An offer's or answer's `record call`: on starts recording the call as `start recording` does,
   * off stops it. The call goes on when the relay cannot record (no `-r`): a warning says so.
   */
  async #recordCall(record: boolean | undefined, callId: string): Promise<string | undefined> {
    const { manager } = this.#d;
    if (record === false) manager.stopRecordingCall(callId);
    if (record !== true) return undefined;
    return (await manager.recordCall(callId)) > 0 ? undefined : NO_RECORDING;
  }

  /**
   * The sessions a media command acts on (the audio ones unless `anyMedia`), each with the leg
   * facing the selected party and that party's tag: the `from-tag`'s party, or with `all` every
   * party (rtpengine's `media_block_match`), or the error-reason.
   */
  #mediaTargets(
    request: NgRequest,
    anyMedia = false,
  ): { targets: { found: FoundSession; party: string }[] } | { error: string } {
    const call = this.#mediaSessions(request, anyMedia);
    if ('error' in call) return call;
    const { sessions } = call;
    const targets: { found: FoundSession; party: string }[] = [];
    for (const session of sessions) {
      const own = splitTag(session.tag).base;
      const other = this.#meta.get(session)?.otherTag;
      const parties = request.all
        ? [own, other]
        : request.fromTag === undefined
          ? []
          : this.#partySessions([session], request.fromTag).length > 0
            ? [request.fromTag]
            : [];
      for (const party of parties) {
        if (party === undefined) continue;
        const facesOwn = party === own || party === session.tag;
        targets.push({ found: { session, legT1: facesOwn ? 1 : 0 }, party });
      }
    }
    if (targets.length > 0) return { targets };
    if (!request.all && request.fromTag === undefined) {
      return { error: 'No participant party specified' };
    }
    return { error: 'From-tag given, but no such tag exists' };
  }

  /** The call's sessions a media command acts on (the audio ones unless `anyMedia`), or the error. */
  #mediaSessions(
    request: NgRequest,
    anyMedia: boolean,
  ): { sessions: readonly Session[] } | { error: string } {
    const callId = request.callId;
    if (callId === undefined) return { error: 'No call-id in message' };
    const sessions = this.#d.manager
      .sessionsOf(callId)
      .filter((s) => anyMedia || (this.#meta.get(s)?.type ?? 'audio') === 'audio');
    return sessions.length === 0 ? { error: 'Unknown call-ID' } : { sessions };
  }

  /**
   * `play media`: the prompt `file` (docs/ng.md) to the selected party, `repeat-times` times,
   * in the first of its payload types a prompt file exists for; the reply's `duration` is one
   * play, ms, as rtpengine's.
   */
  async #playMedia(request: NgRequest): Promise<Dict> {
    const plan = playPlan(request.player);
    if ('error' in plan) return errorDict(plan.error);
    const selected = this.#mediaTargets(request);
    if ('error' in selected) return errorDict(selected.error);
    let duration: number | undefined;
    for (const { found, party } of selected.targets) {
      const meta = this.#meta.get(found.session);
      const sdp = meta?.media.get(party);
      const payloadTypes = promptPayloadTypes(plan, sdp?.payloadTypes ?? []);
      try {
        const ms = await this.#d.manager.play(
          found,
          plan.name,
          payloadTypes,
          plan.count,
          sdp?.ptime ?? -1,
        );
        duration ??= ms;
      } catch (error) {
        if (!(error instanceof RelayError)) throw error;
        const pts = payloadTypes.join(' ');
        return errorDict(
          error.code === 'ERR_PROMPT_TOO_LARGE'
            ? `Failed to start media playback: ${error.message}`
            : `Failed to start media playback: no prompt file ${plan.name}.PT for payload types ${pts === '' ? '(none known)' : pts}`,
        );
      }
    }
    return { result: 'ok', ...(duration === undefined ? {} : { duration }) };
  }

  /** `stop media`: stops what plays to the selected party; rtpengine's error when nothing does. */
  #stopMedia(request: NgRequest): Dict {
    const selected = this.#mediaTargets(request);
    if ('error' in selected) return errorDict(selected.error);
    let stopped = false;
    for (const { found } of selected.targets) {
      if (this.#d.manager.stopPlayback(found)) stopped = true;
    }
    return stopped ? { result: 'ok' } : errorDict('Not currently playing media');
  }

  /**
   * `block media` / `unblock media`: the RTP the `from-tag`'s party sends, in every media section,
   * is dropped (or relayed again); without a from-tag, or with `all`, every party's, as rtpengine
   * blocks the entire call. The reply follows the kernel's removal, so no packet after it passes.
   */
  async #blockMedia(request: NgRequest, blocked: boolean): Promise<Dict> {
    let found: FoundSession[];
    if (request.all || request.fromTag === undefined) {
      // Both legs of every session, whether or not an answer named the other party yet.
      const call = this.#mediaSessions(request, true);
      if ('error' in call) return errorDict(call.error);
      found = call.sessions.flatMap((session) =>
        BOTH_SIDES.map((legT1): FoundSession => ({ session, legT1 })),
      );
    } else {
      const selected = this.#mediaTargets(request, true);
      if ('error' in selected) return errorDict(selected.error);
      found = selected.targets.map((target) => target.found);
    }
    await this.#d.manager.blockMedia(found, blocked);
    return { result: 'ok' };
  }

  async #query(request: NgRequest): Promise<Dict> {
    const callId = request.callId;
    if (callId === undefined) return errorDict('No call-id in message');
    const sessions = this.#d.manager.sessionsOf(callId);
    if (sessions.length === 0) return errorDict('Unknown call-id');
    await this.#d.manager.kernelCounts();
    return { result: 'ok', ...this.#callStats(sessions, request) };
  }

  /** rtpengine's call statistics: `created`, `tags` (one per party) and `totals`. */
  #callStats(sessions: readonly Session[], request: NgRequest): Dict {
    const created = Math.min(...sessions.map((s) => s.createdAt));
    const createdWall = this.#d.wallNow() - (this.#d.now() - created);
    const totals = { rtp: zero(), rtcp: zero() };
    const tags: Record<string, Dict & { medias: NgOut[] }> = {};
    for (const session of sessions) {
      const { base, index } = splitTag(session.tag);
      const meta = this.#meta.get(session);
      const toTag = meta?.otherTag ?? request.toTag ?? '';
      // Leg 1 faces the party whose tag is the session's, leg 0 the other one.
      const parties = [
        [base, session.legs[1]],
        [toTag, session.legs[0]],
      ] as const;
      for (const [tag, leg] of parties) {
        add(totals.rtp, leg.rtp);
        add(totals.rtcp, leg.rtcp);
        const entry = (tags[tag] ??= {
          tag,
          created: Math.floor((this.#d.wallNow() - (this.#d.now() - session.createdAt)) / 1000),
          medias: [],
        });
        entry.medias.push({
          index,
          type: meta?.type ?? 'audio',
          protocol: meta?.protocol ?? 'RTP/AVP',
          streams: [
            streamStats(leg.rtp, 'RTP', leg.local, leg.port),
            streamStats(leg.rtcp, 'RTCP', leg.local, leg.port + 1),
          ],
        });
      }
    }
    return {
      created: Math.floor(createdWall / 1000),
      created_us: Math.floor((createdWall % 1000) * 1000),
      tags,
      totals: { RTP: counters(totals.rtp), RTCP: counters(totals.rtcp) },
    };
  }

  #list(request: NgRequest): Dict {
    const limit = request.limit ?? 32;
    if (limit < 0) return errorDict('invalid limit, must be >= 0');
    const calls: Buffer[] = [];
    for (const callId of this.#callIds()) {
      if (calls.length >= limit) break;
      calls.push(Buffer.from(callId, 'latin1'));
    }
    return { result: 'ok', calls };
  }

  async #statistics(): Promise<Dict> {
    const { manager, stats } = this.#d;
    await manager.ended();
    await manager.kernelCounts();
    const calls = this.#callIds().size;
    return {
      result: 'ok',
      statistics: {
        currentstatistics: {
          sessionsown: calls,
          sessionsforeign: 0,
          sessionstotal: calls,
          transcodedmedia: 0,
          streams: manager.size,
        },
        totalstatistics: {
          uptime: Math.floor((this.#d.wallNow() - this.#startedAt) / 1000),
          managedsessions: stats.nsessCreated,
          timeoutsessions: stats.nsessTimeout,
          relayedpackets: stats.npktsRelayed,
          receivedpackets: stats.npktsRcvd,
          discardedpackets: stats.npktsDiscard,
        },
      },
    };
  }

  /** The call-ids of every live session, in creation order. */
  #callIds(): Set<string> {
    const ids = new Set<string>();
    for (const session of this.#d.manager.sessions()) ids.add(session.callId);
    return ids;
  }
}

function errorDict(reason: string): Dict {
  return { result: 'error', 'error-reason': reason };
}

/** What the relay refuses to do, named; undefined when the request is one it can carry out. */
function unsupportedRequest(request: NgRequest, sdp: ParsedSdp): string | undefined {
  if (request.codec) {
    return 'codec manipulation (transcoding, codec masking or stripping) is not supported';
  }
  if (request.ice !== undefined && !ICE_REMOVED.has(request.ice)) {
    return `ICE=${request.ice} is not supported: the relay is no ICE agent (ICE candidates are removed)`;
  }
  const mux = request.rtcpMux.find((item) => !RTCP_MUX_OK.has(item));
  if (mux !== undefined) {
    return `rtcp-mux ${mux} is not supported (RTP and RTCP are relayed as they come)`;
  }
  if (request.flags.has('fragment')) return 'trickle ICE SDP fragments are not supported';
  const wanted = request.transportProtocol;
  if (wanted !== undefined) {
    const other = sdp.streams.find(
      (s) => !s.disabled && s.protocol.toUpperCase() !== wanted.toUpperCase(),
    );
    if (other !== undefined) {
      return `transport-protocol conversion (${other.protocol} to ${wanted}) is not supported`;
    }
  }
  return undefined;
}

function asymmetry(request: NgRequest): { asymmetric?: boolean } {
  if (request.flags.has('asymmetric')) return { asymmetric: true };
  if (request.flags.has('symmetric')) return { asymmetric: false };
  return {};
}

/** `internal` is bridge mode's first address (`i`), `external` its second (`e`). */
function interfaceLetter(name: string): 'i' | 'e' {
  const lower = name.toLowerCase();
  if (lower === 'internal') return 'i';
  if (lower === 'external') return 'e';
  throw new NgError(
    `unknown interface ${JSON.stringify(name)}: bridge mode has internal and external`,
  );
}

/**
 * Where the relay receives a stream, as the SDP must say: the advertised address when there is
 * one; a wildcard local address is replaced by the address the ng socket was reached on.
 */
function streamAnswer(
  answer: LegAnswer,
  index: number,
  origin: CommandOrigin | undefined,
): StreamAnswer {
  let address = answer.advertised ?? answer.address;
  if (answer.advertised === undefined && answer.wildcard) {
    const local = origin?.local;
    if (local === undefined || isWildcard(local) || local.includes(':') !== (answer.family === 6)) {
      throw new NgError(
        'the media address is a wildcard: start the relay with -l ADDR (or -6 ADDR)',
      );
    }
    address = local;
  }
  return { index, port: answer.port, address, family: answer.family };
}

function splitTag(tag: string): { base: string; index: number } {
  const semi = tag.lastIndexOf(';');
  const n = semi < 0 ? NaN : Number(tag.slice(semi + 1));
  return Number.isInteger(n) && n > 0
    ? { base: tag.slice(0, semi), index: n }
    : { base: tag, index: 1 };
}

interface Counts {
  packets: number;
  bytes: number;
  errors: number;
}

function zero(): Counts {
  return { packets: 0, bytes: 0, errors: 0 };
}

function add(into: Counts, stream: MediaStream): void {
  into.packets += stream.npktsIn;
  into.bytes += stream.nbytesIn;
  into.errors += stream.nsendErrors;
}

function counters(c: Counts): Dict {
  return { packets: c.packets, bytes: c.bytes, errors: c.errors };
}

function streamStats(
  stream: MediaStream,
  kind: 'RTP' | 'RTCP',
  local: { readonly address: string; readonly family: Family },
  port: number,
): Dict {
  const endpoint: Dict =
    stream.remoteAddress === undefined
      ? {}
      : {
          family: local.family === 6 ? 'IPv6' : 'IPv4',
          address: stream.remoteAddress,
          port: stream.remotePort,
        };
  return {
    'local port': port,
    'local address': local.address,
    family: local.family === 6 ? 'IPv6' : 'IPv4',
    endpoint,
    flags: stream.latched ? [kind, 'confirmed'] : [kind],
    stats: { packets: stream.npktsIn, bytes: stream.nbytesIn, errors: stream.nsendErrors },
  };
}
