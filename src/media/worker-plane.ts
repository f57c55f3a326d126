/**
 * The media plane with media in worker threads (`--workers N`, N >= 1). The session manager, the
 * control sockets, recording, playback scheduling and notifications stay on the main thread; each
 * session's four sockets live on one worker, chosen as the one with the fewest streams, and every
 * packet is received, checked, counted and relayed there without involving the main thread.
 *
 * The main thread sees each worker stream through a WorkerStream proxy: settings it makes are
 * posted to the worker; counters are read from shared memory the worker writes after each packet;
 * latching and recorded packets come back as messages, which sync() drains synchronously before
 * every command and every sweep, so replies and expiry are the same as with in-process media.
 */
import {
  MessageChannel,
  type MessagePort,
  receiveMessageOnPort,
  Worker,
} from 'node:worker_threads';
import type { GlobalStats } from '../util/stats.ts';
import {
  bindSendPairFrom,
  type MediaPlane,
  type MediaPlaneOptions,
  portTables,
  type PortTables,
} from './plane.ts';
import type {
  ActivitySink,
  MediaStream,
  PacketTap,
  RtpStatsView,
  SendSocket,
  SessionStreams,
} from './stream.ts';
import { InFlight } from '../util/in-flight.ts';
import type { OwnEndpoints } from './own-endpoints.ts';
import { routeSource, type UdpPair } from './udp-pair.ts';
import {
  type FromWorker,
  H_LATE_MS,
  H_LOAD,
  readTotals,
  sharedSizes,
  SlotCounters,
  type ToWorker,
  type WorkerInit,
  type WorkerMemory,
} from './worker-protocol.ts';
import type { Family } from '../base/net.ts';
import type { Side } from '../base/side.ts';

/** How long a worker may take to load and report ready. */
const START_TIMEOUT_MS = 20_000;
/** V8 young generation of a media worker, MiB. */
const YOUNG_GENERATION_MB = 48;
/** Stream slots beyond four per port pair, for sessions whose bind is still in flight. */
const SLOT_HEADROOM = 256;
/** How long shutdown waits for a worker to close its sockets and hand over what it recorded. */
const STOP_TIMEOUT_MS = 2_000;
/**
 * The worker's module. Bundled (dist/, scripts/build.mjs), this code is in dist/rtpproxy.cjs and
 * the worker's bundle is beside it. Run from the TypeScript sources, worker threads do not inherit the loader the main thread
 * registered (bin/rtpproxy.js), so a small JavaScript entry registers tsx before loading it.
 */
const WORKER_ENTRY = import.meta.url.endsWith('.ts')
  ? new URL('./media-worker-boot.js', import.meta.url)
  : new URL('./media-worker.cjs', import.meta.url);

export interface WorkerMediaPlaneOptions extends Omit<MediaPlaneOptions, 'now'> {
  readonly workers: number;
  /** A worker failed or exited: media can no longer be relayed faithfully. */
  readonly onFatal: (err: Error) => void;
}

/** What {@link WorkerMediaPlane.memory} reports for one worker. */
export interface WorkerHostMemory {
  /** Main-thread side: stream proxies, free slots, binds awaiting an answer. */
  readonly main: { readonly streams: number; readonly freeSlots: number; readonly binds: number };
  /** The worker's own figures; undefined when it is gone. */
  readonly worker: WorkerMemory | undefined;
}

/** One media worker as the main thread sees it. */
class WorkerHost {
  readonly index: number;
  /** The thread, once {@link boot} created it. */
  #worker: Worker | undefined;
  readonly port: MessagePort;
  /** What the thread is created with; the worker's end of the port is in it. */
  readonly #init: WorkerInit;
  readonly #onFatal: (err: Error) => void;
  readonly counters: Float64Array;
  readonly activity: Int32Array;
  readonly #mailbox: Int32Array;
  /** Live streams (not yet freed by the worker), by slot. */
  readonly streams = new Map<number, WorkerStream>();
  readonly #free: number[] = [];
  readonly #binds = new Map<number, (outcome: 'ok' | 'busy' | 'fatal') => void>();
  readonly #memory = new Map<number, (memory: WorkerMemory | undefined) => void>();
  #nextReq = 1;
  /** Streams freed but not yet confirmed closed by the worker. */
  readonly #freeing = new InFlight();
  readonly ready: Promise<void>;
  #onReady: () => void = () => undefined;
  /** Resolves the wait of stopReceiving(); called on 'stopped' or when the worker is gone. */
  #onStopped: (() => void) | undefined;
  #gone = false;
  stopping = false;

  constructor(
    index: number,
    slots: number,
    options: Pick<
      WorkerMediaPlaneOptions,
      'sendTwice' | 'connect' | 'strictSource' | 'own' | 'onFatal'
    >,
  ) {
    const { sendTwice, connect, strictSource, own, onFatal } = options;
    this.index = index;
    this.#onFatal = onFatal;
    const sizes = sharedSizes(slots);
    const countersBuffer = new SharedArrayBuffer(sizes.counters);
    const activityBuffer = new SharedArrayBuffer(sizes.activity);
    this.counters = new Float64Array(countersBuffer);
    this.activity = new Int32Array(activityBuffer);
    const mailboxBuffer = new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT);
    this.#mailbox = new Int32Array(mailboxBuffer);
    for (let slot = slots - 1; slot >= 0; slot -= 1) this.#free.push(slot);
    const channel = new MessageChannel();
    this.port = channel.port1;
    this.#init = {
      counters: countersBuffer,
      activity: activityBuffer,
      mailbox: mailboxBuffer,
      sendTwice,
      connect,
      strictSource,
      ...(own === undefined
        ? {}
        : { own: own.buffer, locals: own.locals, mediaAddresses: own.mediaAddresses }),
      port: channel.port2,
    };
    this.ready = new Promise((resolve) => {
      this.#onReady = resolve;
    });
    this.port.on('message', (msg: FromWorker) => {
      this.handle(msg);
    });
  }

  /** True once the thread was created. */
  get booted(): boolean {
    return this.#worker !== undefined;
  }

  /**
   * Creates the thread, once. Until it runs, what the main thread posts waits in the port, so
   * callers never wait for this. A worker that fails to start, or fails or exits later, fails
   * the daemon (onFatal): media can no longer be relayed faithfully.
   */
  boot(): void {
    if (this.#worker !== undefined || this.stopping) return;
    const index = this.index;
    const worker = new Worker(WORKER_ENTRY, {
      workerData: this.#init,
      transferList: [this.#init.port],
      name: `media-${String(index)}`,
      // Every packet allocates a Buffer and its sender's address: a young generation as large as
      // the main thread's keeps scavenges rare (about 2 us less CPU per packet at 50k pps).
      resourceLimits: { maxYoungGenerationSizeMb: YOUNG_GENERATION_MB },
    });
    this.#worker = worker;
    const timer = setTimeout(() => {
      this.#abandon();
      this.#onFatal(
        new Error(
          `media worker ${String(index)} did not start within ${String(START_TIMEOUT_MS)} ms`,
        ),
      );
    }, START_TIMEOUT_MS);
    timer.unref();
    void this.ready.then(() => {
      clearTimeout(timer);
    });
    worker.on('error', (err) => {
      clearTimeout(timer);
      this.#abandon();
      this.#onFatal(new Error(`media worker ${String(index)} failed: ${err.message}`));
    });
    worker.on('exit', (code) => {
      clearTimeout(timer);
      this.#abandon();
      if (!this.stopping) {
        this.#onFatal(new Error(`media worker ${String(index)} exited (${String(code)})`));
      }
    });
  }

  /** Shutdown: ends the thread (if it was ever created) and the main thread's end of the port. */
  async terminate(): Promise<void> {
    this.stopping = true;
    this.port.close();
    await this.#worker?.terminate();
  }

  /** The worker is gone: nothing it was asked will be answered; nobody may wait for it. */
  #abandon(): void {
    this.#gone = true;
    this.#onStopped?.();
    for (const resolve of this.#binds.values()) resolve('fatal');
    this.#binds.clear();
    for (const resolve of this.#memory.values()) resolve(undefined);
    this.#memory.clear();
    this.#freeing.abandon();
  }

  post(msg: ToWorker): void {
    this.port.postMessage(msg);
    Atomics.store(this.#mailbox, 0, 1);
  }

  /** Closes a stream's socket on the worker; flush() waits for it. */
  free(slot: number): void {
    this.#freeing.begin();
    this.post({ op: 'free', slot });
  }

  /** Resolves once every stream freed so far has its socket closed. */
  flush(): Promise<void> {
    return this.#freeing.idle();
  }

  /**
   * Shutdown: the worker closes every socket; resolves once its answer arrived, and with it every
   * recorded packet it posted before (a port delivers in order), or after STOP_TIMEOUT_MS.
   */
  stopReceiving(): Promise<void> {
    // A worker never created has no socket and nothing recorded.
    if (this.#gone || this.#worker === undefined) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, STOP_TIMEOUT_MS);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.#onStopped = done;
      this.post({ op: 'stop' });
    });
  }

  /** Four free slots, or undefined when the worker is full. */
  takeSlots(): [number, number, number, number] | undefined {
    if (this.#free.length < 4) return undefined;
    const take = (): number => this.#free.pop() ?? -1;
    return [take(), take(), take(), take()];
  }

  bind(
    rtp: number,
    rtcp: number,
    family: Family,
    address: string,
    port: number,
  ): Promise<'ok' | 'busy' | 'fatal'> {
    const req = this.#nextReq++;
    return new Promise((resolve) => {
      this.#binds.set(req, resolve);
      this.post({ op: 'bind', req, rtp, rtcp, family, address, port });
    });
  }

  /** What the main thread holds for this worker, and what the worker says it holds. */
  memory(): Promise<WorkerHostMemory> {
    const main = {
      streams: this.streams.size,
      freeSlots: this.#free.length,
      binds: this.#binds.size,
    };
    if (this.#gone || this.#worker === undefined) {
      return Promise.resolve({ main, worker: undefined });
    }
    const req = this.#nextReq++;
    return new Promise((resolve) => {
      this.#memory.set(req, (worker) => {
        resolve({ main, worker });
      });
      this.post({ op: 'memory', req });
    });
  }

  /** Handles everything the worker has said so far, synchronously. */
  drain(): void {
    for (;;) {
      const received = receiveMessageOnPort(this.port);
      if (received === undefined) return;
      this.handle(received.message as FromWorker);
    }
  }

  handle(msg: FromWorker): void {
    switch (msg.op) {
      case 'ready':
        this.#onReady();
        break;
      case 'bound': {
        const resolve = this.#binds.get(msg.req);
        this.#binds.delete(msg.req);
        resolve?.(msg.outcome);
        break;
      }
      case 'remote':
        this.streams.get(msg.slot)?.learnt(msg.address, msg.port, msg.latched);
        break;
      case 'tap':
        this.streams.get(msg.slot)?.recorded(msg.data, msg.address, msg.port, msg.wallMs);
        break;
      case 'freed':
        this.streams.get(msg.slot)?.freedByWorker();
        this.streams.delete(msg.slot);
        this.#free.push(msg.slot);
        this.#freeing.end();
        break;
      case 'memory': {
        const resolve = this.#memory.get(msg.req);
        this.#memory.delete(msg.req);
        const memory: WorkerMemory = {
          streams: msg.streams,
          table: msg.table,
          heapUsed: msg.heapUsed,
          heapTotal: msg.heapTotal,
          external: msg.external,
          arrayBuffers: msg.arrayBuffers,
        };
        resolve?.(memory);
        break;
      }
      case 'stopped':
        this.#onStopped?.();
    }
  }
}

/** A stream relayed by a media worker, as the main thread sees it. */
export class WorkerStream implements MediaStream {
  readonly leg: Side;
  readonly isRtp: boolean;
  readonly rtpStats: RtpStatsView | undefined;
  readonly #host: WorkerHost;
  readonly #slot: number;
  readonly #counters: SlotCounters;
  activity: ActivitySink;
  remoteAddress: string | undefined;
  remotePort = 0;
  latched = false;
  localPort = 0;
  local: { readonly address: string; readonly port: number } = { address: '0.0.0.0', port: 0 };
  family: Family = 4;
  #complete = false;
  #asymmetric = false;
  #playing = false;
  #tap: PacketTap | undefined;
  #repacketizeMs: number | undefined;
  #bound = false;
  #freed = false;
  /** Told once the worker closed this stream's socket of the pair bound last. */
  #closed: (() => void) | undefined;
  readonly #sender: SendSocket;

  constructor(host: WorkerHost, slot: number, leg: Side, isRtp: boolean, activity: ActivitySink) {
    this.#host = host;
    this.#slot = slot;
    this.#counters = new SlotCounters(host.counters, slot, isRtp);
    this.leg = leg;
    this.isRtp = isRtp;
    this.activity = activity;
    this.rtpStats = this.#counters.rtpStats;
    this.#sender = {
      send: (msg, port, address) => {
        host.post({ op: 'send', slot, data: msg, port, address });
      },
    };
    host.streams.set(slot, this);
  }

  get slot(): number {
    return this.#slot;
  }

  get hostIndex(): number {
    return this.#host.index;
  }

  get npktsIn(): number {
    return this.#counters.npktsIn;
  }
  get nbytesIn(): number {
    return this.#counters.nbytesIn;
  }
  get nrelayed(): number {
    return this.#counters.nrelayed;
  }
  get ndropped(): number {
    return this.#counters.ndropped;
  }
  get nignored(): number {
    return this.#counters.nignored;
  }
  get nsendErrors(): number {
    return this.#counters.nsendErrors;
  }

  get complete(): boolean {
    return this.#complete;
  }
  set complete(value: boolean) {
    this.#set('complete', value);
    this.#complete = value;
  }
  get asymmetric(): boolean {
    return this.#asymmetric;
  }
  set asymmetric(value: boolean) {
    this.#set('asymmetric', value);
    this.#asymmetric = value;
  }
  get playing(): boolean {
    return this.#playing;
  }
  set playing(value: boolean) {
    this.#set('playing', value);
    this.#playing = value;
  }
  get tap(): PacketTap | undefined {
    return this.#tap;
  }
  set tap(value: PacketTap | undefined) {
    this.#set('tap', value !== undefined);
    this.#tap = value;
  }

  get socket(): SendSocket | undefined {
    return this.#bound && !this.#freed ? this.#sender : undefined;
  }

  #set(field: 'complete' | 'asymmetric' | 'playing' | 'tap', value: boolean): void {
    if (!this.#freed) this.#host.post({ op: 'set', slot: this.#slot, field, value });
  }

  prefill(address: string, port: number): void {
    if (!this.#freed) this.#host.post({ op: 'prefill', slot: this.#slot, address, port });
  }

  repacketize(ms: number | undefined): void {
    if (!this.isRtp || this.#freed) return;
    // Nothing to tell a worker whose stream never had a re-packetizer.
    if (ms === undefined && this.#repacketizeMs === undefined) return;
    this.#repacketizeMs = ms;
    this.#host.post({ op: 'resize', slot: this.#slot, ms: ms ?? 0 });
  }

  /**
   * A pair was bound for this stream on the worker; `closed` is called once the worker closed
   * this stream's socket of it. The worker closed the socket of the previous pair, if any, when
   * it attached the new one.
   */
  bound(address: string, port: number, family: Family, closed: () => void): void {
    const previous = this.#closed;
    this.#closed = closed;
    previous?.();
    this.#bound = true;
    this.localPort = port;
    this.local = { address, port };
    this.family = family;
  }

  detach(): void {
    if (this.#freed) return;
    this.#freed = true;
    this.#tap = undefined;
    this.#host.free(this.#slot);
  }

  /** The worker closed this stream's socket for good. */
  freedByWorker(): void {
    const closed = this.#closed;
    this.#closed = undefined;
    closed?.();
  }

  /** Takes the activity flag the worker set for packets since the last call. */
  takeActivity(): void {
    if (this.#freed) return;
    if (Atomics.exchange(this.#host.activity, this.#slot, 0) !== 0) this.activity.touch(this.leg);
  }

  /** The worker reports a new remote address, port or latch state. */
  learnt(address: string | undefined, port: number, latched: boolean): void {
    this.remoteAddress = address;
    this.remotePort = port;
    this.latched = latched;
  }

  /** A packet the worker accepted while the recorder runs. */
  recorded(data: Uint8Array, address: string, port: number, wallMs: number): void {
    const packet = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    this.#tap?.record(packet, this.isRtp, { address, port }, this.local, this.family, wallMs);
  }
}

export class WorkerMediaPlane implements MediaPlane {
  readonly #hosts: WorkerHost[] = [];
  readonly #stats: GlobalStats;
  readonly #allocators: PortTables;
  readonly #own: OwnEndpoints | undefined;

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
    this.#stats.npktsRcvd = rcvd;
    this.#stats.npktsRelayed = relayed;
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
