/**
 * A media worker: a thread that owns the sockets of the sessions the main thread placed on it and
 * runs the relay (RelayStream, the same code as in-process media) for them. It learns what to do
 * from messages (src/media/worker/worker-protocol.ts) and publishes counters into shared memory after
 * every packet, so the main thread's session manager and commands never wait for it.
 */
import type dgram from 'node:dgram';
import { performance } from 'node:perf_hooks';
import { receiveMessageOnPort, workerData } from 'node:worker_threads';
import {
  CONNECTION_CHECK_MS,
  Connections,
  HeldPackets,
  RelayStream,
  type RelaySettings,
  wireSession,
} from '../relay.ts';
import { OverloadMonitor } from '../../util/overload.ts';
import { OwnEndpoints } from '../own-endpoints.ts';
import { tryBindPair } from '../udp-pair.ts';
import type { PacketTap } from '../stream.ts';
import {
  applyStreamChange,
  clearCounters,
  type FromWorker,
  H_LATE_MS,
  H_LOAD,
  type StreamChange,
  type StreamRemote,
  type ToWorker,
  type WorkerInit,
  writeCounters,
} from './worker-protocol.ts';
import type { Side } from '../../base/side.ts';

/** A stream of this worker with what the main thread last heard of its remote. */
interface Entry {
  readonly stream: RelayStream;
  /** Mutable mirror of {@link StreamRemote}: compared after every packet, posted on change. */
  address: StreamRemote['address'];
  port: StreamRemote['port'];
  latched: StreamRemote['latched'];
}

/** How often the event loop's load and lateness are published. */
const LOAD_INTERVAL_MS = 1000;

const init = workerData as WorkerInit;
const port = init.port;
const counters = new Float64Array(init.counters);
const activity = new Int32Array(init.activity);
const mailbox = new Int32Array(init.mailbox);
const totals = {
  npktsRcvd: 0,
  npktsRelayed: 0,
  npktsDiscard: 0,
  npktsResizerIn: 0,
  npktsResizerOut: 0,
  npktsResizerDiscard: 0,
};
const connections = new Connections();
// A tick that drained a stream's re-packetizer publishes what it did (dropped packets included).
const held = new HeldPackets((stream) => {
  settle(stream);
});
const own =
  init.own === undefined
    ? undefined
    : OwnEndpoints.open(init.own, init.locals ?? [], init.mediaAddresses ?? []);
const settings: RelaySettings = {
  stats: totals,
  now: () => performance.now(),
  sendTwice: init.sendTwice,
  held,
  strictSource: init.strictSource,
  ...(own === undefined ? {} : { own }),
  ...(init.connect ? { connections } : {}),
  counted: (stream) => {
    settle(stream);
  },
};
/** The streams of this worker, by slot (an array: no hashing on the packet path). */
const entries: (Entry | undefined)[] = [];

function post(msg: FromWorker): void {
  port.postMessage(msg);
}

/** Tells the main thread when a stream's remote address, port or latch state changed. */
function reportRemote(entry: Entry): void {
  const s = entry.stream;
  if (
    s.remoteAddress === entry.address &&
    s.remotePort === entry.port &&
    s.latched === entry.latched
  ) {
    return;
  }
  entry.address = s.remoteAddress;
  entry.port = s.remotePort;
  entry.latched = s.latched;
  post({
    op: 'remote',
    slot: s.slot,
    address: s.remoteAddress,
    port: s.remotePort,
    latched: s.latched,
  });
}

/**
 * Makes what a packet did visible to the main thread: counters, and the remote address the
 * stream (or, for RTP, its RTCP sibling) may have learnt.
 */
function settle(stream: RelayStream): void {
  writeCounters(counters, stream.slot, stream, totals);
  const entry = entries[stream.slot];
  if (entry !== undefined) reportRemote(entry);
  // An RTP packet may teach the RTCP stream of its leg its address too.
  const sibling = stream.rtcpSibling === undefined ? undefined : entries[stream.rtcpSibling.slot];
  if (sibling !== undefined) reportRemote(sibling);
}

/** The socket listener of a stream: the relay, then what the main thread must see of it. */
function listenerOf(stream: RelayStream): (msg: Buffer, rinfo: dgram.RemoteInfo) => void {
  return (msg, rinfo) => {
    const relayed = stream.nrelayed;
    stream.onPacket(msg, rinfo);
    // A relayed packet was settled before it left (settings.counted), any other outcome here:
    // a party that got the packet and asks at once finds it counted and its sender latched.
    if (stream.nrelayed === relayed) settle(stream);
    if (Atomics.load(mailbox, 0) !== 0) readMailbox();
  };
}

/** Handles the main thread's messages now, between two packets (see WorkerInit.mailbox). */
function readMailbox(): void {
  Atomics.store(mailbox, 0, 0);
  // Bounded: the main thread posts a handful of messages per command.
  for (let n = 0; n < 10_000; n += 1) {
    const received = receiveMessageOnPort(port);
    if (received === undefined) return;
    onMessage(received.message as ToWorker);
  }
}

function create(slots: readonly [number, number, number, number]): void {
  const make = (slot: number, leg: Side, isRtp: boolean): RelayStream => {
    const stream = new RelayStream(leg, isRtp, settings, {
      touch: () => {
        Atomics.store(activity, slot, 1);
      },
    });
    stream.slot = slot;
    clearCounters(counters, slot);
    Atomics.store(activity, slot, 0);
    entries[slot] = { stream, address: undefined, port: 0, latched: false };
    return stream;
  };
  const leg = (index: Side, rtpSlot: number, rtcpSlot: number) => ({
    rtp: make(rtpSlot, index, true),
    rtcp: make(rtcpSlot, index, false),
  });
  const [rtp0, rtcp0, rtp1, rtcp1] = slots;
  wireSession([leg(0, rtp0, rtcp0), leg(1, rtp1, rtcp1)]);
}

async function bind(msg: Extract<ToWorker, { op: 'bind' }>): Promise<void> {
  const rtp = entries[msg.rtp];
  const rtcp = entries[msg.rtcp];
  if (rtp === undefined || rtcp === undefined) {
    post({ op: 'bound', req: msg.req, outcome: 'fatal', error: 'no such stream' });
    return;
  }
  // A holder object, so the compiler does not narrow what the callback sets.
  const late = { freed: false };
  const result = await tryBindPair(
    msg.family,
    msg.address,
    msg.port,
    (pair) => {
      if (entries[msg.rtp] !== rtp || entries[msg.rtcp] !== rtcp) {
        // The streams were freed while the sockets were bound: nobody would ever close them.
        late.freed = true;
        pair.rtp.close();
        pair.rtcp.close();
        return;
      }
      rtp.stream.attach(pair.rtp, pair.address, pair.port, msg.family, listenerOf(rtp.stream));
      rtcp.stream.attach(
        pair.rtcp,
        pair.address,
        pair.port + 1,
        msg.family,
        listenerOf(rtcp.stream),
      );
    },
    own,
  );
  if (late.freed) {
    post({ op: 'bound', req: msg.req, outcome: 'fatal', error: 'the stream was freed' });
    return;
  }
  post({
    op: 'bound',
    req: msg.req,
    outcome: result.outcome,
    ...(result.error === undefined ? {} : { error: result.error.message }),
  });
}

/** The recorder of a worker stream: posts each accepted packet to the main thread's recorder. */
function tapOf(stream: RelayStream): PacketTap {
  return {
    record: (packet, _isRtp, from, _to, _family, wallMs) => {
      post({
        op: 'tap',
        slot: stream.slot,
        data: packet,
        address: from.address,
        port: from.port,
        wallMs,
      });
    },
  };
}

/** The main thread changed a stream: apply it, then publish what the change did. */
function change(entry: Entry, msg: StreamChange): void {
  const stream = entry.stream;
  applyStreamChange(stream, msg, () => tapOf(stream));
  if (msg.prefill !== undefined) reportRemote(entry);
  // Stopping a re-packetizer drops what it held: npkts_resizer_discard.
  if (msg.resizeMs !== undefined) writeCounters(counters, stream.slot, stream, totals);
}

function onMessage(msg: ToWorker): void {
  if (msg.op === 'create') {
    create(msg.slots);
    return;
  }
  if (msg.op === 'bind') {
    void bind(msg);
    return;
  }
  if (msg.op === 'memory') {
    let streams = 0;
    for (const entry of entries) if (entry !== undefined) streams += 1;
    const m = process.memoryUsage();
    post({
      op: 'memory',
      req: msg.req,
      streams,
      table: entries.length,
      heapUsed: m.heapUsed,
      heapTotal: m.heapTotal,
      external: m.external,
      arrayBuffers: m.arrayBuffers,
    });
    return;
  }
  if (msg.op === 'stop') {
    for (const entry of entries) entry?.stream.detach();
    post({ op: 'stopped' });
    return;
  }
  const entry = entries[msg.slot];
  if (entry === undefined) return;
  switch (msg.op) {
    case 'stream':
      change(entry, msg.change);
      break;
    case 'send':
      try {
        const data = Buffer.from(msg.data.buffer, msg.data.byteOffset, msg.data.byteLength);
        entry.stream.socket?.send(data, msg.port, msg.address);
      } catch {
        // The socket closed under the player: the session is going away.
      }
      break;
    case 'free':
      entry.stream.detach();
      entry.stream.tap = undefined;
      entries[msg.slot] = undefined;
      writeCounters(counters, msg.slot, entry.stream, totals);
      post({ op: 'freed', slot: msg.slot });
  }
}

port.on('message', onMessage);
// Unref'd: the worker ends when the main thread terminates it, whatever this timer does.
setInterval(() => {
  connections.check();
}, CONNECTION_CHECK_MS).unref();
// Once a second: how busy and how late this event loop was (Il's load, --overload_prot), measured
// as the main thread measures its own.
const lateness = new OverloadMonitor();
let lastElu = performance.eventLoopUtilization();
setInterval(() => {
  const elu = performance.eventLoopUtilization();
  counters[H_LOAD] = performance.eventLoopUtilization(elu, lastElu).utilization;
  lastElu = elu;
  lateness.sample();
  counters[H_LATE_MS] = lateness.lateMs;
}, LOAD_INTERVAL_MS).unref();
post({ op: 'ready' });
