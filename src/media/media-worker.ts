/**
 * A media worker: a thread that owns the sockets of the sessions the main thread placed on it and
 * runs the relay (RelayStream, the same code as in-process media) for them. It learns what to do
 * from messages (src/media/worker-protocol.ts) and publishes counters into shared memory after
 * every packet, so the main thread's session manager and commands never wait for it.
 */
import type dgram from 'node:dgram';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { receiveMessageOnPort, workerData } from 'node:worker_threads';
import {
  CONNECTION_CHECK_MS,
  Connections,
  RelayStream,
  type RelaySettings,
  wireSession,
} from './relay.ts';
import { tryBindPair } from './udp-pair.ts';
import {
  type FromWorker,
  H_DISCARD,
  H_LATE_MS,
  H_LOAD,
  H_RCVD,
  H_RELAYED,
  S_BYTES_IN,
  S_DROPPED,
  S_IGNORED,
  S_JAVG,
  S_JLAST,
  S_JMAX,
  S_LONGEST_IPI,
  S_NDUPS,
  S_NRCVD,
  S_NSENT,
  S_PERRS,
  S_PKTS_IN,
  S_RELAYED,
  S_SEND_ERRORS,
  slotBase,
  STREAM_FIELDS,
  type ToWorker,
  type WorkerInit,
} from './worker-protocol.ts';

/** A stream of this worker with what the main thread last heard of its remote. */
interface Entry {
  readonly slot: number;
  readonly stream: RelayStream;
  /** The RTCP stream of the same leg, which an RTP packet may teach its address (RTP only). */
  sibling: Entry | undefined;
  address: string | undefined;
  port: number;
  latched: boolean;
}

/** How often the event loop's load and lateness are published. */
const LOAD_INTERVAL_MS = 1000;
/** Sampling period of the event-loop delay timer (as the main thread's overload monitor). */
const LOOP_DELAY_RESOLUTION_MS = 10;

const init = workerData as WorkerInit;
const port = init.port;
const counters = new Float64Array(init.counters);
const activity = new Int32Array(init.activity);
const mailbox = new Int32Array(init.mailbox);
const totals = { npktsRcvd: 0, npktsRelayed: 0, npktsDiscard: 0 };
const connections = new Connections();
const settings: RelaySettings = {
  stats: totals,
  now: () => performance.now(),
  sendTwice: init.sendTwice,
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
    slot: entry.slot,
    address: s.remoteAddress,
    port: s.remotePort,
    latched: s.latched,
  });
}

/** Writes a stream's counters (and the worker totals) where the main thread reads them. */
function publish(s: RelayStream): void {
  const b = slotBase(s.slot);
  counters[b + S_PKTS_IN] = s.npktsIn;
  counters[b + S_BYTES_IN] = s.nbytesIn;
  counters[b + S_RELAYED] = s.nrelayed;
  counters[b + S_DROPPED] = s.ndropped;
  counters[b + S_IGNORED] = s.nignored;
  counters[b + S_SEND_ERRORS] = s.nsendErrors;
  const a = s.rtpStats;
  if (a !== undefined) {
    counters[b + S_PERRS] = a.perrs;
    counters[b + S_NRCVD] = a.nrcvd;
    counters[b + S_NDUPS] = a.ndups;
    counters[b + S_NSENT] = a.nsent;
    counters[b + S_JLAST] = a.jlast;
    counters[b + S_JMAX] = a.jmax;
    counters[b + S_JAVG] = a.javg;
    counters[b + S_LONGEST_IPI] = a.longestIpi;
  }
  counters[H_RCVD] = totals.npktsRcvd;
  counters[H_RELAYED] = totals.npktsRelayed;
  counters[H_DISCARD] = totals.npktsDiscard;
}

/**
 * Makes what a packet did visible to the main thread: counters, and the remote address the
 * stream (or, for RTP, its RTCP sibling) may have learnt.
 */
function settle(stream: RelayStream): void {
  publish(stream);
  const entry = entries[stream.slot];
  if (entry === undefined) return;
  reportRemote(entry);
  if (entry.sibling !== undefined) reportRemote(entry.sibling);
}

/** The socket listener of a stream: the relay, then what the main thread must see of it. */
function listenerOf(entry: Entry): (msg: Buffer, rinfo: dgram.RemoteInfo) => void {
  const stream = entry.stream;
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
  const make = (slot: number, leg: 0 | 1, isRtp: boolean): Entry => {
    const stream = new RelayStream(leg, isRtp, settings, {
      touch: () => {
        Atomics.store(activity, slot, 1);
      },
    });
    stream.slot = slot;
    counters.fill(0, slotBase(slot), slotBase(slot) + STREAM_FIELDS);
    Atomics.store(activity, slot, 0);
    const entry: Entry = {
      slot,
      stream,
      sibling: undefined,
      address: undefined,
      port: 0,
      latched: false,
    };
    entries[slot] = entry;
    return entry;
  };
  const leg = (
    index: 0 | 1,
    rtpSlot: number,
    rtcpSlot: number,
  ): { rtp: RelayStream; rtcp: RelayStream } => {
    const rtp = make(rtpSlot, index, true);
    const rtcp = make(rtcpSlot, index, false);
    rtp.sibling = rtcp;
    return { rtp: rtp.stream, rtcp: rtcp.stream };
  };
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
  const result = await tryBindPair(msg.family, msg.address, msg.port, (pair) => {
    rtp.stream.attach(pair.rtp, pair.address, pair.port, msg.family, listenerOf(rtp));
    rtcp.stream.attach(pair.rtcp, pair.address, pair.port + 1, msg.family, listenerOf(rtcp));
  });
  post({
    op: 'bound',
    req: msg.req,
    outcome: result.outcome,
    ...(result.error === undefined ? {} : { error: result.error.message }),
  });
}

function set(
  entry: Entry,
  field: 'complete' | 'asymmetric' | 'playing' | 'tap',
  value: boolean,
): void {
  const stream = entry.stream;
  switch (field) {
    case 'complete':
      stream.complete = value;
      break;
    case 'asymmetric':
      stream.asymmetric = value;
      break;
    case 'playing':
      stream.playing = value;
      break;
    case 'tap':
      stream.tap = value
        ? {
            record: (packet, _isRtp, from, _to, _family, wallMs) => {
              post({
                op: 'tap',
                slot: entry.slot,
                data: packet,
                address: from.address,
                port: from.port,
                wallMs,
              });
            },
          }
        : undefined;
  }
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
  const entry = entries[msg.slot];
  if (entry === undefined) return;
  switch (msg.op) {
    case 'set':
      set(entry, msg.field, msg.value);
      break;
    case 'prefill':
      entry.stream.prefill(msg.address, msg.port);
      reportRemote(entry);
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
      publish(entry.stream);
      post({ op: 'freed', slot: msg.slot });
  }
}

port.on('message', onMessage);
// Unref'd: the worker ends when the main thread terminates it, whatever this timer does.
setInterval(() => {
  connections.check();
}, CONNECTION_CHECK_MS).unref();
// Once a second: how busy and how late this event loop was (Il's load, --overload_prot).
const delay = monitorEventLoopDelay({ resolution: LOOP_DELAY_RESOLUTION_MS });
delay.enable();
let lastElu = performance.eventLoopUtilization();
setInterval(() => {
  const elu = performance.eventLoopUtilization();
  counters[H_LOAD] = performance.eventLoopUtilization(elu, lastElu).utilization;
  lastElu = elu;
  const mean = delay.count > 0 ? delay.mean / 1e6 - LOOP_DELAY_RESOLUTION_MS : 0;
  counters[H_LATE_MS] = Number.isFinite(mean) && mean > 0 ? mean : 0;
  delay.reset();
}, LOAD_INTERVAL_MS).unref();
post({ op: 'ready' });
