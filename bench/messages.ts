/** Messages between the benchmark driver (bench/relay.ts) and the load generator (bench/generator.ts). */
import type { LatencySummary } from './histogram.ts';

/** Where the peers and the daemon are (127.0.0.1 for all on loopback; bench/netns.ts otherwise). */
export interface BenchAddresses {
  /** The daemon's control socket address and its media address (`-l`). */
  readonly relay: string;
  /** Address of the caller peers (the `U` address), also the control clients' own address. */
  readonly caller: string;
  /** Address of the callee peers (the `L` address). */
  readonly callee: string;
}

export interface GeneratorConfig {
  readonly controlPort: number;
  readonly addresses: BenchAddresses;
  /** Sessions to set up with U and L; each has a caller and a callee peer socket. */
  readonly sessions: number;
  /** RTP packets per second per direction per session (50 = 20 ms packets). */
  readonly rate: number;
  /** Sub-slots per tick: stream j sends at offset (j mod slots) / slots of the tick. */
  readonly slots: number;
  readonly warmupS: number;
  readonly durationS: number;
  /** Seconds of the idle direct-loopback baseline, sent before the sessions are set up. */
  readonly baselineIdleS: number;
  /** U/L commands in flight at once during setup. */
  readonly setupConcurrency: number;
  /** Appended to every tag (`;1` for relays that need a media number, such as rtpengine). */
  readonly tagSuffix: string;
  /** SO_RCVBUF asked for on every peer socket. */
  readonly recvBufferBytes: number;
  /** Wall-clock limit of the whole generator run in ms; it exits with an error past it. */
  readonly deadlineMs: number;
  /**
   * Path of the compiled native generator (bench/rtpgen.c) that runs the packet path, or null to
   * run it in the Node generator process itself.
   */
  readonly native: string | null;
  /**
   * Native generator: `spin` busy-polls before each send (the relay's sends find a running
   * receiver), `sleep` sleeps until the next send is due (its CPU time is then its work alone).
   */
  readonly poll: 'spin' | 'sleep';
  /**
   * Native generator: before the warm-up, send one packet per stream a second (the parties
   * latch) until the driver sends `measure` (it waits for the kernel to take the streams over),
   * for at most this long (s); 0 = the warm-up follows the setup at once.
   */
  readonly holdMaxS: number;
  /**
   * Native generator: `ports`, two connected sockets per session (one system call per packet);
   * `shared`, one caller and one callee socket for all sessions, sent and read in batches.
   */
  readonly endpoints: 'ports' | 'shared';
}

export interface ScheduleStats {
  /** Slot sends made in the measured window. */
  readonly slotSends: number;
  /** Of those, how many were made more than one tick (1000/rate ms) after their scheduled time. */
  readonly slotsLateByTick: number;
  /** Largest delay between a slot's scheduled time and its send, in the measured window (ms). */
  readonly maxLateMs: number;
  /** Mean of that delay (ms). */
  readonly meanLateMs: number;
}

export interface GeneratorResult {
  /**
   * Which generator ran the packets: `native` sends every stream at its own instant and takes
   * arrival times from the kernel (SO_TIMESTAMPNS); `node` sends in slots from its event loop and
   * takes arrival times when the receive callback runs.
   */
  readonly generator: 'native' | 'node';
  readonly sessions: number;
  readonly relayStreams: number;
  readonly packetBytes: number;
  readonly setup: {
    readonly ms: number;
    readonly commands: number;
    readonly retransmissions: number;
  };
  /** Generator wall time between the first and the last measured tick (ms). */
  readonly windowMs: number;
  /** Relay streams, packets sent in the measured window. */
  readonly sent: number;
  /** Relay streams, measured packets received by the peers (duplicates not counted). */
  readonly received: number;
  readonly duplicates: number;
  /** Packets that arrived on a peer that was not their destination (should be 0). */
  readonly misrouted: number;
  /** Packets that arrived with a lower sequence than one already seen on the same stream. */
  readonly reordered: number;
  readonly streamsWithLoss: number;
  readonly worstStreamLossPct: number;
  readonly latency: LatencySummary;
  readonly baselineIdle: LatencySummary;
  readonly baselineLoad: LatencySummary & { readonly sent: number };
  readonly schedule: ScheduleStats;
  readonly cpu: { readonly userS: number; readonly systemS: number };
  /** Event-loop utilisation over the measured window (0..1); null for the native generator. */
  readonly elu: number | null;
  /** SO_RCVBUF the kernel granted (Linux doubles the value asked for, capped by rmem_max). */
  readonly peerRecvBuffer: number;
  /**
   * Measured packets its own sockets refused (send buffer full): neither offered nor lost, they
   * mean the generator, or the CPU that takes its packets, did not keep up.
   */
  readonly sendErrors: number;
  /** How long the generator held before its warm-up, waiting for `measure` (ms; 0: no hold). */
  readonly heldMs: number;
  /** The hold ended on its bound, not on `measure`. */
  readonly holdTimedOut: boolean;
  /** Time series of the load phase, in buckets of bucketMs from originEpochMs (wall clock, ms). */
  readonly trace: {
    readonly originEpochMs: number;
    readonly warmupEndEpochMs: number;
    readonly bucketMs: number;
    readonly sent: readonly number[];
    readonly received: readonly number[];
    readonly maxLatencyMs: readonly number[];
    readonly maxLateMs: readonly number[];
  };
}

export type ToGenerator =
  | { readonly type: 'start'; readonly config: GeneratorConfig }
  /** End the hold: the warm-up, then the measured window, may start. */
  | { readonly type: 'measure' };

export type FromGenerator =
  | { readonly type: 'setup-done'; readonly ms: number }
  /** The generator holds before its warm-up (GeneratorConfig.holdMaxS) until `measure`. */
  | { readonly type: 'holding' }
  | { readonly type: 'measure-start' }
  | { readonly type: 'measure-end' }
  | { readonly type: 'result'; readonly result: GeneratorResult }
  | { readonly type: 'error'; readonly message: string };
