/**
 * The playback service (docs/protocol.md 7): finds prompt files through the shared {@link PromptCache},
 * and runs every active player from ONE timer. Each tick reads the monotonic clock once, sends
 * every packet that is due by then (through the target leg's own socket, to the target's current
 * latched or signalled remote address), and re-arms the timer for the earliest next due time.
 * Packet times come from each player's start time, not from the timer, so pacing has no drift;
 * the timer's 1 ms resolution only bounds how late a packet leaves.
 *
 * While a player runs, its target stream's `playing` flag is set: the relay drops packets from the
 * other party towards the target (docs/protocol.md 4.8, 7.4). The flag is cleared when the player ends
 * (end of prompt, stop, replacement or session end).
 */
import { randomInt } from 'node:crypto';
import type { GlobalStats } from '../util/stats.ts';
import { EOF, LATER, Player } from './player.ts';
import { type PromptCache, type PromptSource, resolvePrompt } from './prompts.ts';

/** How often players whose target has no address yet look again (they need no precise timing). */
const WAIT_POLL_MS = 20;
/** Behind by more than this (a stalled event loop), a player resumes from now instead of bursting. */
const MAX_LAG_MS = 200;

/** Sends a datagram; errors are reported on the socket's `error` event (the relay counts them). */
export interface SendSocket {
  send(msg: Buffer, port: number, address: string): void;
}

/** Where a player sends: a leg's RTP relay stream (`RelayStream` has this shape). */
export interface PlayTarget {
  readonly socket: SendSocket | undefined;
  readonly remoteAddress: string | undefined;
  readonly remotePort: number;
  /** Set while a player runs: the relay mutes the other party towards this target. */
  playing: boolean;
}

/** Why a player ended. */
export type PlaybackEnd = 'eof' | 'stopped' | 'send-error';

/** Callbacks of one playback. They must not throw. */
export interface PlaybackHooks {
  /** A packet was sent (refreshes the session's idle timer). */
  onPacket(): void;
  /** The player ended: end of prompt, stopped (S, P, replaced, session end, shutdown) or send error. */
  onEnd(reason: PlaybackEnd): void;
}

/** What was started. */
export interface PlaybackInfo {
  readonly ssrc: number;
  readonly sequence: number;
}

/** What the session manager needs for P and S. */
export interface PlaybackService {
  /**
   * The first playable `NAME.PT` for the payload types, in order; undefined if none. Rejects only
   * with a PromptTooLargeError, when no file plays and one was over the size limit.
   */
  findPrompt(
    name: string,
    payloadTypes: readonly number[],
    packetMs: number,
  ): Promise<PromptSource | undefined>;
  /** Starts playing to `target`, replacing what played there. */
  start(
    target: PlayTarget,
    prompt: PromptSource,
    count: number,
    hooks: PlaybackHooks,
  ): PlaybackInfo;
  /** Stops what plays to `target` (its `onEnd` gets `'stopped'`); false if nothing played. */
  stop(target: PlayTarget): boolean;
}

export interface PlaybackSchedulerOptions {
  readonly prompts: PromptCache;
  readonly stats: GlobalStats;
  /** Monotonic milliseconds. */
  readonly now: () => number;
  /** Random integer in [0, max); crypto's by default. */
  readonly randomInt?: (max: number) => number;
}

interface Active {
  readonly player: Player;
  readonly target: PlayTarget;
  readonly hooks: PlaybackHooks;
  /** The target had no address at the last tick. */
  waiting: boolean;
}

export class PlaybackScheduler implements PlaybackService {
  readonly #opts: PlaybackSchedulerOptions;
  readonly #random: (max: number) => number;
  readonly #active = new Map<PlayTarget, Active>();
  #timer: NodeJS.Timeout | undefined;
  /** Monotonic ms the armed timer fires at. */
  #wakeAt = Number.POSITIVE_INFINITY;
  #closed = false;

  constructor(options: PlaybackSchedulerOptions) {
    this.#opts = options;
    this.#random = options.randomInt ?? ((max) => randomInt(max));
  }

  /** Players running. */
  get size(): number {
    return this.#active.size;
  }

  findPrompt(
    name: string,
    payloadTypes: readonly number[],
    packetMs: number,
  ): Promise<PromptSource | undefined> {
    return resolvePrompt(this.#opts.prompts, name, payloadTypes, packetMs);
  }

  start(
    target: PlayTarget,
    prompt: PromptSource,
    count: number,
    hooks: PlaybackHooks,
  ): PlaybackInfo {
    this.stop(target);
    const sequence = this.#random(0x10000);
    const player = new Player({
      data: prompt.data,
      framing: prompt.framing,
      count,
      ssrc: this.#random(0x100000000),
      sequence,
      // A random even initial timestamp, as the reference's player picks it.
      timestamp: this.#random(0x80000000) * 2,
      startMs: this.#opts.now(),
    });
    if (this.#closed) return { ssrc: player.ssrc, sequence };
    this.#active.set(target, { player, target, hooks, waiting: false });
    target.playing = true;
    this.#opts.stats.nplrsCreated += 1;
    this.#arm(player.dueMs);
    return { ssrc: player.ssrc, sequence };
  }

  stop(target: PlayTarget): boolean {
    const entry = this.#active.get(target);
    if (entry === undefined) return false;
    this.#end(entry, 'stopped');
    return true;
  }

  /** Sends every packet due at `now` (monotonic ms). Public for tests with a fake clock. */
  tick(now: number): void {
    const stats = this.#opts.stats;
    let next = Number.POSITIVE_INFINITY;
    for (const entry of this.#active.values()) {
      const { player, target } = entry;
      const socket = target.socket;
      const address = target.remoteAddress;
      if (socket === undefined || address === undefined) {
        // docs/protocol.md 7.4: a player whose target has no address yet starts once it has one.
        entry.waiting = true;
        next = Math.min(next, now + WAIT_POLL_MS);
        continue;
      }
      if (entry.waiting || now - player.dueMs > MAX_LAG_MS) {
        entry.waiting = false;
        player.defer(now);
      }
      for (;;) {
        const packet = player.next(now);
        if (packet === LATER) break;
        if (packet === EOF) {
          this.#end(entry, 'eof');
          break;
        }
        try {
          socket.send(packet, target.remotePort, address);
        } catch {
          // The socket closed under us (the session is going away): a side feature never throws (P8).
          this.#end(entry, 'send-error');
          break;
        }
        stats.npktsPlayed += 1;
        entry.hooks.onPacket();
      }
      if (this.#active.get(target) === entry) next = Math.min(next, player.dueMs);
    }
    if (this.#active.size === 0) this.#disarm();
    else this.#arm(next);
  }

  /** Stops every player and the timer; later starts play nothing. Idempotent. */
  close(): void {
    if (this.#closed) return;
    for (const entry of [...this.#active.values()]) this.#end(entry, 'stopped');
    this.#closed = true;
    this.#disarm();
  }

  #end(entry: Active, reason: PlaybackEnd): void {
    if (this.#active.get(entry.target) !== entry) return;
    this.#active.delete(entry.target);
    entry.target.playing = false;
    this.#opts.stats.nplrsDestroyed += 1;
    entry.hooks.onEnd(reason);
  }

  /** Makes the one timer fire by monotonic time `at` (never later than it is armed for now). */
  #arm(at: number): void {
    if (this.#closed || (this.#timer !== undefined && this.#wakeAt <= at)) return;
    this.#disarm();
    this.#wakeAt = at;
    // Rounded up: a timer firing before the packet is due would only tick for nothing.
    this.#timer = setTimeout(this.#onTimer, Math.max(1, Math.ceil(at - this.#opts.now())));
    // The media sockets keep the daemon alive; this timer alone must not.
    this.#timer.unref();
  }

  readonly #onTimer = (): void => {
    this.#timer = undefined;
    this.#wakeAt = Number.POSITIVE_INFINITY;
    this.tick(this.#opts.now());
  };

  #disarm(): void {
    if (this.#timer === undefined) return;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#wakeAt = Number.POSITIVE_INFINITY;
  }
}
