/**
 * Load generator, run as its own process (spawned by bench/relay.ts with an IPC channel) so that
 * its CPU is never accounted to the daemon. It
 *
 * 1. measures a baseline: its own send->receive latency over a direct loopback socket pair;
 * 2. sets up N sessions over the UDP control socket (`U` from the caller, `L` from the callee),
 *    each with two peer sockets on 127.0.0.1;
 * 3. sends 172-byte RTP packets (PT 0) on every stream on a monotonic-clock schedule: one packet
 *    per stream per tick (20 ms at 50 pps), streams spread over `slots` sub-slots of the tick.
 *    A late wake-up sends every slot that is due (catch-up), so the rate never drifts;
 * 4. tells the driver when the measured window starts and ends (after the warm-up), and receives
 *    the relayed packets on the peers, computing latency, loss and duplicates per stream.
 *
 * Every packet carries its send time (performance.now() of this process: one clock for sender and
 * receiver), its stream index, a per-stream counter and whether it belongs to the measured window.
 *
 * With `config.native` set, this process only sets the sessions up: the native generator
 * (bench/rtpgen.c, driven by native-generator.ts) does the same steps with its own sockets, sends
 * every stream at its own instant of the tick and reads arrival times from the kernel.
 */
import dgram from 'node:dgram';
import { performance } from 'node:perf_hooks';
import { LatencyHistogram } from './histogram.ts';
import { runNative } from './native-generator.ts';
import { setupSessions } from './session-setup.ts';
import type {
  FromGenerator,
  GeneratorConfig,
  GeneratorResult,
  ScheduleStats,
  ToGenerator,
} from './messages.ts';

/** 12-byte RTP header + 160 bytes of G.711 payload (20 ms at 8 kHz). */
export const PACKET_BYTES = 172;
const PAYLOAD_BYTES = PACKET_BYTES - 12;
/** Payload layout (offsets from the packet start). */
const OFF_TIME = 12; // float64: performance.now() at send, ms
const OFF_STREAM = 20; // uint32: stream index
const OFF_COUNT = 24; // uint32: packet index within the stream (0, 1, 2, ...)
const OFF_PHASE = 28; // uint8: 0 warm-up, 1 measured
const PHASE_MEASURED = 1;

/**
 * After sending stopped, wait for the measured packets still in flight: until all arrived, or
 * nothing arrived for DRAIN_QUIET_MS, or DRAIN_MAX_MS passed. What has not arrived then is lost.
 */
const DRAIN_QUIET_MS = 500;
const DRAIN_MAX_MS = 5000;
/** Width of a time-series bucket (the `--trace` CSV), ms. */
export const TRACE_BUCKET_MS = 100;

/**
 * Per-bucket time series over the load phase: packets sent and received, the largest relay
 * latency seen and the largest send lateness, indexed by (time since the load started) / bucket.
 */
class Trace {
  readonly sent: number[] = [];
  readonly received: number[] = [];
  readonly maxLatencyMs: number[] = [];
  readonly maxLateMs: number[] = [];
  origin = Number.POSITIVE_INFINITY;
  readonly #size: number;
  constructor(size: number) {
    this.#size = size;
    for (const a of [this.sent, this.received, this.maxLatencyMs, this.maxLateMs]) a.length = size;
    for (const a of [this.sent, this.received, this.maxLatencyMs, this.maxLateMs]) a.fill(0);
  }
  #bucket(now: number): number {
    const b = Math.floor((now - this.origin) / TRACE_BUCKET_MS);
    return b < 0 || b >= this.#size ? -1 : b;
  }
  onSend(now: number, n: number, lateMs: number): void {
    const b = this.#bucket(now);
    if (b < 0) return;
    this.sent[b] = (this.sent[b] ?? 0) + n;
    if (lateMs > (this.maxLateMs[b] ?? 0)) this.maxLateMs[b] = lateMs;
  }
  onReceive(now: number, latencyMs: number): void {
    const b = this.#bucket(now);
    if (b < 0) return;
    this.received[b] = (this.received[b] ?? 0) + 1;
    if (latencyMs > (this.maxLatencyMs[b] ?? 0)) this.maxLatencyMs[b] = latencyMs;
  }
}
const noTrace = new Trace(0);

function send(msg: FromGenerator, then?: () => void): void {
  if (process.send === undefined || !process.connected) {
    then?.();
    return;
  }
  process.send(msg, undefined, {}, () => then?.());
}

/** One direction of one session (or of the baseline pair). */
interface Stream {
  readonly index: number;
  readonly tx: dgram.Socket;
  readonly ssrc: number;
  seq: number;
  ts: number;
  count: number;
  /** Measured packets sent. */
  sent: number;
  /** Measured packets received (first copies). */
  received: number;
  duplicates: number;
  reordered: number;
  highest: number;
  /** Which packet indexes arrived (duplicate detection), sized for the whole run. */
  readonly seen: Uint8Array;
  /** Where latencies go (shared by all relay streams, or by the two streams of a baseline pair). */
  readonly hist: LatencyHistogram;
  /** Time series of the load phase (relay streams only). */
  readonly trace: Trace;
}

const template = Buffer.alloc(PACKET_BYTES, 0xff); // 0xFF = µ-law silence
template[0] = 0x80; // V=2, no padding, no extension, no CSRC
template[1] = 0x00; // M=0, PT=0 (PCMU)

function sendPacket(s: Stream, phase: number): void {
  const b = Buffer.allocUnsafe(PACKET_BYTES);
  template.copy(b, 0, 0, PACKET_BYTES);
  b.writeUInt16BE(s.seq, 2);
  b.writeUInt32BE(s.ts >>> 0, 4);
  b.writeUInt32BE(s.ssrc, 8);
  b.writeUInt32LE(s.index, OFF_STREAM);
  b.writeUInt32LE(s.count, OFF_COUNT);
  b[OFF_PHASE] = phase;
  b.writeDoubleLE(performance.now(), OFF_TIME);
  s.seq = (s.seq + 1) & 0xffff;
  s.ts = (s.ts + PAYLOAD_BYTES) >>> 0;
  s.count++;
  if (phase === PHASE_MEASURED) s.sent++;
  s.tx.send(b);
}

/**
 * Handles one packet arriving on a peer socket that expects `expected` (the stream sent towards
 * it); counts packets that belong to another stream as misrouted.
 */
function makeReceiver(expected: Stream, counters: { misrouted: number; foreign: number }) {
  return (msg: Buffer): void => {
    const now = performance.now();
    if (msg.length !== PACKET_BYTES) {
      counters.foreign++;
      return;
    }
    if (msg.readUInt32LE(OFF_STREAM) !== expected.index) {
      counters.misrouted++;
      return;
    }
    if (msg[OFF_PHASE] !== PHASE_MEASURED) return;
    const n = msg.readUInt32LE(OFF_COUNT);
    if (n >= expected.seen.length) return;
    if (expected.seen[n] === 1) {
      expected.duplicates++;
      return;
    }
    expected.seen[n] = 1;
    expected.received++;
    if (n < expected.highest) expected.reordered++;
    else expected.highest = n;
    const latency = now - msg.readDoubleLE(OFF_TIME);
    expected.hist.record(latency);
    expected.trace.onReceive(now, latency);
  };
}

function bindPeer(recvBufferBytes: number, address: string): Promise<dgram.Socket> {
  return new Promise((resolve, reject) => {
    const sock = dgram.createSocket({ type: 'udp4', recvBufferSize: recvBufferBytes });
    sock.once('error', reject);
    sock.bind({ port: 0, address }, () => {
      sock.off('error', reject);
      sock.on('error', () => {
        // ECONNREFUSED from ICMP errors of a connected socket (the relay port went away): ignore.
      });
      resolve(sock);
    });
  });
}

function connect(sock: dgram.Socket, port: number, address: string): Promise<void> {
  return new Promise((resolve, reject) => {
    sock.once('error', reject);
    sock.connect(port, address, () => {
      sock.off('error', reject);
      resolve();
    });
  });
}

function newStream(
  index: number,
  tx: dgram.Socket,
  totalTicks: number,
  hist: LatencyHistogram,
  trace: Trace = noTrace,
): Stream {
  return {
    index,
    tx,
    ssrc: (Math.random() * 0x100000000) >>> 0,
    seq: Math.floor(Math.random() * 0x10000),
    ts: (Math.random() * 0x100000000) >>> 0,
    count: 0,
    sent: 0,
    received: 0,
    duplicates: 0,
    reordered: 0,
    highest: -1,
    seen: new Uint8Array(totalTicks),
    hist,
    trace,
  };
}

interface ScheduleHooks {
  /** Called when tick `k` is about to be sent for the first time (slot 0). */
  readonly onTick?: (k: number) => void;
  /** Phase byte of packets of tick `k`. */
  readonly phaseOf: (k: number) => number;
  /** Whether tick `k` counts for the lateness statistics. */
  readonly measured: (k: number) => boolean;
  readonly trace?: Trace;
}

/**
 * Sends `totalTicks` ticks; in tick k, slot s (0 <= s < slots) is due at
 * t0 + k*tickMs + s*tickMs/slots and sends one packet on every stream of that slot. Wakes up with
 * setTimeout at the next due time; a late wake-up sends every due slot (at most one tick's worth
 * before yielding to the event loop so that receptions are handled), so it never drifts.
 */
function runSchedule(
  bySlot: readonly (readonly Stream[])[],
  tickMs: number,
  totalTicks: number,
  hooks: ScheduleHooks,
): Promise<ScheduleStats> {
  const slots = bySlot.length;
  const slotMs = tickMs / slots;
  const t0 = performance.now() + 5;
  if (hooks.trace !== undefined) hooks.trace.origin = t0;
  let k = 0;
  let s = 0;
  let slotSends = 0;
  let slotsLateByTick = 0;
  let maxLateMs = 0;
  let sumLateMs = 0;
  return new Promise((resolve) => {
    const step = (): void => {
      const now = performance.now();
      let budget = slots;
      while (k < totalTicks && budget > 0) {
        const due = t0 + k * tickMs + s * slotMs;
        if (due > now) break;
        if (s === 0) hooks.onTick?.(k);
        const phase = hooks.phaseOf(k);
        const slot = bySlot[s] ?? [];
        for (const st of slot) sendPacket(st, phase);
        const after = performance.now();
        hooks.trace?.onSend(after, slot.length, after - due);
        if (hooks.measured(k)) {
          const late = after - due;
          slotSends++;
          sumLateMs += late;
          if (late > maxLateMs) maxLateMs = late;
          if (late > tickMs) slotsLateByTick++;
        }
        budget--;
        s++;
        if (s === slots) {
          s = 0;
          k++;
        }
      }
      if (k >= totalTicks) {
        resolve({
          slotSends,
          slotsLateByTick,
          maxLateMs,
          meanLateMs: slotSends === 0 ? 0 : sumLateMs / slotSends,
        });
        return;
      }
      if (budget === 0) {
        setImmediate(step);
        return;
      }
      const wait = t0 + k * tickMs + s * slotMs - performance.now();
      setTimeout(step, Math.max(0, wait));
    };
    step();
  });
}

function groupBySlot(streams: readonly Stream[], slots: number): Stream[][] {
  const out: Stream[][] = Array.from({ length: slots }, () => []);
  streams.forEach((st, j) => out[j % slots]?.push(st));
  return out;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A direct caller<->callee socket pair (over the generator's loopback), no relay in between. */
async function directPair(
  firstIndex: number,
  totalTicks: number,
  config: GeneratorConfig,
  counters: { misrouted: number; foreign: number },
  hist: LatencyHistogram,
): Promise<{ streams: [Stream, Stream]; sockets: dgram.Socket[] }> {
  const { caller, callee } = config.addresses;
  const a = await bindPeer(config.recvBufferBytes, caller);
  const b = await bindPeer(config.recvBufferBytes, callee);
  await connect(a, b.address().port, callee);
  await connect(b, a.address().port, caller);
  const ab = newStream(firstIndex, a, totalTicks, hist);
  const ba = newStream(firstIndex + 1, b, totalTicks, hist);
  b.on('message', makeReceiver(ab, counters));
  a.on('message', makeReceiver(ba, counters));
  return { streams: [ab, ba], sockets: [a, b] };
}

async function run(config: GeneratorConfig): Promise<GeneratorResult> {
  const tickMs = 1000 / config.rate;
  const warmupTicks = Math.round(config.warmupS * config.rate);
  const measuredTicks = Math.round(config.durationS * config.rate);
  const totalTicks = warmupTicks + measuredTicks;
  const counters = { misrouted: 0, foreign: 0 };
  const sockets: dgram.Socket[] = [];

  // 1. Idle baseline: one direct pair at the load's rate, nothing else running.
  const idleTicks = Math.max(1, Math.round(config.baselineIdleS * config.rate));
  const idleHist = new LatencyHistogram();
  const idle = await directPair(1_000_000, idleTicks, config, counters, idleHist);
  sockets.push(...idle.sockets);
  await runSchedule([idle.streams], tickMs, idleTicks, {
    phaseOf: () => PHASE_MEASURED,
    measured: () => false,
  });
  await sleep(100);

  // 2. Sessions.
  const relayHist = new LatencyHistogram();
  const trace = new Trace(Math.ceil((totalTicks * tickMs + DRAIN_MAX_MS + 1000) / TRACE_BUCKET_MS));
  const relayStreams: Stream[] = [];
  const peers: { caller: dgram.Socket; callee: dgram.Socket }[] = [];
  for (let i = 0; i < config.sessions; i++) {
    const caller = await bindPeer(config.recvBufferBytes, config.addresses.caller);
    const callee = await bindPeer(config.recvBufferBytes, config.addresses.callee);
    sockets.push(caller, callee);
    const toCallee = newStream(2 * i, caller, totalTicks, relayHist, trace);
    const toCaller = newStream(2 * i + 1, callee, totalTicks, relayHist, trace);
    callee.on('message', makeReceiver(toCallee, counters));
    caller.on('message', makeReceiver(toCaller, counters));
    peers.push({ caller, callee });
    relayStreams.push(toCallee, toCaller);
  }
  const setup = await setupSessions(
    config,
    peers.map((p) => ({ caller: p.caller.address().port, callee: p.callee.address().port })),
  );
  for (const [i, p] of peers.entries()) {
    const relay = setup.relay[i];
    if (relay === undefined) throw new Error(`no relay ports for session ${String(i)}`);
    await connect(p.caller, relay.fromCaller, config.addresses.relay);
    await connect(p.callee, relay.fromCallee, config.addresses.relay);
  }
  send({ type: 'setup-done', ms: setup.ms });

  // 3. Load, with a direct pair running alongside (the baseline under load).
  const loadHist = new LatencyHistogram();
  const load = await directPair(2 * config.sessions, totalTicks, config, counters, loadHist);
  sockets.push(...load.sockets);
  const all = [...relayStreams, ...load.streams];
  let cpu0 = process.cpuUsage();
  let elu0 = performance.eventLoopUtilization();
  let w0 = performance.now();
  const schedule = await runSchedule(groupBySlot(all, config.slots), tickMs, totalTicks, {
    onTick: (k) => {
      if (k === warmupTicks) {
        cpu0 = process.cpuUsage();
        elu0 = performance.eventLoopUtilization();
        w0 = performance.now();
        send({ type: 'measure-start' });
      }
    },
    phaseOf: (k) => (k >= warmupTicks ? PHASE_MEASURED : 0),
    measured: (k) => k >= warmupTicks,
    trace,
  });
  // The last tick was sent at the start of its 20 ms: the window closes one tick later.
  const tEnd = w0 + measuredTicks * tickMs;
  const endWait = tEnd - performance.now();
  if (endWait > 0) await sleep(endWait);
  const cpu = process.cpuUsage(cpu0);
  const elu = performance.eventLoopUtilization(elu0);
  // Never shorter than the nominal window (a timer may fire a fraction of a millisecond early).
  const windowMs = Math.max(measuredTicks * tickMs, performance.now() - w0);
  send({ type: 'measure-end' });

  // 4. Drain: wait for the packets still in flight (bounded).
  const expected = (): number => all.reduce((n, s) => n + s.sent, 0);
  const got = (): number => all.reduce((n, s) => n + s.received, 0);
  const drainEnd = performance.now() + DRAIN_MAX_MS;
  let lastGot = got();
  let lastChange = performance.now();
  while (got() < expected() && performance.now() < drainEnd) {
    await sleep(50);
    const now = performance.now();
    if (got() !== lastGot) {
      lastGot = got();
      lastChange = now;
    } else if (now - lastChange >= DRAIN_QUIET_MS) break;
  }
  await sleep(50);

  const peerRecvBuffer = load.sockets[0]?.getRecvBufferSize() ?? 0;
  for (const s of sockets) s.close();

  let sent = 0;
  let received = 0;
  let duplicates = 0;
  let reordered = 0;
  let streamsWithLoss = 0;
  let worst = 0;
  for (const s of relayStreams) {
    sent += s.sent;
    received += s.received;
    duplicates += s.duplicates;
    reordered += s.reordered;
    if (s.received < s.sent) {
      streamsWithLoss++;
      worst = Math.max(worst, (100 * (s.sent - s.received)) / s.sent);
    }
  }
  return {
    generator: 'node',
    sessions: config.sessions,
    relayStreams: relayStreams.length,
    packetBytes: PACKET_BYTES,
    setup: { ms: setup.ms, commands: setup.commands, retransmissions: setup.retransmissions },
    windowMs,
    sent,
    received,
    duplicates,
    misrouted: counters.misrouted,
    reordered,
    streamsWithLoss,
    worstStreamLossPct: worst,
    latency: relayHist.summary(),
    baselineIdle: idleHist.summary(),
    baselineLoad: { ...loadHist.summary(), sent: load.streams[0].sent + load.streams[1].sent },
    schedule,
    cpu: { userS: cpu.user / 1e6, systemS: cpu.system / 1e6 },
    elu: elu.utilization,
    peerRecvBuffer,
    heldMs: 0,
    holdTimedOut: false,
    sendErrors: 0,
    trace: {
      originEpochMs: performance.timeOrigin + trace.origin,
      warmupEndEpochMs: performance.timeOrigin + w0,
      bucketMs: TRACE_BUCKET_MS,
      sent: trace.sent,
      received: trace.received,
      maxLatencyMs: trace.maxLatencyMs,
      maxLateMs: trace.maxLateMs,
    },
  };
}

let started = false;
let finished = false;
/** Ends the native generator's hold; the Node generator does not hold. */
let measure: () => void = () => undefined;
process.on('disconnect', () => {
  // The driver went away (or we are done): nothing left to report to.
  process.exit(finished ? 0 : 2);
});
process.on('message', (raw: unknown) => {
  const msg = raw as ToGenerator;
  if (msg.type === 'measure') {
    measure();
    return;
  }
  if (started) return;
  started = true;
  const deadline = setTimeout(() => {
    send(
      {
        type: 'error',
        message: `generator deadline of ${String(msg.config.deadlineMs)} ms passed`,
      },
      () => process.exit(3),
    );
  }, msg.config.deadlineMs);
  let result: Promise<GeneratorResult>;
  if (msg.config.native === null) result = run(msg.config);
  else {
    const native = runNative(msg.config, msg.config.native, send);
    measure = native.measure;
    result = native.result;
  }
  result.then(
    (result) => {
      clearTimeout(deadline);
      finished = true;
      send({ type: 'result', result }, () => process.exit(0));
    },
    (err: unknown) => {
      clearTimeout(deadline);
      const message = err instanceof Error ? (err.stack ?? err.message) : String(err);
      send({ type: 'error', message }, () => process.exit(1));
    },
  );
});
