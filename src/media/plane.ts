/**
 * The media plane as the session manager sees it: it creates relay streams and binds port pairs
 * for them. This is the seam behind which media can move (worker threads, a kernel fast path)
 * without the session manager changing.
 */
import type { GlobalStats } from '../util/stats.ts';
import { PortAllocator } from './port-allocator.ts';
import { type ActivitySink, RelayStream, type RelaySettings } from './relay.ts';
import { routeSource, tryBindPair, type UdpPair } from './udp-pair.ts';

/** Port range and behaviour of the media plane. */
export interface MediaPlaneOptions {
  readonly portMin: number;
  readonly portMax: number;
  readonly sequentialPorts: boolean;
  readonly sendTwice: boolean;
  readonly stats: GlobalStats;
  readonly now: () => number;
}

/** What the session manager needs from the media plane. */
export interface MediaPlane {
  createStream(leg: 0 | 1, isRtp: boolean, activity: ActivitySink): RelayStream;
  /**
   * Binds a fresh RTP/RTCP pair on `address` and attaches it to the two streams (closing any
   * previous sockets). Resolves false when no pair could be bound.
   */
  bindPair(address: string, family: 4 | 6, rtp: RelayStream, rtcp: RelayStream): Promise<boolean>;
  /**
   * Binds a fresh RTP/RTCP pair on `address` from the media range for a sender that is not a
   * relay stream (a remote copy, protocol.md 6.6). The caller owns the sockets and closes them;
   * an `'error'` listener is attached. Resolves undefined when no pair could be bound. Optional
   * so test doubles need not implement it (remote copy then fails).
   */
  bindSendPair?(address: string, family: 4 | 6): Promise<UdpPair | undefined>;
  /** The local address the kernel would use to reach `remote`. */
  routeSource(remote: string, family: 4 | 6): Promise<string | undefined>;
  /** Port pairs the range holds. */
  readonly capacity: number;
}

/** The in-process media plane: node:dgram sockets on the main event loop. */
export class UdpMediaPlane implements MediaPlane {
  readonly #settings: RelaySettings;
  readonly #allocators: { readonly 4: PortAllocator; readonly 6: PortAllocator };

  constructor(options: MediaPlaneOptions) {
    this.#settings = { stats: options.stats, now: options.now, sendTwice: options.sendTwice };
    const make = (): PortAllocator =>
      new PortAllocator(options.portMin, options.portMax, options.sequentialPorts);
    // IPv4 and IPv6 walk separate tables over the same range, as in the reference.
    this.#allocators = { 4: make(), 6: make() };
  }

  get capacity(): number {
    return this.#allocators[4].capacity;
  }

  createStream(leg: 0 | 1, isRtp: boolean, activity: ActivitySink): RelayStream {
    return new RelayStream(leg, isRtp, this.#settings, activity);
  }

  async bindPair(
    address: string,
    family: 4 | 6,
    rtp: RelayStream,
    rtcp: RelayStream,
  ): Promise<boolean> {
    const port = await this.#allocators[family].allocate(async (candidate) => {
      const result = await tryBindPair(family, address, candidate, (pair) => {
        rtp.attach(pair.rtp, pair.address, pair.port, family);
        rtcp.attach(pair.rtcp, pair.address, pair.port + 1, family);
      });
      return result.outcome;
    });
    return port !== undefined;
  }

  async bindSendPair(address: string, family: 4 | 6): Promise<UdpPair | undefined> {
    let bound: UdpPair | undefined;
    await this.#allocators[family].allocate(async (candidate) => {
      const result = await tryBindPair(family, address, candidate, (pair) => {
        const ignore = (): void => undefined;
        pair.rtp.on('error', ignore);
        pair.rtcp.on('error', ignore);
        bound = pair;
      });
      return result.outcome;
    });
    return bound;
  }

  routeSource(remote: string, family: 4 | 6): Promise<string | undefined> {
    return routeSource(remote, family);
  }
}
