/**
 * One media worker as the main thread sees it: the thread (created on boot), its message port,
 * the shared memory it writes, its free stream slots, and the requests (binds, frees, stop,
 * memory) waiting for its answer.
 */
import {
  MessageChannel,
  type MessagePort,
  receiveMessageOnPort,
  Worker,
} from 'node:worker_threads';
import { InFlight } from '../../util/in-flight.ts';
import type { MediaPlaneOptions } from '../plane.ts';
import {
  type FromWorker,
  sharedSizes,
  type ToWorker,
  type WorkerInit,
  type WorkerMemory,
} from './worker-protocol.ts';
import type { WorkerStream } from './worker-stream.ts';
import type { Family } from '../../base/net.ts';

/** How long a worker may take to load and report ready. */
const START_TIMEOUT_MS = 20_000;
/** V8 young generation of a media worker, MiB. */
const YOUNG_GENERATION_MB = 48;
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

/** What a worker host is made with: the relay options the worker runs with, and the fatal hook. */
export type WorkerHostOptions = Pick<
  MediaPlaneOptions,
  'sendTwice' | 'connect' | 'strictSource' | 'own'
> & {
  /** A worker failed or exited: media can no longer be relayed faithfully. */
  readonly onFatal: (err: Error) => void;
};

/** What {@link WorkerMediaPlane.memory} reports for one worker. */
export interface WorkerHostMemory {
  /** Main-thread side: stream proxies, free slots, binds awaiting an answer. */
  readonly main: { readonly streams: number; readonly freeSlots: number; readonly binds: number };
  /** The worker's own figures; undefined when it is gone. */
  readonly worker: WorkerMemory | undefined;
}

/** One media worker as the main thread sees it. */
export class WorkerHost {
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

  constructor(index: number, slots: number, options: WorkerHostOptions) {
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
        this.streams.get(msg.slot)?.learnt(msg);
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
