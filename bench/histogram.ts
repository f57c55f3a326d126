/**
 * Latency histogram with fixed 10 µs bins up to 10 s (one overflow bin past that) plus the exact
 * count, sum and maximum. Recording is O(1) and allocation-free, so it can sit on the receive path
 * of tens of thousands of packets per second; percentiles are nearest-rank over the bins.
 */

const BIN_US = 10;
const MAX_US = 10_000_000;
const BINS = MAX_US / BIN_US + 1;

/** Percentile summary in milliseconds (null when nothing was recorded). */
export interface LatencySummary {
  readonly count: number;
  readonly minMs: number | null;
  readonly meanMs: number | null;
  readonly p50Ms: number | null;
  readonly p90Ms: number | null;
  readonly p99Ms: number | null;
  readonly p999Ms: number | null;
  readonly maxMs: number | null;
}

export class LatencyHistogram {
  readonly #bins = new Uint32Array(BINS);
  #count = 0;
  #sumMs = 0;
  #minMs = Number.POSITIVE_INFINITY;
  #maxMs = 0;

  /** Records one latency given in milliseconds (negative values are clamped to 0). */
  record(ms: number): void {
    const v = ms < 0 ? 0 : ms;
    let bin = Math.floor((v * 1000) / BIN_US);
    if (bin >= BINS) bin = BINS - 1;
    this.#bins[bin] = (this.#bins[bin] ?? 0) + 1;
    this.#count++;
    this.#sumMs += v;
    if (v < this.#minMs) this.#minMs = v;
    if (v > this.#maxMs) this.#maxMs = v;
  }

  get count(): number {
    return this.#count;
  }

  /** Nearest-rank percentile (0 < q <= 1) in ms, at the upper edge of its bin but never above max. */
  percentile(q: number): number | null {
    if (this.#count === 0) return null;
    const rank = Math.max(1, Math.ceil(q * this.#count));
    let seen = 0;
    for (let i = 0; i < BINS; i++) {
      seen += this.#bins[i] ?? 0;
      if (seen >= rank) return Math.min(((i + 1) * BIN_US) / 1000, this.#maxMs);
    }
    return this.#maxMs;
  }

  summary(): LatencySummary {
    const empty = this.#count === 0;
    return {
      count: this.#count,
      minMs: empty ? null : this.#minMs,
      meanMs: empty ? null : this.#sumMs / this.#count,
      p50Ms: this.percentile(0.5),
      p90Ms: this.percentile(0.9),
      p99Ms: this.percentile(0.99),
      p999Ms: this.percentile(0.999),
      maxMs: empty ? null : this.#maxMs,
    };
  }
}
