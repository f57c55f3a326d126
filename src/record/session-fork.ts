/**
 * A session fork (the `C CALLID T1 T2` sub-command of U, docs/protocol.md 3.15; sippy/rtpproxy
 * src/commands/rpcpv1_ul_subc_copy.c): the packets arriving on one leg of a source session leave
 * out of one leg of the target session, to the party that leg faces, as if the target relayed
 * them. RTP goes out of the leg's RTP socket, RTCP out of its RTCP socket.
 *
 * `record()` is on the packet path: one `send`, no allocation, never throws (P8). A packet the
 * target leg cannot send yet (no remote address, no socket) is counted and dropped.
 */
import type { LegStreams, PacketTap } from '../media/stream.ts';

export class SessionFork implements PacketTap {
  readonly #out: LegStreams;
  readonly #sent: () => void;
  /** Copies sent. */
  sent = 0;
  /** Copies the target leg could not send. */
  dropped = 0;

  /**
   * `out`: the target leg's streams the copies leave from; `sent`: called after each copy sent
   * (the target's idle timer restarts, as a relayed packet restarts it).
   */
  constructor(out: LegStreams, sent: () => void) {
    this.#out = out;
    this.#sent = sent;
  }

  record(packet: Buffer, isRtp: boolean): void {
    const out = isRtp ? this.#out.rtp : this.#out.rtcp;
    const socket = out.socket;
    const address = out.remoteAddress;
    if (socket === undefined || address === undefined || out.remotePort <= 0) {
      this.dropped += 1;
      return;
    }
    try {
      socket.send(packet, out.remotePort, address);
      this.sent += 1;
      this.#sent();
    } catch {
      // A socket closed under us: the target session is going away.
      this.dropped += 1;
    }
  }
}
