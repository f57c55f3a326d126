/**
 * A media plane without sockets for session-manager unit tests: real relay streams, ports from a
 * counter, bind failures on demand.
 */
import { createRelayStreams, localStream, MainThreadMedia } from '../../src/media/plane.ts';
import type { RelayStream } from '../../src/media/relay.ts';
import type { ActivitySink, MediaStream, SessionStreams } from '../../src/media/stream.ts';
import type { GlobalStats } from '../../src/util/stats.ts';
import type { Family } from '../../src/base/net.ts';
import type { PortUsage } from '../../src/media/port-allocator.ts';

export class FakeMedia extends MainThreadMedia {
  override readonly capacity = 1000;

  override portUsage(): Readonly<Record<Family, PortUsage>> {
    const usage = { capacity: this.capacity, inUse: 0, leastFree: this.capacity };
    return { 4: usage, 6: usage };
  }
  nextPort = 30000;
  failBinds = false;
  readonly #stats: GlobalStats;
  readonly #now: () => number;

  constructor(stats: GlobalStats, now: () => number = () => 0) {
    super();
    this.#stats = stats;
    this.#now = now;
  }

  override createStreams(activity: ActivitySink): SessionStreams<RelayStream> {
    return createRelayStreams({ stats: this.#stats, now: this.#now, sendTwice: false }, activity);
  }

  override bindPair(
    _address: string,
    _family: 4 | 6,
    rtpStream: MediaStream,
    rtcpStream: MediaStream,
  ): Promise<boolean> {
    if (this.failBinds) return Promise.resolve(false);
    const rtp = localStream(rtpStream);
    const rtcp = localStream(rtcpStream);
    rtp.localPort = this.nextPort;
    rtcp.localPort = this.nextPort + 1;
    this.nextPort += 2;
    return Promise.resolve(true);
  }

  override routeSource(): Promise<string | undefined> {
    return Promise.resolve('127.0.0.1');
  }
}
