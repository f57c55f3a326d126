/**
 * A SessionManager for unit tests over fakes: one loopback address, TTLs of 60 s, a silent
 * logger, no recorders, a socket-less media plane (test/helpers/fake-media.ts) and a clock the
 * test moves by hand. Options and deps override what a test needs to differ.
 */
import pino from 'pino';
import type { MediaPlane } from '../../src/media/plane.ts';
import {
  type ManagerDeps,
  type ManagerOptions,
  SessionManager,
} from '../../src/session/manager.ts';
import { GlobalStats } from '../../src/util/stats.ts';
import { FakeMedia } from './fake-media.ts';

/** What {@link makeManager} takes; everything is optional. */
export interface MakeManagerOptions<M extends MediaPlane> {
  /** Manager options replacing the defaults (one 127.0.0.1 address, `-T 60 -W 60`). */
  readonly options?: Partial<ManagerOptions>;
  /** Extra deps (players, notifier, marker, overloaded, ...) or replacements of the defaults. */
  readonly deps?: Partial<Omit<ManagerDeps, 'media' | 'stats' | 'now' | 'onDrained'>>;
  /** The media plane; a {@link FakeMedia} on the shared stats and clock by default. */
  readonly media?: (stats: GlobalStats, now: () => number) => M;
  /** The clock's start, in ms; 0 by default. */
  readonly start?: number;
}

/** A manager, its fakes, and the hand-moved clock. */
export interface ManagerFixture<M extends MediaPlane> {
  readonly manager: SessionManager;
  readonly stats: GlobalStats;
  readonly media: M;
  /** The clock's current value, in ms. */
  readonly now: () => number;
  /** Sets the clock without running the sweep. */
  readonly setNow: (ms: number) => void;
  /** Moves the clock on, sweeping once per whole second crossed (the daemon's 1 s tick). */
  readonly advance: (ms: number) => void;
  /** How many times the manager reported it drained. */
  readonly drained: () => number;
}

/** Builds a SessionManager over fakes; see {@link MakeManagerOptions} for what can differ. */
export function makeManager<M extends MediaPlane = FakeMedia>(
  setup: MakeManagerOptions<M> = {},
): ManagerFixture<M> {
  let now = setup.start ?? 0;
  let drained = 0;
  const clock = () => now;
  const stats = new GlobalStats();
  const media = setup.media?.(stats, clock) ?? (new FakeMedia(stats, clock) as unknown as M);
  const manager = new SessionManager(
    {
      addresses: [{ address: '127.0.0.1', family: 4 }],
      bridge: false,
      ttl: 60,
      setupTtl: 60,
      independentTtl: false,
      defaultAsymmetric: false,
      recordAll: false,
      pcap: false,
      ...setup.options,
    },
    {
      logger: pino({ level: 'silent' }),
      recorders: undefined,
      ...setup.deps,
      media,
      stats,
      now: clock,
      onDrained: () => {
        drained += 1;
      },
    },
  );
  return {
    manager,
    stats,
    media,
    now: clock,
    setNow: (ms) => {
      now = ms;
    },
    advance: (ms) => {
      const before = Math.floor(now / 1000);
      now += ms;
      for (let tick = before; tick < Math.floor(now / 1000); tick += 1) manager.sweep();
    },
    drained: () => drained,
  };
}
