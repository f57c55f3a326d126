/**
 * A stream relayed by a media worker, as the main thread sees it: counters read from the worker's
 * shared memory, the remote the worker reports, and setters that post a StreamChange to it.
 */
import { performance } from 'node:perf_hooks';
import { RELATCH_WINDOW_MS } from '../latch-rules.ts';
import type { ActivitySink, MediaStream, PacketTap, RtpStatsView, SendSocket } from '../stream.ts';
import type { WorkerHost } from './worker-host.ts';
import { SlotCounters, type StreamChange, type StreamRemote } from './worker-protocol.ts';
import type { Endpoint, Family } from '../../base/net.ts';
import type { Side } from '../../base/side.ts';

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
  local: Endpoint = { address: '0.0.0.0', port: 0 };
  family: Family = 4;
  #complete = false;
  #asymmetric = false;
  #playing = false;
  #blocked = false;
  #tap: PacketTap | undefined;
  #repacketizeMs: number | undefined;
  #bound = false;
  /** Monotonic ms of the last pre-fill that moved a known remote (re-latch window). */
  #lastPrefill = Number.NEGATIVE_INFINITY;
  /** Packets (and their payload bytes) the kernel fast path forwarded for this party. */
  #kernelPackets = 0;
  #kernelBytes = 0;
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
    return this.#counters.npktsIn + this.#kernelPackets;
  }
  get nbytesIn(): number {
    return this.#counters.nbytesIn + this.#kernelBytes;
  }
  get nrelayed(): number {
    return this.#counters.nrelayed + this.#kernelPackets;
  }

  addKernelTraffic(packets: number, payloadBytes: number): void {
    this.#kernelPackets += packets;
    this.#kernelBytes += payloadBytes;
  }

  /** The worker's stream applies the same window (relay.ts), from the same pre-fills. */
  get relatching(): boolean {
    return performance.now() - this.#lastPrefill < RELATCH_WINDOW_MS;
  }

  get repacketizeMs(): number | undefined {
    return this.#repacketizeMs;
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
    this.#change({ complete: value });
    this.#complete = value;
  }
  get asymmetric(): boolean {
    return this.#asymmetric;
  }
  set asymmetric(value: boolean) {
    this.#change({ asymmetric: value });
    this.#asymmetric = value;
  }
  get playing(): boolean {
    return this.#playing;
  }
  set playing(value: boolean) {
    this.#change({ playing: value });
    this.#playing = value;
  }
  get blocked(): boolean {
    return this.#blocked;
  }
  set blocked(value: boolean) {
    this.#change({ blocked: value });
    this.#blocked = value;
  }
  get tap(): PacketTap | undefined {
    return this.#tap;
  }
  set tap(value: PacketTap | undefined) {
    this.#change({ tap: value !== undefined });
    this.#tap = value;
  }

  get socket(): SendSocket | undefined {
    return this.#bound && !this.#freed ? this.#sender : undefined;
  }

  /** Posts a change of the state the worker mirrors; nothing once the stream is freed. */
  #change(change: StreamChange): void {
    if (!this.#freed) this.#host.post({ op: 'stream', slot: this.#slot, change });
  }

  prefill(address: string, port: number): void {
    if (this.remoteAddress !== undefined) this.#lastPrefill = performance.now();
    this.#change({ prefill: { address, port } });
  }

  repacketize(ms: number | undefined): void {
    if (!this.isRtp || this.#freed) return;
    // Nothing to tell a worker whose stream never had a re-packetizer.
    if (ms === undefined && this.#repacketizeMs === undefined) return;
    this.#repacketizeMs = ms;
    this.#change({ resizeMs: ms ?? 0 });
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
  learnt(remote: StreamRemote): void {
    this.remoteAddress = remote.address;
    this.remotePort = remote.port;
    this.latched = remote.latched;
  }

  /** A packet the worker accepted while the recorder runs. */
  recorded(data: Uint8Array, address: string, port: number, wallMs: number): void {
    const packet = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    this.#tap?.record(packet, this.isRtp, { address, port }, this.local, this.family, wallMs);
  }
}
