/**
 * The media plane with media in worker threads (`--workers N`, N >= 1). The session manager, the
 * control sockets, recording, playback scheduling and notifications stay on the main thread; each
 * session's four sockets live on one worker, chosen as the one with the fewest streams, and every
 * packet is received, checked, counted and relayed there without involving the main thread.
 *
 * The main thread sees each worker stream through a WorkerStream proxy (worker-stream.ts), each
 * worker through a WorkerHost (worker-host.ts): settings it makes are posted to the worker; counters are read from shared memory the worker writes after each packet;
 * latching and recorded packets come back as messages, which sync() drains synchronously before
 * every command and every sweep, so replies and expiry are the same as with in-process media.
 */
import type { GlobalStats } from '../../util/stats.ts';
import {
  bindSendPairFrom,
  type MediaPlane,
  type MediaPlaneOptions,
  portTables,
  type PortTables,
  portUsageOf,
} from '../plane.ts';
import type { PortUsage } from '../port-allocator.ts';
import type { ActivitySink, MediaStream, SessionStreams } from '../stream.ts';
import type { OwnEndpoints } from '../own-endpoints.ts';
import { routeSource, type UdpPair } from '../udp-pair.ts';
import { WorkerHost, type WorkerHostMemory, type WorkerHostOptions } from './worker-host.ts';
import { H_LATE_MS, H_LOAD, readTotals } from './worker-protocol.ts';
import { WorkerStream } from './worker-stream.ts';
import type { Family } from '../../base/net.ts';

export type { WorkerHostMemory } from './worker-host.ts';
export { WorkerStream } from './worker-stream.ts';

/** Stream slots beyond four per port pair, for sessions whose bind is still in flight. */
const SLOT_HEADROOM = 256;

export interface WorkerMediaPlaneOptions extends Omit<MediaPlaneOptions, 'now'>, WorkerHostOptions {
  readonly workers: number;
}

export class WorkerMediaPlane implements MediaPlane {
  readonly #hosts: WorkerHost[] = [];
  readonly #stats: GlobalStats;
  readonly #allocators: PortTables;
  readonly #own: OwnEndpoints | undefined;
  /** The workers' received and relayed totals at the last sync. */
  #workerRcvd = 0;
  #workerRelayed = 0;

  constructor(options: WorkerMediaPlaneOptions) {
    this.#stats = options.stats;
    this.#own = options.own;
    this.#allocators = portTables(options);
    // Any one worker may end up with every session: each gets slots for the whole range.
    const slots = 4 * this.#allocators[4].capacity + SLOT_HEADROOM;
    for (let i = 0; i < options.workers; i += 1) {
      this.#hosts.push(new WorkerHost(i, slots, options));
    }
  }

  get capacity(): number {
    return this.#allocators[4].capacity;
  }

  portUsage(): Readonly<Record<Family, PortUsage>> {
    return portUsageOf(this.#allocators);
  }

  /** Number of media workers. */
  get workers(): number {
    return this.#hosts.length;
  }

  /**
   * Creates the worker threads, once; they start in the background (see WorkerHost.boot). The
   * daemon boots them in the second after its control sockets serve, so that a start answers
   * commands first, and the first session boots them at once.
   */
  boot(): void {
    for (const host of this.#hosts) host.boot();
  }

  /** Resolves once every worker runs, booting them first (tests, diagnostics). */
  async running(): Promise<void> {
    this.boot();
    await Promise.all(this.#hosts.map((h) => h.ready));
  }

  createStreams(activity: ActivitySink): SessionStreams<WorkerStream> {
    this.boot();
    let host: WorkerHost | undefined;
    for (const h of this.#hosts) {
      if (host === undefined || h.streams.size < host.streams.size) host = h;
    }
    const slots = host?.takeSlots();
    if (host === undefined || slots === undefined) throw new Error('no free media worker slot');
    const [rtp0, rtcp0, rtp1, rtcp1] = slots;
    host.post({ op: 'create', slots });
    return [
      {
        rtp: new WorkerStream(host, rtp0, 0, true, activity),
        rtcp: new WorkerStream(host, rtcp0, 0, false, activity),
      },
      {
        rtp: new WorkerStream(host, rtp1, 1, true, activity),
        rtcp: new WorkerStream(host, rtcp1, 1, false, activity),
      },
    ];
  }

  async bindPair(
    address: string,
    family: Family,
    rtpStream: MediaStream,
    rtcpStream: MediaStream,
  ): Promise<boolean> {
    if (!(rtpStream instanceof WorkerStream) || !(rtcpStream instanceof WorkerStream)) {
      throw new TypeError('a stream of another media plane');
    }
    const host = this.#hosts[rtpStream.hostIndex];
    if (host === undefined) throw new TypeError('a stream of another media plane');
    // The worker binds; the main thread's table learns the address for its own checks.
    this.#own?.mediaAddress(address);
    const lease = await this.#allocators[family].allocate(address, (candidate) =>
      host.bind(rtpStream.slot, rtcpStream.slot, family, address, candidate.port),
    );
    if (lease === undefined) return false;
    // The pair is free again once the worker closed both sockets (freed, or replaced by a new
    // pair: see WorkerStream.bound).
    let open = 2;
    const closed = (): void => {
      open -= 1;
      if (open === 0) lease.release();
    };
    rtpStream.bound(address, lease.port, family, closed);
    rtcpStream.bound(address, lease.port + 1, family, closed);
    return true;
  }

  bindSendPair(address: string, family: Family): Promise<UdpPair | undefined> {
    return bindSendPairFrom(this.#allocators[family], family, address, this.#own);
  }

  routeSource(remote: string, family: Family): Promise<string | undefined> {
    return routeSource(remote, family);
  }

  sync(sweep = false): void {
    let rcvd = 0;
    let relayed = 0;
    let discard = 0;
    let resizerIn = 0;
    let resizerOut = 0;
    let resizerDiscard = 0;
    for (const host of this.#hosts) {
      host.drain();
      const totals = readTotals(host.counters);
      rcvd += totals.npktsRcvd;
      relayed += totals.npktsRelayed;
      discard += totals.npktsDiscard;
      resizerIn += totals.npktsResizerIn;
      resizerOut += totals.npktsResizerOut;
      resizerDiscard += totals.npktsResizerDiscard;
      if (sweep) for (const stream of host.streams.values()) stream.takeActivity();
    }
    // Added as the change since the last sync: the kernel fast path adds its packets to the same
    // totals (docs/kernel.md).
    this.#stats.npktsRcvd += rcvd - this.#workerRcvd;
    this.#stats.npktsRelayed += relayed - this.#workerRelayed;
    this.#workerRcvd = rcvd;
    this.#workerRelayed = relayed;
    this.#stats.npktsDiscard = discard;
    this.#stats.npktsResizerIn = resizerIn;
    this.#stats.npktsResizerOut = resizerOut;
    this.#stats.npktsResizerDiscard = resizerDiscard;
  }

  /** Event-loop utilization of the busiest worker over its last second (0..1). */
  load(): number {
    return Math.max(0, ...this.#hosts.map((h) => h.counters[H_LOAD] ?? 0));
  }

  /** Mean event-loop lateness of the latest worker over its last second, milliseconds. */
  lateMs(): number {
    return Math.max(0, ...this.#hosts.map((h) => h.counters[H_LATE_MS] ?? 0));
  }

  async flush(): Promise<void> {
    await Promise.all(this.#hosts.map((h) => h.flush()));
  }

  /** Diagnostics: what each worker and its main-thread side hold (tests, benchmarks). */
  memory(): Promise<WorkerHostMemory[]> {
    return Promise.all(this.#hosts.map((h) => h.memory()));
  }

  /**
   * Shutdown, before the recorders close: every worker closes its sockets, and what it recorded
   * until then is handed to the recorders, so a recording holds every packet that was relayed.
   */
  async stopReceiving(): Promise<void> {
    await Promise.all(this.#hosts.map((h) => h.stopReceiving()));
    this.sync();
  }

  async close(): Promise<void> {
    await Promise.all(this.#hosts.map((host) => host.terminate()));
  }
}
