/**
 * One direction-agnostic relay endpoint: a leg's RTP or RTCP socket, the remote address it learnt,
 * and the latching state machine: strict sources by default (docs/architecture.md, "Strict
 * sources"), or the reference's rules with `--no_strict_source` (sippy/rtpproxy
 * src/rtpp_stream.c; docs/protocol.md 4.4); never one of the daemon's own endpoints. Packets that
 * arrive here come from the party the leg faces and leave through the peer stream (the same
 * component of the other leg), towards the peer's remote address.
 *
 * The packet path forwards the Buffer dgram handed over untouched, reads at most the RTP SSRC and
 * sequence number, bumps plain-number counters and logs nothing.
 *
 * Its socket, and connecting it to the party, are relay-socket.ts's.
 */
import type dgram from 'node:dgram';
import { canonicalAddress } from '../util/net.ts';
import { rtpSequence, rtpSsrc } from './rtp.ts';
import { RELATCH_WINDOW_MS, referenceMayMove, strictAcceptable } from './latch-rules.ts';
import { ResizingIntake } from './relay-resize.ts';
import { RelaySocket } from './relay-socket.ts';
import type { Connections, RelaySettings } from './relay-shared.ts';
import { RtpStats } from './rtp-stats.ts';
import { SourceConfirmation } from './source-confirmation.ts';
import type { ActivitySink, MediaStream, PacketTap, SessionStreams } from './stream.ts';
import type { Endpoint } from '../base/net.ts';
import type { Side } from '../base/side.ts';

export type { ActivitySink, PacketTap } from './stream.ts';
export {
  CONNECTION_CHECK_MS,
  Connections,
  HeldPackets,
  type RelaySettings,
} from './relay-shared.ts';
export { CONFIRM_PACKETS } from './source-confirmation.ts';

/** `-2`: relayed packets shorter than this are sent twice. */
const SEND_TWICE_BELOW = 128;

export class RelayStream extends RelaySocket implements MediaStream {
  readonly leg: Side;
  readonly isRtp: boolean;
  /** Per-direction RTP analysis (RTP streams only). */
  readonly rtpStats: RtpStats | undefined;
  /** The stream packets received here are relayed out of. Set once by the session. */
  peer: RelayStream | undefined;
  /** The RTCP stream of the same leg, learnt along with RTP (RTP streams only). */
  rtcpSibling: RelayStream | undefined;
  /** The RTP stream of the same leg (RTCP streams only). */
  rtpSibling: RelayStream | undefined;
  /** False until the session is complete: packets are then read and discarded. */
  complete = false;
  /** Where a media worker keeps this stream's shared counters; -1 on the main thread. */
  slot = -1;
  /** The leg's recorder, if one runs: every accepted packet is handed to it before relaying. */
  tap: PacketTap | undefined;
  /**
   * A prompt plays out of this stream to its party (set by the player, docs/protocol.md 7.4): packets
   * the other party sends towards it are dropped, not recorded and not relayed.
   */
  playing = false;
  /**
   * This stream's party is blocked (ng `block media`, docs/ng.md): the RTP it sends is dropped,
   * not recorded and not relayed.
   */
  blocked = false;

  /** Bytes (UDP payload) of the accepted packets. */
  nbytesIn = 0;
  /** Accepted packets relayed out of the peer. */
  nrelayed = 0;
  /** Accepted packets that could not be relayed (the peer has no address yet, send error). */
  ndropped = 0;
  /** Packets refused by the source check. */
  nignored = 0;

  readonly #settings: RelaySettings;
  /** Told when a packet reaches the relay stage; the owning session sets itself here. */
  activity: ActivitySink;
  #latched = false;
  #asymmetric = false;
  /** The address was taken from a packet source: later signalling no longer moves it. */
  #untrusted = false;
  #lastPrefill = Number.NEGATIVE_INFINITY;
  #ssrc = -1;
  #seq = 0;
  /** The `z` re-packetizer of packets from this leg's party (RTP only); usually undefined. */
  #resizer: ResizingIntake | undefined;
  readonly #strict: boolean;
  /** The party's address as signalling last named it (canonical), for strict sources. */
  #signalled: string | undefined;
  /** Strict sources: the unsignalled source being confirmed, and how far. */
  readonly #candidate = new SourceConfirmation();

  constructor(leg: Side, isRtp: boolean, settings: RelaySettings, activity: ActivitySink) {
    super();
    this.leg = leg;
    this.isRtp = isRtp;
    this.#settings = settings;
    this.#strict = settings.strictSource === true;
    this.activity = activity;
    this.rtpStats = isRtp ? new RtpStats() : undefined;
  }

  /** True once a packet has latched the remote address. */
  get latched(): boolean {
    return this.#latched;
  }

  /** Asymmetric leg: the remote comes from signalling; packets are checked by IP only. */
  get asymmetric(): boolean {
    return this.#asymmetric;
  }
  set asymmetric(value: boolean) {
    if (value) this.disconnect();
    this.#asymmetric = value;
  }

  /** Closes the socket, if any, and drops the packets the re-packetizer holds. Idempotent. */
  detach(): void {
    this.closeSocket();
    this.repacketize(undefined);
  }

  /** Pre-fill from signalling (U/L ADDR PORT), docs/protocol.md 4.4 "Pre-fill". */
  prefill(address: string, port: number): void {
    // The re-latch window opens: any source may take the leg over again.
    this.disconnect();
    if (this.remoteAddress !== undefined) this.#lastPrefill = this.#settings.now();
    this.#signalled = canonicalAddress(address);
    if (this.#untrusted) return;
    if (address === this.remoteAddress && port === this.remotePort) return;
    this.remoteAddress = address;
    this.remotePort = port;
  }

  /**
   * `z<ms>` of the U/L that pre-fills this leg: packets from its party leave re-packetized to
   * `ms` per packet (docs/protocol.md 5); undefined stops it, and the packets
   * it held are dropped (`npkts_resizer_discard`), as in sippy/rtpproxy src/commands/rpcpv1_ul.c.
   * RTP streams only.
   */
  repacketize(ms: number | undefined): void {
    if (ms !== undefined && ms > 0) {
      if (!this.isRtp) return;
      if (this.#resizer === undefined) {
        this.#resizer = new ResizingIntake(ms, this.#settings, (msg, from) => {
          this.#relay(msg, from);
        });
      } else this.#resizer.ptimeMs = ms;
      return;
    }
    const resizer = this.#resizer;
    if (resizer === undefined) return;
    this.#resizer = undefined;
    this.#settings.stats.npktsResizerDiscard += resizer.clear();
  }

  /** The packet time `z` asked for, or undefined. */
  get repacketizeMs(): number | undefined {
    return this.#resizer?.ptimeMs;
  }

  /** A re-INVITE's pre-fill opened the re-latch window, and it is still open. */
  get relatching(): boolean {
    return this.#inRelatchWindow();
  }

  /** Packets the kernel fast path forwarded for this stream's party (docs/kernel.md). */
  addKernelTraffic(packets: number, payloadBytes: number): void {
    this.npktsIn += packets;
    this.nbytesIn += payloadBytes;
    this.nrelayed += packets;
  }

  /** The packet path: one datagram received on this stream's socket. */
  readonly onPacket = (msg: Buffer, rinfo: dgram.RemoteInfo): void => {
    const stats = this.#settings.stats;
    stats.npktsRcvd += 1;
    if (!this.complete) {
      stats.npktsDiscard += 1;
      return;
    }
    const address = rinfo.address;
    const port = rinfo.port;
    if (this.remoteAddress === undefined) {
      if (!this.#mayLearn(address, port, msg)) {
        this.nignored += 1;
        stats.npktsDiscard += 1;
        return;
      }
      this.#learn(address, port, msg);
    } else if (address === this.remoteAddress && (port === this.remotePort || this.#asymmetric)) {
      if (!this.#latched) this.#latch(msg);
      else if (this.isRtp) this.#followSsrc(msg);
      if (!this.isConnected && this.#latched && this.isRtp && !this.#asymmetric) this.connect();
    } else if (this.#asymmetric || !this.#mayMove(address, port, msg)) {
      this.nignored += 1;
      stats.npktsDiscard += 1;
      return;
    } else {
      this.disconnect();
      this.remoteAddress = address;
      this.remotePort = port;
      this.#untrusted = true;
      this.#latch(msg);
    }
    this.npktsIn += 1;
    this.nbytesIn += msg.length;
    this.activity.touch(this.leg);
    if (this.rtpStats !== undefined) this.rtpStats.update(msg, this.#settings.now());
    if (this.#resizer !== undefined) {
      this.#resizer.take(msg, rinfo, this);
      return;
    }
    this.#relay(msg, rinfo);
  };

  /**
   * The relay stage of an accepted packet (docs/protocol.md 4.8): muted towards a party hearing a
   * prompt, recorded, sent out of the peer. `from` is the datagram's source, for the recorder;
   * undefined for a packet the re-packetizer built.
   */
  #relay(msg: Buffer, from: Endpoint | undefined): void {
    const stats = this.#settings.stats;
    const out = this.peer;
    // The per-packet mute checks: towards a party hearing a prompt (docs/protocol.md 4.8), or
    // from a blocked party (docs/ng.md).
    if (out?.playing === true || this.blocked) {
      this.ndropped += 1;
      stats.npktsDiscard += 1;
      return;
    }
    if (this.tap !== undefined) {
      // A re-packetized packet comes from the party (no one datagram's source).
      const source = from ?? { address: this.remoteAddress ?? '', port: this.remotePort };
      this.tap.record(msg, this.isRtp, source, this.local, this.family, Date.now());
    }
    const socket = out?.udp;
    if (out === undefined || socket === undefined || out.remoteAddress === undefined) {
      this.ndropped += 1;
      stats.npktsDiscard += 1;
      return;
    }
    this.nrelayed += 1;
    stats.npktsRelayed += 1;
    this.#settings.counted?.(this);
    const twice = this.#settings.sendTwice && msg.length < SEND_TWICE_BELOW;
    if (out.isConnected) {
      socket.send(msg);
      if (twice) socket.send(msg);
    } else {
      socket.send(msg, out.remotePort, out.remoteAddress);
      if (twice) socket.send(msg, out.remotePort, out.remoteAddress);
    }
  }

  /**
   * Relays what the re-packetizer has due now (on the HeldPackets tick). Returns whether it still
   * holds packets.
   */
  drainResizer(): boolean {
    return this.#resizer?.drain(this) ?? false;
  }

  /** First packet on a leg without any address: take its source (docs/protocol.md 4.4). */
  #learn(address: string, port: number, msg: Buffer): void {
    this.remoteAddress = address;
    this.remotePort = port;
    this.#untrusted = true;
    this.#latch(msg);
    const rtcp = this.rtcpSibling;
    if (rtcp !== undefined && rtcp.remoteAddress !== address) {
      rtcp.remoteAddress = address;
      rtcp.remotePort = port + 1;
      rtcp.#untrusted = true;
    }
  }

  /** Latches unless a re-pre-fill opened the window; records the SSRC of RTP packets. */
  #latch(msg: Buffer): void {
    if (this.#inRelatchWindow()) return;
    this.#latched = true;
    if (this.isRtp) {
      this.#ssrc = rtpSsrc(msg);
      this.#seq = rtpSequence(msg);
    }
  }

  /** Keeps the latched SSRC and sequence current; a new SSRC from the same source re-latches. */
  #followSsrc(msg: Buffer): void {
    const ssrc = rtpSsrc(msg);
    if (ssrc < 0) return;
    if (ssrc === this.#ssrc) this.#seq = rtpSequence(msg);
    else if (!this.#inRelatchWindow()) {
      this.#ssrc = ssrc;
      this.#seq = rtpSequence(msg);
    }
  }

  protected get connections(): Connections | undefined {
    return this.#settings.connections;
  }

  protected mayConnect(): boolean {
    return !this.#inRelatchWindow();
  }

  /** A re-INVITE's pre-fill opened the re-latch window, and it is still open. */
  #inRelatchWindow(): boolean {
    return this.#settings.now() - this.#lastPrefill < RELATCH_WINDOW_MS;
  }

  /** A leg without any address takes a source: any but our own, or a strict source. */
  #mayLearn(address: string, port: number, msg: Buffer): boolean {
    if (this.#settings.own?.isOwn(address, port) === true) return false;
    return !this.#strict || this.#acceptable(address, port, msg);
  }

  /**
   * A symmetric leg moves to a new source only on the reference's conditions, or, with strict
   * sources, only to a source that passes {@link strictAcceptable}; never to our own.
   */
  #mayMove(address: string, port: number, msg: Buffer): boolean {
    if (this.#settings.own?.isOwn(address, port) === true) return false;
    if (this.#strict) return this.#acceptable(address, port, msg);
    return referenceMayMove(
      this.#latched,
      this.isRtp,
      this.#ssrc,
      this.#seq,
      this.#inRelatchWindow(),
      msg,
    );
  }

  #acceptable(address: string, port: number, msg: Buffer): boolean {
    const signalled = this.#signalled;
    return strictAcceptable(
      signalled,
      this.isRtp,
      this.rtpSibling,
      this.#candidate,
      address,
      port,
      msg,
    );
  }
}

/** Wires the four streams of a session: each relays out of the same component of the other leg. */
export function wireSession(streams: SessionStreams<RelayStream>): void {
  for (const [index, leg] of streams.entries()) {
    const other = streams[1 - index];
    leg.rtp.peer = other?.rtp;
    leg.rtcp.peer = other?.rtcp;
    leg.rtp.rtcpSibling = leg.rtcp;
    leg.rtcp.rtpSibling = leg.rtp;
  }
}
