/**
 * Hands out even RTP ports (RTCP on the port above) from the configured range, the way the
 * reference's port table does (sippy/rtpproxy src/rtpp_port_table.c; protocol.md 4.3): a table of
 * the even ports, shuffled and re-shuffled as it is walked, or kept sorted and walked round-robin
 * with `-b`. There is no bookkeeping of used ports: the bind itself decides, and a port that bound
 * is kept by its owner, never closed and rebound.
 */

/** What one bind attempt says about a candidate port. */
export type BindOutcome = 'ok' | 'busy' | 'fatal';

export class PortAllocator {
  readonly #ports: number[];
  readonly #sequential: boolean;
  readonly #random: () => number;
  #cursor = 0;

  constructor(min: number, max: number, sequential: boolean, random: () => number = Math.random) {
    this.#ports = [];
    for (let p = min; p <= max; p += 2) this.#ports.push(p);
    this.#sequential = sequential;
    this.#random = random;
    if (!sequential) this.#shuffle(0);
  }

  /** Number of port pairs in the range. */
  get capacity(): number {
    return this.#ports.length;
  }

  /**
   * Walks the table once, calling tryBind on each candidate until one binds. Resolves with the
   * port, or undefined when every candidate was busy. A fatal outcome stops the walk.
   */
  async allocate(tryBind: (port: number) => Promise<BindOutcome>): Promise<number | undefined> {
    const n = this.#ports.length;
    for (let tried = 0; tried < n; tried += 1) {
      if (this.#cursor >= n) {
        this.#cursor = 0;
        if (!this.#sequential) this.#shuffle(0);
      }
      const port = this.#ports[this.#cursor] ?? 0;
      this.#cursor += 1;
      const outcome = await tryBind(port);
      if (outcome === 'ok') return port;
      if (outcome === 'fatal') return undefined;
    }
    return undefined;
  }

  #shuffle(from: number): void {
    const ports = this.#ports;
    for (let i = ports.length - 1; i > from; i -= 1) {
      const j = from + Math.floor(this.#random() * (i - from + 1));
      const a = ports[i] ?? 0;
      ports[i] = ports[j] ?? 0;
      ports[j] = a;
    }
  }
}
