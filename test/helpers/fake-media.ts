/**
 * A media plane without sockets for session-manager unit tests: real relay streams, ports from a
 * counter, bind failures on demand.
 */
import type { MediaPlane } from '../../src/media/plane.ts';
import { type ActivitySink, RelayStream } from '../../src/media/relay.ts';
import type { GlobalStats } from '../../src/util/stats.ts';

export class FakeMedia implements MediaPlane {
  readonly capacity = 1000;
  nextPort = 30000;
  failBinds = false;
  readonly #stats: GlobalStats;
  readonly #now: () => number;

  constructor(stats: GlobalStats, now: () => number = () => 0) {
    this.#stats = stats;
    this.#now = now;
  }

  createStream(leg: 0 | 1, isRtp: boolean, activity: ActivitySink): RelayStream {
    return new RelayStream(
      leg,
      isRtp,
      { stats: this.#stats, now: this.#now, sendTwice: false },
      activity,
    );
  }

  bindPair(
    _address: string,
    _family: 4 | 6,
    rtp: RelayStream,
    rtcp: RelayStream,
  ): Promise<boolean> {
    if (this.failBinds) return Promise.resolve(false);
    rtp.localPort = this.nextPort;
    rtcp.localPort = this.nextPort + 1;
    this.nextPort += 2;
    return Promise.resolve(true);
  }

  routeSource(): Promise<string | undefined> {
    return Promise.resolve('127.0.0.1');
  }
}
