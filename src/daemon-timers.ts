/**
 * The daemon's periodic work: the idle sweep once a second, and the rates (pps_in, the load
 * figure, the overload sample) once a second, both after taking in what media workers did.
 */
import { performance } from 'node:perf_hooks';
import type { MediaPlane } from './media/plane.ts';
import type { GlobalStats } from './util/stats.ts';

/**
 * The idle sweep's tick: once a second, as the reference's (sippy/rtpproxy src/rtpp_proc_ttl.c),
 * since the counters count whole ticks.
 */
const SWEEP_INTERVAL_MS = 1000;
/** How often pps_in and the load figure are recomputed. */
const RATE_INTERVAL_MS = 1000;

/** What the periodic work reads and drives. */
export interface DaemonTimerTargets {
  readonly media: Pick<MediaPlane, 'sync' | 'load'>;
  readonly stats: GlobalStats;
  /** The session manager's idle sweep. */
  sweep(): void;
  /** The busiest event loop's utilization over the last second (0..1), for `Il`. */
  setLoad(load: number): void;
  /** `--overload_prot`'s sample, if it runs. */
  sample?(): void;
}

/** Starts the sweep and the rates; the timers are unref'd, and the caller clears them. */
export function startDaemonTimers(t: DaemonTimerTargets): NodeJS.Timeout[] {
  const sweep = setInterval(() => {
    t.media.sync(true);
    t.sweep();
  }, SWEEP_INTERVAL_MS);
  let lastPackets = t.stats.npktsRcvd;
  let lastElu = performance.eventLoopUtilization();
  const rates = setInterval(() => {
    t.media.sync();
    t.stats.ppsIn = t.stats.npktsRcvd - lastPackets;
    lastPackets = t.stats.npktsRcvd;
    const elu = performance.eventLoopUtilization();
    const mainLoad = performance.eventLoopUtilization(elu, lastElu).utilization;
    // The busiest event loop: the main thread's, or a media worker's.
    t.setLoad(Math.max(mainLoad, t.media.load()));
    lastElu = elu;
    t.sample?.();
  }, RATE_INTERVAL_MS);
  sweep.unref();
  rates.unref();
  return [sweep, rates];
}
