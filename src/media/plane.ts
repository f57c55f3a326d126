/**
 * The media plane as the session manager sees it: it creates relay streams and binds port pairs
 * for them. This is the seam behind which media can move (worker threads, a kernel fast path)
 * without the session manager changing.
 */
import type { GlobalStats } from '../util/stats.ts';
import type { OwnEndpoints } from './own-endpoints.ts';
import { PortAllocator, type PortLease, type PortUsage } from './port-allocator.ts';
import {
  CONNECTION_CHECK_MS,
  Connections,
  HeldPackets,
  RelayStream,
  type RelaySettings,
  wireSession,
} from './relay.ts';
import type { ActivitySink, MediaStream, SessionStreams } from './stream.ts';
import { routeSource, tryBindPair, type UdpPair } from './udp-pair.ts';
import type { Family } from '../base/net.ts';
import type { Side } from '../base/side.ts';

/** Port range and behaviour of the media plane. */
export interface MediaPlaneOptions {
  readonly portMin: number;
  readonly portMax: number;
  readonly sequentialPorts: boolean;
  readonly sendTwice: boolean;
  /** Connect the sockets of latched symmetric RTP legs (relay.ts, "Connected sockets"). */
  readonly connect: boolean;
  /** Strict media sources (relay.ts); false with `--no_strict_source`. */
  readonly strictSource: boolean;
  /** The daemon's own endpoints: media ports are entered as they are bound. */
  readonly own?: OwnEndpoints;
  readonly stats: GlobalStats;
  readonly now: () => number;
}

/** What the session manager needs from the media plane. */
interface SessionMedia {
  /** The four streams of a new session, wired to relay into each other. */
  createStreams(activity: ActivitySink): SessionStreams;
  /**
   * Binds a fresh RTP/RTCP pair on `address` and attaches it to the two streams of a leg (closing
   * any previous sockets). Resolves false when no pair could be bound.
   */
  bindPair(address: string, family: Family, rtp: MediaStream, rtcp: MediaStream): Promise<boolean>;
  /**
   * Binds a fresh RTP/RTCP pair on `address` from the media range for a sender that is not a
   * relay stream (a remote copy, docs/protocol.md 6.6). The caller owns the sockets and closes them;
   * an `'error'` listener is attached. Resolves undefined when no pair could be bound. Optional
   * so test doubles need not implement it (remote copy then fails).
   */
  bindSendPair?(address: string, family: Family): Promise<UdpPair | undefined>;
  /** The local address the kernel would use to reach `remote`. */
  routeSource(remote: string, family: Family): Promise<string | undefined>;
  /** Port pairs the range holds. */
  readonly capacity: number;
}

/**
 * The media plane as the daemon drives it: what the session manager needs, and the start, the
 * per-command and per-sweep synchronisation, the load figures and the shutdown. Total: the
 * in-process plane implements what concerns only media workers as no-ops.
 */
export interface MediaPlane extends SessionMedia {
  /** Number of media worker threads; 0 when media runs on the main thread. */
  readonly workers: number;
  /**
   * Starts the media workers in the background, once (the first session does it, or the daemon's
   * warm-up); what is posted to them meanwhile waits in their ports.
   */
  boot(): void;
  /** Resolves once media can be relayed, booting the workers first if needed. */
  running(): Promise<void>;
  /**
   * Brings the streams' main-thread view up to date with what media workers did so far (latching,
   * counters); run before each command, and with `sweep` before each idle sweep (which also hands
   * over packet activity).
   */
  sync(sweep?: boolean): void;
  /**
   * Resolves once every socket released so far is closed (media workers close them
   * asynchronously), so that a D is answered only when its ports are free, as in the reference.
   */
  flush(): Promise<void>;
  /**
   * Shutdown, before the sessions close: media workers close their sockets and hand over every
   * recorded packet they still hold.
   */
  stopReceiving(): Promise<void>;
  /** Stops the plane's timers and the media workers, if any; sockets closed with their sessions. */
  close(): Promise<void>;
  /** Event-loop utilization of the busiest media worker (0..1); 0 without workers. */
  load(): number;
  /** Mean event-loop lateness of the latest media worker, ms; 0 without workers. */
  lateMs(): number;
  /** How much of the port range each address family uses. */
  portUsage(): Readonly<Record<Family, PortUsage>>;
}

/** The port tables of a media plane, one per address family. */
export interface PortTables {
  readonly 4: PortAllocator;
  readonly 6: PortAllocator;
}

/** The usage of a plane's port tables. */
export function portUsageOf(tables: PortTables): Readonly<Record<Family, PortUsage>> {
  return { 4: tables[4].usage(), 6: tables[6].usage() };
}

/** IPv4 and IPv6 have separate tables over the same range, as in the reference. */
export function portTables(
  options: Pick<MediaPlaneOptions, 'portMin' | 'portMax' | 'sequentialPorts'>,
): PortTables {
  const make = (): PortAllocator =>
    new PortAllocator({
      min: options.portMin,
      max: options.portMax,
      sequential: options.sequentialPorts,
    });
  return { 4: make(), 6: make() };
}

/** Releases `lease` once both sockets of `pair` are closed, by whoever closes them. */
function releaseWhenClosed(pair: UdpPair, lease: PortLease): void {
  let open = 2;
  const closed = (): void => {
    open -= 1;
    if (open === 0) lease.release();
  };
  pair.rtp.once('close', closed);
  pair.rtcp.once('close', closed);
}

/** A relay stream of this thread, or an error naming the mix-up. */
export function localStream(stream: MediaStream): RelayStream {
  if (stream instanceof RelayStream) return stream;
  throw new TypeError('a stream of another media plane');
}

/** The four streams of a session on this thread, wired. */
export function createRelayStreams(
  settings: RelaySettings,
  activity: ActivitySink,
): SessionStreams<RelayStream> {
  const leg = (index: Side): { rtp: RelayStream; rtcp: RelayStream } => ({
    rtp: new RelayStream(index, true, settings, activity),
    rtcp: new RelayStream(index, false, settings, activity),
  });
  const streams = [leg(0), leg(1)] as const;
  wireSession(streams);
  return streams;
}

/**
 * What every media plane without workers does besides binding and relaying: nothing to start,
 * nothing to synchronise, sockets that close at once. The in-process plane and test doubles
 * extend it.
 */
export abstract class MainThreadMedia implements MediaPlane {
  abstract readonly capacity: number;
  abstract portUsage(): Readonly<Record<Family, PortUsage>>;
  abstract createStreams(activity: ActivitySink): SessionStreams;
  abstract bindPair(
    address: string,
    family: Family,
    rtp: MediaStream,
    rtcp: MediaStream,
  ): Promise<boolean>;
  abstract routeSource(remote: string, family: Family): Promise<string | undefined>;

  /** Media runs on the main thread: no worker. */
  readonly workers: number = 0;

  boot(): void {
    // Nothing to start: the sockets are bound as sessions need them.
  }

  running(): Promise<void> {
    return Promise.resolve();
  }

  sync(): void {
    // The streams are the main thread's own: always up to date.
  }

  /** Sockets close synchronously here: a released pair is free at once. */
  flush(): Promise<void> {
    return Promise.resolve();
  }

  /** Sockets close with their sessions, and recorders get packets as they arrive. */
  stopReceiving(): Promise<void> {
    return Promise.resolve();
  }

  /** The main thread's load is measured by the daemon itself. */
  load(): number {
    return 0;
  }

  lateMs(): number {
    return 0;
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** The in-process media plane: node:dgram sockets on the main event loop. */
export class UdpMediaPlane extends MainThreadMedia {
  readonly #settings: RelaySettings;
  readonly #allocators: PortTables;
  readonly #own: OwnEndpoints | undefined;
  /** Runs the connection checks; undefined with `--no_connect_media`. */
  readonly #connectionTimer: NodeJS.Timeout | undefined;
  /** Drains the re-packetizers that hold packets (`z`). */
  readonly #held = new HeldPackets();

  constructor(options: MediaPlaneOptions) {
    super();
    const connections = options.connect ? new Connections() : undefined;
    this.#settings = {
      stats: options.stats,
      now: options.now,
      sendTwice: options.sendTwice,
      held: this.#held,
      strictSource: options.strictSource,
      ...(options.own === undefined ? {} : { own: options.own }),
      ...(connections === undefined ? {} : { connections }),
    };
    this.#own = options.own;
    this.#connectionTimer =
      connections === undefined
        ? undefined
        : setInterval(() => {
            connections.check();
          }, CONNECTION_CHECK_MS);
    this.#connectionTimer?.unref();
    this.#allocators = portTables(options);
  }

  get capacity(): number {
    return this.#allocators[4].capacity;
  }

  portUsage(): Readonly<Record<Family, PortUsage>> {
    return portUsageOf(this.#allocators);
  }

  createStreams(activity: ActivitySink): SessionStreams<RelayStream> {
    return createRelayStreams(this.#settings, activity);
  }

  async bindPair(
    address: string,
    family: Family,
    rtpStream: MediaStream,
    rtcpStream: MediaStream,
  ): Promise<boolean> {
    const rtp = localStream(rtpStream);
    const rtcp = localStream(rtcpStream);
    return allocatePair(this.#allocators[family], family, address, this.#own, (pair) => {
      rtp.attach(pair.rtp, pair.address, pair.port, family);
      rtcp.attach(pair.rtcp, pair.address, pair.port + 1, family);
    });
  }

  bindSendPair(address: string, family: Family): Promise<UdpPair | undefined> {
    return bindSendPairFrom(this.#allocators[family], family, address, this.#own);
  }

  routeSource(remote: string, family: Family): Promise<string | undefined> {
    return routeSource(remote, family);
  }

  override close(): Promise<void> {
    clearInterval(this.#connectionTimer);
    this.#held.close();
    return Promise.resolve();
  }
}

/**
 * Binds a pair from `allocator` for a sender that is not a relay stream (a remote copy); the
 * caller owns the sockets, and the pair is free again once it closed both. An 'error' listener is
 * attached.
 */
export async function bindSendPairFrom(
  allocator: PortAllocator,
  family: Family,
  address: string,
  own?: OwnEndpoints,
): Promise<UdpPair | undefined> {
  let bound: UdpPair | undefined;
  await allocatePair(allocator, family, address, own, (pair) => {
    const ignore = (): void => undefined;
    pair.rtp.on('error', ignore);
    pair.rtcp.on('error', ignore);
    bound = pair;
  });
  return bound;
}

/**
 * Takes a free pair of `allocator` on `address` and binds it on the main thread, trying the next
 * pair when one is busy; `attach` gets the bound sockets, and the pair is free again once both are
 * closed. Resolves whether a pair was bound.
 */
async function allocatePair(
  allocator: PortAllocator,
  family: Family,
  address: string,
  own: OwnEndpoints | undefined,
  attach: (pair: UdpPair) => void,
): Promise<boolean> {
  const lease = await allocator.allocate(address, async (candidate) => {
    const result = await tryBindPair(
      family,
      address,
      candidate.port,
      (pair) => {
        releaseWhenClosed(pair, candidate);
        attach(pair);
      },
      own,
    );
    return result.outcome;
  });
  return lease !== undefined;
}
