/**
 * What every relay stream of a thread (the main thread, or one media worker) shares: the settings
 * they read, the connection checks of the streams whose socket is connected, and the tick that
 * drains the re-packetizers holding packets. See relay.ts for the stream itself.
 */
import type { GlobalStats } from '../util/stats.ts';
import type { OwnEndpoints } from './own-endpoints.ts';
import type { RelaySocket } from './relay-socket.ts';
import type { RelayStream } from './relay.ts';

/**
 * The streams whose socket is connected, checked every {@link CONNECTION_CHECK_MS} by the owner
 * of the streams (the media plane or the media worker): a stream whose remote sent nothing since
 * the previous check is disconnected, so that a party that moved can be latched again.
 */
export class Connections {
  readonly #streams = new Set<RelaySocket>();

  add(stream: RelaySocket): void {
    this.#streams.add(stream);
  }

  delete(stream: RelaySocket): void {
    this.#streams.delete(stream);
  }

  get size(): number {
    return this.#streams.size;
  }

  /** One check of every connected stream. */
  check(): void {
    for (const stream of this.#streams) stream.checkConnection();
  }
}

/** How often connected streams are checked for silence. */
export const CONNECTION_CHECK_MS = 100;

/** How often streams whose re-packetizer holds packets are drained. */
const RESIZER_TICK_MS = 10;

/**
 * The streams whose re-packetizer (`z`) holds packets, drained every {@link RESIZER_TICK_MS} by
 * one timer for all of them, which runs only while some stream holds packets. Arrivals drain a
 * stream too; the tick sends what is due when nothing more arrives (the end of a talk spurt, a
 * late packet, the last rest of a split).
 */
export class HeldPackets {
  readonly #streams = new Set<RelayStream>();
  readonly #after: ((stream: RelayStream) => void) | undefined;
  #timer: NodeJS.Timeout | undefined;

  /** `after` runs for a stream once a tick drained it (a media worker publishes its counters). */
  constructor(after?: (stream: RelayStream) => void) {
    this.#after = after;
  }

  add(stream: RelayStream): void {
    this.#streams.add(stream);
    if (this.#timer !== undefined) return;
    this.#timer = setInterval(() => {
      this.tick();
    }, RESIZER_TICK_MS);
    this.#timer.unref();
  }

  get size(): number {
    return this.#streams.size;
  }

  /** One drain of every stream that holds packets; the timer stops when none holds any. */
  tick(): void {
    for (const stream of this.#streams) {
      if (!stream.drainResizer()) this.#streams.delete(stream);
      this.#after?.(stream);
    }
    if (this.#streams.size === 0) this.close();
  }

  /** Stops the timer (streams added later start it again). */
  close(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}

/** Shared, read-mostly settings of every stream of the daemon. */
export interface RelaySettings {
  readonly stats: Pick<
    GlobalStats,
    | 'npktsRcvd'
    | 'npktsRelayed'
    | 'npktsDiscard'
    | 'npktsResizerIn'
    | 'npktsResizerOut'
    | 'npktsResizerDiscard'
  >;
  /** Monotonic milliseconds. */
  readonly now: () => number;
  readonly sendTwice: boolean;
  /** Where connected streams register; without it sockets are never connected. */
  readonly connections?: Connections;
  /** Where streams whose re-packetizer holds packets register; without it only arrivals drain. */
  readonly held?: HeldPackets;
  /**
   * Called once a relayed packet is counted, just before it is sent: a media worker writes the
   * counters where the main thread reads them, so a party that got the packet and asks at once
   * finds it counted.
   */
  readonly counted?: (stream: RelayStream) => void;
  /**
   * Strict sources (the default; false with `--no_strict_source`, the reference's rules): see
   * docs/architecture.md, "Strict sources".
   */
  readonly strictSource?: boolean;
  /** The daemon's own endpoints: never latched on, whatever the rules (own-endpoints.ts). */
  readonly own?: OwnEndpoints;
}
