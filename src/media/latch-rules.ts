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

/**
 * The reference's rules: a leg not yet latched takes any source; a latched one moves within the
 * re-latch window (a re-INVITE's pre-fill opened it), or to a source that sends its RTP SSRC
 * (`ssrc`, -1 when none) with a sequence number near the latched one (`seq`). Plain arguments:
 * a flood from other sources allocates nothing here.
 */
export function referenceMayMove(
  latched: boolean,
  isRtp: boolean,
  ssrc: number,
  seq: number,
  inRelatchWindow: boolean,
  msg: Buffer,
): boolean {
  if (!latched) return true;
  if (!isRtp || ssrc < 0) return false;
  if (inRelatchWindow) return true;
  if (rtpSsrc(msg) !== ssrc) return false;
  const distance = Math.abs(((rtpSequence(msg) - seq + 32768) & 0xffff) - 32768);
  return distance <= RELATCH_SEQ_DISTANCE;
}

/**
 * Strict sources: a source other than the current remote may have the leg when it is at the
 * address signalling named (any port: a NAT may change it), or, when signalling named none, an
 * RTP source confirmed by CONFIRM_PACKETS consecutive packets of one SSRC with consecutive
 * sequence numbers. An RTCP stream without a signalled address follows the address its RTP
 * stream (`rtp`) latched to. The same test holds in and out of the re-latch window, latched or
 * not. `signalled` is the party's address as signalling last named it (canonical), `candidate` the
 * unsignalled RTP source being confirmed.
 */
export function strictAcceptable(
  signalled: string | undefined,
  isRtp: boolean,
  rtp: { readonly latched: boolean; readonly remoteAddress: string | undefined } | undefined,
  candidate: SourceConfirmation,
  address: string,
  port: number,
  msg: Buffer,
): boolean {
  if (signalled !== undefined) return address === signalled;
  if (!isRtp) return rtp !== undefined && rtp.latched && rtp.remoteAddress === address;
  return candidate.confirm(address, port, msg);
}
