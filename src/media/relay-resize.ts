/**
 * The `z` re-packetizer of one RTP stream (docs/protocol.md 5): the accepted packets of the
 * party go in, and what is due leaves through the stream's relay stage, on their arrival and on
 * the media thread's HeldPackets tick. A stream without `z` has none of this: its packet path
 * tests one field.
 */
import { RtpResizer } from './resizer.ts';
import type { RelayStream } from './relay.ts';
import type { RelaySettings } from './relay-shared.ts';
import type { Endpoint } from '../base/net.ts';

/** Packets one drain of a re-packetizer may emit (each takes at least one held piece). */
const DRAIN_LIMIT = 64;

export class ResizingIntake {
  readonly #resizer: RtpResizer;
  readonly #settings: RelaySettings;
  /** The owning stream's relay stage; `from` is undefined for a packet the resizer built. */
  readonly #relay: (msg: Buffer, from: Endpoint | undefined) => void;
  /** Registered with the settings' HeldPackets. */
  #held = false;

  constructor(
    ms: number,
    settings: RelaySettings,
    relay: (msg: Buffer, from: Endpoint | undefined) => void,
  ) {
    this.#resizer = new RtpResizer(ms);
    this.#settings = settings;
    this.#relay = relay;
  }

  /** The packet time asked for, milliseconds. */
  get ptimeMs(): number {
    return this.#resizer.ptimeMs;
  }
  set ptimeMs(ms: number) {
    this.#resizer.ptimeMs = ms;
  }

  /** An accepted packet of the party: into the re-packetizer, then what is due. */
  take(msg: Buffer, from: Endpoint, owner: RelayStream): void {
    const stats = this.#settings.stats;
    const intake = this.#resizer.enqueue(msg, this.#settings.now());
    if (intake === 'pass') {
      this.#relay(msg, from);
    } else if (intake === 'late') {
      stats.npktsResizerDiscard += 1;
    } else {
      stats.npktsResizerIn += 1;
    }
    this.drain(owner);
  }

  /**
   * Relays what is due now; registers `owner` with HeldPackets while packets are held. Returns
   * whether it still holds packets.
   */
  drain(owner: RelayStream): boolean {
    const now = this.#settings.now();
    for (let n = 0; n < DRAIN_LIMIT; n += 1) {
      const packet = this.#resizer.get(now);
      if (packet === undefined) break;
      this.#settings.stats.npktsResizerOut += 1;
      this.#relay(packet, undefined);
    }
    const holds = this.#resizer.held > 0;
    const held = this.#settings.held;
    if (holds && !this.#held && held !== undefined) held.add(owner);
    this.#held = holds;
    return holds;
  }

  /** Drops what is held; returns how many packets that was. */
  clear(): number {
    return this.#resizer.clear();
  }
}
