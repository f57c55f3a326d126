/**
 * A relay stream as the session manager, the recorder and the player see it, whether the packets
 * run through it on the main thread (RelayStream) or in a media worker (WorkerStream, a main-thread
 * proxy over the worker's stream). Everything here is read or set from the main thread.
 */
import type { Endpoint, Family } from '../base/net.ts';
import type { Side } from '../base/side.ts';

/** Told when a packet reaches the relay stage, to re-arm the idle timer of the leg. */
export interface ActivitySink {
  touch(leg: Side): void;
}

/** Where a leg's recorder receives the packets that arrive on the leg (docs/protocol.md 6.1). */
export interface PacketTap {
  record(
    packet: Buffer,
    isRtp: boolean,
    from: Endpoint,
    to: Endpoint,
    family: Family,
    wallMs: number,
  ): void;
}

/** Sends a datagram out of a stream's socket; errors are counted by the stream. */
export interface SendSocket {
  send(msg: Buffer, port: number, address: string): void;
}

/** The per-direction RTP analysis behind Q's rtpa_* and longest_ipi (docs/protocol.md 10.1). */
export interface RtpStatsView {
  readonly perrs: number;
  readonly nrcvd: number;
  readonly ndups: number;
  readonly nsent: number;
  readonly nlost: number;
  readonly jlast: number;
  readonly jmax: number;
  readonly javg: number;
  /** Seconds. */
  readonly longestIpi: number;
}

/** A stream's packet counters (docs/protocol.md 10.1). */
export interface StreamCounters {
  /** Packets accepted from the party this leg faces. */
  readonly npktsIn: number;
  /** Bytes (UDP payload) of the accepted packets. */
  readonly nbytesIn: number;
  /** Accepted packets relayed out of the peer. */
  readonly nrelayed: number;
  /** Accepted packets that could not be relayed. */
  readonly ndropped: number;
  /** Packets refused by the source check. */
  readonly nignored: number;
  /** Send errors on the stream's socket. */
  readonly nsendErrors: number;
  /** Per-direction RTP analysis (RTP streams only). */
  readonly rtpStats: RtpStatsView | undefined;
}

export interface MediaStream extends StreamCounters {
  readonly leg: Side;
  readonly isRtp: boolean;
  /** False until the session is complete: packets are then read and discarded. */
  complete: boolean;
  /** Asymmetric leg: the remote comes from signalling; packets are checked by IP only. */
  asymmetric: boolean;
  /** The leg's recorder, if one runs: every accepted packet is handed to it before relaying. */
  tap: PacketTap | undefined;
  /** A prompt plays out of this stream: the other party's packets towards it are dropped. */
  playing: boolean;
  /** The party of this stream is blocked (ng `block media`): the RTP it sends is dropped. */
  blocked: boolean;
  /** Told when a packet reaches the relay stage; the owning session sets itself here. */
  activity: ActivitySink;
  readonly remoteAddress: string | undefined;
  readonly remotePort: number;
  /** Sends out of the stream's socket; undefined while no socket is bound. */
  readonly socket: SendSocket | undefined;
  readonly localPort: number;
  /** The address and port packets arrive on (the bound address, maybe a wildcard). */
  readonly local: Endpoint;
  readonly family: Family;
  readonly latched: boolean;
  /** A re-INVITE's pre-fill opened the re-latch window, and it is still open. */
  readonly relatching: boolean;
  /** The packet time `z` asked for (RTP only), or undefined. */
  readonly repacketizeMs: number | undefined;
  /**
   * Packets of this stream's party that the kernel fast path forwarded (docs/kernel.md): counted
   * as accepted and relayed, so that Q, the session end and the idle timer see them.
   */
  addKernelTraffic(packets: number, payloadBytes: number): void;
  /** Pre-fill from signalling (U/L ADDR PORT), docs/protocol.md 4.4 "Pre-fill". */
  prefill(address: string, port: number): void;
  /**
   * `z<ms>`: re-packetize the packets of this leg's party to `ms` per packet before they are
   * relayed; undefined stops it (docs/protocol.md 5). RTP streams only.
   */
  repacketize(ms: number | undefined): void;
  /** Closes the socket for good. Idempotent. */
  detach(): void;
}

/** The RTP and RTCP streams of one leg. */
export interface LegStreams<S extends MediaStream = MediaStream> {
  readonly rtp: S;
  readonly rtcp: S;
}

/** The four streams of a session, leg 0 first. */
export type SessionStreams<S extends MediaStream = MediaStream> = readonly [
  LegStreams<S>,
  LegStreams<S>,
];
