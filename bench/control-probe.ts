/**
 * Control-plane load for the benchmark: `concurrency` callers, each running U, L, D for a fresh
 * call id back to back (as Kamailio's SIP workers do, one command in flight per worker), while the
 * generator's media runs. It measures each command's round-trip time and counts the setups (a U
 * and its L both answered) per second, the figures that tell whether the proxy would keep being
 * answered or mark the relay dead under media load.
 *
 * With `holdMs` (the netns topology), each session is a real one: U and L give the callers' real
 * sockets, each party then sends one RTP packet to the relay (so that both latch), and the session
 * lives `holdMs` before its D, long enough for the daemon's once-a-second sweep to hand it to the
 * kernel path: the setup rate then includes the nftables transactions that add and remove its
 * streams, done by the same daemon meanwhile.
 */
import dgram from 'node:dgram';
import { performance } from 'node:perf_hooks';
import { ControlClient, parsePortReply } from './control-client.ts';
import { LatencyHistogram, type LatencySummary } from './histogram.ts';
import type { BenchAddresses } from './messages.ts';

/** Callers stop after this many setups each, whatever the window (a bound for every loop). */
const MAX_SETUPS_PER_CALLER = 1_000_000;
/** The RTP packet each party sends to latch: V=2, PT 0, 160 bytes of mu-law silence. */
const LATCH_PACKET = Buffer.alloc(172, 0xff);
LATCH_PACKET[0] = 0x80;
LATCH_PACKET[1] = 0x00;

export interface ProbeOptions {
  readonly controlPort: number;
  readonly concurrency: number;
  readonly tagSuffix: string;
  readonly addresses: BenchAddresses;
  /** 0: U, L, D back to back, no media. Otherwise: latch both parties, D after this long (ms). */
  readonly holdMs: number;
  /** With holdMs: the most sessions alive at once, all callers together (ports, descriptors). */
  readonly maxLive: number;
}

/** A latched session waiting for its D. */
interface Held {
  readonly del: string;
  readonly at: number;
}
export interface ProbeResult {
  readonly concurrency: number;
  /** Sessions were latched and held this long (ms) before D; 0: no media. */
  readonly holdMs: number;
  /** Held sessions deleted before holdMs because maxLive was reached (maybe never offloaded). */
  readonly deletedEarly: number;
  readonly windowMs: number;
  readonly setups: number;
  readonly setupsPerS: number;
  readonly commands: number;
  /** Commands that got an error reply or no reply after every retransmission. */
  readonly failures: number;
  readonly retransmissions: number;
  readonly latency: LatencySummary;
}

export class ControlProbe {
  readonly #client: ControlClient;
  readonly #o: ProbeOptions;
  readonly #histogram = new LatencyHistogram();
  /** Per caller (holdMs > 0): its caller-side and callee-side sockets. */
  readonly #peers: { readonly caller: dgram.Socket; readonly callee: dgram.Socket }[];
  #running = false;
  #setups = 0;
  #commands = 0;
  #failures = 0;
  #deletedEarly = 0;
  #startedAt = 0;
  #callers: Promise<void>[] = [];

  private constructor(
    client: ControlClient,
    o: ProbeOptions,
    peers: { readonly caller: dgram.Socket; readonly callee: dgram.Socket }[],
  ) {
    this.#client = client;
    this.#o = o;
    this.#peers = peers;
  }

  static async open(o: ProbeOptions): Promise<ControlProbe> {
    const { relay, caller, callee } = o.addresses;
    const client = await ControlClient.open(o.controlPort, relay, caller);
    const peers = [];
    if (o.holdMs > 0) {
      for (let i = 0; i < o.concurrency; i++) {
        peers.push({ caller: await bindSocket(caller), callee: await bindSocket(callee) });
      }
    }
    return new ControlProbe(client, o, peers);
  }

  start(): void {
    this.#running = true;
    this.#startedAt = performance.now();
    this.#callers = Array.from({ length: this.#o.concurrency }, (_v, i) => this.#caller(i));
  }

  async stop(): Promise<ProbeResult> {
    this.#running = false;
    const windowMs = performance.now() - this.#startedAt;
    const setups = this.#setups;
    await Promise.all(this.#callers);
    this.#client.close();
    for (const p of this.#peers) {
      p.caller.close();
      p.callee.close();
    }
    return {
      concurrency: this.#o.concurrency,
      holdMs: this.#o.holdMs,
      deletedEarly: this.#deletedEarly,
      windowMs,
      setups,
      setupsPerS: windowMs > 0 ? (setups * 1000) / windowMs : 0,
      commands: this.#commands,
      failures: this.#failures,
      retransmissions: this.#client.retransmissions,
      latency: this.#histogram.summary(),
    };
  }

  async #command(line: string): Promise<string | null> {
    const t0 = performance.now();
    try {
      const reply = await this.#client.command(line);
      this.#histogram.record(performance.now() - t0);
      this.#commands++;
      if (reply.startsWith('E')) {
        this.#failures++;
        return null;
      }
      return reply;
    } catch {
      this.#failures++;
      return null;
    }
  }

  async #caller(index: number): Promise<void> {
    const peers = this.#peers[index];
    const { caller, callee, relay } = this.#o.addresses;
    const callerPort = peers?.caller.address().port ?? 9;
    const calleePort = peers?.callee.address().port ?? 9;
    const held: Held[] = [];
    const maxHeld = Math.max(1, Math.floor(this.#o.maxLive / this.#o.concurrency));
    const suffix = this.#o.tagSuffix;
    for (let n = 0; this.#running && n < MAX_SETUPS_PER_CALLER; n++) {
      const callId = `probe-${String(process.pid)}-${String(index)}-${String(n)}`;
      const from = `from${String(n)}${suffix}`;
      const to = `to${String(n)}${suffix}`;
      const del = `D ${callId} ${from} ${to}`;
      const uLine = `U ${callId} ${caller} ${String(callerPort)} ${from}`;
      const u = await this.#command(uLine);
      const lLine = `L ${callId} ${callee} ${String(calleePort)} ${from} ${to}`;
      const l = u === null ? null : await this.#command(lLine);
      if (u !== null && l !== null) this.#setups++;
      if (peers === undefined || u === null || l === null) {
        await this.#command(del);
        continue;
      }
      // Both parties latch: the callee's packet to the U port, the caller's to the L port.
      try {
        peers.callee.send(LATCH_PACKET, parsePortReply(uLine, u).port, relay);
        peers.caller.send(LATCH_PACKET, parsePortReply(lLine, l).port, relay);
      } catch {
        this.#failures++;
      }
      const now = performance.now();
      held.push({ del, at: now });
      for (let h = held[0]; h !== undefined; h = held[0]) {
        const early = held.length > maxHeld;
        if (!early && now - h.at < this.#o.holdMs) break;
        if (early) this.#deletedEarly++;
        held.shift();
        await this.#command(h.del);
      }
    }
    for (const h of held.splice(0)) await this.#command(h.del);
  }
}

function bindSocket(address: string): Promise<dgram.Socket> {
  return new Promise((resolve, reject) => {
    const sock = dgram.createSocket('udp4');
    sock.once('error', reject);
    sock.bind({ port: 0, address }, () => {
      sock.off('error', reject);
      sock.on('error', () => {
        // ICMP errors of earlier sends: nothing to do.
      });
      // What the relay forwards to the probe's parties is read and dropped.
      sock.on('message', () => undefined);
      resolve(sock);
    });
  });
}
