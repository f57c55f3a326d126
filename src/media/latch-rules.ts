/**
 * When a relay stream may take a source other than the one it holds: the reference's rules
 * (`--no_strict_source`; sippy/rtpproxy src/rtpp_stream.c, docs/protocol.md 4.4) and strict
 * sources (docs/architecture.md, "Strict sources"). Not on the packet path: only packets from
 * another source than the current one come here.
 */
import { rtpSequence, rtpSsrc } from './rtp.ts';
import type { SourceConfirmation } from './source-confirmation.ts';

/** Re-latch window after a pre-fill from signalling (the reference's 10 s). */
export const RELATCH_WINDOW_MS = 10_000;
/** Largest sequence distance for a same-SSRC move after latching (the reference's). */
const RELATCH_SEQ_DISTANCE = 536;

/** What the reference's rules read of a symmetric leg. */
export interface LatchState {
  readonly latched: boolean;
  readonly isRtp: boolean;
  /** The latched SSRC, or -1. */
  readonly ssrc: number;
  /** The latched sequence number. */
  readonly seq: number;
  /** A re-INVITE's pre-fill opened the re-latch window, and it is still open. */
  readonly inRelatchWindow: boolean;
}

/**
 * The reference's rules: a leg not yet latched takes any source; a latched one moves within the
 * re-latch window, or to a source that sends its RTP SSRC with a nearby sequence number.
 */
export function referenceMayMove(state: LatchState, msg: Buffer): boolean {
  if (!state.latched) return true;
  if (!state.isRtp || state.ssrc < 0) return false;
  if (state.inRelatchWindow) return true;
  if (rtpSsrc(msg) !== state.ssrc) return false;
  const distance = Math.abs(((rtpSequence(msg) - state.seq + 32768) & 0xffff) - 32768);
  return distance <= RELATCH_SEQ_DISTANCE;
}

/** What strict sources read of a stream. */
export interface StrictState {
  /** The party's address as signalling last named it (canonical), or undefined. */
  readonly signalled: string | undefined;
  readonly isRtp: boolean;
  /** An RTCP stream's RTP stream: its latch state and remote address. */
  readonly rtp:
    { readonly latched: boolean; readonly remoteAddress: string | undefined } | undefined;
  /** The unsignalled RTP source being confirmed. */
  readonly candidate: SourceConfirmation;
}

/**
 * Strict sources: a source other than the current remote may have the leg when it is at the
 * address signalling named (any port: a NAT may change it), or, when signalling named none, an
 * RTP source confirmed by CONFIRM_PACKETS consecutive packets of one SSRC with consecutive
 * sequence numbers. An RTCP stream without a signalled address follows the address its RTP
 * stream latched to. The same test holds in and out of the re-latch window, latched or not.
 */
export function strictAcceptable(
  state: StrictState,
  address: string,
  port: number,
  msg: Buffer,
): boolean {
  if (state.signalled !== undefined) return address === state.signalled;
  if (!state.isRtp) {
    const rtp = state.rtp;
    return rtp !== undefined && rtp.latched && rtp.remoteAddress === address;
  }
  return state.candidate.confirm(address, port, msg);
}
