/**
 * The one bridge between the wire and the session manager: a parsed Command goes in, the session
 * manager is called with domain types, and the result comes back as reply text. RelayError codes
 * map to E-codes in one table; anything else thrown is logged and answered with the internal
 * error code, and the daemon keeps serving.
 */
import type { Logger } from 'pino';
import type { Config } from '../base/config.ts';
import { RelayError, type RelayErrorCode } from '../session/errors.ts';
import type { FoundSession, LegAnswer, OfferRequest, SessionManager } from '../session/manager.ts';
import { globalCounter, sessionCounter } from '../session/query.ts';
import type { Session } from '../session/session.ts';
import type { CommandOrigin, Family } from '../base/net.ts';
import type { GlobalStats } from '../util/stats.ts';
import { BASE_VERSION, isCapabilitySupported } from './capabilities.ts';
import type { Command, SessionRef, SubCommand, UpdateModifiers } from './commands.ts';
import type { ECode } from './ecodes.ts';
import type { CountedReply } from './socket-types.ts';
import { type ParseContext, parseCommand } from './parse.ts';
import { counterText, errorReply, infoText, MAX_REPLY, namedValues, portText } from './reply.ts';
import { otherSide, type Side } from '../base/side.ts';

/** RelayError code -> wire E-code, for the commands whose refusal has one fixed code. */
const RELAY_ECODES = {
  ERR_SESSION_NOT_FOUND: 'SESUNKN',
  ERR_NO_PORTS_NEW: 'LSTFAIL_2',
  ERR_NO_PORTS_EXISTING: 'LSTFAIL_1',
  ERR_SHUTTING_DOWN: 'SLOWSHTDN',
  ERR_OVERLOADED: 'OVERLOAD',
  ERR_NOTIFY_DISABLED: 'NSOFF',
  ERR_NO_ROUTE: 'INVLARG_2',
  ERR_NO_LOCAL_ADDRESS: 'INVLARG_6',
  ERR_PLAYBACK: 'PLRFAIL',
  ERR_PROMPT_TOO_LARGE: 'PLRFAIL_2',
  ERR_NO_SESSION_CODECS: 'INVLARG_5',
  ERR_RECORDING: 'SESUNKN',
  ERR_COPY: 'CPYFAIL',
} as const satisfies Record<RelayErrorCode, ECode>;

/** The five counters of a Q without names. */
const DEFAULT_QUERY = ['ttl', 'npkts_ina', 'npkts_ino', 'nrelayed', 'ndropped'] as const;

/** The part of the session manager dispatch calls (the unit tests give a fake). */
export type DispatchManager = Pick<
  SessionManager,
  | 'size'
  | 'draining'
  | 'find'
  | 'update'
  | 'lookup'
  | 'delete'
  | 'deleteAll'
  | 'setLegTtl'
  | 'setLegTos'
  | 'record'
  | 'stopRecording'
  | 'copyToFile'
  | 'copyToRemote'
  | 'fork'
  | 'play'
  | 'stopPlayback'
  | 'hasLocalFamily'
  | 'ended'
  | 'kernelCounts'
  | 'kernelFigures'
  | 'kernelPlacement'
  | 'sessions'
>;

/** The kernel fast path as `Iv` reports it. */
export interface KernelState {
  /** `on`, or `off (REASON)`. */
  readonly state: string;
  readonly committed: number;
  readonly failed: number;
}

export interface DispatcherDeps {
  readonly manager: DispatchManager;
  readonly stats: GlobalStats;
  readonly config: Config;
  /** The parser's context from the configuration; dispatch adds the live local families. */
  readonly parseContext: ParseContext;
  readonly now: () => number;
  /** Average load for `Il`, 0..1. */
  readonly load: () => number;
  /** The kernel fast path's state and transaction counts, for `Iv`. */
  readonly kernel: () => KernelState;
  readonly logger: Logger;
}

/** Parses and executes command lines; `handle` is the CommandHandler given to the runner. */
export class Dispatcher {
  readonly #d: DispatcherDeps;
  /** The last context given to the parser, rebuilt when the manager's local families change. */
  #context: ParseContext;
  #families: string | undefined;

  constructor(deps: DispatcherDeps) {
    this.#d = deps;
    this.#context = deps.parseContext;
  }

  /** Runs one command line; always resolves with exactly one reply ending in LF. */
  readonly handle = async (
    line: string,
    origin?: CommandOrigin,
    receivedAt?: number,
  ): Promise<string | CountedReply> => {
    const parsed = parseCommand(line, this.#parseContext());
    if (!parsed.ok) return errorReply(parsed.ecode);
    try {
      return await this.#execute(parsed.command, origin, receivedAt ?? this.#d.now());
    } catch (error) {
      if (error instanceof RelayError) {
        const text = errorReply(RELAY_ECODES[error.code]);
        // Draining: a new session is left unanswered where the socket allows it, so that the SIP
        // proxy takes this daemon out of its set and offers the call to another (socket-types.ts).
        return error.code === 'ERR_SHUTTING_DOWN' ? { text, failed: true, unanswered: true } : text;
      }
      this.#d.logger.error({ err: error, line }, 'command failed unexpectedly');
      return errorReply('NOMEM_9');
    }
  };

  /**
   * The parser's context for the next command: local addresses learnt by `l`/`r` count for the
   * automatic choice by family, so the families are read from the manager before each parse.
   */
  #parseContext(): ParseContext {
    const manager = this.#d.manager;
    const v4 = manager.hasLocalFamily(4);
    const v6 = manager.hasLocalFamily(6);
    const families = `${v4 ? '4' : ''}${v6 ? '6' : ''}`;
    if (families !== this.#families) {
      this.#families = families;
      const localFamilies = new Set<Family>();
      if (v4) localFamilies.add(4);
      if (v6) localFamilies.add(6);
      this.#context = { ...this.#d.parseContext, localFamilies };
    }
    return this.#context;
  }

  async #execute(
    cmd: Command,
    origin: CommandOrigin | undefined,
    receivedAt: number,
  ): Promise<string | CountedReply> {
    const { manager, stats } = this.#d;
    switch (cmd.op) {
      case 'version':
        // Draining: the SIP proxy's periodic V must not take this daemon back into its set.
        return manager.draining ? errorReply('SLOWSHTDN') : `${BASE_VERSION}\n`;
      case 'version-feature':
        return isCapabilitySupported(cmd.date, this.#d.config) ? '1\n' : '0\n';
      case 'update':
      case 'lookup': {
        const req = offerRequest(
          cmd.ref,
          cmd.remote,
          cmd.modifiers,
          receivedAt,
          cmd.notify,
          origin,
        );
        const answer = cmd.op === 'update' ? await manager.update(req) : await manager.lookup(req);
        // No session: `0`, counted as an error (sippy/rtpproxy src/rtpp_command.c, ul_reply_port).
        if (answer === undefined) return { text: '0\n', failed: true };
        const subs = await this.#subcommands(
          cmd.subcommands,
          cmd.ref,
          answer.session,
          answer.forwardLeg,
          receivedAt,
        );
        return `${portText(answer)}${subs}\n`;
      }
      case 'delete':
        return manager.delete(cmd.ref.callId, cmd.ref.tag1, cmd.ref.tag2, cmd.weak)
          ? '0\n'
          : errorReply('SESUNKN');
      case 'delete-all':
        manager.deleteAll();
        return '0\n';
      case 'query':
        await manager.kernelCounts();
        return this.#query(cmd);
      case 'stats':
        // Ended sessions' figures are folded in first (their kernel counters read).
        await manager.ended();
        await manager.kernelCounts();
        return this.#globalStats(cmd.names, cmd.verbose);
      case 'info': {
        await manager.ended();
        await manager.kernelCounts();
        const info = infoText(
          {
            created: stats.nsessCreated,
            active: manager.size,
            streams: manager.size * 2,
            received: stats.npktsRcvd,
            transmitted: stats.npktsRelayed + stats.npktsPlayed,
          },
          cmd.load ? this.#d.load() : undefined,
        );
        return cmd.verbose ? `${info}${this.#kernelInfo()}` : info;
      }
      case 'play': {
        const found = this.#find(cmd.ref);
        // `session` is matched exactly, as the reference's strcmp() does.
        const codecs = cmd.codecs === 'session' ? 'session' : codecScan(cmd.codecs);
        await manager.play(found, cmd.prompt, codecs, cmd.count);
        return '0\n';
      }
      case 'stop-play':
        manager.stopPlayback(this.#find(cmd.ref));
        return '0\n';
      case 'record':
        return (await manager.record(cmd.ref.callId, cmd.ref.tag1, cmd.ref.tag2, cmd.single)) > 0
          ? '0\n'
          : errorReply('SESUNKN');
      case 'stop-record':
        return manager.stopRecording(cmd.ref.callId, cmd.ref.tag1, cmd.ref.tag2, cmd.bothLegs) > 0
          ? '0\n'
          : errorReply('SESUNKN');
      case 'copy': {
        const found = this.#find(cmd.ref);
        if (cmd.target.startsWith('udp:')) {
          const copy = await manager.copyToRemote(found, cmd.target);
          if (!cmd.replyPort) return '0\n';
          // The leg already had a recorder: nothing was allocated, so there is no port to tell.
          if (copy === undefined) throw new RelayError('ERR_COPY', 'the leg already records');
          return `${String(copy.port)} ${copy.address}\n`;
        }
        if (cmd.replyPort) throw new RelayError('ERR_COPY', 'p is only valid with a udp: target');
        await manager.copyToFile(found, cmd.target, cmd.single);
        return '0\n';
      }
    }
  }

  #find(ref: SessionRef): FoundSession {
    const found = this.#d.manager.find(ref.callId, ref.tag1, ref.tag2);
    if (found === undefined) throw new RelayError('ERR_SESSION_NOT_FOUND');
    return found;
  }

  async #query(cmd: Extract<Command, { op: 'query' }>): Promise<string> {
    const found = this.#find(cmd.ref);
    if (cmd.badModifier) return errorReply('PARSE_8');
    const names = cmd.names.length > 0 ? cmd.names : DEFAULT_QUERY;
    const pairs: (readonly [string, string])[] = [];
    for (const name of names) {
      const counter = sessionCounter(found.session, found.legT1, name);
      if (counter === undefined) return errorReply('QRYFAIL');
      // Q prints its integer counters as they are and its floats with six decimals.
      pairs.push([name, counter.float ? counterText(counter.value, true) : String(counter.value)]);
    }
    const text = namedValues(pairs, cmd.verbose);
    const subs = await this.#subcommands(
      cmd.subcommands,
      cmd.ref,
      found.session,
      found.legT1,
      this.#d.now(),
    );
    const reply = `${text}${subs}\n`;
    return reply.length >= MAX_REPLY ? errorReply('RTOOBIG_2') : reply;
  }

  /**
   * The kernel fast path's part of `Iv` (docs/kernel.md): its state, its figures, and where each
   * session's streams are relayed.
   */
  #kernelInfo(): string {
    const manager = this.#d.manager;
    const kernel = this.#d.kernel();
    const f = manager.kernelFigures();
    const lines = [
      `kernel path: ${kernel.state}`,
      `kernel streams: ${String(f.streams)}`,
      `kernel offloads: ${String(f.offloads)}`,
      `kernel withdrawals: ${String(f.withdrawals)}`,
      `kernel transactions: ${String(kernel.committed)} committed, ${String(kernel.failed)} failed`,
    ];
    for (const session of manager.sessions()) {
      lines.push(`session ${session.callId} ${session.tag}: ${manager.kernelPlacement(session)}`);
    }
    return `${lines.join('\n')}\n`;
  }

  #globalStats(names: readonly string[], verbose: boolean): string {
    const stats = this.#d.stats;
    const pairs: (readonly [string, string])[] = [];
    for (const name of names) {
      const counter = globalCounter(stats, name);
      if (counter === undefined) return errorReply('STSFAIL');
      pairs.push([name, counterText(counter.value, counter.float)]);
    }
    const reply = `${namedValues(pairs, verbose)}\n`;
    return reply.length >= MAX_REPLY ? errorReply('RTOOBIG_1') : reply;
  }

  /**
   * Runs `&&` sub-commands after a successful main command (docs/protocol.md 3.15) and composes their
   * part of the reply: results with text, failures as `-1`, and `0` for text-less successes that
   * come before a later result. Processing stops at the first failure. `forwardLeg` is the leg
   * that received the address (the reference's `strmp_in`); an `L` sub-command makes its own
   * forward leg the one the later sub-commands see.
   */
  async #subcommands(
    subs: readonly SubCommand[],
    ref: SessionRef,
    session: Session,
    forwardLeg: Side,
    receivedAt: number,
  ): Promise<string> {
    const results: (string | undefined)[] = [];
    let forward = forwardLeg;
    for (const sub of subs) {
      let result: string | undefined;
      try {
        result = await this.#subcommand(sub, ref, session, forward, receivedAt);
        // After L the streams swap roles, as in sippy/rtpproxy src/commands/rpcpv1_ul_subc.c.
        if (sub.op === 'lookup') forward = otherSide(forward);
      } catch (error) {
        if (!(error instanceof RelayError)) {
          this.#d.logger.error({ err: error }, 'sub-command failed');
        }
        results.push('-1');
        break;
      }
      results.push(result);
    }
    let last = -1;
    results.forEach((r, i) => {
      if (r !== undefined) last = i;
    });
    return results
      .slice(0, last + 1)
      .map((r) => ` && ${r ?? '0'}`)
      .join('');
  }

  async #subcommand(
    sub: SubCommand,
    ref: SessionRef,
    session: Session,
    forwardLeg: Side,
    receivedAt: number,
  ): Promise<string | undefined> {
    const manager = this.#d.manager;
    switch (sub.op) {
      case 'lookup': {
        const answer: LegAnswer | undefined = await manager.lookup(
          offerRequest(ref, sub.remote, sub.modifiers, receivedAt),
        );
        if (answer === undefined) throw new RelayError('ERR_SESSION_NOT_FOUND');
        return portText(answer);
      }
      case 'set-ttl': {
        if (session.closed) throw new RelayError('ERR_SESSION_NOT_FOUND');
        const leg = sub.reverse ? otherSide(forwardLeg) : forwardLeg;
        manager.setLegTtl(session, leg, sub.seconds);
        return undefined;
      }
      case 'delete':
        manager.delete(session.callId, session.tag, undefined, sub.weak);
        return undefined;
      case 'attach-recorder': {
        const source = this.#find(sub.source);
        await manager.fork(source, session, forwardLeg);
        return undefined;
      }
      case 'set-tos': {
        // The forward stream is the one facing the party of this command's address, as for ttl;
        // an IPv6 leg answers -1 as in the reference (TOS is IPv4 only).
        if (session.closed) throw new RelayError('ERR_SESSION_NOT_FOUND');
        const leg = sub.reverse ? otherSide(forwardLeg) : forwardLeg;
        if (!manager.setLegTos(session, leg, sub.tos)) {
          throw new RelayError('ERR_SESSION_NOT_FOUND', 'TOS applies to IPv4 legs only');
        }
        return undefined;
      }
    }
  }
}

function offerRequest(
  ref: SessionRef,
  remote: OfferRequest['remote'],
  m: UpdateModifiers,
  receivedAt: number,
  notify?: { readonly socket: string; readonly tag: string },
  origin?: CommandOrigin,
): OfferRequest {
  return {
    receivedAt,
    callId: ref.callId,
    tag1: ref.tag1,
    ...(ref.tag2 === undefined ? {} : { tag2: ref.tag2 }),
    remote,
    ...(m.asymmetric === undefined ? {} : { asymmetric: m.asymmetric }),
    weak: m.weak,
    local: m.local,
    ...(m.codecs === undefined ? {} : { codecs: m.codecs }),
    ...(m.repacketizeMs === undefined ? {} : { repacketizeMs: m.repacketizeMs }),
    newPorts: m.newPorts,
    ...(notify === undefined ? {} : { notify }),
    ...(notify === undefined || origin === undefined ? {} : { origin }),
  };
}

/**
 * The payload types of a P codec list, in order, up to the first item that is not a number: the
 * reference tries `NAME.PT` for each number and stops the scan with E60 at the first bad item
 * (docs/protocol.md 7.1), so `8,x` still plays `NAME.8` when it exists and `x,8` never does.
 */
function codecScan(text: string): number[] {
  const types: number[] = [];
  for (const item of text.split(',')) {
    if (!/^[0-9]{1,9}$/.test(item)) break;
    types.push(Number(item));
  }
  return types;
}
