/**
 * The overload detector behind `--overload_prot` (docs/protocol.md 9): the daemon
 * counts as overloaded while its event loop runs late. Every packet and every command waits for
 * the event loop, so its lateness is the delay the relay adds to media; once it is high, taking
 * on more calls makes every call worse.
 *
 * Measured with `perf_hooks.monitorEventLoopDelay`: a native timer that fires every
 * `resolution` ms and records how late it ran. `sample()` is called once per window (a second,
 * by the daemon's rate timer); the window counts as overloaded when the mean lateness of its
 * samples, less the timer's own resolution, reaches `limitMs`. The state holds until the next
 * window is evaluated.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';

/** Mean event-loop lateness over a window at which new sessions are refused. */
const OVERLOAD_LIMIT_MS = 50;
/** Sampling period of the event-loop delay timer. */
const DELAY_RESOLUTION_MS = 10;

/** The part of perf_hooks' IntervalHistogram the monitor reads (injectable for tests). */
export interface DelayHistogram {
  /** Mean of the recorded delays, nanoseconds (NaN when nothing was recorded). */
  readonly mean: number;
  /** Samples recorded since the last reset. */
  readonly count: number;
  reset(): void;
  disable(): boolean;
}

export interface OverloadMonitorOptions {
  readonly limitMs?: number;
  /** Defaults to a started `monitorEventLoopDelay({ resolution: DELAY_RESOLUTION_MS })`. */
  readonly histogram?: DelayHistogram;
  /** The histogram's sampling period, subtracted from its mean. */
  readonly resolutionMs?: number;
  /** Called when the state changes, with the window's mean lateness. */
  readonly onChange?: (overloaded: boolean, lateMs: number) => void;
  /**
   * Lateness of other event loops (media workers) over their last window, milliseconds: the
   * daemon is overloaded when the latest of all loops is.
   */
  readonly otherLateMs?: () => number;
}

/** Event-loop lateness, evaluated per window. */
export class OverloadMonitor {
  readonly limitMs: number;
  readonly #histogram: DelayHistogram;
  readonly #resolutionMs: number;
  readonly #onChange: ((overloaded: boolean, lateMs: number) => void) | undefined;
  readonly #otherLateMs: (() => number) | undefined;
  #overloaded = false;
  #lateMs = 0;
  #closed = false;

  constructor(options: OverloadMonitorOptions = {}) {
    this.limitMs = options.limitMs ?? OVERLOAD_LIMIT_MS;
    this.#resolutionMs = options.resolutionMs ?? DELAY_RESOLUTION_MS;
    this.#onChange = options.onChange;
    this.#otherLateMs = options.otherLateMs;
    if (options.histogram !== undefined) {
      this.#histogram = options.histogram;
    } else {
      const h = monitorEventLoopDelay({ resolution: this.#resolutionMs });
      h.enable();
      this.#histogram = h;
    }
  }

  /** True while the last evaluated window was overloaded. */
  get overloaded(): boolean {
    return this.#overloaded;
  }

  /** Mean lateness of the last evaluated window, milliseconds. */
  get lateMs(): number {
    return this.#lateMs;
  }

  /**
   * Ends the current window: evaluates it and starts the next one. A window without samples
   * (just started) leaves the state as it was.
   */
  sample(): boolean {
    if (this.#closed) return this.#overloaded;
    const h = this.#histogram;
    if (h.count > 0 && Number.isFinite(h.mean)) {
      const other = this.#otherLateMs?.() ?? 0;
      this.#lateMs = Math.max(0, h.mean / 1e6 - this.#resolutionMs, other);
      const overloaded = this.#lateMs >= this.limitMs;
      if (overloaded !== this.#overloaded) {
        this.#overloaded = overloaded;
        this.#onChange?.(overloaded, this.#lateMs);
      }
    }
    h.reset();
    return this.#overloaded;
  }

  /** Stops the delay timer. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#histogram.disable();
  }
}
